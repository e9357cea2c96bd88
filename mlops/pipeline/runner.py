"""``mlops run``: run stale stages in dependency order, restore cached results, record the run.

The main thread decides, for each stage whose upstream stages are done, whether
it is up to date (skip), whether an earlier run had exactly its inputs (restore
its outputs from the object store) or whether it must run. Commands run on
worker threads, each in its own process group; their output and completion
come back to the main thread through one queue, so that printing, SQLite and
the lock are only ever touched from one thread. Everything is written once, at
the end: the run record, the lock (for the stages that succeeded), the run cache
and the state cache.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any, NamedTuple

from mlops.core.fsutil import atomic_write_bytes
from mlops.core.repo import Repo, repo_lock
from mlops.errors import MlopsError, PipelineError
from mlops.pipeline.dag import Dag, build_dag
from mlops.pipeline.execute import (
    ProcessGroups,
    describe_failure,
    run_command,
    sigint_deferred,
    terminate_as_interrupt,
)
from mlops.pipeline.lock import (
    FileHash,
    Lock,
    LockEntry,
    output_target,
    read_lock,
    write_lock,
)
from mlops.pipeline.params import ParamValues, flatten, parse_params, stage_params
from mlops.pipeline.results import (
    HookContext,
    HookResult,
    OnEvent,
    RunEvent,
    RunOptions,
    RunResult,
    StageHook,
    StageResult,
)
from mlops.pipeline.runs import (
    SUCCEEDED,
    EnvironmentProbe,
    RunRecord,
    RunsDB,
    StageRecord,
    new_run_id,
    open_runs,
)
from mlops.pipeline.schema import Output, Stage, load_pipeline
from mlops.pipeline.stale import (
    CHECKS_CHANGED,
    CheckSuites,
    Hasher,
    ParamFiles,
    StageStatus,
    evaluate,
    input_reasons,
    output_reasons,
    run_cache_key,
)
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.store import Store, open_store
from mlops.workspace.tracked import Target

__all__ = [
    "LOCK_WAIT",
    "HookContext",
    "HookResult",
    "OnEvent",
    "RunEvent",
    "RunOptions",
    "RunResult",
    "StageHook",
    "StageResult",
    "run_pipeline",
]

# How long a second `mlops run` waits for the first before giving up.
LOCK_WAIT = 3.0
# Metrics and plots files up to this size are also stored, so the run cache can restore them.
_SMALL_FILE = 64 << 20
_BAD = ("failed", "blocked", "interrupted", "cancelled")


def run_pipeline(
    repo: Repo,
    options: RunOptions | None = None,
    on_event: OnEvent | None = None,
    hook: StageHook | None = None,
) -> RunResult:
    """Run the stale stages of ``mlops.yaml`` (or only ``options.targets`` and their upstream).

    Declaration problems (cycle, missing dep or param, ...) raise PipelineError
    before anything runs. A failed stage does not raise: the result's status is
    "failed". Ctrl-C (or SIGTERM) stops every stage's process group, records the
    run as interrupted, and re-raises KeyboardInterrupt.
    """
    options = options or RunOptions()
    pipeline = load_pipeline(repo.root)
    dag = build_dag(pipeline, repo.root)
    names = dag.select(options.targets)
    produced = frozenset(o.path for s in dag.stages.values() for o in s.outputs)
    load = ParamFiles(repo.root, volatile=produced)
    params: dict[str, ParamValues] = {}
    for name in names:
        stage = dag.stages[name]
        # Parameter files made by an upstream stage are read when the stage is reached.
        if not any(ref.file in produced for ref in stage.params):
            params[name] = stage_params(stage, load)
    if options.dry_run:
        return _dry_run(repo, dag, names, params, load, options.force)
    with repo_lock(repo, wait=LOCK_WAIT, purpose="run"):
        store = open_store(repo)
        runs = open_runs(repo)
        try:
            return _Run(repo, store, runs, dag, names, params, load, options, on_event, hook).go()
        finally:
            runs.close()
            store.state.flush()


def _dry_run(
    repo: Repo,
    dag: Dag,
    names: tuple[str, ...],
    params: dict[str, ParamValues],
    load: ParamFiles,
    force: bool,
) -> RunResult:
    for name in names:
        if name not in params:
            params[name] = stage_params(dag.stages[name], load, strict=False)
    store = open_store(repo)
    try:
        statuses: list[StageStatus] = evaluate(
            store, names, dag.stages, dag.upstream, params, force
        )
    finally:
        store.state.flush()
    results = tuple(
        StageResult(
            s.name,
            "recheck" if s.recheck else "stale" if s.stale else "skipped",
            s.reasons or ("unchanged",),
        )
        for s in statuses
    )
    return RunResult(None, "dry-run", results)


class _Outcome(NamedTuple):
    """What a worker thread reports when its stage is over."""

    ok: bool
    outs: tuple[FileHash, ...] = ()
    exit_code: int | None = None
    error: str = ""
    stderr_tail: tuple[str, ...] = ()
    checks: dict[str, Any] | None = None


class _Planned:
    """A stage decided to run, with the inputs it was judged on (and when it started).

    ``kept``: only its check suites changed, so its outputs (these) are kept and only
    judged again by them; the command does not run.
    """

    __slots__ = ("checks", "deps", "kept", "key", "params", "reasons", "stage", "started", "wall")

    def __init__(
        self,
        stage: Stage,
        reasons: list[str],
        deps: list[FileHash],
        params: ParamValues,
        checks: str,
        key: str,
    ) -> None:
        self.stage = stage
        self.reasons = reasons
        self.deps = deps
        self.params = params
        self.checks = checks
        self.key = key
        self.kept: tuple[FileHash, ...] | None = None
        self.started = self.wall = 0.0  # set when the stage starts (epoch, monotonic)


class _Run:
    """One execution of the pipeline (state: results so far, running workers)."""

    def __init__(
        self,
        repo: Repo,
        store: Store,
        runs: RunsDB,
        dag: Dag,
        names: tuple[str, ...],
        params: dict[str, ParamValues],
        load: ParamFiles,
        options: RunOptions,
        on_event: OnEvent | None,
        hook: StageHook | None,
    ) -> None:
        self.repo, self.store, self.runs, self.dag = repo, store, runs, dag
        self.names, self.params, self.load, self.options = names, params, load, options
        self.emit = on_event or (lambda event: None)
        self.hook = hook
        self.run_id = new_run_id()
        self.root = repo.root
        self.lock = read_lock(repo.root)
        self.hasher = Hasher(store)
        self.suites = CheckSuites(repo.root)
        self.groups: ProcessGroups | None = None  # made when the first stage starts
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.results: dict[str, StageResult] = {}
        self.records: dict[str, StageRecord] = {}
        self.entries: dict[str, LockEntry] = {}  # new lock entries (stages that succeeded)
        self.cache_entries: list[tuple[str, str, dict[str, Any]]] = []
        self.running: dict[str, _Planned] = {}
        self.threads: list[threading.Thread] = []
        self.stopping = False  # a stage failed without --keep-going: start nothing new
        self.interrupted = False
        self.started = time.time()
        self.environment = EnvironmentProbe(repo.root)  # runs while the stages are judged

    # --- main loop ---------------------------------------------------------------------

    def go(self) -> RunResult:
        graph = {n: [u for u in self.dag.upstream[n] if u in self.names] for n in self.names}
        sorter = TopologicalSorter(graph)
        sorter.prepare()
        waiting: deque[_Planned] = deque()
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
                            self._set(planned.stage, "cancelled", ["run stopped by a failure"])
                            sorter.done(planned.stage.name)
                        else:
                            self._start(planned)
                    if self.running:
                        self._handle(self.events.get(), sorter)
        except KeyboardInterrupt:
            self.interrupted = True
            self._stop_workers()
            for name in list(self.running):
                self._set(self.running.pop(name).stage, "interrupted", ["interrupted"])
        except BaseException:
            self._stop_workers()
            raise
        return self._finish()

    def _stop_workers(self) -> None:
        """Stop every running command's process group and let the workers wind down."""
        from mlops.checks.data_checks import stop_commands

        if self.groups is not None:
            self.groups.stop_all()
        deadline = time.monotonic() + 5.0
        for thread in self.threads:
            while thread.is_alive() and time.monotonic() < deadline:
                stop_commands()  # a worker's check may start one while we wait
                thread.join(0.05)

    def _handle(self, event: tuple[Any, ...], sorter: TopologicalSorter[str]) -> None:
        kind, name = event[0], event[1]
        if kind == "output":
            self.emit(RunEvent("output", name, event[2], event[3]))
            return
        if kind == "crash":  # a bug in a worker: surface it as an internal error
            raise event[2]
        planned = self.running.pop(name)
        outcome: _Outcome = event[2]
        duration = time.monotonic() - planned.wall
        stage = planned.stage
        if outcome.ok:
            status = "ran" if planned.kept is None else "rechecked"
            self._succeeded(planned, outcome.outs, status, planned.reasons, duration, outcome)
        else:
            self._set(
                stage,
                "failed",
                planned.reasons,
                duration=duration,
                exit_code=outcome.exit_code,
                error=outcome.error,
                tail=outcome.stderr_tail,
                planned=planned,
                outs=outcome.outs,  # after checks failed: the record names what they judged
                checks=outcome.checks,
            )
            if not self.options.keep_going:
                self.stopping = True
        sorter.done(name)

    # --- deciding ----------------------------------------------------------------------

    def _decide(self, name: str) -> _Planned | None:
        """Skip, restore or block the stage now (None), or plan to run it."""
        stage = self.dag.stages[name]
        if stage.frozen:
            self._set(stage, "skipped", ["frozen"])
            self.emit(RunEvent("skipped", name, "frozen"))
            return None
        bad = [u for u in self.dag.upstream[name] if self._status(u) in _BAD]
        if bad:
            self._set(stage, "blocked", [f"upstream stage {bad[0]!r} did not succeed"])
            return None
        try:
            params = self.params.get(name)
            if params is None:
                params = stage_params(stage, self.load)
            deps = []
            for dep in stage.deps:
                found = self.hasher.hash(dep)
                if found is None:
                    raise PipelineError(f"stage {name!r}: dep {dep!r} is missing")
                deps.append(found)
            checks = self.suites.fingerprint(stage)
        except MlopsError as exc:
            self._set(stage, "failed", [], error=exc.message)
            self.stopping = self.stopping or not self.options.keep_going
            return None
        entry = self.lock.stages.get(name)
        if self.options.force:
            reasons = ["forced (--force)"]
        else:
            reasons = input_reasons(stage, entry, deps, params, checks)
            if not reasons and stage.always_changed:
                reasons = ["always_changed is set"]
        candidate: tuple[FileHash, ...] | None = None
        if not reasons and entry is not None:
            outs = [self.hasher.hash(o.path) for o in stage.outputs]
            reasons = output_reasons(stage, entry, outs)
            if not reasons:
                record_outs = tuple(o for o in outs if o is not None)
                self._set(
                    stage, "skipped", ["unchanged"], deps=deps, params=params, outs=record_outs
                )
                self.emit(RunEvent("skipped", name, "unchanged"))
                return None
            candidate = entry.outs  # inputs match the lock: its outputs are the answer
        key = run_cache_key(stage, deps, params, checks)
        if candidate is None and not self.options.force:
            cached = self.runs.cached(key)
            if cached is not None:
                candidate = tuple(FileHash(**o) for o in cached["outs"])
        planned = _Planned(stage, reasons, deps, params, checks, key)
        if self.stopping:
            self._set(stage, "cancelled", ["run stopped by a failure"], planned=planned)
            return None
        if candidate is not None and self._restore(stage, candidate):
            why = [*reasons, "outputs restored from the cache"]
            self._succeeded(planned, candidate, "restored", why, 0.0, _Outcome(True))
            self.emit(RunEvent("restored", name, "; ".join(reasons)))
            return None
        if entry is not None and reasons == [CHECKS_CHANGED] and not stage.always_changed:
            self._keep_outputs(planned, entry)
        return planned

    def _keep_outputs(self, planned: _Planned, entry: LockEntry) -> None:
        """Only the stage's check suites changed: its locked outputs, where they are in the
        workspace or can be restored, are judged by the new checks instead of being made
        again (a tightened data check does not retrain the model)."""
        stage = planned.stage
        outs = [self.hasher.hash(o.path) for o in stage.outputs]
        if not output_reasons(stage, entry, outs):
            planned.kept = tuple(o for o in outs if o is not None)
        elif self._restore(stage, entry.outs):
            planned.kept = entry.outs
            planned.reasons = [*planned.reasons, "outputs restored from the lock"]

    def _restore(self, stage: Stage, outs: tuple[FileHash, ...]) -> bool:
        """Place the outputs ``outs`` of an earlier run; False when that is not possible."""
        if stage.always_changed or any(o.persist for o in stage.outputs):
            return False
        by_path = {o.path: o for o in outs}
        if set(by_path) != {o.path for o in stage.outputs}:
            return False
        cache = self.store.cache
        targets: list[Target] = []
        copies: list[tuple[Output, FileHash]] = []
        for out in stage.outputs:
            found = by_path[out.path]
            if out.cache:
                targets.append(output_target(self.root, found))
            elif self._in_workspace(found):
                continue  # kept by Git, and already as it should be (after a clone, say)
            elif out.kind != "out" and not found.oid.endswith(DIR_SUFFIX):
                copies.append((out, found))
            else:
                return False  # an uncached out cannot be brought back
        wanted = [t.pointer.oid for t in targets] + [f.oid for _, f in copies]
        if cache.existing(wanted) != set(wanted):
            return False
        if self.store.linker.chosen is None:
            self.store.linker.probe(self.repo.cache_dir, self.repo.mlops_dir)
        for target in targets:
            target.data_path.parent.mkdir(parents=True, exist_ok=True)
        from mlops.workspace.checkout import checkout_targets

        try:
            checkout_targets(self.store, targets, force=True)
        except MlopsError:  # e.g. a folder's files were garbage-collected: run instead
            return False
        for out, found in copies:
            atomic_write_bytes(
                self.root / out.path, cache.read_bytes(found.oid), 0o644, self.repo.scratch_dir
            )
        return True

    def _in_workspace(self, found: FileHash) -> bool:
        now = self.hasher.hash(found.path)
        return now is not None and now.oid == found.oid

    # --- running -----------------------------------------------------------------------

    def _start(self, planned: _Planned) -> None:
        name = planned.stage.name
        if self.store.linker.chosen is None:
            self.store.linker.probe(self.repo.cache_dir, self.repo.mlops_dir)
        self.store.state.preload()  # a no-op after the first: done before threads share it
        if self.groups is None:
            self.groups = ProcessGroups()
        planned.started, planned.wall = time.time(), time.monotonic()
        self.running[name] = planned
        kind = "started" if planned.kept is None else "rechecking"
        self.emit(RunEvent(kind, name, "; ".join(planned.reasons)))
        thread = threading.Thread(
            target=self._work, args=(planned,), name=f"stage-{name}", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def _work(self, planned: _Planned) -> None:
        """Worker thread: prepare outputs, run the hook and the commands, store outputs."""
        stage = planned.stage
        try:
            outcome = self._execute(planned)
        except MlopsError as exc:
            outcome = _Outcome(False, error=exc.message)
        except OSError as exc:
            outcome = _Outcome(False, error=f"stage {stage.name!r}: {exc.strerror or exc}")
        except BaseException as exc:  # reported to the main thread, which re-raises it
            self.events.put(("crash", stage.name, exc))
            return
        self.events.put(("done", stage.name, outcome))

    def _execute(self, planned: _Planned) -> _Outcome:
        stage = planned.stage
        name = stage.name
        checks: dict[str, Any] = {}
        assert self.groups is not None  # made by _start before this thread
        if self.hook is not None:  # before the outputs go: a refused stage loses nothing
            verdict = self.hook(HookContext(self.repo, self.run_id, stage, "before"))
            if verdict.data is not None:  # a stage without suites records nothing
                checks["before"] = verdict.data
            if not verdict.ok:
                return _Outcome(
                    False,
                    error=f"stage {name!r}: checks before it failed: {verdict.message}",
                    checks=checks,
                )
            if self.groups.stopping:  # interrupted while the checks ran: touch nothing
                return _Outcome(False, error=f"stage {name!r}: interrupted", checks=checks)
        outs = planned.kept if planned.kept is not None else self._make_outputs(stage)
        if isinstance(outs, _Outcome):  # the command failed, or left an output out
            return outs._replace(checks=checks)
        exit_code = 0 if planned.kept is None else None  # no command ran for kept outputs
        if self.hook is not None:
            verdict = self.hook(HookContext(self.repo, self.run_id, stage, "after", outs))
            if verdict.data is not None:  # a stage without suites records nothing
                checks["after"] = verdict.data
            if not verdict.ok:
                return _Outcome(
                    False,
                    outs=outs,
                    exit_code=exit_code,
                    error=f"stage {name!r}: checks after it failed: {verdict.message}",
                    checks=checks,
                )
        return _Outcome(True, outs=outs, exit_code=exit_code, checks=checks)

    def _make_outputs(self, stage: Stage) -> tuple[FileHash, ...] | _Outcome:
        """Run the stage's commands and store its outputs; a failure as its ``_Outcome``."""
        name = stage.name
        assert self.groups is not None  # made by _start before this thread
        _refuse_unsafe_outputs(self.repo, stage)
        _clear_outputs(self.root, stage, self.repo.scratch_dir)
        cwd = self.root / stage.wdir
        if not cwd.is_dir():
            return _Outcome(False, error=f"stage {name!r}: wdir {stage.wdir!r} does not exist")
        env = dict(os.environ)
        env.update(stage.env)
        env.update({"MLOPS_RUN_ID": self.run_id, "MLOPS_STAGE": name})
        env.setdefault("PYTHONUNBUFFERED", "1")  # so that output streams line by line

        def on_line(text: str, is_err: bool) -> None:
            self.events.put(("output", name, text, is_err))

        for command in stage.cmd:
            result = run_command(command, cwd, env, on_line, self.groups)
            if result.exit_code != 0:
                return _Outcome(
                    False,
                    exit_code=result.exit_code,
                    error=describe_failure(name, result.exit_code, result.stderr_tail),
                    stderr_tail=result.stderr_tail,
                )
        for out in stage.outputs:
            if not os.path.lexists(self.root / out.path):
                return _Outcome(
                    False,
                    exit_code=0,
                    error=f"stage {name!r} exited 0 but did not produce its {out.kind} "
                    f"{out.path!r}",
                )
        return tuple(self._store_output(out) for out in stage.outputs)

    def _store_output(self, out: Output) -> FileHash:
        from mlops.workspace.add import snapshot

        path = self.root / out.path
        if out.cache:
            pointer, _ = snapshot(self.store, path)
            return FileHash(out.path, pointer.oid, pointer.size, pointer.files)
        found = self.hasher.hash(out.path)
        if found is None:
            raise PipelineError(f"output {out.path!r} disappeared while it was being stored")
        if out.kind != "out" and not found.oid.endswith(DIR_SUFFIX) and found.size <= _SMALL_FILE:
            # Small metrics and plots are kept too, so the run cache can bring them back.
            self.store.cache.add_bytes(path.read_bytes())
        return found

    # --- results -----------------------------------------------------------------------

    def _status(self, name: str) -> str:
        result = self.results.get(name)
        return result.status if result else ""

    def _succeeded(
        self,
        planned: _Planned,
        outs: tuple[FileHash, ...],
        status: str,
        reasons: list[str],
        duration: float,
        outcome: _Outcome,
    ) -> None:
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
        if status in ("ran", "rechecked") and _restorable(stage):
            self.cache_entries.append((planned.key, stage.name, {"outs": [vars(o) for o in outs]}))
        self._set(
            stage,
            status,
            reasons,
            duration=duration,
            exit_code=outcome.exit_code,
            planned=planned,
            outs=outs,
            checks=outcome.checks,
        )

    def _set(
        self,
        stage: Stage,
        status: str,
        reasons: list[str],
        duration: float = 0.0,
        exit_code: int | None = None,
        error: str = "",
        tail: tuple[str, ...] = (),
        planned: _Planned | None = None,
        deps: list[FileHash] | None = None,
        params: ParamValues | None = None,
        outs: tuple[FileHash, ...] = (),
        checks: dict[str, Any] | None = None,
    ) -> None:
        if planned is not None:
            deps, params = planned.deps, planned.params
        result = StageResult(
            stage.name, status, tuple(reasons), duration, exit_code, error, tail, checks or None
        )
        self.results[stage.name] = result
        self.records[stage.name] = StageRecord(
            name=stage.name,
            status=status,
            reasons=tuple(reasons),
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
        )
        if status in ("ran", "rechecked", "failed", "interrupted"):
            self.emit(RunEvent("finished", stage.name, result=result))

    def _finish(self) -> RunResult:
        """Record the run, then write the lock, run cache and .gitignore entries once."""
        with sigint_deferred():
            for name in self.names:
                if name not in self.results:
                    self._set(self.dag.stages[name], "cancelled", ["not reached"])
            status = (
                "interrupted"
                if self.interrupted
                else "failed"
                if any(r.status in ("failed", "blocked") for r in self.results.values())
                else "success"
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
                argv=self.options.argv or tuple(sys.argv),
                python=env.python,
                packages=env.packages,
                stages=stages,
            )
            record = replace(record, object_id=self.store.cache.add_bytes(record.canonical_bytes()))
            lock_written = bool(self.entries) and self._write_lock(record.object_id)
            if self.entries:
                from mlops.workspace.add import ignore_in_git

                ignore_in_git(
                    self.root,
                    [o.path for n in self.entries for o in self.dag.stages[n].outputs if o.cache],
                    self.repo.scratch_dir,
                )
            self.runs.save(record, self.cache_entries)
        if self.interrupted:
            raise KeyboardInterrupt
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
                    and self.results[name].status == "restored"
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
        write_lock(self.root, Lock(merged), self.repo.scratch_dir)
        return True

    def _with_metrics(self, record: StageRecord) -> StageRecord:
        stage = self.dag.stages[record.name]
        if not stage.metrics or record.status not in SUCCEEDED:
            return record
        values: dict[str, Any] = {}
        for out in stage.metrics:
            with contextlib.suppress(OSError, MlopsError):
                values[out.path] = flatten(
                    parse_params((self.root / out.path).read_bytes(), out.path)
                )
        return replace(record, metrics=values)


def _same_result(old: LockEntry, new: LockEntry) -> bool:
    """Whether two lock entries record the same inputs and outputs (runs aside)."""
    return replace(old, run="", record="") == replace(new, run="", record="")


def _restorable(stage: Stage) -> bool:
    """Whether a later run may take this stage's outputs from the run cache.

    A stage without outputs acts only by side effects: it is never skipped that way.
    """
    return (
        bool(stage.outputs)
        and not stage.always_changed
        and all(not o.persist and (o.cache or o.kind != "out") for o in stage.outputs)
    )


def _refuse_unsafe_outputs(repo: Repo, stage: Stage) -> None:
    """Before a stage's outputs are cleared: none is tracked by Git (mlops would delete
    it, then cache and ignore it, as ``add`` refuses to), and none lies through a
    symbolic link (clearing it would delete wherever the link points)."""
    from mlops.core.git import tracked_paths
    from mlops.storage.paths import refuse_symlinks

    for out in stage.outputs:
        refuse_symlinks(repo.root, repo.root / out.path, repo.cache_dir)
    cached = [out.path for out in stage.outputs if out.cache]
    in_git = tracked_paths(repo.root, *cached) if cached else []
    if in_git:
        shown = next(p for p in cached if p == in_git[0] or in_git[0].startswith(p + "/"))
        raise PipelineError(
            f"stage {stage.name!r}: output {shown!r} is tracked by Git; untrack it first with "
            f"`git rm -r --cached {shown}` (the files stay on disk), or mark it `cache: false`"
        )


def _clear_outputs(root: Path, stage: Stage, scratch: Path) -> None:
    """Remove the outputs a stage will write again; persistent ones become editable
    (through temporaries in ``scratch``)."""
    from mlops.core.fsutil import make_private_copy

    for out in stage.outputs:
        path = root / out.path
        if out.persist:
            if path.is_symlink() or (path.is_file() and path.stat().st_nlink > 1):
                make_private_copy(path, scratch)
            elif path.is_dir():
                for item in path.rglob("*"):
                    if item.is_symlink() or (item.is_file() and item.stat().st_nlink > 1):
                        make_private_copy(item, scratch)
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
