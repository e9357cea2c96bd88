"""The safeguard ``mlops run`` runs around each stage: its declared check suites."""

from __future__ import annotations

from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.results import GuardContext, Phase, Verdict


def stage_checks(ctx: GuardContext) -> Verdict:
    """The safeguard of ``mlops run``: a stage's ``checks.before`` or ``checks.after`` suites."""
    from mlops.checks import load_suites, run_suites, validate_suite_refs

    names = [
        str(n)
        for n in (ctx.stage.checks_before if ctx.phase == Phase.BEFORE else ctx.stage.checks_after)
    ]
    if not names:
        return Verdict(True)
    suites = load_suites(ctx.repo.root / PIPELINE_FILE)
    validate_suite_refs(
        names, suites, f"{PIPELINE_FILE}: stage {ctx.stage.name!r} checks.{ctx.phase}"
    )
    report = run_suites([suites[n] for n in names], ctx.repo.root)
    return Verdict(report.passed, report.summary(), report.to_dict())
