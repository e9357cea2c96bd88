"""The prediction log: what the model saw and answered, as JSON-lines batches.

Requests hand their rows to a queue (bounded by rows, so memory stays flat under any
load: past the bound rows are dropped and counted, never the request); one thread
writes them to a hidden temporary file in the log folder, and closes it (fsync, then
rename to ``predictions-....jsonl``) after ``rows`` rows or ``seconds`` seconds, or on
shutdown. A closed file is therefore always complete: a crash loses at most the rows
of the open temporary file, which monitoring never reads (its name starts with a dot).
A folder that cannot be written is reported, its rows counted as dropped, and tried
again for the next file; predictions go on.

One line per input row, in the format of ``mlops.monitor.predlog``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.monitor.predlog import (
    FEEDBACK_DIR,
    LOG_PREFIX,
    LOG_SUFFIX,
    MODEL,
    PREDICTION,
    PROBA_PREFIX,
    REQUEST_ID,
    ROW,
    TIME,
    VERSION,
)
from mlops.serve import codec
from mlops.serve.inputs import Rows

_BATCH = 4096  # queued entries the writer takes at once (the queue is bounded by rows)
_LINGER = 0.02  # seconds the writer waits, once woken, for more entries to take at once


@dataclass(frozen=True)
class Entry:
    """One request's rows and answers, as handed to the writer."""

    request_id: str
    time: float
    model: str
    version: str
    rows: Rows
    predictions: list[Any]
    probabilities: list[list[float]] | None
    classes: list[Any] | None

    def encode(self) -> bytes:
        """One JSON line per row: the request's fields, the row's features and answers.

        Each column is encoded at once (``codec.each``) and the lines filled into one
        template: three times faster than a dict per row, and this is the whole of the
        writer thread's work, which holds the GIL the requests need.
        """
        stamp = datetime.fromtimestamp(self.time, UTC).isoformat(timespec="milliseconds")
        head = {REQUEST_ID: self.request_id, TIME: stamp, MODEL: self.model, VERSION: self.version}
        keys = [*self.rows.names, PREDICTION]
        keys += [f"{PROBA_PREFIX}{c}" for c in self.classes or ()]
        columns: list[list[Any]] = [*self.rows.columns, self.predictions]
        if self.probabilities is not None:
            columns += [list(c) for c in zip(*self.probabilities, strict=True)]
        parts = [codec.dumps(head)[:-1], f',"{ROW}":'.encode()]
        parts += [b"," + codec.dumps(k) + b":" for k in keys]
        template = parts[0].replace(b"%", b"%%") + parts[1] + b"%d"
        template += b"".join(k.replace(b"%", b"%%") + b"%s" for k in parts[2:]) + b"}\n"
        encoded = [codec.each(c) for c in columns]
        return b"".join([template % (i, *v) for i, v in enumerate(zip(*encoded, strict=True))])


@dataclass(frozen=True)
class Feedback:
    """Labels sent to ``POST /feedback``: each ``{request_id, row?, label}``."""

    records: list[dict[str, Any]]


@dataclass(frozen=True)
class LogStats:
    written: int
    dropped: int
    files: int
    problem: str | None


class PredictionLog:
    """A writer thread over a bounded queue of entries; see the module's docstring."""

    def __init__(
        self,
        folder: Path,
        rows: int = 10_000,
        seconds: float = 300.0,
        max_pending: int = 100_000,
        on_problem: Callable[[str | None], None] | None = None,
    ) -> None:
        self.folder = folder
        self.rows = rows
        self.seconds = seconds
        self.max_pending = max_pending
        self.on_problem = on_problem
        self.written = 0
        self.dropped = 0
        self.feedback_dropped = 0
        self.files = 0
        self.problem: str | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Entry | Feedback | None] = queue.SimpleQueue()
        self._file: Any = None
        self._tmp: Path | None = None
        self._opened = 0.0
        self._in_file = 0
        self._seq = 0
        self._thread = threading.Thread(target=self._run, name="mlops-predlog", daemon=True)
        self._thread.start()

    def submit(self, entry: Entry) -> bool:
        """Queue ``entry``; False (its rows counted as dropped) when the queue is full."""
        n = entry.rows.count
        with self._lock:
            if self._pending + n > self.max_pending:
                self.dropped += n
                return False
            self._pending += n
        self._queue.put(entry)
        return True

    def submit_feedback(self, feedback: Feedback) -> None:
        """Queue labels; each batch of them becomes one file in the feedback folder."""
        self._queue.put(feedback)

    def close(self) -> None:
        """Write what is queued, close the open file, stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def stats(self) -> LogStats:
        return LogStats(self.written, self.dropped, self.files, self.problem)

    def _run(self) -> None:
        while True:
            timeout = None
            if self._file is not None:
                timeout = max(0.0, self._opened + self.seconds - time.monotonic())
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._roll()
                continue
            # Let a little more arrive, then take what is queued, up to a bound: one wake-up,
            # one write and one lock for all of it, rather than a thread switch per request.
            if first is not None:
                time.sleep(_LINGER)
            batch = [first]
            while first is not None and len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            entries: list[Entry] = []
            for item in batch:
                if isinstance(item, Entry):
                    entries.append(item)
                    continue
                self._write(entries)  # in order: what came before the feedback or the end
                entries = []
                if item is None:
                    self._roll()
                    return
                self._write_feedback(item)
            self._write(entries)

    def _write(self, entries: list[Entry]) -> None:
        """Encode ``entries`` and append them, closing a file each time it is full."""
        if not entries:
            return
        with self._lock:
            self._pending -= sum(e.rows.count for e in entries)
        chunk: list[bytes] = []
        n = 0
        for entry in entries:
            try:
                chunk.append(entry.encode())
            except (TypeError, ValueError) as exc:  # an output JSON cannot hold
                with self._lock:
                    self.dropped += entry.rows.count
                self._report(f"prediction log: cannot encode request {entry.request_id}: {exc}")
                continue
            n += entry.rows.count
            if self._in_file + n >= self.rows:
                self._append(chunk, n)
                chunk, n = [], 0
        if chunk:
            self._append(chunk, n)

    def _append(self, chunk: list[bytes], n: int) -> None:
        try:
            if self._file is None:
                self._open()
            self._file.write(b"".join(chunk))
        except OSError as exc:
            # The open file's rows go with it: count them as dropped, not written.
            with self._lock:  # submit() counts drops too, from the request path
                self.dropped += n + self._in_file
            self.written -= self._in_file
            self._discard()
            self._report(f"prediction log {self.folder}: cannot write: {exc.strerror or exc}")
            return
        self.written += n
        self._in_file += n
        if self._in_file >= self.rows or time.monotonic() - self._opened >= self.seconds:
            self._roll()

    def _write_feedback(self, feedback: Feedback) -> None:
        """One complete file per batch of labels (never appended to: ``mlops monitor label``
        rewrites or removes the files it has joined)."""
        folder = self.folder / FEEDBACK_DIR
        self._seq += 1
        name = f"feedback-{_stamp()}-{os.getpid()}-{self._seq}{LOG_SUFFIX}"
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in feedback.records)
        tmp = folder / f".{name}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "x", encoding="utf-8") as sink:
                sink.write(text)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(tmp, folder / name)
        except OSError as exc:
            self.feedback_dropped += len(feedback.records)
            self._discard_path(tmp)
            self._report(f"feedback {folder}: cannot write: {exc.strerror or exc}")

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"{LOG_PREFIX}{_stamp()}-{os.getpid()}-{self._seq}{LOG_SUFFIX}"
        self._tmp = self.folder / f".{name}.tmp"
        self._file = open(self._tmp, "xb")  # noqa: SIM115 (open till rolled)
        self._opened = time.monotonic()
        self._in_file = 0

    def _roll(self) -> None:
        """Close the open file under its final name (complete, synced) if it has rows."""
        if self._file is None or self._tmp is None:
            return
        tmp, file, rows = self._tmp, self._file, self._in_file
        self._file, self._tmp = None, None
        try:
            file.flush()
            os.fsync(file.fileno())
            file.close()
            os.replace(tmp, tmp.with_name(tmp.name[1:].removesuffix(".tmp")))
        except OSError as exc:
            with self._lock:
                self.dropped += rows
            self.written -= rows
            self._discard(tmp)
            self._report(f"prediction log {self.folder}: cannot close a file: {exc.strerror}")
            return
        self.files += 1
        self._report(None)

    def _discard(self, tmp: Path | None = None) -> None:
        """Forget the open file after a failure (its rows were counted as dropped)."""
        tmp = tmp or self._tmp
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file, self._tmp = None, None
        if tmp is not None:
            self._discard_path(tmp)

    @staticmethod
    def _discard_path(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    def _report(self, problem: str | None) -> None:
        if problem != self.problem:
            self.problem = problem
            if self.on_problem is not None:
                self.on_problem(problem)


def _stamp() -> str:
    """The current UTC time for file names: they sort by it."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
