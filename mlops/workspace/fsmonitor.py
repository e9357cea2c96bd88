"""An optional file-system monitor, as Git's ``core.fsmonitor``: with ``core.fsmonitor:
true`` (and the extra ``mlops[fsmonitor]``, which brings watchdog), ``status`` asks a
small daemon what changed below the work tree since its last answer instead of
stat-ing every file.

The daemon watches the work tree (inotify on Linux, through watchdog) and keeps a
journal: every path an event names, numbered. A token ``EPOCH:CLOCK`` names a point
of that journal; asked "since TOKEN", the daemon answers with the current token and
the paths changed since, or with no paths ("fresh") when it cannot know: it was
restarted since (a new epoch: changes made while it was down are unknown), the kernel
dropped events (the queue overflowed), or the journal was trimmed past the token. A
fresh answer makes the caller scan, so the monitor can make status faster, never wrong.

The watches are in place before the daemon answers anything, so a token it gives
covers every change after it. Events reach the daemon a little after they happen, so
before each answer it writes a cookie file and waits until its own event for it
arrives: the kernel delivers events in order, so every change made before the question
is then in the journal (Git's fsmonitor daemon does the same).

It listens on an abstract Unix socket named after the work tree (no file to leave
behind, no path-length limit) and stops on ``stop``, when the work tree's ``.mlops``
folder goes, or after hours without a question.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from mlops.errors import ConfigError
from mlops.storage.hashing import hash_bytes

# Paths the journal keeps before it is trimmed (older tokens then get a fresh answer).
_MAX_EVENTS = 200_000
_START_SECONDS = 10.0
_IGNORED = (".git", ".mlops")
_COOKIE = ".mlops/tmp/fsmonitor-cookie-"
_COOKIE_SECONDS = 5.0
# A daemon nobody asked for this long stops (the next status starts it again).
_IDLE_SECONDS = 4 * 3600


def address(root: Path) -> str:
    """The daemon's abstract socket address for the work tree ``root``."""
    return "\0mlops-fsmonitor-" + hash_bytes(str(root.resolve()).encode())[:32]


class Journal:
    """Numbered paths that changed, since the daemon started (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._restart()

    def _restart(self) -> None:
        self.epoch = os.urandom(8).hex()
        self.clock = 0
        self._floor = 0  # tokens before this clock were trimmed away
        self._events: list[tuple[int, str]] = []

    def record(self, path: str) -> None:
        with self._lock:
            self.clock += 1
            self._events.append((self.clock, path))
            if len(self._events) > _MAX_EVENTS:
                drop = len(self._events) // 2
                self._floor = self._events[drop - 1][0]
                del self._events[:drop]

    def lost_events(self) -> None:
        """Events were dropped: nothing said so far can be trusted."""
        with self._lock:
            self._restart()

    def since(self, token: str | None) -> tuple[str, list[str] | None]:
        """The current token, and the paths changed since ``token`` (None: unknown)."""
        with self._lock:
            now = f"{self.epoch}:{self.clock}"
            epoch, _, clock = (token or "").partition(":")
            if epoch != self.epoch or not clock.isdigit() or int(clock) < self._floor:
                return now, None
            after = int(clock)
            return now, sorted({p for c, p in self._events if c > after})


def serve(root: Path) -> None:
    """Run the daemon for ``root`` until told to stop (the entry point of its process)."""
    import logging

    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    journal = Journal()
    top = str(root.resolve())
    cookies: dict[str, threading.Event] = {}

    def note(path: str | bytes) -> None:
        text = os.fsdecode(path)
        if not text.startswith(top + "/"):
            return
        rel = text[len(top) + 1 :]
        if rel.startswith(_COOKIE):
            seen = cookies.get(rel)
            if seen is not None:
                seen.set()
        elif rel.split("/", 1)[0] not in _IGNORED:
            journal.record(rel)

    def answer(token: str | None) -> tuple[str, list[str] | None]:
        # Wait for the event of a file written now: every earlier event is then noted.
        name = f"{_COOKIE}{os.urandom(6).hex()}"
        seen = cookies[name] = threading.Event()
        cookie = Path(top) / name
        try:
            cookie.parent.mkdir(exist_ok=True)  # never .mlops itself: its going stops us
            cookie.write_bytes(b"")
            arrived = seen.wait(_COOKIE_SECONDS)
        except FileNotFoundError:
            arrived = False
        finally:
            cookies.pop(name, None)
            with contextlib.suppress(FileNotFoundError):
                cookie.unlink()
        now, paths = journal.since(token)
        return now, paths if arrived else None

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type in ("opened", "closed_no_write"):
                return
            if event.is_directory and event.event_type == "modified":
                # Its entries changed: each is named by an event of its own. Noting the
                # folder too would make a status look at all of it.
                return
            note(event.src_path)
            if event.dest_path:
                note(event.dest_path)

    class Overflow(logging.Handler):
        # watchdog rebuilds its watches after the kernel's queue overflows and says so
        # only in its log: the events lost in between make every token untrustworthy.
        def emit(self, record: logging.LogRecord) -> None:
            if "overflow" in record.getMessage().lower():
                journal.lost_events()

    logging.getLogger("watchdog").addHandler(Overflow())
    observer = Observer()
    observer.schedule(Handler(), top, recursive=True)
    observer.start()  # watches in place before any token is given
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(address(root))
    except OSError:  # another daemon has it
        observer.stop()
        return
    server.listen(16)
    server.settimeout(5.0)
    asked = time.monotonic()
    try:
        while (root / ".mlops").is_dir() and time.monotonic() - asked < _IDLE_SECONDS:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            asked = time.monotonic()
            with conn:
                request = _read_line(conn)
                if request == "stop":
                    conn.sendall(b'{"stopped": true}\n')
                    return
                token, paths = answer(request.removeprefix("since ").strip() or None)
                conn.sendall(json.dumps({"token": token, "paths": paths}).encode() + b"\n")
    finally:
        server.close()
        observer.stop()


def _read_line(conn: socket.socket) -> str:
    data = b""
    conn.settimeout(5.0)
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _ask(root: Path, request: str) -> dict[str, object] | None:
    """The daemon's answer, or None when none is listening."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(10.0)
        client.connect(address(root))
        client.sendall(request.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = client.recv(1 << 20)
            if not chunk:
                return None
            data += chunk
        answer: dict[str, object] = json.loads(data)
        return answer
    except (OSError, ValueError):
        return None
    finally:
        client.close()


def changes_since(root: Path, token: str | None) -> tuple[str, list[str] | None]:
    """(the current token, paths relative to ``root`` changed since ``token``, or None
    when unknown), starting the daemon if it is not running."""
    answer = _ask(root, f"since {token or ''}")
    if answer is None:
        start(root)
        answer = _ask(root, f"since {token or ''}")
        if answer is None:
            raise ConfigError(
                "core.fsmonitor: the file-system monitor did not answer; "
                "`mlops fsmonitor status` says more, or set core.fsmonitor false"
            )
    paths = answer.get("paths")
    return str(answer["token"]), [str(p) for p in paths] if isinstance(paths, list) else None


class Monitor:
    """The monitor's answers for one command: the daemon is asked once per token, so
    that folders compared at the same token share one answer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._answers: dict[str | None, tuple[str, list[str] | None]] = {}

    def since(self, token: str | None) -> tuple[str, list[str] | None]:
        """As ``changes_since``."""
        if token not in self._answers:
            self._answers[token] = changes_since(self.root, token)
        return self._answers[token]


def start(root: Path) -> None:
    """Start the daemon for ``root`` (in the background, outliving this command)."""
    try:
        import watchdog  # noqa: F401
    except ImportError:
        raise ConfigError(
            "core.fsmonitor needs the watchdog package: pip install 'mlops[fsmonitor]'"
        ) from None
    if _ask(root, "since") is not None:
        return
    subprocess.Popen(
        [sys.executable, "-m", "mlops.workspace.fsmonitor", str(root)],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not stopped by the terminal's Ctrl-C of this command
    )
    deadline = time.monotonic() + _START_SECONDS
    while _ask(root, "since") is None:
        if time.monotonic() > deadline:
            raise ConfigError(f"core.fsmonitor: the monitor of {root} did not start")
        time.sleep(0.02)


def stop(root: Path) -> bool:
    """Stop the daemon for ``root``; whether one was running."""
    return _ask(root, "stop") is not None


def running(root: Path) -> bool:
    """Whether a daemon answers for ``root``."""
    return _ask(root, "since") is not None


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        serve(Path(sys.argv[1]))
