"""The prediction log: what the model saw and answered, as Parquet batches.

Requests hand their rows to a queue (bounded by rows, so memory stays flat under any
load: past the bound rows are dropped and counted, never the request); one thread
takes them a batch at a time, holds them until a row group is full, turns the row group
into Arrow columns at once (C, not a line per row in Python, and few calls into Arrow:
this thread holds the GIL the requests need, and each call lets it go and takes it back),
and writes it, the GIL let go, to a hidden temporary file in the log folder, which it
closes (Parquet footer, fsync, then rename to ``predictions-....parquet``) after ``rows``
rows or ``seconds`` seconds, or on shutdown. After each batch it brings the counters of
``/metrics`` up to date (``on_counts``), so that the requests need not.
A closed file is therefore always complete: a crash loses at most the rows of the open
temporary file, which monitoring never reads (its name starts with a dot). A folder that
cannot be written is reported, its rows counted as dropped, and tried again for the next
file; predictions go on.

One row per input row, in the format of ``mlops.monitor.predlog``.
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
from itertools import chain
from pathlib import Path
from typing import Any

from mlops.monitor.predlog import (
    FEEDBACK_DIR,
    FEEDBACK_SUFFIX,
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
from mlops.serve.inputs import Rows

_BATCH = 4096  # queued entries the writer takes at once (the queue is bounded by rows)
_LINGER = 0.1  # seconds the writer waits, once woken, for more entries to take at once
# Rows held as Arrow columns before they go to the open file as one Parquet row group.
_GROUP = 10_000
# Entries held at most before they go to the file (many single-row requests): a bound on
# the objects kept alive, which the garbage collector's passes walk.
_HELD_ENTRIES = 2_000

_PER_REQUEST = (REQUEST_ID, TIME, MODEL, VERSION)  # a request's fields, the same on its rows
Shape = tuple[tuple[str, ...], tuple[Any, ...] | None]  # feature names, classes


@dataclass(frozen=True)
class Entry:
    """One request's rows and answers, as handed to the writer.

    ``predictions`` and ``probabilities`` are lists or the model's own arrays; ``features``
    is the rows' values as a (feature, row) array of floats when the model took one: the
    writer then copies no value one by one (and holds the GIL the requests need the less),
    and ``rows`` need hold only the names and count (``Rows.names_only``).
    """

    request_id: str
    time: float
    model: str
    version: str
    rows: Rows
    predictions: Any
    probabilities: Any
    classes: list[Any] | None
    features: Any = None

    @property
    def shape(self) -> Shape:
        """What decides the columns: the entries of one file share it."""
        return self.rows.names, None if self.classes is None else tuple(self.classes)

    def problem(self) -> str | None:
        """Why the entry cannot be logged (answers and rows disagree), or None."""
        n = self.rows.count
        columns = self.rows.columns if self.features is None else ()
        if any(len(c) != n for c in columns) or len(self.predictions) != n:
            return f"{len(self.predictions)} predictions for {n} rows"
        if (self.probabilities is None) != (self.classes is None):
            return "probabilities without their classes"
        if self.probabilities is not None and len(self.probabilities) != n:
            return f"{len(self.probabilities)} rows of probabilities for {n} rows"
        if self.features is not None and self.features.shape != (len(self.rows.names), n):
            return f"features of shape {self.features.shape} for {n} rows"
        return None


def log_table(entries: list[Entry]) -> Any:
    """The ``pyarrow.Table`` of ``entries`` (one shape): a row per input row.

    Each column is made at once, from the entries' arrays where they have them (no copy
    value by value), else from their lists; nothing here lets the GIL go and waits to take
    it back. The request's own fields are dictionary-encoded: each is stored once per
    request. Whole numbers among the features are logged as floats (the model saw floats),
    so that the files of one server agree whatever the requests sent.
    """
    import numpy as np
    import pyarrow as pa

    names, classes = entries[0].shape
    counts = np.fromiter((e.rows.count for e in entries), dtype=np.int64, count=len(entries))
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    rows_of = np.repeat(np.arange(len(entries), dtype=np.int32), counts)  # each row's entry
    which = pa.array(rows_of)

    def per_request(values: list[str], once: bool = True) -> Any:
        # Each value once in the dictionary (most requests share a model, a version, a
        # millisecond): the Parquet writer would otherwise find the repeats itself, per row.
        # Request ids are each a request's own: no repeats to look for.
        if not once:
            dictionary = pa.array(values, type=pa.string())
            return pa.DictionaryArray.from_arrays(which, dictionary, safe=False)
        codes: dict[str, int] = {}
        index = np.fromiter(
            (codes.setdefault(v, len(codes)) for v in values), np.int32, len(values)
        )
        dictionary = pa.array(list(codes), type=pa.string())
        indices = which if len(codes) == len(values) else pa.array(index[rows_of])
        return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)  # ours: in range

    columns: dict[str, Any] = {
        REQUEST_ID: per_request([e.request_id for e in entries], once=False),
        TIME: per_request(_iso_times(np.fromiter((e.time for e in entries), np.float64))),
        MODEL: per_request([e.model for e in entries]),
        VERSION: per_request([e.version for e in entries]),
        ROW: pa.array(np.arange(total) - np.repeat(starts, counts)),
    }
    if all(e.features is not None for e in entries):
        matrix = np.concatenate([e.features for e in entries], axis=1)
        for j, name in enumerate(names):
            columns[name] = pa.array(matrix[j])
    else:
        for j, name in enumerate(names):
            parts = (e.rows.columns[j] if e.features is None else e.features[j] for e in entries)
            column = _column(list(chain.from_iterable(map(_listed, parts))))
            if pa.types.is_integer(column.type):
                column = pa.array(np.asarray(column, dtype=np.float64))
            columns[name] = column
    predicted = [e.predictions for e in entries]
    if all(isinstance(p, np.ndarray) and p.dtype.kind in "biuf" for p in predicted):
        columns[PREDICTION] = pa.array(np.concatenate(predicted))
    else:
        columns[PREDICTION] = _column(list(chain.from_iterable(map(_listed, predicted))))
    if classes is not None:
        proba = np.concatenate([np.asarray(e.probabilities, dtype=np.float64) for e in entries])
        proba = np.ascontiguousarray(proba.reshape(total, len(classes)).T)
        for i, c in enumerate(classes):
            columns[f"{PROBA_PREFIX}{c}"] = pa.array(proba[i])
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


@dataclass(frozen=True)
class _Run:
    """Entries held for the open file that become one table: ``key`` says what kind of
    arrays they hold (None: not only arrays, so this run alone)."""

    key: tuple[str, str] | None
    entries: list[Entry]


def _run_key(entry: Entry) -> tuple[str, str] | None:
    """The kinds of an entry's arrays when its columns come from arrays alone (entries of
    one key make columns of one type); None otherwise."""
    import numpy as np

    predicted, proba = entry.predictions, entry.probabilities
    if (
        entry.features is None
        or not isinstance(predicted, np.ndarray)
        or predicted.dtype.kind not in "biuf"
    ):
        return None
    if proba is None:
        return predicted.dtype.str, ""
    return (predicted.dtype.str, proba.dtype.str) if isinstance(proba, np.ndarray) else None


def _sync(path: Path) -> None:
    """Write ``path``'s data to the disk (closed already: its own descriptor)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _listed(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _column(values: list[Any]) -> Any:
    """One Arrow column of plain values; values of mixed kinds (numbers and strings, in
    an ``any`` feature) are logged as their text."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


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
        on_counts: Callable[[], None] | None = None,
    ) -> None:
        import pyarrow.parquet  # noqa: F401 (here, not at the writer's first rows)

        self.folder = folder
        self.rows = rows
        self.seconds = seconds
        self.max_pending = max_pending
        self.on_problem = on_problem
        self.on_counts = on_counts
        self.written = 0
        self.dropped = 0
        self.feedback_dropped = 0
        self.files = 0
        self.problem: str | None = None
        self._pending = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Entry | Feedback | None] = queue.SimpleQueue()
        # The open file: its handle, Parquet writer (from its first row group), the shape
        # and schema its rows share, and the rows taken for it but not yet written to it.
        self._file: Any = None
        self._writer: Any = None
        self._tmp: Path | None = None
        self._shape: Shape | None = None
        self._schema: Any = None
        self._held: list[_Run] = []
        self._held_rows = 0
        self._held_entries = 0
        self._opened = 0.0
        self._in_file = 0
        self._seq = 0
        self._thread = threading.Thread(target=self._run, name="mlops-predlog", daemon=True)
        self._thread.start()

    def submit(self, entry: Entry) -> bool:
        """Queue ``entry``; False (its rows counted as dropped) when the queue is full."""
        n = entry.rows.count
        with self._lock:
            full = self._pending + n > self.max_pending
            if full:
                self.dropped += n
            else:
                self._pending += n
        if full:
            self._counted()  # rare: the writer is behind, and may be stuck
            return False
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
            # Let a little more arrive, then take what is queued, up to a bound: one wake-up
            # and one set of Arrow columns for all of it, rather than work per request.
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
            if self._file is not None and time.monotonic() - self._opened >= self.seconds:
                self._roll()
            self._counted()

    def _counted(self) -> None:
        """The counts changed: ``on_counts`` brings whoever shows them up to date (the
        writer calls it after each batch, so the requests need not)."""
        if self.on_counts is not None:
            self.on_counts()

    def _write(self, entries: list[Entry]) -> None:
        """Take ``entries`` into the open file, closing it each time it is full."""
        if not entries:
            return
        with self._lock:
            self._pending -= sum(e.rows.count for e in entries)
        run: list[Entry] = []  # entries of one shape, for one file, not yet held
        for entry in entries:
            problem = entry.problem()
            if problem is not None:
                with self._lock:
                    self.dropped += entry.rows.count
                self._report(f"prediction log: cannot log request {entry.request_id}: {problem}")
                continue
            if self._file is not None and entry.shape != self._shape:
                self._hold(run)
                run = []
                self._roll()  # another model's columns: another file
            if self._file is None and not self._open(entry.shape):
                with self._lock:
                    self.dropped += entry.rows.count
                continue
            run.append(entry)
            self._in_file += entry.rows.count
            self.written += entry.rows.count
            if self._in_file >= self.rows:
                self._hold(run)
                run = []
                self._roll()
        self._hold(run)

    def _hold(self, entries: list[Entry]) -> None:
        """Keep ``entries`` (taken into the open file) until a row group is full.

        Entries of the model's arrays join the run held before them while their answers
        are of one kind: a row group of them becomes Arrow columns at once, in one
        ``log_table`` (few calls into Arrow, each of which lets the GIL go and takes it
        back from the requests). Other entries are a run of their own, as taken.
        """
        if not entries or self._file is None:
            return
        runs = self._held
        slow: list[Entry] = []
        for entry in entries:
            key = _run_key(entry)
            if key is None:
                slow.append(entry)
                continue
            if slow:
                runs.append(_Run(None, slow))
                slow = []
            if not runs or runs[-1].key != key:
                runs.append(_Run(key, []))
            runs[-1].entries.append(entry)
        if slow:
            runs.append(_Run(None, slow))
        self._held_rows += sum(e.rows.count for e in entries)
        self._held_entries += len(entries)
        if self._held_rows >= _GROUP or self._held_entries >= _HELD_ENTRIES:
            self._flush()

    def _flush(self) -> bool:
        """Write the held rows to the open file as one row group; False if that failed
        (the file and its rows are then gone, counted as dropped).

        Rows the file's columns cannot take (a whole-number prediction, then a fraction)
        close it without them, and they open the next.
        """
        if not self._held or self._file is None:
            return self._file is not None
        import pyarrow as pa

        runs, self._held, self._held_rows, self._held_entries = self._held, [], 0, 0
        counts = [sum(e.rows.count for e in run.entries) for run in runs]
        tables: list[Any] = []
        for i, run in enumerate(runs):
            try:
                table = log_table(run.entries)
            except (TypeError, ValueError, pa.ArrowException) as exc:
                self._lose(counts[i])
                self._report(f"prediction log: cannot log {len(run.entries)} requests: {exc}")
                continue
            if self._schema is None:
                self._schema = table.schema
            elif not table.schema.equals(self._schema):
                try:
                    table = table.cast(self._schema)
                except (TypeError, ValueError, pa.ArrowException):
                    rest = sum(counts[i:])
                    shape = self._shape
                    self._in_file -= rest
                    if not self._write_group(tables):
                        self._lose(rest, in_file=False)
                        return False
                    self._close()
                    if shape is None or not self._open(shape):
                        self._lose(rest, in_file=False)
                        return False
                    self._in_file, self._schema, tables = rest, table.schema, []
            tables.append(table)
        return self._write_group(tables)

    def _write_group(self, tables: list[Any]) -> bool:
        """``tables`` (of the file's schema) to the open file as one row group."""
        if not tables:
            return True
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            if self._writer is None:
                # No Arrow schema in the file: readers see plain text, not dictionaries. Only
                # the request's own fields are dictionary-encoded, and no statistics kept:
                # a third less of the writer's CPU, for files a third larger.
                self._writer = pq.ParquetWriter(
                    self._file,
                    self._schema,
                    store_schema=False,
                    use_dictionary=list(_PER_REQUEST),
                    write_statistics=False,
                )
            # One chunk a column: a table of many small ones writes three times slower.
            self._writer.write_table(pa.concat_tables(tables).combine_chunks())
        except OSError as exc:
            self._fail(f"cannot write: {exc.strerror or exc}")
            return False
        return True

    def _open(self, shape: Shape) -> bool:
        """Open a file for rows of ``shape``; False (reported) when the folder cannot.

        The file is Arrow's own (not a Python file object): Parquet writes it with the
        GIL let go, rather than taking the GIL back for every write of a column chunk.
        """
        import pyarrow as pa

        self._seq += 1
        name = f"{LOG_PREFIX}{_stamp()}-{os.getpid()}-{self._seq}{LOG_SUFFIX}"
        tmp = self.folder / f".{name}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            self._file = pa.OSFile(str(tmp), "wb")
        except OSError as exc:
            self._discard_path(tmp)
            self._report(f"prediction log {self.folder}: cannot write: {exc.strerror or exc}")
            return False
        self._tmp, self._shape, self._schema, self._writer = tmp, shape, None, None
        self._held, self._held_rows, self._held_entries = [], 0, 0
        self._opened = time.monotonic()
        self._in_file = 0
        return True

    def _roll(self) -> None:
        """Close the open file under its final name (complete, synced) if it has rows."""
        if self._file is None or self._tmp is None or not self._flush():
            return
        self._close()

    def _close(self) -> None:
        """Close the open file (its held rows written): footer, sync, final name."""
        tmp, file, writer, rows = self._tmp, self._file, self._writer, self._in_file
        self._file, self._tmp, self._writer, self._shape, self._schema = (None,) * 5
        if tmp is None:
            return
        if writer is None:  # no rows reached it
            with contextlib.suppress(OSError):
                file.close()
            self._discard_path(tmp)
            return
        try:
            writer.close()  # the footer; the file stays open
            file.close()
            _sync(tmp)
            os.replace(tmp, tmp.with_name(tmp.name[1:].removesuffix(".tmp")))
        except OSError as exc:
            self._file, self._tmp, self._in_file = file, tmp, rows
            self._fail(f"cannot close a file: {exc.strerror or exc}")
            return
        self.files += 1
        self._report(None)

    def _lose(self, n: int, in_file: bool = True) -> None:
        """``n`` rows taken into the open file never reach it: dropped, not written."""
        with self._lock:  # submit() counts drops too, from the request path
            self.dropped += n
        self.written -= n
        if in_file:
            self._in_file -= n

    def _fail(self, problem: str) -> None:
        """The open file failed: its rows go with it, counted as dropped."""
        self._lose(self._in_file)
        self._discard()
        self._report(f"prediction log {self.folder}: {problem}")

    def _write_feedback(self, feedback: Feedback) -> None:
        """One complete file per batch of labels (never appended to: ``mlops monitor label``
        rewrites or removes the files it has joined)."""
        folder = self.folder / FEEDBACK_DIR
        self._seq += 1
        name = f"feedback-{_stamp()}-{os.getpid()}-{self._seq}{FEEDBACK_SUFFIX}"
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

    def _discard(self) -> None:
        """Forget the open file after a failure (its rows were counted as dropped)."""
        tmp = self._tmp
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file, self._tmp, self._writer, self._shape, self._schema = (None,) * 5
        self._held, self._held_rows, self._held_entries, self._in_file = [], 0, 0, 0
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


def _iso_times(times: Any) -> list[str]:
    """UTC times (seconds since the epoch) as ISO 8601 to the millisecond, all at once:
    ``datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")`` of each."""
    import numpy as np

    ms = np.round(times * 1e6).astype(np.int64) // 1000  # as datetime rounds, then cuts
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return [f"{t}+00:00" for t in text.tolist()]


def _stamp() -> str:
    """The current UTC time for file names: they sort by it."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
