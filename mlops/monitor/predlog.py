"""The prediction log's format, as ``mlops serve`` and ``mlops predict`` write it and
``mlops monitor`` reads it: Parquet files of one row per scored row.

Each row holds ``request_id``, ``time`` (ISO 8601 text, UTC), ``model``, ``version``,
``row`` (its place in the request), the features (whole numbers as floats), ``prediction``
and one ``proba_<class>`` per class; the label (``monitor.label``, else ``label``) is joined
later by request id. Closed files are named ``predictions-*.parquet`` (logs of earlier
releases, ``predictions-*.jsonl``, hold the same fields as JSON lines, and are still read
and labelled); files still being written and the server's collected feedback (``.labels/``,
JSON lines) start with a dot, so a batch folder never offers them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mlops.errors import ConfigError

REQUEST_ID = "request_id"
ROW = "row"
TIME = "time"
MODEL = "model"
VERSION = "version"
PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
DEFAULT_LABEL = "label"
LOG_COLUMNS = (REQUEST_ID, ROW, TIME, MODEL, VERSION)
LOG_PREFIX = "predictions-"
LOG_SUFFIX = ".parquet"
LOG_SUFFIXES = (LOG_SUFFIX, ".jsonl")  # what a log may be named: the older logs were JSON lines
FEEDBACK_SUFFIX = ".jsonl"
FEEDBACK_DIR = ".labels"


def is_prediction_log(columns: Iterable[object]) -> bool:
    """A table with a request id and a prediction per row is a prediction log."""
    names = {str(c) for c in columns}
    return REQUEST_ID in names and PREDICTION in names


def log_columns(columns: Iterable[object]) -> list[str]:
    """The columns a prediction log adds to the features (neither features nor the label)."""
    added = set(LOG_COLUMNS) | {PREDICTION}
    return [str(c) for c in columns if str(c) in added or str(c).startswith(PROBA_PREFIX)]


def batch_folder(root: Path, batches: str | None) -> Path:
    """The folder ``monitor.batches`` names, where prediction logs roll into."""
    if batches is None:
        raise ConfigError(
            "mlops.yaml: monitor.batches: not set; name the folder prediction logs go to"
        )
    if any(c in batches for c in "*?["):
        raise ConfigError(
            f"mlops.yaml: monitor.batches is the pattern {batches}, which prediction logs "
            f"({LOG_PREFIX}*{LOG_SUFFIX}) may not match: make it a folder"
        )
    path = root / batches
    if path.is_file():
        raise ConfigError(
            f"mlops.yaml: monitor.batches is the file {batches}: make it a folder for the "
            "prediction logs to roll into"
        )
    return path
