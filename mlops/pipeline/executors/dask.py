"""The Dask executor: stages run on the workers of a Dask cluster (``mlops[dask]``).

No file system is shared. For each job the controller (this process) makes sure the
remote holds every object the stage reads (the Git-tracked files among its deps
too, stored by content), sends the worker a plain description (``describe``:
command, env, wdir, outputs, hashes; the remote's URL and non-secret options, never
its credentials), and, once the worker has pushed the outputs, fetches them into
its cache and places them in the work tree. The lock, the run record and the
workspace are written here alone, as for a local run.

A worker that dies mid-stage makes Dask run the task again elsewhere (the scheduler's
``allowed-failures``); a retry is harmless as outputs are content-addressed.

As it connects, the controller prepares every worker (``prepare_worker``: the task
module imported, the worker's store and remote opened) while it plans and pushes the
deps; the first task is sent once the workers have answered, so that a worker that
cannot load mlops is one clear error instead of a worker that dies on the task.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.fsutil import atomic_write_bytes
from mlops.core.secrets import SECRET_KEYS
from mlops.errors import MlopsError, PipelineError
from mlops.pipeline.execute import OnLine
from mlops.pipeline.executors.base import JobOutcome, OutputLine, Report, StageJob
from mlops.pipeline.executors.dask_task import TASK_VERSION, prepare_worker, run_stage, stop_run
from mlops.pipeline.executors.local import LocalExecutor
from mlops.pipeline.lock import FileHash, output_target
from mlops.pipeline.schema import Stage
from mlops.pipeline.shared_cache import object_ids, read_entry
from mlops.pipeline.work import Workspace, clear_outputs, run_job
from mlops.remote.backend import Backend
from mlops.remote.config import RemoteSpec
from mlops.remote.transfer import default_transfer_jobs, receive_objects, send_objects
from mlops.storage.hashing import DIR_SUFFIX
from mlops.storage.manifest import build_manifest
from mlops.storage.store import Store

# Seconds to wait for the scheduler to answer before saying it cannot be reached.
CONNECT_TIMEOUT = 10.0
# How many lines of a stage's output are kept to explain a worker's death.
_KEPT_LINES = 20
# Seconds a finished stage waits for the output lines its worker sent to arrive (they
# travel apart from its result), so that they are reported before its end.
LINES_WAIT = 5.0
# Dask settings for the clusters mlops starts itself (--local): the worker's profiler
# would only sample a thread waiting for the stage's process, 100 times a second, on
# the cores the stages need (README: the same for a cluster of your own).
LOCAL_CLUSTER_CONFIG = {"distributed.worker.profile.enabled": False}
_runs = itertools.count()


@dataclass
class Cluster:
    """A connection to a Dask scheduler (or a cluster started here for ``--local``), and
    the remote through which inputs and outputs move."""

    client: Any  # distributed.Client (untyped)
    spec: RemoteSpec
    backend: Backend
    address: str
    remote_cache: bool = True
    local: Any = None  # the LocalCluster started for --local
    known: set[str] = field(default_factory=set)  # objects known to be on the remote
    store: Store | None = None  # the controller's store, once the run opened it
    # The workers' answers to ``prepare_worker`` (address -> version, or the error).
    prepared: dict[str, Any] = field(default_factory=dict)
    preparing: threading.Thread | None = None

    def prepare(self, remote: dict[str, Any]) -> None:
        """Start preparing every worker for this run (``prepare_worker``), in the
        background; ``ready`` waits for their answers."""

        def ask() -> None:
            with contextlib.suppress(Exception):  # unanswered: the tasks say what is wrong
                self.prepared = self.client.run(prepare_worker, remote, on_error="return")

        self.preparing = threading.Thread(target=ask, name="dask-prepare", daemon=True)
        self.preparing.start()

    def ready(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Wait (up to ``timeout``) for the workers to be prepared; PipelineError naming
        a worker that cannot run mlops's tasks."""
        if self.preparing is not None:
            self.preparing.join(timeout)
        for address, answer in sorted(self.prepared.items()):
            if answer == TASK_VERSION:
                continue
            if isinstance(answer, BaseException):
                if not _cannot_load(answer):
                    continue  # a worker leaving, say: the tasks go to the others
                why = f"it cannot load mlops ({_first_line(answer)})"
            else:
                why = f"its mlops runs tasks of version {answer!r}, this one {TASK_VERSION}"
            raise PipelineError(
                f"Dask worker {address}: {why}; install the same mlops "
                "(pip install 'mlops[dask]') in the workers' environment"
            )

    def workers(self) -> dict[str, dict[str, float]]:
        """Each worker's address and declared resources."""
        info = self.client.scheduler_info(n_workers=-1)
        return {a: dict(w.get("resources") or {}) for a, w in info["workers"].items()}

    def check_resources(self, stages: list[Stage]) -> None:
        """Fail before anything runs on a stage no worker can take."""
        if not any(stage.resources for stage in stages):
            return  # any worker takes them: no need to ask the scheduler
        workers = self.workers()
        for stage in stages:
            if not stage.resources:
                continue
            if not any(
                all(have.get(k, 0.0) >= amount for k, amount in stage.resources)
                for have in workers.values()
            ):
                wanted = ", ".join(f"{k}: {amount:g}" for k, amount in stage.resources)
                declared = sorted({f"{k}={v:g}" for w in workers.values() for k, v in w.items()})
                raise PipelineError(
                    f"stage {stage.name!r} needs resources {{{wanted}}} that no worker of "
                    f"{self.address} has (declared: {', '.join(declared) or 'none'}); start "
                    'a worker with `dask worker ... --resources "gpus=1"`, say'
                )

    def cached(self, key: str) -> tuple[FileHash, ...] | None:
        """The outputs the remote's run cache names for ``key``, or None."""
        return read_entry(self.backend, key) if self.remote_cache else None

    def bring(self, outs: tuple[FileHash, ...]) -> bool:
        """Fetch the objects of ``outs`` into the controller's cache (``SharedRunCache``)."""
        store = self.store
        if store is None:
            return False
        wanted = object_ids(store, outs)
        missing = wanted - store.cache.existing(wanted)
        try:
            if missing:
                receive_objects(store, self.backend, missing, default_transfer_jobs())
        except MlopsError:
            return False  # not all there: the stage runs
        self.known.update(o.oid for o in outs)
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.local is not None:
            with contextlib.suppress(Exception):
                self.local.close()


def connect(
    scheduler: str | None,
    spec: RemoteSpec,
    backend: Backend,
    jobs: int,
    remote_cache: bool = True,
    timeout: float = CONNECT_TIMEOUT,
) -> Cluster:
    """Connect to the scheduler at ``scheduler`` (None: start a ``LocalCluster`` of
    ``jobs`` single-threaded worker processes here); one line when it cannot be reached."""
    try:
        import distributed
    except ImportError:
        raise PipelineError(
            "the dask executor needs Dask distributed: pip install 'mlops[dask]'"
        ) from None
    local = None
    try:
        if scheduler is None:
            import dask.config

            with dask.config.set(LOCAL_CLUSTER_CONFIG):  # the workers start with it
                local = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=jobs,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=40,
                )
            address = local.scheduler_address
        else:
            address = scheduler
            _probe(scheduler, timeout)
        client = distributed.Client(  # type: ignore[no-untyped-call]
            address, timeout=timeout, set_as_default=False
        )
    except (OSError, TimeoutError) as exc:
        if local is not None:
            local.close()
        why = _first_line(exc)
        raise PipelineError(
            f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s ({why}); "
            "start it with `dask scheduler`, or check --scheduler"
        ) from None
    return Cluster(client, spec, backend, address, remote_cache, local)


def _cannot_load(exc: BaseException) -> bool:
    """Whether a worker's error says it cannot unpickle mlops's functions (Dask hands
    such an error back as a plain Exception naming the original)."""
    loading = (ImportError, AttributeError)
    return isinstance(exc, loading) or str(exc).startswith(
        tuple(kind.__name__ for kind in (ModuleNotFoundError, *loading))
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _probe(address: str, timeout: float) -> None:
    """Fail at once when nothing listens at a ``tcp://HOST:PORT`` scheduler address (Dask
    itself retries a refused connection until its timeout)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        return  # another transport: Dask reaches it (or says why)
    try:
        port = parts.port or 8786
    except ValueError:
        raise PipelineError(f"--scheduler {address!r}: not an address tcp://HOST:PORT") from None
    socket.create_connection((parts.hostname, port), timeout=timeout).close()


def task_remote(spec: RemoteSpec) -> dict[str, Any]:
    """What a worker learns of the remote: its name, URL and options, credentials left
    out (a worker reads its own; see ``executors.dask_task``)."""
    from mlops.core.secrets import is_secret_key

    options = {
        k: v
        for k, v in spec.options.items()
        if k not in SECRET_KEYS and not is_secret_key(k) and _plain(v)
    }
    if spec.secrets and any(secret in spec.url for secret in spec.secrets):
        raise PipelineError(
            f"remote {spec.name!r}: its URL holds a credential, which the dask executor "
            "would have to send to the workers; move it into the remote's options "
            "(`mlops remote modify --local`) or the workers' environment"
        )
    return {"name": spec.name, "url": spec.url, "options": options}


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def describe(
    job: StageJob, deps: list[FileHash], remote: dict[str, Any], topic: str, remote_cache: bool
) -> dict[str, Any]:
    """The plain description of a job that a worker receives (nothing pickled but this)."""
    stage = job.stage
    return {
        "version": TASK_VERSION,
        "run_id": job.run_id,
        "stage": stage.name,
        "cmd": list(stage.cmd),
        "wdir": stage.wdir,
        "env": [list(pair) for pair in stage.env],
        "outs": [
            {"path": o.path, "kind": o.kind, "cache": o.cache, "persist": o.persist}
            for o in stage.outputs
        ],
        "deps": [vars(d) for d in deps],
        "key": job.key,
        "remote_cache": remote_cache,
        "remote": remote,
        "topic": topic,
    }


class DaskExecutor:
    """Runs jobs on a Dask cluster; each job waits for its task on a thread of its own."""

    def __init__(self, ws: Workspace, report: Report, cluster: Cluster) -> None:
        self.ws, self.report, self.cluster = ws, report, cluster
        self.local = LocalExecutor(ws, report)  # jobs that only re-check kept outputs
        self.remote = task_remote(cluster.spec)
        self.topic = f"mlops-{os.getpid()}-{next(_runs)}-{uuid.uuid4().hex[:8]}"
        self.futures: dict[str, Any] = {}  # distributed.Future
        self.run_ids: set[str] = set()
        self.lines: dict[str, deque[str]] = {}
        self.received: dict[str, int] = {}  # output lines reported, by task attempt
        self.arrived = threading.Condition()
        self.threads: list[threading.Thread] = []
        self.push_lock = threading.Lock()
        self.stopping = False
        self.jobs = default_transfer_jobs()
        cluster.client.subscribe_topic(self.topic, self._on_event)
        cluster.prepare(self.remote)

    def _on_event(self, event: Any) -> None:
        _, msg = event
        name = msg["stage"]
        self.lines.setdefault(name, deque(maxlen=_KEPT_LINES)).append(msg["text"])
        self.report(OutputLine(name, msg["text"], bool(msg["err"])))
        with self.arrived:
            attempt = str(msg.get("attempt"))
            self.received[attempt] = self.received.get(attempt, 0) + 1
            self.arrived.notify_all()

    def _await_lines(self, result: dict[str, Any]) -> None:
        """Wait (a little) until every output line the task's attempt sent is reported."""
        attempt, sent = str(result.get("attempt")), int(result.get("lines") or 0)
        with self.arrived:
            self.arrived.wait_for(lambda: self.received.get(attempt, 0) >= sent, LINES_WAIT)
            self.received.pop(attempt, None)

    def submit(self, job: StageJob) -> None:
        if job.kept is not None or any(o.persist for o in job.stage.outputs):
            # Outputs kept as they are, or edited in place: only this work tree has them.
            self.local.submit(job)
            return
        store = self.ws.store
        if store.linker.chosen is None:
            store.linker.probe(self.ws.repo.cache_dir, self.ws.repo.mlops_dir)
        store.state.preload()
        thread = threading.Thread(
            target=self._work, args=(job,), name=f"dask-{job.stage.name}", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def _work(self, job: StageJob) -> None:
        def on_line(text: str, is_err: bool) -> None:
            self.report(OutputLine(job.stage.name, text, is_err))

        self.report(run_job(self.ws, job, on_line, self._make))

    def _make(self, ws: Workspace, job: StageJob, on_line: OnLine) -> JobOutcome:
        """Run the job on a worker, then bring its outputs into this work tree."""
        stage = job.stage
        deps = self._inputs(job)
        self._ensure_on_remote(deps)
        self.cluster.ready()  # a worker that cannot run the task: one line, nothing sent
        desc = describe(job, deps, self.remote, self.topic, self.cluster.remote_cache)
        submitted = time.time()
        self.run_ids.add(job.run_id)
        future = self.cluster.client.submit(
            run_stage,
            desc,
            key=f"mlops-{stage.name}-{uuid.uuid4().hex}",
            pure=False,
            resources=dict(stage.resources) or None,
        )
        self.futures[stage.name] = future
        try:
            result: dict[str, Any] = future.result()
        except Exception as exc:
            return self._lost(stage, exc)
        finally:
            self.futures.pop(stage.name, None)
        self._await_lines(result)
        where = dict(result.get("where") or {})
        started = where.get("started", submitted)
        where["waited"] = round(max(0.0, started - submitted), 6)
        if not result["ok"]:
            return JobOutcome(
                False,
                exit_code=result.get("exit_code"),
                error=result.get("error") or f"stage {stage.name!r} failed on its worker",
                stderr_tail=tuple(result.get("stderr_tail") or ()),
                placement=where,
            )
        outs = tuple(FileHash(**o) for o in result["outs"])
        self.cluster.known.update(o.oid for o in outs)
        self._place(stage, outs)
        return JobOutcome(True, outs, 0, restored=bool(result.get("restored")), placement=where)

    def _lost(self, stage: Stage, exc: BaseException) -> JobOutcome:
        if self.stopping:
            return JobOutcome(False, error=f"stage {stage.name!r}: interrupted")
        lines = tuple(self.lines.get(stage.name, ()))
        last = f"; its last lines: {' | '.join(lines[-3:])}" if lines else ""
        import asyncio
        import concurrent.futures

        if type(exc).__name__ == "KilledWorker":
            why = "its workers died running it too many times"
        elif isinstance(exc, concurrent.futures.CancelledError | asyncio.CancelledError):
            why = "its task was cancelled (the scheduler or its workers went away)"
        elif isinstance(exc, OSError):
            why = f"the connection to the scheduler was lost ({exc})"
        else:
            raise exc  # a bug in the task: surfaced as an internal error
        return JobOutcome(False, error=f"stage {stage.name!r}: {why}{last}", stderr_tail=lines)

    def _inputs(self, job: StageJob) -> list[FileHash]:
        """The deps as judged, and the params files the stage reads (by content)."""
        deps = list(job.deps)
        have = {d.path for d in deps}
        stage = job.stage
        for ref in (*stage.params, *stage.interpolated):
            if ref.file in have:
                continue
            found = self.ws.hasher.hash(ref.file)
            if found is not None:
                deps.append(found)
                have.add(ref.file)
        return deps

    def _ensure_on_remote(self, deps: list[FileHash]) -> None:
        """Push every object ``deps`` need that the remote may lack; the Git-tracked files
        among them are stored in the cache first (by copy: the work tree is untouched)."""
        todo = [d for d in deps if d.oid not in self.cluster.known]
        if not todo:
            return
        with self.push_lock:
            todo = [d for d in todo if d.oid not in self.cluster.known]
            if not todo:
                return
            store = self.ws.store
            for dep in todo:
                if not store.cache.exists(dep.oid):
                    self._store_copy(dep)
            needed = object_ids(store, todo)
            send_objects(store, self.cluster.backend, needed, self.jobs)
            self.cluster.known.update(d.oid for d in todo)

    def _store_copy(self, dep: FileHash) -> None:
        """Store a dep that is not in the cache (a Git-tracked file or folder) by content."""
        from mlops.workspace.tracked import hash_files, scan_folder

        store, root = self.ws.store, self.ws.repo.root
        path = root / dep.path
        if not dep.oid.endswith(DIR_SUFFIX):
            oid = store.cache.add_bytes(path.read_bytes())
            if oid != dep.oid:
                raise PipelineError(f"dep {dep.path!r} changed while the run was starting")
            return
        files = scan_folder(path)
        entries = hash_files(store, files, None, None)
        for item, entry in zip(files, entries, strict=True):
            if not store.cache.exists(entry.oid):
                store.cache.add_bytes(Path(item.abspath).read_bytes())
        oid = store.cache.add_bytes(build_manifest(entries).to_bytes(), DIR_SUFFIX)
        if oid != dep.oid:
            raise PipelineError(f"dep {dep.path!r} changed while the run was starting")

    def _place(self, stage: Stage, outs: tuple[FileHash, ...]) -> None:
        """Fetch the outputs' objects and put them in the work tree (cached ones by link)."""
        from mlops.workspace.checkout import checkout_targets

        store, repo = self.ws.store, self.ws.repo
        wanted = object_ids(store, outs)
        missing = wanted - store.cache.existing(wanted)
        if missing:
            receive_objects(store, self.cluster.backend, missing, self.jobs)
        clear_outputs(repo.root, stage, repo.scratch_dir)
        by_path = {o.path: o for o in outs}
        targets = []
        for out in stage.outputs:
            found = by_path[out.path]
            if out.cache or found.oid.endswith(DIR_SUFFIX):
                targets.append(output_target(repo.root, found))
            else:
                data = store.cache.read_bytes(found.oid)
                (repo.root / out.path).parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(repo.root / out.path, data, 0o644, repo.scratch_dir)
        for target in targets:
            target.data_path.parent.mkdir(parents=True, exist_ok=True)
        if targets:
            try:
                checkout_targets(store, targets, force=True)
            except MlopsError as exc:
                raise PipelineError(
                    f"stage {stage.name!r}: its outputs could not be placed: {exc.message}"
                ) from None

    def stop_all(self) -> None:
        self.stopping = True
        futures = list(self.futures.values())
        if futures:
            with contextlib.suppress(Exception):
                self.cluster.client.cancel(futures, force=True)
            for run_id in self.run_ids:  # a cancelled task's command still runs: kill it
                with contextlib.suppress(Exception):
                    self.cluster.client.run(stop_run, run_id)
        self.local.stop_all()
        deadline = time.monotonic() + 5.0
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
