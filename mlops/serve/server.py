"""Starting the model server: check the extra, load the model, pick the log folder, run.

The model is loaded before uvicorn starts, so that an unknown alias or a corrupt file is
one error line and exit 1, not a server that never becomes ready. With ``workers > 1``
each worker process loads it again (uvicorn starts them from an import string).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from mlops.core.repo import Repo
from mlops.errors import ConfigError, ServeError

EXTRA = "mlops[serve]"
_NEEDED = ("starlette", "uvicorn", "prometheus_client")


def require_extra() -> None:
    """A one-line error naming the extra when the server's libraries are missing."""
    import importlib.util

    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise ServeError(
            f"serving needs {', '.join(missing)}: install them with pip install '{EXTRA}'"
        )


def default_reference(repo: Repo) -> str:
    """``monitor.model`` of mlops.yaml: the model the project watches."""
    from mlops.monitor.config import load_monitor_config

    try:
        return load_monitor_config(repo.root).reference_model
    except ConfigError as exc:
        raise ServeError(f"name the model to serve (NAME@ALIAS): {exc.message}") from None


def log_folder(repo: Repo, log_dir: str | None, enabled: bool = True) -> Path | None:
    """Where prediction logs go: ``log_dir``, else the folder ``monitor.batches`` names,
    else nowhere (no monitor section, or no batches in it)."""
    from mlops.monitor.config import load_monitor_config
    from mlops.monitor.predlog import batch_folder

    if not enabled:
        return None
    if log_dir is not None:
        return Path(os.path.abspath(log_dir))
    try:
        batches = load_monitor_config(repo.root).batches
    except ConfigError:
        return None
    if batches is None:
        return None
    try:
        return batch_folder(repo.root, batches)
    except ConfigError as exc:
        raise ServeError(f"{exc.message}, or give --log-dir") from None


_METRICS_PREFIX = "mlops-serve-metrics-"


def _metrics_folder() -> str:
    """A new private folder for the workers' metrics, named by this process's id; first,
    the folders of servers killed before they could remove theirs are removed."""
    for old in Path(tempfile.gettempdir()).glob(f"{_METRICS_PREFIX}*"):
        pid = old.name.removeprefix(_METRICS_PREFIX).split("-")[0]
        with contextlib.suppress(OSError):
            if pid.isdigit() and old.stat().st_uid == os.getuid() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def serve(
    repo: Repo,
    reference: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_dir: str | None = None,
    log: bool = True,
    log_rows: int = 10_000,
    log_seconds: float = 300.0,
    poll: float = 2.0,
    max_body: int = 10 * 1024 * 1024,
    threads: int | None = None,
) -> None:
    """Serve ``reference`` (default: ``monitor.model``) until stopped: on SIGINT or SIGTERM
    requests finish and the logs are flushed. Predictions are logged to ``log_dir``, else
    to the folder ``monitor.batches`` names, unless ``log`` is false."""
    require_extra()
    reference = reference or default_reference(repo)
    folder = log_folder(repo, log_dir, log)
    import uvicorn

    from mlops.serve.app import (
        DEFAULT_THREADS,
        METRICS_DIR_ENV,
        SETTINGS_ENV,
        ServeSettings,
        build_app,
    )
    from mlops.serve.model import ModelHolder, prepare_process

    threads = DEFAULT_THREADS if threads is None else threads
    if min(workers, log_rows, max_body, threads) < 1 or log_seconds <= 0 or poll <= 0:
        raise ServeError(
            "--workers, --threads, --log-rows, --log-seconds, --poll and --max-body must be > 0"
        )
    settings = ServeSettings(
        str(repo.root),
        reference,
        host,
        port,
        workers,
        None if folder is None else str(folder),
        log_rows,
        log_seconds,
        poll,
        max_body,
        threads,
    )
    prepare_process()
    holder = ModelHolder(repo, reference, poll)  # errors here are one line, exit 1
    logging.getLogger("mlops.serve").setLevel(logging.INFO)
    logging.basicConfig(format="%(levelname)s:     %(message)s")
    where = f"logging predictions to {folder}" if folder else "not logging predictions"
    logging.getLogger("mlops.serve").info(
        "serving %s as %s, %s", holder.current.label, reference, where
    )
    common = {"host": host, "port": port, "access_log": False, "timeout_graceful_shutdown": 30}
    if workers == 1:
        uvicorn.run(build_app(settings, holder), **common)  # type: ignore[arg-type]
        return
    os.environ[SETTINGS_ENV] = settings.to_json()
    # The workers share their metrics through files in a private folder, removed at exit
    # (or, after a SIGKILL, by the next server to start).
    shared = _metrics_folder()
    os.environ[METRICS_DIR_ENV] = shared
    logging.getLogger("mlops.serve").info("%d workers share their metrics in %s", workers, shared)
    try:
        uvicorn.run(
            "mlops.serve.app:app_from_env",
            factory=True,
            workers=workers,
            **common,  # type: ignore[arg-type]
        )
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        os.environ.pop(METRICS_DIR_ENV, None)
