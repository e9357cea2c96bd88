"""The model being served, and how it follows its alias.

A ``Served`` is one loaded, warmed-up version; it never changes. ``ModelHolder`` keeps
the current one and, when serving an alias, a background thread compares the alias's
tag refs (one ``git for-each-ref``, no registry scan) and, when they moved, loads the
new holder (hash-checked), warms it up and swaps it in. A request takes the current
``Served`` once, so a swap never touches a request in flight. A version that fails to
load leaves the old one serving, and the reason is kept for ``/health/ready``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from mlops.core.repo import Repo
from mlops.errors import MlopsError, ServeError
from mlops.registry.records import REF_PREFIX, ModelVersion, split_reference
from mlops.registry.signature import (
    FeatureType,
    Signature,
    SignatureSource,
    is_composite,
    model_signature,
)
from mlops.serve.inputs import Rows

log = logging.getLogger("mlops.serve")
_WARM_VALUES = {
    FeatureType.NUMBER: 0.0,
    FeatureType.STRING: "",
    FeatureType.BOOLEAN: False,
    FeatureType.ANY: 0.0,
}


def prepare_process() -> None:
    """Settings for a process that serves: requests are checked before the model sees them.

    Values are finite numbers already (so scikit-learn need not check again), and a
    plain estimator gets a bare array, on which it would warn at every request that the
    array has no column names.
    """
    import warnings

    import sklearn

    sklearn.set_config(assume_finite=True)
    warnings.filterwarnings("ignore", message="X does not have valid feature names")


class Pass(Enum):
    """How a version is asked for its answers, chosen once when it is loaded."""

    TREES = "trees"  # a forest: its trees walked once, predictions the argmax of the mean
    PROBA = "proba"  # predict_proba once, predictions its argmax through classes_
    TWO = "two"  # predict, then predict_proba: no promise that they agree otherwise
    PREDICT = "predict"  # no probabilities: predict alone


# Classifiers whose predict is, in scikit-learn's own code, the class of the largest
# predict_proba (classes_.take(argmax(proba))): one call answers both, bit for bit.
_ARGMAX_EXACT = {
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"),
    ("sklearn.tree._classes", "DecisionTreeClassifier"),
    ("sklearn.tree._classes", "ExtraTreeClassifier"),
}
# Classifiers whose predict is the argmax of a score that predict_proba maps monotonically
# (sigmoid, softmax): the argmax agrees except where rounding makes two probabilities equal,
# and for those rows predict itself is asked.
_ARGMAX_MONOTONIC = {("sklearn.linear_model._logistic", "LogisticRegression")}
_FORESTS = {
    ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"),
}
_TIE = 1e-9  # probabilities this close are a possible tie: predict decides the row


def _kind_of(model: Any) -> tuple[str, str]:
    """The exact class (a subclass may override predict, so it never matches)."""
    kind = type(model)
    return kind.__module__, kind.__qualname__


def _final_step(model: Any) -> Any:
    """A pipeline's last step (what answers predict and predict_proba); else the model."""
    from sklearn.pipeline import Pipeline

    while type(model) is Pipeline and model.steps:
        model = model.steps[-1][1]
    return model


def choose_pass(model: Any, as_array: bool, width: int) -> Pass:
    """How to answer with the fewest passes over the model and the same answers."""
    import numpy as np

    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        return Pass.PREDICT
    final = _final_step(model)
    classes = getattr(final, "classes_", None)
    if not isinstance(classes, np.ndarray) or classes.ndim != 1:
        return Pass.TWO  # multi-output: predict_proba is a list of arrays
    if getattr(final, "n_outputs_", 1) != 1:
        return Pass.TWO
    kind = _kind_of(final)
    if (
        kind in _FORESTS
        and final is model
        and as_array
        and final.n_jobs in (None, 1)  # in threads the sums' order, so the last bit, varies
        and getattr(model, "n_features_in_", None) == width  # the trees index x unchecked
    ):
        return Pass.TREES
    if kind in _ARGMAX_EXACT or kind in _ARGMAX_MONOTONIC:
        return Pass.PROBA
    return Pass.TWO


@dataclass(frozen=True)
class Scored:
    """One pass of the model over some rows: the answers as plain lists (for JSON), and
    the arrays they came from, with the rows' features as a (feature, row) array of floats
    when the model took an array (the prediction log takes arrays as they are)."""

    predictions: list[Any]
    probabilities: list[list[float]] | None
    predicted: Any
    proba: Any
    features: Any


@dataclass(frozen=True)
class Served:
    """One loaded version: the model object, its signature and how to feed it."""

    version: ModelVersion
    alias: str | None
    model: Any
    signature: Signature
    as_array: bool  # a plain estimator of numbers takes a float array (no frame to build)
    classes: list[Any] | None  # a classifier's class labels, when it has probabilities
    how: Pass = Pass.TWO
    final: Any = None  # what answers predict_proba (a pipeline's last step), for classes_

    @property
    def label(self) -> str:
        return f"{self.version.model}:{self.version.label}"

    def identity(self) -> dict[str, Any]:
        """Name, version, content hash, commit and alias: what ``/version`` answers."""
        v = self.version
        return {
            "model": v.model,
            "version": v.label,
            "id": v.id,
            "hash": v.content.oid,
            "commit": v.commit,
            "alias": self.alias,
        }

    def inputs(self, rows: Rows) -> Any:
        """What the model is given: a float array, or a frame with the fitted column names."""
        if self.as_array:
            import numpy as np

            return self._array(np.array(rows.columns, dtype=np.float64))
        import pandas as pd

        return pd.DataFrame(dict(zip(rows.names, rows.columns, strict=True)), columns=rows.names)

    def _array(self, features: Any) -> Any:
        """The model's array of rows from the (feature, row) array of floats."""
        import numpy as np

        # A forest works in float32 (it converts whatever it is given).
        dtype = np.float32 if self.how is Pass.TREES else np.float64
        return features.T.astype(dtype, order="C")

    def score(self, rows: Rows, probabilities: bool) -> Scored:
        """The model's answers for ``rows``, as lists and as the arrays they came from."""
        features = None
        if self.as_array:
            import numpy as np

            features = np.array(rows.columns, dtype=np.float64)
            x = self._array(features)
        else:
            x = self.inputs(rows)
        predicted, proba = self.answer(x, probabilities)
        listed = None if proba is None else proba.tolist()
        return Scored(predicted.tolist(), listed, predicted, proba, features)

    def predict(
        self, rows: Rows, probabilities: bool
    ) -> tuple[list[Any], list[list[float]] | None]:
        """Predictions, and class probabilities when asked and the model has them."""
        scored = self.score(rows, probabilities)
        return scored.predictions, scored.probabilities

    def answer(self, x: Any, probabilities: bool) -> tuple[Any, Any]:
        """The model's arrays for ``x``, in one pass where ``how`` allows."""
        import numpy as np

        how, model = self.how, self.model
        if how is Pass.PREDICT or (how is Pass.TWO and not probabilities):
            return np.asarray(model.predict(x)), None
        if how is Pass.TWO:
            return np.asarray(model.predict(x)), model.predict_proba(x)
        proba = _forest_proba(model, x) if how is Pass.TREES else model.predict_proba(x)
        predictions = self.final.classes_.take(np.argmax(proba, axis=1), axis=0)
        if how is Pass.PROBA and proba.shape[1] > 1 and _kind_of(self.final) in _ARGMAX_MONOTONIC:
            top = np.sort(proba, axis=1)[:, -2:]
            close = np.flatnonzero(top[:, 1] - top[:, 0] <= _TIE)
            if close.size:
                predictions[close] = model.predict(_take_rows(x, close))
        return predictions, proba if probabilities else None


def _forest_proba(forest: Any, x: Any) -> Any:
    """A forest's predict_proba without its per-call thread-pool set-up: the trees' own
    probabilities summed in order, then divided, exactly as the forest does it."""
    import numpy as np

    total = np.zeros((x.shape[0], int(forest.n_classes_)), dtype=np.float64)
    for tree in forest.estimators_:
        # A tree's predict_proba is this, after checks that cost more than the walk: x is
        # a C-ordered float32 array of the forest's width (choose_pass made sure).
        total += tree.tree_.predict(x)[:, : tree.n_classes_]
    total /= len(forest.estimators_)
    return total


def _take_rows(x: Any, index: Any) -> Any:
    return x.iloc[index] if hasattr(x, "iloc") else x[index]


def load_served(repo: Repo, version: ModelVersion, alias: str | None) -> Served:
    """Load ``version`` (hash-checked), find its signature, and run a warm-up prediction."""
    from mlops.registry.content import load_version

    model = load_version(repo, version)
    if not hasattr(model, "predict"):
        raise ServeError(f"{version.ref}: a {type(model).__name__} has no predict method")
    signature = Signature.from_dict(version.signature) if version.signature else None
    if signature is None:
        signature = model_signature(model)
        if signature is not None:
            signature = Signature(signature.features, SignatureSource.FITTED_MODEL)
    if signature is None:
        raise ServeError(
            f"{version.ref}: neither its record nor the model names its features "
            "(fit it on a pandas DataFrame, then register it again)"
        )
    plain = all(f.type is FeatureType.NUMBER for f in signature.features)
    classes = None
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        classes = list(model.classes_.tolist())
    as_array = plain and not is_composite(model)
    how = choose_pass(model, as_array, len(signature.names)) if classes else Pass.PREDICT
    served = Served(version, alias, model, signature, as_array, classes, how, _final_step(model))
    warm = Rows(
        signature.names,
        tuple([_WARM_VALUES[f.type]] for f in signature.features),
        1,
    )
    try:
        served.predict(warm, probabilities=True)
        if served.how in (Pass.TREES, Pass.PROBA) and not _agrees(served, warm):
            served = Served(version, alias, model, signature, as_array, classes, Pass.TWO)
            log.warning("%s: answering with predict and predict_proba", version.ref)
    except Exception as exc:  # the model's library raises anything
        raise ServeError(
            f"{version.ref}: the warm-up prediction failed: {type(exc).__name__}: {exc}"
        ) from exc
    return served


def _agrees(served: Served, rows: Rows) -> bool:
    """Whether the one-pass answers for ``rows`` are the model's own predict and
    predict_proba (checked once, at load)."""
    import numpy as np

    x = served.inputs(rows)
    predictions, proba = served.answer(x, True)
    x_plain = served.inputs(rows) if served.how is not Pass.TREES else x.astype(np.float64)
    return bool(
        np.array_equal(predictions, np.asarray(served.model.predict(x_plain)))
        and np.array_equal(proba, served.model.predict_proba(x_plain))
    )


class ModelHolder:
    """The version being served; follows ``NAME@ALIAS`` when given one."""

    def __init__(self, repo: Repo, reference: str, poll: float = 2.0) -> None:
        from mlops.registry.tags import resolve

        self.repo = repo
        self.reference = reference
        self.name, _, self.alias = split_reference(reference)
        self.poll = poll
        self.problem: str | None = None
        self.on_switch: Callable[[Served], None] | None = None
        self._refs = self._alias_refs()
        self.current = load_served(repo, resolve(repo, reference), self.alias)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start following the alias (nothing to follow for ``NAME:VERSION``)."""
        if self.alias is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="mlops-alias", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def check(self) -> bool:
        """Switch to the alias's holder if it moved; True when a new version is serving."""
        from mlops.registry.tags import resolve

        refs = self._alias_refs()
        if refs == self._refs:
            return False
        try:
            version = resolve(self.repo, self.reference)
            if version.id == self.current.version.id:
                self._refs, self.problem = refs, None
                return False
            served = load_served(self.repo, version, self.alias)
        except MlopsError as exc:
            message = f"{self.reference} moved, still serving {self.current.label}: {exc.message}"
            if message != self.problem:
                log.error("%s", message)
            self.problem = message
            return False
        previous = self.current.label
        self.current, self._refs, self.problem = served, refs, None
        log.info("%s moved: now serving %s (was %s)", self.reference, served.label, previous)
        if self.on_switch is not None:
            self.on_switch(served)
        return True

    def _follow(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.check()
            except Exception:  # the follower must outlive any surprise; the log says what
                log.exception("following %s failed", self.reference)

    def _alias_refs(self) -> bytes:
        """The alias's tag refs and objects: they change exactly when the alias moves."""
        from mlops.core.git import git

        if self.alias is None:
            return b""
        pattern = f"{REF_PREFIX}{self.name}/@{self.alias}"
        return git(self.repo.root, "for-each-ref", "--format=%(refname) %(objectname)", pattern)
