"""The safeguard ``mlops run`` runs around each stage (its declared check suites), and
``mlops check --stage``, which runs the same suites on their own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlops.errors import CheckError
from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.results import GuardContext, Phase, Verdict
from mlops.pipeline.schema import load_pipeline

if TYPE_CHECKING:
    from pathlib import Path

    from mlops.checks import ChecksReport


def stage_checks(ctx: GuardContext) -> Verdict:
    """The safeguard of ``mlops run``: a stage's ``checks.before`` or ``checks.after`` suites."""
    from mlops.checks import load_suites, run_suites, validate_suite_refs

    names = ctx.stage.checks_before if ctx.phase == Phase.BEFORE else ctx.stage.checks_after
    if not names:
        return Verdict(True)
    suites = load_suites(ctx.repo.root / PIPELINE_FILE)
    validate_suite_refs(
        names, suites, f"{PIPELINE_FILE}: stage {ctx.stage.name!r} checks.{ctx.phase}"
    )
    report = run_suites([suites[n] for n in names], ctx.repo.root)
    return Verdict(report.passed, report.summary(), report.to_dict())


def run_declared_checks(
    root: Path, names: Sequence[str] = (), stage: str | None = None, all_suites: bool = False
) -> ChecksReport:
    """``mlops check``: the suites named, those ``stage`` declares, or (``all_suites``) all."""
    from mlops.checks import StageSuites, run_checks

    declared = None
    if stage is not None:
        stages = load_pipeline(root).stages
        if stage not in stages:
            known = ", ".join(sorted(stages)) or "none"
            raise CheckError(f"{PIPELINE_FILE}: no stage {stage!r} under stages: (stages: {known})")
        found = stages[stage]
        declared = StageSuites(stage, found.checks_before, found.checks_after)
    return run_checks(root, names, declared, all_suites)
