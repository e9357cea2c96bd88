"""Running a stage's command in its own process group, streaming its output by lines."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core import reaper

SHELL = "/bin/sh"
TAIL_LINES = 20

OnLine = Callable[[str, bool], None]  # (line, is_stderr)


@dataclass(frozen=True)
class CommandResult:
    """How a command ended, with the last lines it wrote to standard error."""

    exit_code: int  # negative: killed by that signal
    stderr_tail: tuple[str, ...]


class ProcessGroups:
    """The process groups of running commands, so that all of them can be stopped at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        reaper.tie(proc.pid)  # killed with the runner, even by kill -9
        with self._lock:
            self._procs[proc.pid] = proc
            stopping = self.stopping
        if stopping:  # started while the run was being stopped
            _signal_group(proc.pid, signal.SIGKILL)

    def remove(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)
        reaper.untie(proc.pid)

    def stop_all(self, grace: float = 3.0) -> None:
        """SIGTERM every group, then SIGKILL what is left after ``grace`` seconds."""
        with self._lock:
            self.stopping = True
            procs = list(self._procs.values())
        for proc in procs:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            # The leader may be gone while children of the group live on.
            _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_command(
    cmd: str, cwd: Path, env: dict[str, str], on_line: OnLine, groups: ProcessGroups
) -> CommandResult:
    """Run ``cmd`` with the shell in a new session; call ``on_line`` for each output line."""
    reaper.arm()  # before the group exists: see ``reaper.arm``
    proc = subprocess.Popen(
        [SHELL, "-c", cmd],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    groups.add(proc)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ, False)
            selector.register(proc.stderr, selectors.EVENT_READ, True)
            partial = {False: b"", True: b""}
            while selector.get_map():
                for key, _ in selector.select():
                    is_err: bool = key.data
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        lines = [partial[is_err]] if partial[is_err] else []
                    else:
                        lines = (partial[is_err] + chunk).split(b"\n")
                        partial[is_err] = lines.pop()
                    for raw in lines:
                        text = raw.decode(errors="replace").rstrip("\r")
                        if is_err:
                            tail.append(text)
                        on_line(text, is_err)
        code = proc.wait()
    finally:
        groups.remove(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return CommandResult(code, tuple(tail))


def describe_failure(name: str, code: int, tail: tuple[str, ...]) -> str:
    """One line saying how the command of stage ``name`` failed."""
    last = f": {tail[-1]}" if tail else ""
    if code == 127:
        return f"stage {name!r}: command not found (exit code 127){last}"
    if code == 126:
        return f"stage {name!r}: command cannot be executed (exit code 126){last}"
    if code < 0:
        return f"stage {name!r} was killed by signal {signal.Signals(-code).name}"
    return f"stage {name!r} failed with exit code {code}"


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while stages run, so that their process groups are stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Let the final writes finish even if Ctrl-C is pressed again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
