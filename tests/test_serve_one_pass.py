"""One model pass per request: the answers are the model's own predict and predict_proba.

Real scikit-learn models fitted on iris (and a binary problem), asked through ``Served``
as the server asks them, against ``model.predict`` / ``model.predict_proba`` called directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from mlops.registry.signature import Feature, FeatureType, Signature, SignatureSource, is_composite
from mlops.serve.inputs import Rows
from mlops.serve.model import Pass, Served, _final_step, choose_pass

NAMES = ("a", "b", "c", "d")


class VotingForest(RandomForestClassifier):
    """A forest whose predict is its own: one pass must not be assumed for it."""

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.classes_[0])


def _data(binary: bool = False) -> tuple[pd.DataFrame, Any]:
    x, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(x, columns=list(NAMES))
    return frame, (y == 2).astype(int) if binary else y


def _served(model: Any) -> Served:
    signature = Signature(
        tuple(Feature(n, FeatureType.NUMBER) for n in NAMES), SignatureSource.FITTED_MODEL
    )
    as_array = not is_composite(model)
    classes = list(model.classes_.tolist()) if hasattr(model, "predict_proba") else None
    how = choose_pass(model, as_array, len(NAMES)) if classes is not None else Pass.PREDICT
    return Served(None, None, model, signature, as_array, classes, how, _final_step(model))  # type: ignore[arg-type]


def _rows(frame: pd.DataFrame) -> Rows:
    return Rows(NAMES, tuple(frame[n].tolist() for n in NAMES), len(frame))


def _probe() -> pd.DataFrame:
    """Iris rows, and random rows around and outside them (boundaries, near-ties)."""
    frame, _ = _data()
    rng = np.random.default_rng(0)
    noise = pd.DataFrame(rng.uniform(-1.0, 9.0, (400, 4)).round(1), columns=list(NAMES))
    return pd.concat([frame, noise], ignore_index=True)


@pytest.mark.parametrize(
    ("make", "binary", "expected"),
    [
        (lambda: RandomForestClassifier(n_estimators=50, random_state=0), False, Pass.TREES),
        (lambda: ExtraTreesClassifier(n_estimators=20, random_state=0), False, Pass.TREES),
        (lambda: RandomForestClassifier(n_estimators=10, n_jobs=2, random_state=0), False,
         Pass.PROBA),
        (lambda: DecisionTreeClassifier(random_state=0), False, Pass.PROBA),
        (lambda: LogisticRegression(max_iter=500), False, Pass.PROBA),
        (lambda: LogisticRegression(max_iter=500), True, Pass.PROBA),
        (lambda: make_pipeline(StandardScaler(), LogisticRegression()), False, Pass.PROBA),
        (lambda: make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10)),
         False, Pass.PROBA),
        (lambda: SVC(probability=True, random_state=0), False, Pass.TWO),
        (lambda: VotingForest(n_estimators=10, random_state=0), False, Pass.TWO),
        (lambda: RandomForestRegressor(n_estimators=10, random_state=0), False, Pass.PREDICT),
    ],
)  # fmt: skip
def test_one_pass_answers_are_the_models_own(make: Any, binary: bool, expected: Pass) -> None:
    frame, y = _data(binary)
    model = make().fit(frame, y)
    served = _served(model)
    assert served.how is expected
    probe = _probe()
    for chunk in (probe.iloc[:1], probe.iloc[:100], probe):
        predictions, proba = served.predict(_rows(chunk), probabilities=True)
        given = served.inputs(_rows(chunk))
        if served.how is Pass.TREES:  # the forest itself converts to float32
            given = given.astype(np.float64)
        assert predictions == model.predict(given).tolist()
        if served.classes is None:
            assert proba is None
        else:
            assert proba == model.predict_proba(given).tolist()
        mlflow_only, none = served.predict(_rows(chunk), probabilities=False)
        assert mlflow_only == predictions and none is None


def test_a_forest_of_another_width_or_in_threads_is_not_walked_unchecked() -> None:
    frame, y = _data()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y)
    assert choose_pass(forest, True, len(NAMES)) is Pass.TREES
    assert choose_pass(forest, True, len(NAMES) - 1) is Pass.PROBA
    assert choose_pass(forest, False, len(NAMES)) is Pass.PROBA  # a frame: predict_proba
