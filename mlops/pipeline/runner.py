"""``mlops run``: plan, schedule and record a run of the pipeline.

``plan`` holds the one staleness rule, ``scheduler`` orders the stages and hands
them to an executor (``executors.local``, or ``executors.dask`` for a Dask
cluster), ``work`` executes one stage, and ``recording`` writes the run record,
the lock and the run cache once, at the end.
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING

from mlops.core.repo import Repo, repo_lock
from mlops.errors import ConfigError, PipelineError
from mlops.pipeline.dag import Dag, build_dag
from mlops.pipeline.executors.base import Executor, JobEvent
from mlops.pipeline.executors.local import LocalExecutor
from mlops.pipeline.lock import read_lock
from mlops.pipeline.params import ParamFiles, ParamValues, stage_params
from mlops.pipeline.plan import Hasher, Staleness, evaluate
from mlops.pipeline.recording import Recorder
from mlops.pipeline.results import (
    ExecutorKind,
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
from mlops.pipeline.schema import Stage, load_pipeline
from mlops.pipeline.work import Workspace
from mlops.storage.store import open_store

if TYPE_CHECKING:
    from mlops.pipeline.executors.dask import Cluster

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
    # A cluster that cannot be reached fails here, in one line, before anything runs.
    cluster = _open_cluster(repo, options, [dag.stages[n] for n in names])
    try:
        with repo_lock(repo, wait=LOCK_WAIT, purpose="run"), open_store(repo) as store:
            runs = open_runs(repo)
            try:
                ws = Workspace(repo, store, Hasher(store), guard)
                events: queue.Queue[JobEvent] = queue.Queue()
                run_id = new_run_id()
                lock = read_lock(repo.root)
                recorder = Recorder(repo, store, runs, dag, names, lock, run_id, options.argv, emit)
                executor: Executor
                if cluster is None:
                    executor = LocalExecutor(ws, events.put)
                else:
                    from mlops.pipeline.executors.dask import DaskExecutor

                    cluster.store = store
                    executor = DaskExecutor(ws, events.put, cluster)
                scheduler = Scheduler(
                    ws,
                    runs,
                    dag,
                    names,
                    params,
                    load,
                    options,
                    recorder,
                    executor,
                    events,
                    emit,
                    cluster,  # None runs locally; its run cache obeys --no-remote-cache
                )
                return scheduler.go()
            finally:
                runs.close()
    finally:
        if cluster is not None:
            cluster.close()


def executor_settings(repo: Repo, options: RunOptions) -> tuple[ExecutorKind, str | None]:
    """The executor and scheduler address a run uses: its options, else ``run:`` in
    .mlops/config.yaml, else the local executor."""
    section = repo.config().get("run") or {}
    raw = options.executor or section.get("executor") or ExecutorKind.LOCAL
    kind = ExecutorKind.named(raw, "run.executor in .mlops/config.yaml")
    scheduler = options.scheduler or section.get("scheduler")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ConfigError(
            "run.scheduler in .mlops/config.yaml must be an address (tcp://HOST:PORT)"
        )
    return kind, scheduler


def _open_cluster(repo: Repo, options: RunOptions, stages: list[Stage]) -> Cluster | None:
    """The Dask cluster and remote a run uses, connected and checked (None: run locally)."""
    kind, scheduler = executor_settings(repo, options)
    if kind == ExecutorKind.LOCAL:
        if options.local_cluster or options.scheduler:
            raise PipelineError("--scheduler and --local go with --executor dask")
        return None
    if options.local_cluster:
        scheduler = None
    elif not scheduler:
        raise PipelineError(
            "the dask executor needs a scheduler: --scheduler tcp://HOST:8786 (or "
            "run.scheduler in .mlops/config.yaml), or --local for a cluster on this machine"
        )
    from mlops.pipeline.executors.dask import connect
    from mlops.remote.backend import open_backend
    from mlops.remote.config import get_remote

    spec = get_remote(repo, options.remote)
    backend = open_backend(spec, repo)
    backend.open(create=True)  # an unreachable remote fails here too
    cluster = connect(scheduler, spec, backend, options.jobs, options.remote_cache)
    try:
        cluster.check_resources(stages)
    except BaseException:
        cluster.close()
        raise
    return cluster


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
