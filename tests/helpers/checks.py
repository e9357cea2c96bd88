"""Small real projects for the checks tests: data files, a trained model, mlops.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops.checks import CheckResult
from tests.helpers.files import write
from tests.helpers.repos import init_git

# The issue's example, verbatim: it must work as written.
ISSUE_YAML = """\
checks:
  clean_training_data:
    data: data/train.csv            # CSV, Parquet or JSON lines
    expect:
      - schema: {age: int, income: float, label: int}
      - not_null: [age, label]
      - unique: [id]
      - between: {age: [0, 120]}
      - allowed: {label: [0, 1]}
      - rows: {min: 100}
      - no_duplicate_rows: true
      - drift: {reference: data/reference.csv, max_psi: 0.2}
      - custom: mypkg.checks:income_is_plausible
  good_model:
    model: model.joblib             # loaded with joblib
    data: data/holdout.csv
    target: label
    features: [age, income]         # default: every column but the target
    expect:
      - accuracy >= 0.9             # any scikit-learn metric by name
      - f1 >= 0.85
      - metric: {file: metrics.json, key: auc, min: 0.8}
      - predicts: {rows: tests/known_cases.csv, column: expected}
      - latency_ms_per_1k_rows <= 50
stages:
  train:
    cmd: python train.py
    deps: [data/train.csv]
    outs: [model.joblib]
    checks:
      before: [clean_training_data]
      after: [good_model]
"""


def train_frame(rows: int = 400, seed: int = 0) -> Any:
    """People with an age, an income and a label that depends on both (clean data)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows)
    income = rng.normal(50_000, 12_000, rows).round(2)
    label = ((age > 50) ^ (income > 50_000)).astype(int)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "age": age,
            "income": income,
            "label": label,
            "city": rng.choice(["paris", "lyon", "nice"], rows),
            "email": [f"user{i}@example.com" for i in range(rows)],
        }
    )


def data_project(root: Path, yaml_text: str, package: str = "mypkg") -> Path:
    """A Git repository with data/train.csv, data/reference.csv and ``package``.checks."""
    init_git(root)
    frame = train_frame()
    (root / "data").mkdir(exist_ok=True)
    frame.to_csv(root / "data/train.csv", index=False)
    train_frame(seed=1).to_csv(root / "data/reference.csv", index=False)
    write(root, f"{package}/__init__.py", "")
    write(
        root,
        f"{package}/checks.py",
        """\
        def income_is_plausible(df):
            bad = int((df["income"] < 0).sum())
            return bad == 0, f"{bad} negative incomes"


        def always_false(df):
            return False


        def explodes(df):
            raise RuntimeError("boom")


        def returns_text(df):
            return "yes"
        """,
    )
    write(root, "mlops.yaml", yaml_text)
    return root


def model_project(root: Path, yaml_text: str = ISSUE_YAML) -> Path:
    """``data_project`` plus a LogisticRegression trained on it, holdout data, metrics and
    known cases (the issue's good_model suite passes on it)."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    data_project(root, yaml_text)
    train = train_frame(rows=2000, seed=2)
    features = ["age", "income"]
    # The age * income term lets a linear model learn the xor-like label.
    model = make_pipeline(
        PolynomialFeatures(2, interaction_only=True), StandardScaler(), LogisticRegression()
    )
    model.fit(train[features], train["label"])
    joblib.dump(model, root / "model.joblib")
    holdout = train_frame(rows=300, seed=3)
    holdout.to_csv(root / "data/holdout.csv", index=False)
    known = holdout.loc[:9, features].copy()
    known["expected"] = model.predict(known)
    (root / "tests").mkdir(exist_ok=True)
    known.to_csv(root / "tests/known_cases.csv", index=False)
    (root / "metrics.json").write_text(json.dumps({"auc": 0.93, "test": {"loss": 0.2}}))
    return root


def only(results: list[CheckResult]) -> CheckResult:
    """The one result in ``results``."""
    assert len(results) == 1, results
    return results[0]
