"""Data and model checks: suites declared in YAML, run before and after pipeline stages.

The pipeline calls::

    suites = load_suites(root / "mlops.yaml")
    validate_suite_refs(names, suites, where="mlops.yaml: stage 'train' checks.before")
    report = run_suites([suites[n] for n in names], root)
    report.passed, report.to_dict()
"""

from __future__ import annotations

from mlops.checks.report import (
    ERROR,
    FAIL,
    PASS,
    CheckResult,
    ChecksReport,
    SuiteResult,
    describe,
    to_junit,
)
from mlops.checks.runner import check_frame, run_checks, run_suite, run_suites, select_suites
from mlops.checks.spec import (
    CHECK_TYPES,
    Check,
    Condition,
    StageSuites,
    Suite,
    load_suites,
    parse_condition,
    suites_fingerprint,
    validate_suite_refs,
)

__all__ = [
    "CHECK_TYPES",
    "ERROR",
    "FAIL",
    "PASS",
    "Check",
    "CheckResult",
    "ChecksReport",
    "Condition",
    "StageSuites",
    "Suite",
    "SuiteResult",
    "check_frame",
    "describe",
    "load_suites",
    "parse_condition",
    "run_checks",
    "run_suite",
    "run_suites",
    "select_suites",
    "suites_fingerprint",
    "to_junit",
    "validate_suite_refs",
]
