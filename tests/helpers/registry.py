"""Helpers for the registry tests: real scikit-learn models, run records, the registry's tags."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.helpers.repos import git


def train_model(path: Path, c: float = 1.0) -> Path:
    """A real logistic regression on iris, saved with joblib (``c`` changes its bytes)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression(C=c, max_iter=500).fit(x, y), path)
    return path


def tags(repo: Path) -> dict[str, str]:
    """Every registry tag and the object it is (so a test can see that nothing changed)."""
    out = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags/model")
    return dict(line.split() for line in out.splitlines())


def report(passed: bool) -> dict[str, Any]:
    """A real checks report (as the pipeline records it) with one passing or failing check."""
    from mlops.checks.report import CheckResult, ChecksReport, SuiteResult

    result = CheckResult(
        "good_model",
        "min_score",
        None,
        "pass" if passed else "fail",
        0.97 if passed else 0.41,
        ">= 0.9",
        "" if passed else "accuracy 0.41 is below 0.9",
    )
    return ChecksReport((SuiteResult("good_model", (result,)),)).to_dict()


def record_run(
    repo: Path,
    model: str,
    metrics: dict[str, Any],
    checks_passed: bool | None = True,
    deps: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> str:
    """Save a run record whose stage ``train`` produced the file ``model`` (as it is now)."""
    from mlops.core.repo import Repo
    from mlops.pipeline.runs import RunRecord, StageRecord, new_run_id, open_runs
    from mlops.storage.hashing import hash_file

    run_id = new_run_id()
    checks = None if checks_passed is None else {"before": None, "after": report(checks_passed)}
    stage = StageRecord(
        name="train",
        status="ran",
        deps=deps or {},
        outs={model: hash_file(repo / model)},
        params=params or {"params.yaml": {"train.C": 1.0}},
        metrics={"metrics.json": metrics},
        checks=checks,
    )
    now = time.time()
    head = git(repo, "rev-parse", "HEAD").strip()
    record = RunRecord(
        run_id, now, now + 1, "success", "test", "host", head, False, (), "3", {}, (stage,)
    )
    db = open_runs(Repo(repo))
    try:
        db.save(record, [])
    finally:
        db.close()
    return run_id
