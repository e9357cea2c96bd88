"""Running a stage's command in its own process group, streaming its output by lines."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.processes import GROUPS

SHELL = "/bin/sh"
TAIL_LINES = 20

OnLine = Callable[[str, bool], None]  # (line, is_stderr)


@dataclass(frozen=True)
class CommandResult:
    """How a command ended, with the last lines it wrote to standard error."""

    exit_code: int  # negative: killed by that signal
    stderr_tail: tuple[str, ...]


def run_command(
    cmd: str, cwd: Path, env: dict[str, str], on_line: OnLine, tag: str | None = None
) -> CommandResult:
    """Run ``cmd`` with the shell in a group of its own (see ``GROUPS``, ``tag`` naming its
    run there); call ``on_line`` for each output line."""
    proc = GROUPS.start(
        [SHELL, "-c", cmd],
        tag=tag,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
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
        GROUPS.finish(proc)
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
