"""Reading data files and models, each once per run, and only the columns needed."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.checks.spec import CheckProblem, Suite

if TYPE_CHECKING:
    from concurrent.futures import Future

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
        self._pending: dict[Path, Future[Any]] = {}

    def prefetch(self) -> None:
        """Start parsing the planned CSV files with pyarrow in a background thread.

        pyarrow parses without holding the GIL, so the parse overlaps the pandas
        import that the checks need anyway: for a one-shot ``mlops check`` that import
        costs about as much as the read itself.
        """
        files = [p for p in self.needs if p.name.lower().endswith(CSV_SUFFIXES) and p.is_file()]
        if not files or importlib.util.find_spec("pyarrow") is None:
            return
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-read")
        for path in files:
            plan = _csv_plan(path, self.needs[path])
            if plan is not None and plan.arrow:
                self._pending[path] = pool.submit(_arrow_csv, path, plan)
        pool.shutdown(wait=False)

    def table(self, rel: str, key: str) -> Data:
        """The data file ``rel`` (``key`` is the YAML key that named it, for errors)."""
        path = resolve(self.root, rel)
        if path not in self._tables:
            pending = self._pending.pop(path, None)
            self._tables[path] = read_table(path, rel, key, self.needs.get(path), pending)
        return self._tables[path]

    def put(self, rel: str, frame: Any) -> None:
        """Use the DataFrame ``frame`` as the content of ``rel`` instead of reading it."""
        self._tables[resolve(self.root, rel)] = Data(frame, rel, tuple(map(str, frame.columns)))

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


def read_table(
    path: Path,
    shown: str,
    key: str,
    columns: frozenset[str] | None,
    pending: Future[Any] | None = None,
) -> Data:
    """Read a CSV, Parquet or JSON-lines file; only ``columns`` (all if ``None``) if possible.

    ``pending`` is a parse of this CSV file already started by ``DataStore.prefetch``.
    """
    if not path.is_file():
        raise CheckProblem(key, f"data file {shown} does not exist")
    name = path.name.lower()
    try:
        if name.endswith(CSV_SUFFIXES):
            return _read_csv(path, shown, columns, pending)
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


@dataclass(frozen=True)
class _CsvPlan:
    sep: str
    header: tuple[str, ...]
    usecols: tuple[str, ...] | None
    arrow: bool  # whether pyarrow yields what pandas would (unique, non-empty names)


def _csv_plan(path: Path, columns: frozenset[str] | None) -> _CsvPlan | None:
    """The separator, header and columns to read; ``None`` if the header cannot be read."""
    import csv
    import gzip

    sep = "\t" if ".tsv" in path.name.lower() else ","
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
            header = tuple(str(c) for c in next(csv.reader(handle, delimiter=sep), []))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None  # the reader proper reports it
    # With no column needed (a rows: check alone) the first still gives the row count.
    usecols = None if columns is None else tuple(c for c in header if c in columns) or header[:1]
    arrow = bool(header) and "" not in header and len(set(header)) == len(header)
    return _CsvPlan(sep, header, usecols, arrow)


# pandas' default missing-value markers are pyarrow's plus these two.
_MORE_NULLS = ("<NA>", "None")


def _arrow_csv(path: Path, plan: _CsvPlan) -> Any:
    """Parse with pyarrow on all cores, converting only the columns planned."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    nulls = [*pcsv.ConvertOptions().null_values, *_MORE_NULLS]
    convert = pcsv.ConvertOptions(null_values=nulls, strings_can_be_null=True)
    if plan.usecols is not None:
        convert.include_columns = list(plan.usecols)
    table = pcsv.read_csv(
        path, parse_options=pcsv.ParseOptions(delimiter=plan.sep), convert_options=convert
    )
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):  # an empty column: pandas reads it as float NaN
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    return table


def _read_csv(
    path: Path, shown: str, columns: frozenset[str] | None, pending: Future[Any] | None
) -> Data:
    import pandas as pd  # while a prefetch, if any, parses in the background

    plan = _csv_plan(path, columns)
    table = None
    if plan is not None and plan.arrow:
        try:
            table = pending.result() if pending is not None else _arrow_csv(path, plan)
        except (ImportError, ValueError, OSError, NotImplementedError):
            table = None  # no pyarrow, or a file it rejects: pandas' own parser says why
    if table is not None:
        frame = table.to_pandas()
    else:
        usecols = None if plan is None or plan.usecols is None else list(plan.usecols)
        frame = pd.read_csv(path, sep=plan.sep if plan else ",", usecols=usecols)
    header = plan.header if plan is not None and plan.header else tuple(map(str, frame.columns))
    return Data(frame, shown, header)


def _read_parquet(path: Path, shown: str, columns: frozenset[str] | None) -> Data:
    import pandas as pd
    import pyarrow.parquet as pq

    names = [str(n) for n in pq.read_schema(path).names]
    usecols = None if columns is None else [c for c in names if c in columns] or names[:1]
    return Data(pd.read_parquet(path, columns=usecols), shown, tuple(names))
