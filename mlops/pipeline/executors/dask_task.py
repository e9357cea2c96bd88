"""What a Dask worker does with one stage (``mlops run --executor dask``).

The controller sends a small plain description (``describe`` in ``executors.dask``):
the command, env, wdir, outputs, the hashes of the deps and params files, the
run-cache key, and the remote's name, URL and non-secret options. Nothing else
of the controller's machine is visible: the stage runs in a scratch folder of its own,
its deps placed there from a content-addressed cache kept in the worker's local
folder (each object is fetched from the remote once per worker), and its outputs
pushed to the remote by hash. Credentials are the worker's own: its environment
(``AWS_ACCESS_KEY_ID``..., read by the back end itself) or
``MLOPS_REMOTE_<NAME>_<OPTION>`` variables.

This module is imported once per worker process; each task reuses the worker's open
store and remote connection. As the controller connects, it calls ``prepare_worker`` on
every worker (``Client.run``), so that these imports and the opening of the store and
remote are done while it plans, not when the first stage arrives.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from mlops.core.repo import CONFIG_FILE, MLOPS_DIR, Repo
from mlops.errors import MlopsError
from mlops.pipeline.execute import TAIL_LINES
from mlops.pipeline.executors.base import JobOutcome, StageJob
from mlops.pipeline.lock import FileHash, output_target
from mlops.pipeline.plan import Hasher
from mlops.pipeline.schema import Output, Stage
from mlops.pipeline.shared_cache import entry_bytes, entry_key, object_ids, read_entry
from mlops.pipeline.work import Workspace, produce_outputs
from mlops.remote.backend import open_backend
from mlops.remote.config import RemoteSpec
from mlops.remote.transfer import default_transfer_jobs, receive_objects, send_objects
from mlops.storage.store import Store

# The version of the task description; a worker refuses one it does not know.
TASK_VERSION = 1
# How a worker links deps from its cache into a stage's scratch folder.
_WORKER_LINKS = ["reflink", "hardlink", "copy"]


def own_options(name: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Remote options from this machine's environment: ``MLOPS_REMOTE_<NAME>_<OPTION>``."""
    prefix = f"MLOPS_REMOTE_{name.upper().replace('-', '_')}_"
    env = os.environ if environ is None else environ
    return {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}


class WorkerHome:
    """A worker's mlops folder: its object cache, its open store and remote connection, and
    what it knows the remote holds."""

    def __init__(self, folder: Path, remote: dict[str, Any]) -> None:
        mlops_dir = folder / MLOPS_DIR
        mlops_dir.mkdir(parents=True, exist_ok=True)
        config = mlops_dir / CONFIG_FILE
        if not config.exists():
            config.write_text(json.dumps({"cache": {"link": _WORKER_LINKS}}))
        self.repo = Repo(folder)
        self.stages = folder / "stages"
        self.stages.mkdir(exist_ok=True)
        self.store = Store(self.repo)
        name = str(remote["name"])
        options = {**remote.get("options", {}), **own_options(name)}
        self.backend = open_backend(RemoteSpec(name, str(remote["url"]), options), self.repo)
        self.known: set[str] = set()  # objects known to be on the remote
        self.lock = threading.Lock()
        self.jobs = default_transfer_jobs()
        self.fetched = 0  # objects this worker fetched, over its life

    def materialise(self, deps: list[FileHash], scratch: Path) -> int:
        """Place ``deps`` in ``scratch`` from the cache, fetching what it lacks; return how
        many objects were fetched."""
        from mlops.workspace.checkout import checkout_targets

        cache = self.store.cache
        fetched = 0
        wanted = object_ids(self.store, deps)
        if cache.existing(wanted) != wanted:
            with self.lock:  # one fetch at a time: a second stage waits, then finds them
                wanted = object_ids(self.store, deps)
                missing = wanted - cache.existing(wanted)
                if missing:
                    fetched = receive_objects(self.store, self.backend, missing, self.jobs).objects
                    self.fetched += fetched
        self.known.update(object_ids(self.store, deps))
        if self.store.linker.chosen is None:
            self.store.linker.probe(self.repo.cache_dir, self.repo.mlops_dir)
        targets = [output_target(scratch, dep) for dep in deps]
        for target in targets:
            target.data_path.parent.mkdir(parents=True, exist_ok=True)
        if targets:
            checkout_targets(self.store, targets, force=True)
        return fetched

    def keep(self, scratch: Path, stage: Stage, outs: tuple[FileHash, ...]) -> None:
        """Store in the cache the outputs ``store_output`` only hashed (uncached ones), so
        that the controller can fetch them too."""
        from mlops.workspace.add import snapshot

        cache = self.store.cache
        for out, found in zip(stage.outputs, outs, strict=True):
            if not out.cache and not cache.exists(found.oid):
                snapshot(self.store, scratch / out.path)

    def send(self, outs: tuple[FileHash, ...]) -> int:
        """Push the objects of ``outs`` the remote lacks; return how many went."""
        needed = object_ids(self.store, outs) - self.known
        if not needed:
            return 0
        sent = send_objects(self.store, self.backend, needed, self.jobs).objects
        self.known.update(needed)
        return sent


_HOMES: dict[tuple[str, str], WorkerHome] = {}
_HOMES_LOCK = threading.Lock()


def _home(local_directory: str, remote: dict[str, Any]) -> WorkerHome:
    key = (local_directory, json.dumps(remote, sort_keys=True))
    with _HOMES_LOCK:
        home = _HOMES.get(key)
        if home is None:
            home = _HOMES[key] = WorkerHome(Path(local_directory) / "mlops", remote)
        return home


def prepare_worker(remote: dict[str, Any], dask_worker: Any) -> int:
    """Make this worker ready for the stages of a run about to start (the controller
    calls it through ``Client.run`` as it connects; by then this module is imported):
    its mlops folder for ``remote`` (store and remote connection) opens on a thread of
    its own, with the modules a stage needs, so that the worker's event loop is not held
    up; the first stage waits for it if it comes sooner. Return ``TASK_VERSION``."""
    thread = threading.Thread(
        target=_prepare, args=(dask_worker.local_directory, remote), daemon=True
    )
    thread.start()
    return TASK_VERSION


def _prepare(local_directory: str, remote: dict[str, Any]) -> None:
    import mlops.core.processes
    import mlops.workspace.add
    import mlops.workspace.checkout  # noqa: F401

    with contextlib.suppress(MlopsError, OSError):  # the first stage opens it, or says why
        _home(local_directory, remote)


def _stage_of(desc: dict[str, Any]) -> Stage:
    return Stage(
        name=desc["stage"],
        cmd=tuple(desc["cmd"]),
        outputs=tuple(
            Output(o["path"], o["kind"], bool(o["cache"]), bool(o["persist"])) for o in desc["outs"]
        ),
        wdir=desc["wdir"],
        env=tuple((str(k), str(v)) for k, v in desc["env"]),
    )


def stop_run(run_id: str) -> int:
    """Kill this worker's commands of run ``run_id`` (the controller was interrupted)."""
    from mlops.core.processes import GROUPS

    return GROUPS.stop_tagged(run_id)


def run_stage(desc: dict[str, Any]) -> dict[str, Any]:
    """Run one described stage on this Dask worker; a plain result for the controller:
    ok, outs, exit_code, error, stderr_tail, restored, where (worker, host, times), and
    ``lines``: how many output lines this attempt sent, each event tagged ``attempt``, so
    that the controller reports them all before the stage's end."""
    from distributed import get_worker

    started = time.time()
    if desc.get("version") != TASK_VERSION:
        return {"ok": False, "error": f"this worker's mlops does not know task {desc!r:.40}"}
    worker = get_worker()
    where: dict[str, Any] = {
        "worker": worker.address,
        "host": socket.gethostname(),
        "started": started,
    }
    name = desc["stage"]
    topic = desc["topic"]
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    attempt = uuid.uuid4().hex
    sent = [0]
    sending = threading.Lock()  # stdout and stderr are read on threads of their own

    def on_line(text: str, is_err: bool) -> None:
        with sending:
            if is_err:
                tail.append(text)
            sent[0] += 1
            event = {"stage": name, "text": text, "err": is_err, "attempt": attempt}
            worker.log_event(topic, event)

    def done(result: dict[str, Any]) -> dict[str, Any]:
        where["ran"] = round(time.time() - started, 6)
        with sending:
            return {**result, "where": where, "attempt": attempt, "lines": sent[0]}

    try:
        home = _home(worker.local_directory, desc["remote"])
        key = desc["key"]
        if key and desc["remote_cache"]:
            cached = read_entry(home.backend, key)
            if cached is not None:
                return done({"ok": True, "restored": True, "outs": [vars(o) for o in cached]})
        stage = _stage_of(desc)
        scratch = Path(tempfile.mkdtemp(prefix="stage-", dir=home.stages))
        try:
            deps = [FileHash(**d) for d in desc["deps"]]
            where["fetched"] = home.materialise(deps, scratch)
            (scratch / stage.wdir).mkdir(parents=True, exist_ok=True)
            for out in stage.outputs:
                (scratch / out.path).parent.mkdir(parents=True, exist_ok=True)
            ws = Workspace(Repo(scratch), home.store, Hasher(home.store, root=scratch))
            made = produce_outputs(ws, StageJob(stage, desc["run_id"]), on_line)
            if isinstance(made, JobOutcome):
                return done(
                    {
                        "ok": False,
                        "exit_code": made.exit_code,
                        "error": made.error,
                        "stderr_tail": list(made.stderr_tail),
                    }
                )
            home.keep(scratch, stage, made)
            where["pushed"] = home.send(made)
            if key:
                home.backend.write(entry_key(key), entry_bytes(made))
            home.store.state.flush()
            return done({"ok": True, "outs": [vars(o) for o in made]})
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except MlopsError as exc:
        return done({"ok": False, "error": exc.message, "stderr_tail": list(tail)})
    except OSError as exc:
        return done({"ok": False, "error": f"stage {name!r} on {where['worker']}: {exc}"})
