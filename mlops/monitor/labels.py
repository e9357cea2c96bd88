"""Labels that arrive after the predictions: joined into the prediction logs by request id.

``mlops monitor label FILE`` reads a table with ``request_id`` (``row`` too, for requests
of several rows) and the label column (``monitor.label``, or ``label``); without a file it
takes the feedback the server collected (``POST /feedback``, kept in ``.labels/``). Each
closed log file that gains labels is rewritten whole (temporary file, then rename), so its
content changes and ``mlops monitor`` scores it again, now judging the metric limits.
Feedback for requests in no closed log yet is kept for the next join.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.repo import Repo
from mlops.errors import InputError
from mlops.monitor.config import load_monitor_config
from mlops.monitor.predlog import (
    DEFAULT_LABEL,
    FEEDBACK_DIR,
    LOG_PREFIX,
    LOG_SUFFIX,
    REQUEST_ID,
    ROW,
    batch_folder,
)

Key = tuple[str, int | None]  # (request id, row); row None: every row of the request


@dataclass(frozen=True)
class LabelJoin:
    """What a join did."""

    labels: int  # label records read
    matched: int  # logged rows that got their label
    files: int  # log files rewritten
    pending: int  # records whose request is in no closed log (feedback kept for later)

    def to_dict(self) -> dict[str, int]:
        return {
            "labels": self.labels,
            "matched": self.matched,
            "files": self.files,
            "pending": self.pending,
        }


def join_labels(repo: Repo, source: str | None = None) -> LabelJoin:
    """Join the labels of ``source`` (a data file), or the server's feedback, into the logs."""
    config = load_monitor_config(repo.root)
    folder = batch_folder(repo.root, config.batches)
    name = config.label or DEFAULT_LABEL
    feedback: list[Path] = []
    if source is not None:
        labels = _labels_from_file(Path(source), source, name)
    else:
        feedback = sorted((folder / FEEDBACK_DIR).glob("*.jsonl"))
        labels = {}
        for path in feedback:
            labels.update(_labels_from_feedback(path))
    used: set[Key] = set()
    matched = files = 0
    for path in sorted(folder.glob(f"{LOG_PREFIX}*{LOG_SUFFIX}")):
        count = _join_file(path, labels, name, used)
        matched += count
        files += bool(count)
    if source is None:
        _keep_pending(feedback, used)
    return LabelJoin(len(labels), matched, files, len(set(labels) - used))


def _labels_from_file(path: Path, shown: str, name: str) -> dict[Key, Any]:
    from mlops.monitor.monitoring import read_frame

    if not path.is_file():
        raise InputError(f"{shown}: no such labels file")
    frame = read_frame(path, shown)
    column = name if name in frame.columns else DEFAULT_LABEL
    for needed in (REQUEST_ID, column):
        if needed not in frame.columns:
            raise InputError(
                f"{shown}: no column {needed!r}: a labels file has {REQUEST_ID}, "
                f"optionally {ROW}, and the label ({name})"
            )
    records = json.loads(frame.to_json(orient="records"))
    labels: dict[Key, Any] = {}
    for i, record in enumerate(records):
        key = _key(record, f"{shown} row {i + 1}")
        if record.get(column) is not None:
            labels[key] = record[column]
    return labels


def _labels_from_feedback(path: Path) -> dict[Key, Any]:
    """The feedback lines of one file; a line cut short by a crash is skipped."""
    labels: dict[Key, Any] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            key = _key(record, str(path))
        except (ValueError, InputError):
            continue
        if record.get(DEFAULT_LABEL) is not None:
            labels[key] = record[DEFAULT_LABEL]
    return labels


def _key(record: dict[str, Any], where: str) -> Key:
    rid, row = record.get(REQUEST_ID), record.get(ROW)
    if not isinstance(rid, str) or not rid:
        raise InputError(f"{where}: {REQUEST_ID} must be a non-empty string")
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 0):
        raise InputError(f"{where}: {ROW} must be a whole number from 0")
    return rid, row


def _join_file(path: Path, labels: dict[Key, Any], name: str, used: set[Key]) -> int:
    """Label the rows of one log file; rewrite it when any changed. Returns how many did."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, changed = [], 0
    for line in lines:
        record = json.loads(line)
        rid, row = record.get(REQUEST_ID), record.get(ROW)
        for key in ((rid, row), (rid, None)):
            if key in labels:
                used.add(key)
                if record.get(name) != labels[key]:
                    record[name] = labels[key]
                    changed += 1
                break
        out.append(json.dumps(record, separators=(",", ":")))
    if changed:
        _replace_text(path, "\n".join(out) + "\n")
    return changed


def _keep_pending(feedback: list[Path], used: set[Key]) -> None:
    """Drop the feedback lines that found their rows; keep the others for later."""
    for path in feedback:
        kept = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                key = _key(json.loads(line), str(path))
            except (ValueError, InputError):
                continue
            if key not in used:
                kept.append(line)
        if kept:
            _replace_text(path, "\n".join(kept) + "\n")
        else:
            path.unlink()


def _replace_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as sink:
        sink.write(text)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(tmp, path)
