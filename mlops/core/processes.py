"""The process groups this process runs: stage commands and command checks, in one registry.

Each command runs in a session of its own, so that a timeout or Ctrl-C stops its
children too. Every group is tied to ``reaper`` (killed with mlops, even by kill -9)
and held in ``GROUPS`` until it ends, so that one ``stop_all`` stops everything a
run started, whatever thread started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from mlops.core import reaper


class ProcessGroups:
    """Running process groups, so that all of them can be stopped at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[Any]] = {}
        self._tags: dict[int, str] = {}  # pid -> the run it belongs to, when told
        self.stopping = False

    def start(
        self, args: str | list[str], tag: str | None = None, **popen: Any
    ) -> subprocess.Popen[Any]:
        """``subprocess.Popen(args, **popen)`` in a new session, registered and tied;
        ``tag`` names what it belongs to (a run), for ``stop_tagged``."""
        reaper.arm()  # before the group exists: see ``reaper.arm``
        proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **popen)
        reaper.tie(proc.pid)
        with self._lock:
            self._procs[proc.pid] = proc
            if tag is not None:
                self._tags[proc.pid] = tag
            stopping = self.stopping
        if stopping:  # started while everything was being stopped
            kill_group(proc.pid)
        return proc

    def finish(self, proc: subprocess.Popen[Any]) -> None:
        """The group of ``proc`` has ended (or was killed): forget it."""
        with self._lock:
            self._procs.pop(proc.pid, None)
            self._tags.pop(proc.pid, None)
        reaper.untie(proc.pid)

    def stop_tagged(self, tag: str) -> int:
        """Kill the groups started with ``tag`` (a run stopped from another machine, in a
        process that runs others' too); return how many."""
        with self._lock:
            pids = [pid for pid, t in self._tags.items() if t == tag]
        for pid in pids:
            kill_group(pid)
        return len(pids)

    def stop_all(self, grace: float = 3.0) -> None:
        """SIGTERM every group, then SIGKILL what is left after ``grace`` seconds; groups
        started from now on are killed at once, until ``session`` ends."""
        with self._lock:
            self.stopping = True
            procs = list(self._procs.values())
        for proc in procs:
            signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            # The leader may be gone while children of the group live on.
            kill_group(proc.pid)

    @contextlib.contextmanager
    def session(self) -> Iterator[ProcessGroups]:
        """A run: ``stopping`` starts (and ends) false, so that one stopped run does not
        stop the next one in the same process."""
        with self._lock:
            self.stopping = False
        try:
            yield self
        finally:
            with self._lock:
                self.stopping = False


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pgid`` if it is still there."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid`` if it is still there."""
    signal_group(pgid, signal.SIGKILL)


# Every group of this process: commands run on worker threads, which Ctrl-C does not
# reach, so the main thread stops them all through this one registry.
GROUPS = ProcessGroups()
