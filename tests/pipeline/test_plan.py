"""The planner's one staleness rule (``mlops.pipeline.plan.judge``), stage by stage, and
that ``status``/``run --dry-run`` (``evaluate``) and ``run`` (the scheduler) follow it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops.pipeline.lock import FileHash, LockEntry
from mlops.pipeline.plan import (
    ALWAYS_CHANGED,
    CHECKS_CHANGED,
    FORCED,
    NEW_STAGE,
    Decision,
    judge,
    run_cache_key,
)
from mlops.pipeline.schema import Output, OutputKind, Stage, parse_pipeline

PIPELINE = """
stages:
  train:
    cmd: python train.py
    deps: [data.csv]
    params: [lr]
    outs: [model.bin]
"""

DEP = FileHash("data.csv", "a" * 64, 10)
OUT = FileHash("model.bin", "b" * 64, 20, cache=True)
PARAMS = {"params.yaml": {"lr": 0.1}}


def _stage(**changes: object) -> Stage:
    stage = parse_pipeline(PIPELINE).stages["train"]
    return replace(stage, **changes)  # type: ignore[arg-type]


def _entry(**changes: object) -> LockEntry:
    entry = LockEntry(cmd=("python train.py",), deps=(DEP,), params=PARAMS, outs=(OUT,), run="r1")
    return replace(entry, **changes)  # type: ignore[arg-type]


def _outputs(found: FileHash | None = OUT) -> dict[str, FileHash | None]:
    return {"model.bin": found}


def _judge(
    stage: Stage | None = None,
    entry: LockEntry | None = None,
    deps: list[FileHash] | None = None,
    params: dict[str, dict[str, object]] | None = None,
    checks: str = "",
    outs: dict[str, FileHash | None] | None = None,
    force: bool = False,
) -> tuple[Decision, tuple[str, ...], bool]:
    looked: list[str] = []
    found = _outputs() if outs is None else outs

    def hash_path(rel: str) -> FileHash | None:
        looked.append(rel)
        return found[rel]

    verdict = judge(
        stage or _stage(),
        _entry() if entry is None else entry,
        [DEP] if deps is None else deps,
        PARAMS if params is None else params,  # type: ignore[arg-type]
        checks,
        hash_path,
        force,
    )
    assert (verdict.outs is not None) == bool(looked)
    return verdict.decision, verdict.reasons, verdict.inputs_match


def test_a_stage_whose_inputs_and_outputs_are_as_locked_is_up_to_date() -> None:
    assert _judge() == (Decision.UP_TO_DATE, (), True)


def test_a_stage_missing_from_the_lock_is_new_and_its_outputs_are_not_looked_at() -> None:
    stage = _stage()
    verdict = judge(stage, None, [DEP], PARAMS, "", lambda rel: pytest.fail(rel), False)
    assert (verdict.decision, verdict.reasons, verdict.outs) == (Decision.STALE, (NEW_STAGE,), None)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"deps": [replace(DEP, oid="c" * 64)]}, "dep data.csv changed"),
        ({"deps": []}, "dep data.csv removed"),
        ({"params": {"params.yaml": {"lr": 0.2}}}, "param lr changed (0.1 -> 0.2)"),
        ({"params": {"params.yaml": {"lr": 0.1, "depth": 3}}}, "param depth added"),
        ({"stage": _stage(cmd=("python train.py --fast",))}, "command changed"),
    ],
)
def test_a_changed_input_makes_the_stage_stale_without_looking_at_its_outputs(
    change: dict[str, object], reason: str
) -> None:
    decision, reasons, inputs_match = _judge(**change)  # type: ignore[arg-type]
    assert (decision, reasons, inputs_match) == (Decision.STALE, (reason,), False)


def test_an_output_changed_or_missing_in_the_workspace_leaves_the_inputs_matching() -> None:
    changed = _judge(outs=_outputs(replace(OUT, oid="d" * 64)))
    assert changed == (Decision.STALE, ("out model.bin changed",), True)
    missing = _judge(outs=_outputs(None))
    assert missing == (Decision.STALE, ("out model.bin missing",), True)


def test_changed_checks_with_outputs_as_locked_is_a_recheck_not_a_rerun() -> None:
    assert _judge(checks="new") == (Decision.RECHECK, (CHECKS_CHANGED,), False)
    # Outputs that differ too: stale (the scheduler may still restore the locked ones).
    moved = _judge(checks="new", outs=_outputs(replace(OUT, oid="d" * 64)))
    assert moved == (Decision.STALE, (CHECKS_CHANGED,), False)


def test_always_changed_and_force() -> None:
    always = _stage(always_changed=True)
    assert _judge(stage=always) == (Decision.STALE, (ALWAYS_CHANGED,), False)
    # With changed checks, an always_changed stage runs again: never a mere recheck.
    assert _judge(stage=always, checks="new")[0] == Decision.STALE
    assert _judge(force=True) == (Decision.STALE, (FORCED,), True)
    forced = _judge(force=True, checks="new")
    assert forced == (Decision.STALE, (FORCED, CHECKS_CHANGED), False)


def test_the_run_cache_key_names_what_determines_the_outputs() -> None:
    stage = _stage()
    key = run_cache_key(stage, [DEP], PARAMS, "")
    assert key == run_cache_key(stage, [DEP], {"params.yaml": {"lr": 0.1}}, "")
    assert key != run_cache_key(stage, [replace(DEP, oid="c" * 64)], PARAMS, "")
    assert key != run_cache_key(stage, [DEP], PARAMS, "checks")
    other = replace(stage, outputs=(Output("model.bin", OutputKind.OUT, cache=False),))
    assert key != run_cache_key(other, [DEP], PARAMS, "")
