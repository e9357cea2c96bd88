"""The library API the pipeline calls: before suites on inputs, after suites on outputs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mlops.checks import (
    ChecksReport,
    check_frame,
    load_suites,
    run_suites,
    validate_suite_refs,
)
from mlops.errors import CheckError
from mlops.pipeline.schema import load_pipeline
from tests.helpers.checks import ISSUE_YAML, model_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_project(tmp_path_factory.mktemp("api") / "p")


def stage_checks(root: Path, stage: str, phase: str) -> ChecksReport:
    """What the pipeline does around a stage's command."""
    suites = load_suites(root / "mlops.yaml")
    declared = load_pipeline(root).stages[stage]
    names = declared.checks_before if phase == "before" else declared.checks_after
    validate_suite_refs(names, suites, f"mlops.yaml: stage {stage!r} checks.{phase}")
    return run_suites([suites[n] for n in names], root)


def test_before_and_after_reports_for_the_run_record(project: Path) -> None:
    before = stage_checks(project, "train", "before")
    after = stage_checks(project, "train", "after")
    assert before.passed and after.passed
    assert before.summary() == "all 17 checks passed"
    record = json.loads(json.dumps({"before": before.to_dict(), "after": after.to_dict()}))
    assert [s["suite"] for s in record["after"]["suites"]] == ["good_model"]
    assert record["after"]["counts"] == {"pass": 5, "fail": 0, "error": 0}


def test_summary_of_a_failing_report(project: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(project / "data/train.csv")
    frame.loc[[1, 2], "age"] = [-1, 130]
    frame.loc[4, "label"] = 3
    suite = load_suites(project / "mlops.yaml")["clean_training_data"]
    result = check_frame(suite, frame, project)
    report = ChecksReport((result,))
    assert not report.passed
    assert report.summary(limit=1) == (
        "2 of 17 checks did not pass: clean_training_data > between > age: 2 values of 'age' "
        "outside [0, 120] (rows 1: -1, 2: 130); and 1 more"
    )
    # The file on disk was not touched: the frame stood in for it.
    assert stage_checks(project, "train", "before").passed


def test_undefined_suite_of_a_stage(tmp_path: Path) -> None:
    path = tmp_path / "mlops.yaml"
    path.write_text(ISSUE_YAML.replace("before: [clean_training_data]", "before: [clean_data]"))
    suites = load_suites(path)
    before = load_pipeline(tmp_path).stages["train"].checks_before
    with pytest.raises(CheckError) as info:
        validate_suite_refs(before, suites, "mlops.yaml: stage 'train' checks.before")
    assert str(info.value) == (
        "mlops.yaml: stage 'train' checks.before: suite 'clean_data' is not defined under "
        "checks: (defined: clean_training_data, good_model)"
    )


def test_stages_checked_in_parallel_threads(project: Path) -> None:
    """The pipeline runs stages (and so their checks) in threads."""
    reports: list[ChecksReport] = []

    def work() -> None:
        reports.append(stage_checks(project, "train", "before"))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reports) == 3 and all(r.passed for r in reports)
