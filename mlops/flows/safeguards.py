"""What ``mlops run`` adds around the stages: their check suites, and model registration.

Checks run as the runner's safeguard (``mlops.pipeline.guards``): ``before``
suites on a stage's inputs before its command starts, ``after`` suites on its
outputs before they enter the lock. A stage whose ``register:`` names a model
registers (and promotes) it once the run has succeeded, so a model that failed
its checks never lands in the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.core.repo import Repo
from mlops.pipeline import PIPELINE_FILE
from mlops.pipeline.guards import stage_checks
from mlops.pipeline.results import SUCCEEDED, RunEvent, RunOptions, RunResult, RunStatus, StageState
from mlops.pipeline.schema import Pipeline, load_pipeline

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlops.registry.records import ModelVersion


@dataclass(frozen=True)
class Registration:
    """A model version a stage registered, and the alias it went to (if any)."""

    stage: str
    version: ModelVersion
    promoted_to: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "model": self.version.model,
            "version": self.version.number,
            "promoted_to": self.promoted_to,
        }


def validate_safeguards(repo: Repo, pipeline: Pipeline) -> None:
    """Fail before anything runs on a suite name no ``checks:`` defines (a bad ``register:``
    fails when the pipeline is read)."""
    wanted = [
        (s, phase, n)
        for s in pipeline.stages.values()
        for phase, names in (("before", s.checks_before), ("after", s.checks_after))
        for n in names
    ]
    if wanted:
        from mlops.checks import load_suites, validate_suite_refs

        suites = load_suites(repo.root / PIPELINE_FILE)
        for stage, phase, name in wanted:
            validate_suite_refs(
                [name], suites, f"{PIPELINE_FILE}: stage {stage.name!r} checks.{phase}"
            )


def run_with_safeguards(
    repo: Repo, options: RunOptions, on_event: Callable[[RunEvent], None] | None = None
) -> tuple[RunResult, list[Registration]]:
    """``run_pipeline`` with stage checks, then registration of the models stages declare."""
    from mlops.pipeline.runner import run_pipeline

    pipeline = load_pipeline(repo.root)
    validate_safeguards(repo, pipeline)
    result = run_pipeline(repo, options, on_event, guard=stage_checks)
    if result.status != RunStatus.SUCCESS:
        return result, []
    done = {s.name: s.status for s in result.stages if s.status in SUCCEEDED}
    registrations = []
    for stage in pipeline.stages.values():
        if stage.register is None or stage.name not in done:
            continue
        spec = stage.register
        from mlops.registry.register import register_model

        made_by = result.run_id
        if done[stage.name] != StageState.RAN and made_by is not None:
            made_by = _maker_run(repo, stage.name, spec.path, made_by)
        version = register_model(
            repo,
            spec.name,
            repo.root / spec.path,
            run_id=made_by,
            stage=stage.name,
            description=spec.description,
            promote=spec.promote,
        )
        registrations.append(Registration(stage.name, version, spec.promote))
    return result, registrations


def _maker_run(repo: Repo, stage: str, path: str, run_id: str) -> str:
    """The run whose record a skipped, restored or rechecked ``stage`` registers what it
    left at ``path`` with: the newest run whose after checks judged that content (made or
    rechecked by the stage, or read by another), else the newest in which the stage made
    it, else this one."""
    from mlops.registry.provenance import RunIndex
    from mlops.storage.store import open_store

    with open_store(repo) as store:
        index = RunIndex(store)
        oid = next((s.outs.get(path) for s in index.find(run_id).stages if s.name == stage), None)
        if oid is None:
            return run_id
        maker = None
        for record in index.records:  # newest first
            for s in record.stages:
                if s.status not in (StageState.RAN, StageState.RECHECKED, StageState.FAILED):
                    continue
                own = s.name == stage and s.outs.get(path) == oid
                if (own or s.deps.get(path) == oid) and "after" in (s.checks or {}):
                    return record.id
                if own and s.status != StageState.RECHECKED and maker is None:
                    maker = record.id
    return maker or run_id
