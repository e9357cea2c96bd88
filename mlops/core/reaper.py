"""Process groups that die with this process, even when it is killed with SIGKILL.

Stages and command checks run in process groups of their own (so that a timeout or
Ctrl-C stops their children too), which nothing ties to mlops: after a kill -9 of
``mlops run`` they would go on and write outputs no run records. So a small watchdog
process (this file run as a script, standard library only) is started with a pipe
from this process; each group is announced on the pipe when it starts and withdrawn
when it ends. When the pipe closes, which the kernel does however this process ends,
the watchdog kills every group still announced.

A group started in the instant between its creation and its announcement is not
covered; ``prctl(PR_SET_PDEATHSIG)`` would reach only the group's first process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

_lock = threading.Lock()
_pipe: int | None = None  # the write end; None until the first group, -1 if unavailable


def arm() -> None:
    """Start the watchdog now, before a group it is to cover: started later, it could
    come too late for a group whose announcement follows (a busy machine can run the
    group's first commands before this process gets to announce it)."""
    with _lock:
        _arm()


def _arm() -> None:
    global _pipe
    if _pipe is None:
        _pipe = _start()


def tie(pgid: int) -> None:
    """Kill the process group ``pgid`` when this process ends, unless ``untie`` came first."""
    _send(f"+{pgid}\n")


def untie(pgid: int) -> None:
    """The group ``pgid`` has ended: forget it (its id may be reused)."""
    _send(f"-{pgid}\n")


def _send(line: str) -> None:
    global _pipe
    with _lock:
        _arm()
        assert _pipe is not None
        if _pipe < 0:
            return
        try:
            os.write(_pipe, line.encode())  # a few bytes: one atomic write to a pipe
        except OSError:  # the watchdog is gone (killed by someone): nothing to tell
            os.close(_pipe)
            _pipe = -1


def _start() -> int:
    """Start the watchdog; return the write end of its pipe (-1 if it cannot start)."""
    import subprocess

    if not sys.executable:
        return -1
    try:
        proc = subprocess.Popen(
            # -I: neither the environment nor the current folder changes what runs.
            [sys.executable, "-I", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # not stopped by the Ctrl-C or hang-up meant for us
        )
    except OSError:
        return -1
    assert proc.stdin is not None
    # Kept open for the life of this process: its closing is the signal. A copy of the
    # file object's, which a garbage collection could close.
    fd = os.dup(proc.stdin.fileno())
    proc.stdin.close()
    return fd


def _watch() -> None:
    """The watchdog: read announcements until the pipe closes, then kill what is left."""
    for sig in (signal.SIGINT, signal.SIGHUP):  # meant for the terminal's processes
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        with contextlib.suppress(ValueError):
            pgid = int(line[1:])
            if line.startswith(b"+"):
                groups.add(pgid)
            else:
                groups.discard(pgid)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    _watch()
