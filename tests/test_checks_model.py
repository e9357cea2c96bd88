"""Model checks on real scikit-learn models saved with joblib."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.checks import CheckResult, load_suites, run_suites
from tests.helpers.checks import model_project, only
from tests.helpers.files import write


def run(root: Path, expect: str, extra: str = "") -> list[CheckResult]:
    """Run one model suite on the project's model and holdout data."""
    body = "".join(f"      {line.strip()}\n" for line in expect.strip().splitlines())
    write(
        root,
        "mlops.yaml",
        f"checks:\n  m:\n    model: model.joblib\n    data: data/holdout.csv\n"
        f"    target: label\n    features: [age, income]\n{extra}    expect:\n{body}",
    )
    return list(run_suites(load_suites(root / "mlops.yaml").values(), root).results)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_project(tmp_path_factory.mktemp("model") / "p")


def _holdout_accuracy(root: Path) -> float:
    import joblib
    import pandas as pd

    holdout = pd.read_csv(root / "data/holdout.csv")
    model = joblib.load(root / "model.joblib")
    return float((model.predict(holdout[["age", "income"]]) == holdout["label"]).mean())


def test_sklearn_metrics_by_name(project: Path) -> None:
    results = run(
        project,
        """
        - accuracy >= 0.9
        - f1 >= 0.85
        - roc_auc > 0.9
        - accuracy_score >= 0.9
        - log_loss <= 0.5
        - zero_one_loss < 0.1
        - cohen_kappa_score >= 0.8
        """,
    )
    assert [(r.check, r.status) for r in results] == [
        ("accuracy", "pass"),
        ("f1", "pass"),
        ("roc_auc", "pass"),
        ("accuracy_score", "pass"),
        ("log_loss", "pass"),
        ("zero_one_loss", "pass"),
        ("cohen_kappa_score", "pass"),
    ]
    accuracy = _holdout_accuracy(project)
    assert results[0].observed == pytest.approx(accuracy)
    assert results[3].observed == pytest.approx(accuracy)
    assert results[5].observed == pytest.approx(1 - accuracy)
    assert 0 < results[4].observed < 0.5  # the error, not sklearn's negated score


def test_metric_failing(project: Path) -> None:
    result = only(run(project, "- accuracy >= 0.999"))
    assert (result.status, result.expected) == ("fail", ">= 0.999")
    assert result.message == (
        f"accuracy = {result.observed:.4g}, expected >= 0.999 (accuracy on data/holdout.csv)"
    )


def test_unknown_metric(project: Path) -> None:
    result = only(run(project, "- acuracy >= 0.9"))
    assert result.status == "error"
    assert result.message.startswith(
        "mlops.yaml:8: suite 'm', check 1 (acuracy), key 'acuracy': unknown scikit-learn "
        "metric 'acuracy' (did you mean accuracy"
    )
    assert "sklearn.metrics.get_scorer_names()" in result.message


def test_features_default_to_every_column_but_target(tmp_path: Path) -> None:
    """Iris: a multiclass model on every column; binary f1 errors, f1_macro passes."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame = load_iris(as_frame=True).frame
    model = LogisticRegression(max_iter=1000).fit(frame.drop(columns="target"), frame["target"])
    joblib.dump(model, tmp_path / "iris.joblib")
    frame.to_parquet(tmp_path / "iris.parquet")
    write(
        tmp_path,
        "mlops.yaml",
        """\
        checks:
          iris:
            model: iris.joblib
            data: iris.parquet
            target: target
            expect:
              - f1_macro >= 0.9
              - f1 >= 0.9
              - balanced_accuracy >= 0.9
        """,
    )
    macro, binary, balanced = run_suites(
        load_suites(tmp_path / "mlops.yaml").values(), tmp_path
    ).results
    assert macro.status == "pass" and balanced.status == "pass"
    assert binary.status == "error"
    assert binary.message.startswith(
        "mlops.yaml:8: suite 'iris', check 2 (f1), key 'f1': scikit-learn could not compute f1: "
        "ValueError: Target is multiclass but average='binary'"
    )


def test_metric_from_file(project: Path) -> None:
    results = run(
        project,
        """
        - metric: {file: metrics.json, key: auc, min: 0.8}
        - metric: {file: metrics.json, key: test.loss, max: 0.1}
        """,
    )
    assert [(r.status, r.observed, r.expected) for r in results] == [
        ("pass", 0.93, "auc >= 0.8"),
        ("fail", 0.2, "test.loss <= 0.1"),
    ]
    assert results[1].message == "test.loss = 0.2 in metrics.json, expected test.loss <= 0.1"
    missing_key, missing_file = run(
        project,
        """
        - metric: {file: metrics.json, key: f1, min: 0.8}
        - metric: {file: nope.json, key: auc, min: 0.8}
        """,
    )
    assert missing_key.message == (
        "mlops.yaml:8: suite 'm', check 1 (metric), key 'key': no key 'f1' in metrics.json "
        "(keys: auc, test)"
    )
    assert missing_file.message == (
        "mlops.yaml:9: suite 'm', check 2 (metric), key 'file': "
        "metrics file nope.json does not exist"
    )


def test_predicts_known_cases(project: Path) -> None:
    import pandas as pd

    assert (
        only(run(project, "- predicts: {rows: tests/known_cases.csv, column: expected}")).status
        == "pass"
    )
    known = pd.read_csv(project / "tests/known_cases.csv")
    known.loc[[2, 5], "expected"] = 1 - known.loc[[2, 5], "expected"]
    known.to_csv(project / "tests/wrong_cases.csv", index=False)
    result = only(run(project, "- predicts: {rows: tests/wrong_cases.csv, column: expected}"))
    assert (result.status, result.failing) == ("fail", 2)
    assert [e["row"] for e in result.examples] == [2, 5]
    assert all(e["expected"] != e["predicted"] for e in result.examples)
    assert result.message.startswith(
        "2 of 10 known cases in tests/wrong_cases.csv predicted wrong (row 2: "
    )


def test_latency(project: Path) -> None:
    fast = only(run(project, "- latency_ms_per_1k_rows <= 5000"))
    assert fast.status == "pass" and fast.observed > 0
    slow = only(run(project, "- latency_ms_per_1k_rows <= 0.000001"))
    assert slow.status == "fail"
    assert slow.message.endswith("(1200 rows, best of 3)")  # 300 holdout rows x 4


def _rerun_with(root: Path, old: str, new: str) -> CheckResult:
    """Run the last suite again with ``old`` replaced by ``new`` in mlops.yaml."""
    text = (root / "mlops.yaml").read_text().replace(old, new)
    (root / "mlops.yaml").write_text(text)
    return only(list(run_suites(load_suites(root / "mlops.yaml").values(), root).results))


def test_missing_model_or_target(project: Path) -> None:
    assert only(run(project, "- accuracy >= 0.9")).status == "pass"
    result = _rerun_with(project, "model.joblib", "gone.joblib")
    assert (result.check, result.status) == ("model", "error")
    assert (
        result.message
        == "mlops.yaml:2: suite 'm', key 'model': model file gone.joblib does not exist"
    )
    assert only(run(project, "- accuracy >= 0.9")).status == "pass"
    result = _rerun_with(project, "target: label", "target: labl")
    assert result.message.endswith("key 'target': target column 'labl' is not in data/holdout.csv")


def test_broken_model_file(project: Path) -> None:
    (project / "broken.joblib").write_bytes(b"not a pickle")
    assert only(run(project, "- accuracy >= 0.9")).status == "pass"
    result = _rerun_with(project, "model.joblib", "broken.joblib")
    assert result.status == "error"
    assert "key 'model': cannot load model broken.joblib: " in result.message


def test_model_fitted_on_arrays_gets_arrays(tmp_path: Path) -> None:
    """Breast cancer data, a model fitted on a bare array: no feature-name warnings."""
    import warnings

    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    x, y = frame.drop(columns="target"), frame["target"]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x.to_numpy(), y)
    joblib.dump(model, tmp_path / "cancer.joblib")
    frame.to_json(tmp_path / "holdout.jsonl", orient="records", lines=True)
    write(
        tmp_path,
        "mlops.yaml",
        """\
        checks:
          cancer:
            model: cancer.joblib
            data: holdout.jsonl
            target: target
            expect: [accuracy >= 0.95, roc_auc >= 0.95, latency_ms_per_1k_rows <= 5000]
        """,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = run_suites(load_suites(tmp_path / "mlops.yaml").values(), tmp_path)
    assert [r.status for r in report.results] == ["pass", "pass", "pass"], report.results


def test_named_features_for_a_model_fitted_on_arrays(tmp_path: Path) -> None:
    """``features:`` named, the model fitted on a bare array of them: no warnings either."""
    import warnings

    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    frame = load_breast_cancer(as_frame=True).frame
    named = ["mean radius", "mean texture"]
    model = LogisticRegression().fit(frame[named].to_numpy(), frame["target"])
    joblib.dump(model, tmp_path / "two.joblib")
    frame.to_csv(tmp_path / "holdout.csv", index=False)
    write(
        tmp_path,
        "mlops.yaml",
        """\
        checks:
          two:
            model: two.joblib
            data: holdout.csv
            target: target
            features: [mean radius, mean texture]
            expect: [accuracy >= 0.8, latency_ms_per_1k_rows <= 5000]
        """,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = run_suites(load_suites(tmp_path / "mlops.yaml").values(), tmp_path)
    assert [r.status for r in report.results] == ["pass", "pass"], report.results
