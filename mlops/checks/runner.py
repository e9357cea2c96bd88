"""Running suites: load each file once, run every check, collect results."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlops.checks.data_checks import COLUMN_CHECKS, TABLE_CHECKS, Context, Outcome, error_outcome
from mlops.checks.files import DataStore, plan_reads
from mlops.checks.model_checks import MODEL_CHECKS
from mlops.checks.report import ERROR, CheckResult, ChecksReport, SuiteResult
from mlops.checks.spec import (
    Check,
    CheckProblem,
    StageSuites,
    Suite,
    load_suites,
    validate_suite_refs,
)
from mlops.errors import CheckError, TableError

# Checks that read the suite's data: file (the others name their own files, or none).
_WITHOUT_DATA = frozenset({"command", "metric", "predicts"})
_USE_MODEL = frozenset({"score", "latency", "predicts"})
# What a check, or reading its file or column, raises when it cannot be evaluated.
_Problem = CheckProblem | TableError


def run_suites(suites: Iterable[Suite], root: Path) -> ChecksReport:
    """Run ``suites`` on the files under ``root``; each file is read once for all of them."""
    started = time.perf_counter()
    suites = list(suites)
    store = DataStore(root, plan_reads(suites, root))
    store.prefetch()
    results = tuple(run_suite(suite, root, store) for suite in suites)
    return ChecksReport(results, time.perf_counter() - started)


def run_suite(suite: Suite, root: Path, store: DataStore | None = None) -> SuiteResult:
    """Run one suite; a problem with a file or a column becomes a result with status error."""
    started = time.perf_counter()
    if store is None:
        store = DataStore(root, plan_reads([suite], root))
        store.prefetch()
    ctx = Context(suite, root, store)
    results: list[CheckResult] = []
    model_ok = True
    # The model first: loading it (and scikit-learn) overlaps the data's background parse.
    if suite.model is not None and any(c.kind in _USE_MODEL for c in suite.checks):
        try:
            store.model(suite.model, "model")
        except (CheckProblem, TableError) as exc:
            model_ok = False
            results.append(_suite_error(suite, "model", exc))
    data = None
    if suite.data is not None and any(c.kind not in _WITHOUT_DATA for c in suite.checks):
        try:
            data = store.table(suite.data, "data")
        except (CheckProblem, TableError) as exc:
            results.insert(0, _suite_error(suite, "data", exc))  # the data error comes first
    for check in suite.checks:
        if data is None and check.kind not in _WITHOUT_DATA:
            continue  # the data error above already fails the suite
        if not model_ok and check.kind in _USE_MODEL:
            continue  # so does the model error
        results.extend(_run_check(check, data, ctx))
    return SuiteResult(suite.name, tuple(results), time.perf_counter() - started)


def check_frame(suite: Suite, frame: Any, root: Path) -> SuiteResult:
    """Run ``suite`` with ``frame`` (a pandas DataFrame or a pyarrow Table) standing in for
    its ``data:`` file (an in-memory batch); other files (reference, model) are read from
    ``root``."""
    if suite.data is None:
        raise CheckError(f"{suite.where}: suite {suite.name!r} has no data: file for a frame")
    store = DataStore(root, plan_reads([suite], root))
    store.put(suite.data, frame)
    return run_suite(suite, root, store)


def _suite_error(suite: Suite, key: str, exc: _Problem) -> CheckResult:
    """A suite's data or model file cannot be loaded: one error instead of one per check."""
    return CheckResult(
        suite.name,
        key,
        None,
        ERROR,
        None,
        f"a readable {key} file",
        f"{suite.where}: suite {suite.name!r}, key {key!r}: {exc.message}",
        where=suite.where,
    )


def _run_check(check: Check, data: Any, ctx: Context) -> list[CheckResult]:
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    try:
        if check.kind in COLUMN_CHECKS:
            for item in check.args:
                try:
                    outcomes.append(COLUMN_CHECKS[check.kind](data, item, ctx))
                except (CheckProblem, TableError) as exc:
                    outcomes.append(
                        error_outcome(
                            _item_column(check.kind, item), _where(check, ctx, exc.key, exc.message)
                        )
                    )
        else:
            run = TABLE_CHECKS.get(check.kind) or MODEL_CHECKS[check.kind]
            outcomes = run(check, data, ctx)
    except (CheckProblem, TableError) as exc:
        outcomes = [error_outcome(None, _where(check, ctx, exc.key, exc.message))]
    except Exception as exc:  # user data and user models can break a check in many ways
        detail = f"{type(exc).__name__}: {exc}"
        outcomes = [error_outcome(None, _where(check, ctx, check.label, detail))]
    share = (time.perf_counter() - started) / max(len(outcomes), 1)
    return [
        CheckResult(
            suite=ctx.suite.name,
            check=check.label,
            column=o.column,
            status=o.status,
            observed=o.observed,
            expected=o.expected,
            message=o.message,
            failing=o.failing,
            examples=o.examples,
            where=check.where,
            seconds=share,
        )
        for o in outcomes
    ]


def _item_column(kind: str, item: Any) -> str:
    if isinstance(item, str):
        return item
    return "+".join(item) if kind == "unique" else str(item[0])


def _where(check: Check, ctx: Context, key: str, detail: str) -> str:
    return (
        f"{check.where}: suite {ctx.suite.name!r}, check {check.index} ({check.label}), "
        f"key {key!r}: {detail}"
    )


def select_suites(
    mlops_yaml: Path,
    names: Sequence[str] = (),
    stage: StageSuites | None = None,
    all_suites: bool = False,
) -> list[Suite]:
    """The suites named, those of ``stage`` (before, then after) and, with ``all_suites``,
    every suite; each once, in that order. Unknown names raise ``CheckError``."""
    suites = load_suites(mlops_yaml)
    chosen: list[str] = list(suites) if all_suites else []
    if stage is not None:
        for phase, listed in (("before", stage.before), ("after", stage.after)):
            where = f"{mlops_yaml.name}: stage {stage.name!r} checks.{phase}"
            validate_suite_refs(listed, suites, where)
            chosen += listed
    validate_suite_refs(names, suites, "mlops check")
    chosen += names
    return [suites[name] for name in dict.fromkeys(chosen)]


def run_checks(
    root: Path,
    names: Sequence[str] = (),
    stage: StageSuites | None = None,
    all_suites: bool = False,
) -> ChecksReport:
    """Select suites from ``root/mlops.yaml`` (see :func:`select_suites`) and run them."""
    return run_suites(select_suites(root / "mlops.yaml", names, stage, all_suites), root)
