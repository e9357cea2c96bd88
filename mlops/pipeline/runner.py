"""``mlops run``: plan, schedule and record a run of the pipeline.

``plan`` holds the one staleness rule, ``scheduler`` orders the stages and hands
them to an executor (``executors.local`` today), ``work`` executes one stage, and
``recording`` writes the run record, the lock and the run cache once, at the end.
"""

from __future__ import annotations

import queue

from mlops.core.repo import Repo, repo_lock
from mlops.pipeline.dag import Dag, build_dag
from mlops.pipeline.executors.base import JobEvent
from mlops.pipeline.executors.local import LocalExecutor
from mlops.pipeline.lock import read_lock
from mlops.pipeline.params import ParamFiles, ParamValues, stage_params
from mlops.pipeline.plan import Hasher, Staleness, evaluate
from mlops.pipeline.recording import Recorder
from mlops.pipeline.results import (
    OnEvent,
    RunOptions,
    RunResult,
    RunStatus,
    Safeguard,
    StageResult,
    StageState,
)
from mlops.pipeline.runs import new_run_id, open_runs
from mlops.pipeline.scheduler import Scheduler
from mlops.pipeline.schema import load_pipeline
from mlops.pipeline.work import Workspace
from mlops.storage.store import open_store

# How long a second `mlops run` waits for the first before giving up.
LOCK_WAIT = 3.0


def run_pipeline(
    repo: Repo,
    options: RunOptions | None = None,
    on_event: OnEvent | None = None,
    guard: Safeguard | None = None,
) -> RunResult:
    """Run the stale stages of ``mlops.yaml`` (or only ``options.targets`` and their upstream),
    each judged by ``guard`` before and after its command.

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
    emit = on_event or (lambda event: None)
    with repo_lock(repo, wait=LOCK_WAIT, purpose="run"), open_store(repo) as store:
        runs = open_runs(repo)
        try:
            ws = Workspace(repo, store, Hasher(store), guard)
            events: queue.Queue[JobEvent] = queue.Queue()
            run_id = new_run_id()
            lock = read_lock(repo.root)
            recorder = Recorder(repo, store, runs, dag, names, lock, run_id, options.argv, emit)
            executor = LocalExecutor(ws, events.put)
            scheduler = Scheduler(
                ws, runs, dag, names, params, load, options, recorder, executor, events, emit
            )
            return scheduler.go()
        finally:
            runs.close()


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
    with open_store(repo) as store:
        statuses: list[Staleness] = evaluate(store, names, dag.stages, dag.upstream, params, force)
    results = tuple(
        StageResult(
            s.name,
            StageState.RECHECK
            if s.recheck
            else StageState.STALE
            if s.stale
            else StageState.SKIPPED,
            s.reasons or ("unchanged",),
        )
        for s in statuses
    )
    return RunResult(None, RunStatus.DRY_RUN, results)
