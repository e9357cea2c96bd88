"""Scheduling a run: stages in dependency order (graphlib), each judged by the plan's rule
when its upstream stages are done, then skipped, restored from an earlier run, or
handed to the executor, at most ``jobs`` at once.

Executors report from their own threads through one queue, so that deciding,
restoring and recording happen only on the scheduler's thread.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from graphlib import TopologicalSorter
from typing import Protocol

from mlops.core.fsutil import atomic_write_bytes
from mlops.core.processes import GROUPS
from mlops.errors import MlopsError, PipelineError
from mlops.pipeline.dag import Dag
from mlops.pipeline.execute import terminate_as_interrupt
from mlops.pipeline.executors.base import (
    Executor,
    JobCrashed,
    JobDone,
    JobEvent,
    JobOutcome,
    OutputLine,
    StageJob,
)
from mlops.pipeline.lock import FileHash, LockEntry, output_target
from mlops.pipeline.params import ParamFiles, ParamValues, stage_params
from mlops.pipeline.plan import (
    CHECKS_CHANGED,
    CheckSuites,
    Decision,
    PlannedStage,
    judge,
    run_cache_key,
)
from mlops.pipeline.recording import Recorder, restorable
from mlops.pipeline.results import (
    UNSUCCESSFUL,
    EventKind,
    OnEvent,
    RunEvent,
    RunOptions,
    RunResult,
    StageState,
)
from mlops.pipeline.runs import RunsDB
from mlops.pipeline.schema import Output, OutputKind, Stage
from mlops.pipeline.work import Workspace
from mlops.storage.hashing import DIR_SUFFIX
from mlops.workspace.tracked import Target

_STOPPED = ("run stopped by a failure",)


class SharedRunCache(Protocol):
    """A run cache beyond this clone's (a remote's), looked up after the local one."""

    def cached(self, key: str) -> tuple[FileHash, ...] | None:
        """The outputs recorded for run-cache key ``key``, or None."""

    def bring(self, outs: tuple[FileHash, ...]) -> bool:
        """Fetch the objects of ``outs`` into the cache; False when that is not possible."""


class Scheduler:
    """One run of the pipeline: what is decided, running, and done."""

    def __init__(
        self,
        ws: Workspace,
        runs: RunsDB,
        dag: Dag,
        names: tuple[str, ...],
        params: dict[str, ParamValues],
        load: ParamFiles,
        options: RunOptions,
        recorder: Recorder,
        executor: Executor,
        events: queue.Queue[JobEvent],
        on_event: OnEvent,
        shared_cache: SharedRunCache | None = None,
    ) -> None:
        self.ws, self.runs, self.dag, self.names = ws, runs, dag, names
        self.params, self.load, self.options = params, load, options
        self.recorder, self.executor, self.events, self.emit = recorder, executor, events, on_event
        self.suites = CheckSuites(ws.repo.root)
        self.shared_cache = shared_cache
        self.running: dict[str, PlannedStage] = {}
        self.stopping = False  # a stage failed without --keep-going: start nothing new

    def go(self) -> RunResult:
        """Run the stages; Ctrl-C (or SIGTERM) stops them all and re-raises."""
        graph = {n: [u for u in self.dag.upstream[n] if u in self.names] for n in self.names}
        sorter = TopologicalSorter(graph)
        sorter.prepare()
        waiting: deque[PlannedStage] = deque()
        interrupted = False
        with GROUPS.session():
            try:
                with terminate_as_interrupt():
                    while sorter.is_active():
                        for name in sorter.get_ready():
                            planned = self._decide(name)
                            if planned is None:
                                sorter.done(name)
                            else:
                                waiting.append(planned)
                        while waiting and (self.stopping or len(self.running) < self.options.jobs):
                            planned = waiting.popleft()
                            if self.stopping:
                                self.recorder.set(planned.stage, StageState.CANCELLED, _STOPPED)
                                sorter.done(planned.stage.name)
                            else:
                                self._start(planned)
                        if self.running:
                            self._handle(self.events.get(), sorter)
            except KeyboardInterrupt:
                interrupted = True
                self.executor.stop_all()
                for name in list(self.running):
                    stage = self.running.pop(name).stage
                    self.recorder.set(stage, StageState.INTERRUPTED, ("interrupted",))
            except BaseException:
                self.executor.stop_all()
                raise
        result = self.recorder.finish(interrupted)
        if interrupted:
            raise KeyboardInterrupt
        return result

    def _handle(self, event: JobEvent, sorter: TopologicalSorter[str]) -> None:
        if isinstance(event, OutputLine):
            self.emit(RunEvent(EventKind.OUTPUT, event.stage, text=event.text, stderr=event.stderr))
            return
        if isinstance(event, JobCrashed):  # a bug in a worker: surface it as an internal error
            raise event.error
        assert isinstance(event, JobDone)
        planned = self.running.pop(event.stage)
        outcome = event.outcome
        duration = time.monotonic() - planned.wall
        if outcome.ok:
            status = StageState.RAN if planned.kept is None else StageState.RECHECKED
            if outcome.restored:
                status = StageState.RESTORED
            self.recorder.succeeded(
                planned, outcome.outs, status, planned.reasons, duration, outcome
            )
        else:
            self.recorder.set(
                planned.stage,
                StageState.FAILED,
                planned.reasons,
                duration=duration,
                exit_code=outcome.exit_code,
                error=outcome.error,
                tail=outcome.stderr_tail,
                planned=planned,
                outs=outcome.outs,  # after checks failed: the record names what they judged
                checks=outcome.checks,
                where=outcome.placement,
            )
            if not self.options.keep_going:
                self.stopping = True
        sorter.done(event.stage)

    # --- deciding ----------------------------------------------------------------------

    def _decide(self, name: str) -> PlannedStage | None:
        """Skip, restore or block the stage now (None), or plan to run it."""
        stage = self.dag.stages[name]
        record = self.recorder
        if stage.frozen:
            record.set(stage, StageState.SKIPPED, ("frozen",))
            self.emit(RunEvent(EventKind.SKIPPED, name, ("frozen",)))
            return None
        bad = [u for u in self.dag.upstream[name] if record.state(u) in UNSUCCESSFUL]
        if bad:
            record.set(stage, StageState.BLOCKED, (f"upstream stage {bad[0]!r} did not succeed",))
            return None
        try:
            params = self.params.get(name)
            if params is None:
                params = stage_params(stage, self.load)
            deps = []
            for dep in stage.deps:
                found = self.ws.hasher.hash(dep)
                if found is None:
                    raise PipelineError(f"stage {name!r}: dep {dep!r} is missing")
                deps.append(found)
            checks = self.suites.fingerprint(stage)
        except MlopsError as exc:
            record.set(stage, StageState.FAILED, (), error=exc.message)
            self.stopping = self.stopping or not self.options.keep_going
            return None
        entry = record.lock.stages.get(name)
        force = self.options.force
        verdict = judge(stage, entry, deps, params, checks, self.ws.hasher.hash, force)
        reasons = verdict.reasons
        if verdict.decision == Decision.UP_TO_DATE:
            outs = tuple(o for o in verdict.outs or () if o is not None)
            record.set(
                stage, StageState.SKIPPED, ("unchanged",), deps=deps, params=params, outs=outs
            )
            self.emit(RunEvent(EventKind.SKIPPED, name, ("unchanged",)))
            return None
        # Inputs as locked: the lock's outputs are the answer; else maybe an earlier run's.
        candidate = entry.outs if verdict.inputs_match and entry and not force else None
        key = run_cache_key(stage, deps, params, checks)
        if candidate is None and not force:
            cached = self.runs.cached(key)
            if cached is not None:
                candidate = tuple(FileHash(**o) for o in cached["outs"])
            elif self.shared_cache is not None and restorable(stage):
                candidate = self.shared_cache.cached(key)
        # The outputs the lock (or a run cache) names may be on the remote only.
        shared = self.shared_cache
        if candidate is not None and shared is not None and not shared.bring(candidate):
            candidate = None
        planned = PlannedStage(stage, reasons, deps, params, checks, key)
        if self.stopping:
            record.set(stage, StageState.CANCELLED, _STOPPED, planned=planned)
            return None
        if candidate is not None and self._restore(stage, candidate):
            why = (*reasons, "outputs restored from the cache")
            record.succeeded(planned, candidate, StageState.RESTORED, why, 0.0, JobOutcome(True))
            self.emit(RunEvent(EventKind.RESTORED, name, reasons))
            return None
        if verdict.decision == Decision.RECHECK:
            planned.kept = tuple(o for o in verdict.outs or () if o is not None)
        elif entry is not None and reasons == (CHECKS_CHANGED,) and not stage.always_changed:
            self._keep_locked_outputs(planned, entry)
        return planned

    def _keep_locked_outputs(self, planned: PlannedStage, entry: LockEntry) -> None:
        """Only the stage's check suites changed but its outputs differ from the lock's:
        where the locked ones can be restored, they are judged by the new checks instead
        of being made again (a tightened data check does not retrain the model)."""
        if self._restore(planned.stage, entry.outs):
            planned.kept = entry.outs
            planned.reasons = (*planned.reasons, "outputs restored from the lock")

    def _restore(self, stage: Stage, outs: tuple[FileHash, ...]) -> bool:
        """Place the outputs ``outs`` of an earlier run; False when that is not possible."""
        if stage.always_changed or any(o.persist for o in stage.outputs):
            return False
        by_path = {o.path: o for o in outs}
        if set(by_path) != {o.path for o in stage.outputs}:
            return False
        repo, store = self.ws.repo, self.ws.store
        cache = store.cache
        targets: list[Target] = []
        copies: list[tuple[Output, FileHash]] = []
        for out in stage.outputs:
            found = by_path[out.path]
            if out.cache:
                targets.append(output_target(repo.root, found))
            elif self._in_workspace(found):
                continue  # kept by Git, and already as it should be (after a clone, say)
            elif out.kind != OutputKind.OUT and not found.oid.endswith(DIR_SUFFIX):
                copies.append((out, found))
            else:
                return False  # an uncached out cannot be brought back
        wanted = [t.pointer.oid for t in targets] + [f.oid for _, f in copies]
        if cache.existing(wanted) != set(wanted):
            return False
        if store.linker.chosen is None:
            store.linker.probe(repo.cache_dir, repo.mlops_dir)
        for target in targets:
            target.data_path.parent.mkdir(parents=True, exist_ok=True)
        from mlops.workspace.checkout import checkout_targets

        try:
            checkout_targets(store, targets, force=True)
        except MlopsError:  # e.g. a folder's files were garbage-collected: run instead
            return False
        for out, found in copies:
            atomic_write_bytes(
                repo.root / out.path, cache.read_bytes(found.oid), 0o644, repo.scratch_dir
            )
        return True

    def _in_workspace(self, found: FileHash) -> bool:
        now = self.ws.hasher.hash(found.path)
        return now is not None and now.oid == found.oid

    # --- running -----------------------------------------------------------------------

    def _start(self, planned: PlannedStage) -> None:
        name = planned.stage.name
        planned.started, planned.wall = time.time(), time.monotonic()
        self.running[name] = planned
        kind = EventKind.STARTED if planned.kept is None else EventKind.RECHECKING
        self.emit(RunEvent(kind, name, planned.reasons))
        key = planned.key if restorable(planned.stage) and not self.options.force else ""
        self.executor.submit(
            StageJob(planned.stage, self.recorder.run_id, planned.kept, tuple(planned.deps), key)
        )
