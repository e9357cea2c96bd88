"""Command-line entry point.

Command modules import only typer at module level; each command imports the
library function it calls inside its body. ``main`` also imports only the command
module that the command being run lives in (all of them for ``--help`` or an
unknown name), so every command starts quickly.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

COMMAND_MODULES = (
    "checks",
    "data",
    "migrate",
    "monitor",
    "pipeline",
    "plots",
    "registry",
    "remote",
    "serve",
)
# Where each top-level command or command group is defined (a test keeps this true).
COMMAND_MODULE = {
    "check": "checks",
    **dict.fromkeys(
        (
            "init",
            "add",
            "status",
            "checkout",
            "diff",
            "gc",
            "fsck",
            "unprotect",
            "config",
            "fsmonitor",
        ),
        "data",
    ),
    "import-dvc": "migrate",
    "monitor": "monitor",
    "plots": "plots",
    **dict.fromkeys(("run", "dag", "runs", "params", "metrics"), "pipeline"),
    **dict.fromkeys(("lineage", "model"), "registry"),
    **dict.fromkeys(("push", "fetch", "pull", "install-hooks", "remote", "hook"), "remote"),
    **dict.fromkeys(("serve", "predict"), "serve"),
}


def load_app(argv: list[str] | None = None) -> Any:
    """The typer app with the commands that ``argv`` (the arguments after ``mlops``)
    names registered; every command without ``argv``."""
    from mlops.cli.app import app

    module = COMMAND_MODULE.get(_command(argv) if argv else "")
    for module_name in (module,) if module else COMMAND_MODULES:
        importlib.import_module(f"mlops.cli.{module_name}")
    return app


def _command(argv: list[str]) -> str:
    # Global options are flags without values: the first other word names the command.
    return next((arg for arg in argv if not arg.startswith("-")), "")


# The cyclic garbage collector runs after every 700 new container objects by default;
# a command over 300,000 files makes millions (entries, stat records, rows) that are not
# garbage, and the collections grew its time faster than its work: measured on `add` of
# 300k files, 15-20% of the user time; checkout 12%. Collections still happen, rarely.
# Not for the server, which runs for days: its cycles must not wait that long.
_GC_THRESHOLD = (100_000, 50, 100)
_LONG_RUNNING = frozenset({"serve"})


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if _command(argv) not in _LONG_RUNNING:
        gc.set_threshold(*_GC_THRESHOLD)
    if _command(argv) == "add":
        from mlops.storage.hashing import hash_early

        # Big files start hashing now, while typer and the command load.
        hash_early(arg for arg in argv[argv.index("add") + 1 :] if not arg.startswith("-"))
    try:
        load_app(argv)(prog_name="mlops")
    finally:
        # Interpreter shutdown runs the cyclic garbage collector over every object left,
        # which after numpy and pyarrow are loaded took about 40 ms of a 0.7 s check run
        # (measured). Frozen objects are skipped; what it forgoes is running finalizers
        # of objects caught in reference cycles, which Python never promises at exit.
        # atexit handlers still run.
        gc.freeze()
