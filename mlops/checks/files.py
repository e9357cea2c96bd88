"""Reading data files and models, each once per run, and only the columns needed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.checks.spec import CheckProblem, Suite

CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")
Needs = dict[Path, frozenset[str] | None]


@dataclass(frozen=True)
class Data:
    """A loaded table: the frame, the path as written, and every column of the file."""

    frame: Any
    shown: str
    columns: tuple[str, ...]

    def series(self, column: str) -> Any:
        """The column, or ``CheckProblem`` naming it and listing the file's columns."""
        if column not in self.frame.columns:
            listed = ", ".join(self.columns[:20]) + (", ..." if len(self.columns) > 20 else "")
            raise CheckProblem(
                column, f"column {column!r} is not in {self.shown} (columns: {listed})"
            )
        return self.frame[column]


def plan_reads(suites: Iterable[Suite], root: Path) -> Needs:
    """Which columns of which files the suites need, so that each file is read once."""
    needs: Needs = {}

    def want(rel: str, cols: frozenset[str] | None) -> None:
        path = resolve(root, rel)
        if path in needs:
            old = needs[path]
            needs[path] = None if old is None or cols is None else old | cols
        else:
            needs[path] = cols

    for suite in suites:
        if suite.data is not None:
            want(suite.data, suite.data_columns())
        for check in suite.checks:
            if check.kind == "drift":
                want(check.args["reference"], check.columns())
            elif check.kind == "predicts":
                want(check.args["rows"], None)
    return needs


def resolve(root: Path, rel: str) -> Path:
    """``rel`` relative to the project root, normalised so equal files get equal keys."""
    return Path(os.path.normpath(root / rel))


class DataStore:
    """Loaded tables and models of one run, keyed by path (the state that lives here)."""

    def __init__(self, root: Path, needs: Needs | None = None) -> None:
        self.root = root
        self.needs: Needs = needs or {}
        self._tables: dict[Path, Data] = {}
        self._models: dict[Path, Any] = {}

    def table(self, rel: str, key: str) -> Data:
        """The data file ``rel`` (``key`` is the YAML key that named it, for errors)."""
        path = resolve(self.root, rel)
        if path not in self._tables:
            self._tables[path] = read_table(path, rel, key, self.needs.get(path))
        return self._tables[path]

    def model(self, rel: str, key: str) -> Any:
        """The model file ``rel``, loaded with joblib."""
        path = resolve(self.root, rel)
        if path not in self._models:
            if not path.is_file():
                raise CheckProblem(key, f"model file {rel} does not exist")
            import joblib

            try:
                self._models[path] = joblib.load(path)
            except Exception as exc:  # unpickling runs arbitrary code: report any failure
                raise CheckProblem(
                    key, f"cannot load model {rel}: {type(exc).__name__}: {exc}"
                ) from exc
        return self._models[path]


def read_table(path: Path, shown: str, key: str, columns: frozenset[str] | None) -> Data:
    """Read a CSV, Parquet or JSON-lines file; only ``columns`` (all if ``None``) if possible."""
    if not path.is_file():
        raise CheckProblem(key, f"data file {shown} does not exist")
    name = path.name.lower()
    try:
        if name.endswith(CSV_SUFFIXES):
            return _read_csv(path, shown, columns, "\t" if ".tsv" in name else ",")
        if name.endswith(PARQUET_SUFFIXES):
            return _read_parquet(path, shown, columns)
        if name.endswith(JSONL_SUFFIXES):
            import pandas as pd

            frame = pd.read_json(path, lines=True)
            return Data(frame, shown, tuple(str(c) for c in frame.columns))
    except CheckProblem:
        raise
    except Exception as exc:  # parsers raise many types; the user needs the file and the reason
        raise CheckProblem(key, f"cannot read {shown}: {type(exc).__name__}: {exc}") from exc
    raise CheckProblem(
        key,
        f"cannot read {shown}: unknown format (use "
        f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES + JSONL_SUFFIXES)})",
    )


def _read_csv(path: Path, shown: str, columns: frozenset[str] | None, sep: str) -> Data:
    import pandas as pd

    header = _csv_header(path, sep)
    # With no column needed (a rows: check alone) the first still gives the row count.
    usecols = None if columns is None else [c for c in header if c in columns] or header[:1]
    try:
        # pyarrow parses on all cores and converts only the columns asked for.
        frame = pd.read_csv(path, sep=sep, engine="pyarrow", usecols=usecols)
    except (ImportError, ValueError, OSError):
        # No pyarrow, or a file it rejects (ragged rows...): pandas' own parser says why.
        frame = pd.read_csv(path, sep=sep, usecols=usecols)
    return Data(frame, shown, tuple(header) if header else tuple(map(str, frame.columns)))


def _csv_header(path: Path, sep: str) -> list[str]:
    import csv
    import gzip

    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
        row = next(csv.reader(handle, delimiter=sep), [])
    return [str(c) for c in row]


def _read_parquet(path: Path, shown: str, columns: frozenset[str] | None) -> Data:
    import pandas as pd
    import pyarrow.parquet as pq

    names = [str(n) for n in pq.read_schema(path).names]
    usecols = None if columns is None else [c for c in names if c in columns] or names[:1]
    return Data(pd.read_parquet(path, columns=usecols), shown, tuple(names))
