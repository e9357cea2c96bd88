"""Recording a run: each stage's result and record as it ends, then once at the end the
run record, the lock (for the stages that succeeded), the run cache and the
``.gitignore`` entries of cached outputs."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import replace
from typing import Any

from mlops.core.repo import Repo
from mlops.errors import MlopsError
from mlops.pipeline.dag import Dag
from mlops.pipeline.execute import sigint_deferred
from mlops.pipeline.executors.base import JobOutcome
from mlops.pipeline.lock import FileHash, Lock, LockEntry, write_lock
from mlops.pipeline.params import ParamValues, flatten, parse_params
from mlops.pipeline.plan import PlannedStage
from mlops.pipeline.results import (
    SUCCEEDED,
    EventKind,
    OnEvent,
    RunEvent,
    RunResult,
    RunStatus,
    StageResult,
    StageState,
)
from mlops.pipeline.runs import EnvironmentProbe, RunRecord, RunsDB, StageRecord
from mlops.pipeline.schema import OutputKind, Stage
from mlops.storage.store import Store

# The states that end in a ``FINISHED`` event (the others were reported as they were decided).
_FINISHING = frozenset(
    {StageState.RAN, StageState.RECHECKED, StageState.FAILED, StageState.INTERRUPTED}
)


class Recorder:
    """The results of one run so far, and what it writes when it ends."""

    def __init__(
        self,
        repo: Repo,
        store: Store,
        runs: RunsDB,
        dag: Dag,
        names: tuple[str, ...],
        lock: Lock,
        run_id: str,
        argv: tuple[str, ...],
        emit: OnEvent,
    ) -> None:
        self.repo, self.store, self.runs, self.dag, self.names = repo, store, runs, dag, names
        self.lock, self.run_id, self.argv, self.emit = lock, run_id, argv, emit
        self.results: dict[str, StageResult] = {}
        self.records: dict[str, StageRecord] = {}
        self.entries: dict[str, LockEntry] = {}  # new lock entries (stages that succeeded)
        self.cache_entries: list[tuple[str, str, dict[str, Any]]] = []
        self.started = time.time()
        self.environment = EnvironmentProbe(repo.root)  # runs while the stages are judged

    def state(self, name: str) -> StageState | None:
        """What became of stage ``name`` so far (None: not decided yet)."""
        result = self.results.get(name)
        return result.status if result else None

    def succeeded(
        self,
        planned: PlannedStage,
        outs: tuple[FileHash, ...],
        status: StageState,
        reasons: tuple[str, ...],
        duration: float,
        outcome: JobOutcome,
    ) -> None:
        """A stage ended well: its new lock entry, its run-cache entry, its result."""
        stage = planned.stage
        # The lock records where each output is kept, so that push, pull and gc know it.
        flags = {o.path: o.cache for o in stage.outputs}
        outs = tuple(replace(o, cache=flags.get(o.path, o.cache)) for o in outs)
        self.entries[stage.name] = LockEntry(
            cmd=stage.cmd,
            deps=tuple(planned.deps),
            params=planned.params,
            outs=outs,
            wdir=stage.wdir,
            env=stage.env,
            run=self.run_id,
            checks=planned.checks,
        )
        if status in (StageState.RAN, StageState.RECHECKED) and restorable(stage):
            self.cache_entries.append((planned.key, stage.name, {"outs": [vars(o) for o in outs]}))
        self.set(
            stage,
            status,
            reasons,
            duration=duration,
            exit_code=outcome.exit_code,
            planned=planned,
            outs=outs,
            checks=outcome.checks,
            where=outcome.placement,
        )

    def set(
        self,
        stage: Stage,
        status: StageState,
        reasons: tuple[str, ...],
        duration: float = 0.0,
        exit_code: int | None = None,
        error: str = "",
        tail: tuple[str, ...] = (),
        planned: PlannedStage | None = None,
        deps: list[FileHash] | None = None,
        params: ParamValues | None = None,
        outs: tuple[FileHash, ...] = (),
        checks: dict[str, Any] | None = None,
        where: dict[str, Any] | None = None,
    ) -> None:
        """Stage ``stage`` ended as ``status``: its result and its record (``where``: the
        worker that ran it, from a remote executor)."""
        if planned is not None:
            deps, params = planned.deps, planned.params
        result = StageResult(
            stage.name, status, reasons, duration, exit_code, error, tail, checks or None
        )
        self.results[stage.name] = result
        self.records[stage.name] = StageRecord(
            name=stage.name,
            status=status,
            reasons=reasons,
            started=planned.started if planned and planned.started else None,
            duration=round(duration, 6),
            cmd=stage.cmd,
            deps={d.path: d.oid for d in deps or ()},
            outs={o.path: o.oid for o in outs},
            params=params or {},
            metrics={},
            exit_code=exit_code,
            error=error,
            checks=checks or None,
            where=where,
        )
        if status in _FINISHING:
            self.emit(RunEvent(EventKind.FINISHED, stage.name, result=result))

    def finish(self, interrupted: bool) -> RunResult:
        """Record the run, then write the lock, run cache and .gitignore entries once."""
        with sigint_deferred():
            for name in self.names:
                if name not in self.results:
                    self.set(self.dag.stages[name], StageState.CANCELLED, ("not reached",))
            status = (
                RunStatus.INTERRUPTED
                if interrupted
                else RunStatus.FAILED
                if any(
                    r.status in (StageState.FAILED, StageState.BLOCKED)
                    for r in self.results.values()
                )
                else RunStatus.SUCCESS
            )
            env = self.environment.result()
            stages = tuple(self._with_metrics(self.records[n]) for n in self.names)
            record = RunRecord(
                id=self.run_id,
                started=self.started,
                ended=time.time(),
                status=status,
                user=env.user,
                host=env.host,
                commit=env.commit,
                dirty=env.dirty,
                argv=self.argv or tuple(sys.argv),
                python=env.python,
                packages=env.packages,
                stages=stages,
            )
            record = replace(record, object_id=self.store.cache.add_bytes(record.canonical_bytes()))
            lock_written = bool(self.entries) and self._write_lock(record.object_id)
            if self.entries:
                from mlops.workspace.add import ignore_in_git

                ignore_in_git(
                    self.repo.root,
                    [o.path for n in self.entries for o in self.dag.stages[n].outputs if o.cache],
                    self.repo.scratch_dir,
                )
            self.runs.save(record, self.cache_entries)
        return RunResult(
            self.run_id,
            status,
            tuple(self.results[n] for n in self.names),
            lock_written,
            record.ended - record.started,
        )

    def _write_lock(self, record_oid: str) -> bool:
        """Write the new entries into the lock; False when it would not change."""
        old = self.lock.stages
        merged = {}
        for name in self.dag.stages:  # declaration order; stages removed from mlops.yaml go
            if name in self.entries:
                new = self.entries[name]
                if (
                    name in old
                    and self.results[name].status == StageState.RESTORED
                    and _same_result(old[name], new)
                ):
                    # Outputs restored as locked (after a clone, say): the lock keeps naming
                    # the run that made them, so it stays byte-identical.
                    merged[name] = old[name]
                else:
                    merged[name] = replace(new, record=record_oid)
            elif name in old:
                merged[name] = old[name]
        if list(merged.items()) == list(old.items()):
            return False
        write_lock(self.repo.root, Lock(merged), self.repo.scratch_dir)
        return True

    def _with_metrics(self, record: StageRecord) -> StageRecord:
        stage = self.dag.stages[record.name]
        if not stage.metrics or record.status not in SUCCEEDED:
            return record
        values: dict[str, Any] = {}
        for out in stage.metrics:
            with contextlib.suppress(OSError, MlopsError):
                values[out.path] = flatten(
                    parse_params((self.repo.root / out.path).read_bytes(), out.path)
                )
        return replace(record, metrics=values)


def _same_result(old: LockEntry, new: LockEntry) -> bool:
    """Whether two lock entries record the same inputs and outputs (runs aside)."""
    return replace(old, run="", record="") == replace(new, run="", record="")


def restorable(stage: Stage) -> bool:
    """Whether a later run may take this stage's outputs from the run cache.

    A stage without outputs acts only by side effects: it is never skipped that way.
    """
    return (
        bool(stage.outputs)
        and not stage.always_changed
        and all(not o.persist and (o.cache or o.kind != OutputKind.OUT) for o in stage.outputs)
    )
