"""``mlops predict``: score a CSV, Parquet or JSON-lines file of any size, chunk by chunk.

The model is loaded as the server loads it (hash-checked, its signature found); each
chunk is checked column by column (vectorised), scored, appended to a temporary output
that replaces ``out`` only when every chunk succeeded, and handed to the prediction log
as the server's requests are (one request id per chunk). Memory is bounded by the chunk.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.core.repo import Repo
from mlops.errors import InputError, WorkspaceConflict
from mlops.monitor.predlog import PREDICTION, PROBA_PREFIX
from mlops.registry.signature import FeatureType
from mlops.serve.inputs import Rows
from mlops.serve.log import Entry, PredictionLog
from mlops.serve.model import Served, load_served, prepare_process

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 10_000
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class Predicted:
    """What ``predict_file`` wrote."""

    model: str
    version: str
    hash: str
    rows: int
    chunks: int
    out: str
    logged: str | None  # the prediction log folder, when logging

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "hash": self.hash,
            "rows": self.rows,
            "chunks": self.chunks,
            "out": self.out,
            "logged": self.logged,
        }


def predict_file(
    repo: Repo,
    reference: str,
    data: str,
    out: str,
    force: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    log_dir: str | None = None,
    log: bool = True,
) -> Predicted:
    """Score every row of ``data`` with ``reference`` into ``out`` (same formats); log the
    predictions to ``log_dir``, else to ``monitor.batches``'s folder, unless ``log`` is false."""
    from mlops.registry.records import split_reference
    from mlops.registry.tags import resolve
    from mlops.serve.server import log_folder

    source, target = Path(os.path.abspath(data)), Path(os.path.abspath(out))
    if not source.is_file():
        raise InputError(f"{data}: no such data file")
    in_format, out_format = _format(source, data), _format(target, out)
    if os.path.lexists(target) and not force:
        raise WorkspaceConflict(f"{out}: already exists; use --force to replace it")
    if chunk_rows < 1:
        raise InputError("--chunk-rows must be at least 1")
    folder = log_folder(repo, log_dir, log)
    prepare_process()
    _, _, alias = split_reference(reference)
    served = load_served(repo, resolve(repo, reference), alias)
    writer_log = PredictionLog(folder) if folder is not None else None
    batch_id = uuid.uuid4().hex[:12]
    tmp = target.parent / f".{target.name}.{os.getpid()}.mlops-predict"
    rows = chunks = 0
    writer = _Writer(tmp, out_format)
    try:
        for chunk in _chunks(source, in_format, chunk_rows, data):
            scored = _score(served, chunk, data, rows)
            writer.write(scored.frame)
            if writer_log is not None:
                v = served.version
                writer_log.submit(
                    Entry(
                        f"{batch_id}-{chunks}",
                        time.time(),
                        v.model,
                        v.label,
                        scored.rows,
                        scored.predictions,
                        scored.probabilities,
                        served.classes if scored.probabilities is not None else None,
                    )
                )
            rows += len(chunk)
            chunks += 1
        writer.close()
        if rows == 0:
            raise InputError(f"{data}: no rows to score")
        os.replace(tmp, target)
    finally:
        writer.close()
        if tmp.exists():
            tmp.unlink()
        if writer_log is not None:
            writer_log.close()
    v = served.version
    shown = None if folder is None else str(folder)
    return Predicted(v.model, v.label, v.content.oid, rows, chunks, out, shown)


@dataclass(frozen=True)
class _Scored:
    frame: pd.DataFrame
    rows: Rows
    predictions: list[Any]
    probabilities: list[list[float]] | None


def _score(served: Served, chunk: pd.DataFrame, shown: str, offset: int) -> _Scored:
    """Check a chunk's feature columns against the signature, then score it."""
    import numpy as np
    import pandas as pd

    names = served.signature.names
    missing = [n for n in names if n not in chunk.columns]
    if missing:
        raise InputError(
            f"{shown}: missing column {missing[0]!r}: the model takes {', '.join(names)}"
        )
    for feature in served.signature.features:
        column = chunk[feature.name]
        bad = _bad_values(column, feature.type)
        if bad is not None:
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{shown}: column {feature.name!r} row {offset + i + 1}: "
                f"{column.iloc[i : i + 1].tolist()[0]!r} is not {_expected(feature.type)}"
            )
    rows = Rows(names, tuple(chunk[n].tolist() for n in names), len(chunk))
    predictions, proba = served.predict(rows, probabilities=True)
    frame = chunk.copy()
    frame[PREDICTION] = predictions
    if proba is not None and served.classes is not None:
        table = pd.DataFrame(
            proba, columns=[f"{PROBA_PREFIX}{c}" for c in served.classes], index=chunk.index
        )
        frame = pd.concat([frame, table], axis=1)
    return _Scored(frame, rows, predictions, proba)


def _bad_values(column: pd.Series, kind: FeatureType) -> Any:
    """A mask of the values that do not fit ``kind``, or None when all fit."""
    import numpy as np
    import pandas as pd

    if kind is FeatureType.NUMBER:
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            numbers = pd.to_numeric(column, errors="coerce")
            mask = numbers.isna().to_numpy() | column.map(lambda v: isinstance(v, bool)).to_numpy()
        else:
            mask = ~np.isfinite(column.to_numpy(dtype=float))
    elif kind is FeatureType.STRING:
        mask = ~column.map(lambda v: isinstance(v, str)).to_numpy()
    elif kind is FeatureType.BOOLEAN:
        mask = ~column.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy()
    else:
        mask = column.isna().to_numpy()
    return mask if mask.any() else None


def _expected(kind: FeatureType) -> str:
    return {
        FeatureType.NUMBER: "a finite number",
        FeatureType.STRING: "a string",
        FeatureType.BOOLEAN: "true or false",
        FeatureType.ANY: "a value",
    }[kind]


def _format(path: Path, shown: str) -> str:
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{shown}: unknown format (use .csv, .parquet or .jsonl)")
    return kind


def _chunks(path: Path, kind: str, size: int, shown: str) -> Iterator[pd.DataFrame]:
    import pandas as pd

    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=size):
                yield batch.to_pandas()
            return
        reader = (
            pd.read_csv(path, chunksize=size)
            if kind == "csv"
            else pd.read_json(path, lines=True, chunksize=size)
        )
        with reader:
            yield from reader
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read {shown}: {type(exc).__name__}: {exc}") from None


class _Writer:
    """Appends scored chunks to one file of the output's format."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._parquet: Any = None
        self._text: Any = None
        self._first = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            return
        if self._text is None:
            self._text = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        if self.kind == "csv":
            frame.to_csv(self._text, index=False, header=self._first)
        else:
            frame.to_json(self._text, orient="records", lines=True)  # ends with a newline
        self._first = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._text is not None:
            self._text.close()
            self._text = None
