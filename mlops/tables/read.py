"""Reading CSV, Parquet and JSON-lines files, and only the columns needed.

Tables are read with pyarrow into a ``pyarrow.Table``, so that reading never imports
pandas (that import alone costs about as much as reading a million-row CSV). A pandas
view is made on demand, once per table, for those who need one (``custom:`` checks,
model checks, monitoring). Checks, monitoring and the registry's signatures all read
their tables here, and know a data file by the same suffixes.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.core.imports import import_serially, importing
from mlops.errors import TableError

if TYPE_CHECKING:
    from concurrent.futures import Future


class TableFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")
# Every suffix of a file read as a table.
TABLE_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + JSONL_SUFFIXES
# What a parse yields: the table, every column name of the file, and the pandas frame
# the table was converted from (when pandas had to read the file), else None.
Loaded = tuple[Any, tuple[str, ...], Any]


def table_format(name: str | Path) -> TableFormat | None:
    """The format of a file named ``name`` (by its suffix), or None if it is no table."""
    lower = Path(name).name.lower()
    if lower.endswith(CSV_SUFFIXES):
        return TableFormat.CSV
    if lower.endswith(PARQUET_SUFFIXES):
        return TableFormat.PARQUET
    if lower.endswith(JSONL_SUFFIXES):
        return TableFormat.JSONL
    return None


@dataclass(frozen=True, eq=False)
class Data:
    """A loaded table: a ``pyarrow.Table``, the path as written, and every column of the file.

    ``source`` is the pandas DataFrame the table was made from, if any; it is then
    what :attr:`frame` returns, unconverted.
    """

    table: Any
    shown: str
    columns: tuple[str, ...]
    source: Any = None

    @classmethod
    def of(cls, frame: Any, shown: str) -> Data:
        """A pandas DataFrame or a pyarrow Table in memory, standing in for the file ``shown``."""
        import pyarrow as pa

        if isinstance(frame, pa.Table):
            return cls(frame, shown, tuple(frame.column_names))
        return cls(to_arrow(frame), shown, tuple(map(str, frame.columns)), frame)

    @cached_property
    def frame(self) -> Any:
        """The table as a pandas DataFrame, converted on first use (this imports pandas)."""
        if self.source is not None:
            return self.source
        with importing():  # to_pandas imports pandas, and pyarrow's bridge to it
            return self.table.to_pandas()

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    def column(self, name: str) -> Any:
        """The column as a ``pyarrow.ChunkedArray``, or ``TableError`` naming it and
        listing the file's columns."""
        if name not in self.table.column_names:
            listed = ", ".join(self.columns[:20]) + (", ..." if len(self.columns) > 20 else "")
            raise TableError(name, f"column {name!r} is not in {self.shown} (columns: {listed})")
        if self.columns.count(name) > 1:  # a reader keeps one of them, or renames the others
            raise TableError(
                name,
                f"column {name!r} appears {self.columns.count(name)} times in {self.shown}; "
                "give the columns distinct names",
            )
        return self.table.column(name)


def to_arrow(frame: Any) -> Any:
    """A pandas DataFrame as a ``pyarrow.Table`` (its index dropped: rows are positions).

    A column of mixed Python objects, which arrow cannot type, becomes text (nulls kept).
    """
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    arrays = []
    for i in range(frame.shape[1]):
        series = frame.iloc[:, i]
        try:
            arrays.append(pa.array(series, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            arrays.append(pa.array(series.astype(str).where(series.notna()), from_pandas=True))
    return pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])


# How long OpenBLAS's threads busy-wait for work: 2 ** this many CPU cycles.
_BLAS_SPIN = "OPENBLAS_THREAD_TIMEOUT"


def import_numpy_unspun() -> None:
    """Import numpy (pyarrow imports it) with its OpenBLAS threads told not to busy-wait.

    At import, OpenBLAS starts a thread per extra core, and each spins for about 0.1 s
    (2 ** 28 cycles, by default) before it sleeps: the very time pyarrow's parse wants
    those cores. Measured on a two-core machine, the spin took about a tenth of the CPU
    time of a ``mlops check`` run. OpenBLAS reads the setting once, at load, so it is
    set only for numpy's import and then taken back: commands started later (stages,
    ``command:`` checks) inherit the environment as it was. A value the user set wins.
    """
    with importing():
        if "numpy" in sys.modules or _BLAS_SPIN in os.environ:
            return
        os.environ[_BLAS_SPIN] = "4"  # OpenBLAS's least
        try:
            import numpy  # noqa: F401
        finally:
            del os.environ[_BLAS_SPIN]


def read_table(
    path: Path,
    shown: str,
    key: str,
    columns: frozenset[str] | None,
    pending: Future[Loaded] | None = None,
) -> Data:
    """Read a CSV, Parquet or JSON-lines file; only ``columns`` (all if ``None``) if possible.

    ``key`` names what named the file (a YAML key), for errors; ``pending`` is a
    :func:`parse` of this file already started (in a background thread).
    """
    if not path.is_file():
        raise TableError(key, f"data file {shown} does not exist")
    if table_format(path) is None:
        raise TableError(
            key,
            f"cannot read {shown}: unknown format (use {', '.join(TABLE_SUFFIXES)})",
        )
    try:
        table, header, frame = pending.result() if pending is not None else parse(path, columns)
    except Exception as exc:  # parsers raise many types; the user needs the file and the reason
        raise TableError(key, f"cannot read {shown}: {type(exc).__name__}: {exc}") from exc
    return Data(table, shown, header, frame)


# The pyarrow module that reads each format.
_READERS = {
    TableFormat.CSV: "pyarrow.csv",
    TableFormat.PARQUET: "pyarrow.parquet",
    TableFormat.JSONL: "pyarrow.json",
}


def parse(path: Path, columns: frozenset[str] | None) -> Loaded:
    """Parse the table file ``path`` (only ``columns``, all if None, where the format allows).

    Parsers raise many types; :func:`read_table` turns them into one ``TableError``.
    """
    fmt = table_format(path)
    import_numpy_unspun()
    if fmt is not None:
        import_serially(_READERS[fmt])
    # Passed on unnamed, so that _one_chunk_each holds the only reference to the table.
    if fmt is TableFormat.CSV:
        return _one_chunk_each(_read_csv(path, columns))
    if fmt is TableFormat.PARQUET:
        return _one_chunk_each(_read_parquet(path, columns))
    return _one_chunk_each(_read_jsonl(path))


def _one_chunk_each(loaded: Loaded) -> Loaded:
    """The loaded table with one chunk per column: the checks then see each column as one
    numpy array, without a copy.

    Column by column, each column's chunks freed before the next is copied: the copy
    then reuses that memory. Copying the whole table at once takes all of it fresh
    from the system, which here costs up to ten times as much, varying from run to run.
    """
    import pyarrow as pa

    table, header, frame = loaded
    del loaded
    if not table.num_columns:
        return table, header, frame
    schema, combined = table.schema, []
    while table.num_columns:
        column = table.column(0)
        combined.append(column.chunk(0) if column.num_chunks == 1 else column.combine_chunks())
        del column
        table = table.remove_column(0)
    return pa.Table.from_arrays(combined, schema=schema), header, frame


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


# Plain CSV files from twice this size on are parsed in ranges of about this size.
# Smaller ranges need less memory at once: on the benchmark's file, 8 MiB rather than 16
# left about 20 MB less resident after the parse, and ran 6-9% faster (A/B, 20 rounds).
CSV_RANGE_BYTES = 8 << 20
# pandas' default missing-value markers are pyarrow's plus these two.
_MORE_NULLS = ("<NA>", "None")


def _arrow_csv(path: Path, plan: _CsvPlan) -> Any:
    """Parse with pyarrow on all cores, converting only the columns planned."""
    import pyarrow.csv as pcsv

    nulls = [*pcsv.ConvertOptions().null_values, *_MORE_NULLS]
    convert = pcsv.ConvertOptions(null_values=nulls, strings_can_be_null=True)
    if plan.usecols is not None:
        convert.include_columns = list(plan.usecols)
    parse = pcsv.ParseOptions(delimiter=plan.sep)
    if path.name.lower().endswith(".gz") or path.stat().st_size < 2 * CSV_RANGE_BYTES:
        table = pcsv.read_csv(path, parse_options=parse, convert_options=convert)
    else:
        table = read_csv_ranges(path, plan.header, parse, convert, CSV_RANGE_BYTES)
    return _nulls_as_float(table)


def _nulls_as_float(table: Any) -> Any:
    """Columns of nulls only as float64 (all NaN), as pandas reads them from CSV and JSON.

    Not with no rows at all (a header line only): pandas makes those columns object,
    which arrow's null type stands for (see ``columns.type_name``).
    """
    import pyarrow as pa

    if not table.num_rows:
        return table
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    return table


def read_csv_ranges(
    path: Path, header: tuple[str, ...], parse: Any, convert: Any, range_bytes: int
) -> Any:
    """Parse a plain CSV file as pyarrow would whole, but in ranges of whole lines.

    pyarrow keeps every parsed block of a read until the read ends (about 1.6 times
    the file); parsing ranges one after another bounds that to one range, and fresh
    memory is the dearest part of reading a big file here (see ``_Gathered``). The file
    is memory-mapped (its pages are already in the page cache). Where the pieces could
    differ from one whole read, the file is read whole: a quote anywhere (a quoted field
    may hold a line break), or ranges whose column types differ (a whole read promotes a
    column's type where later lines need it).
    """
    import mmap
    from itertools import pairwise

    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    data = pa.py_buffer(mapped)

    def whole() -> Any:
        return pcsv.read_csv(pa.BufferReader(data), parse_options=parse, convert_options=convert)

    if mapped.find(b'"') != -1:
        return whole()
    cuts = [0]
    while (end := mapped.find(b"\n", cuts[-1] + range_bytes)) != -1 and end + 1 < len(mapped):
        cuts.append(end + 1)
    cuts.append(len(mapped))
    # Only the first range starts with the header line; the others are told the names.
    later = pcsv.ReadOptions(column_names=list(header))
    gathered: _Gathered | None = None
    for start, stop in pairwise(cuts):
        part = pcsv.read_csv(
            pa.BufferReader(data.slice(start, stop - start)),
            read_options=None if start == 0 else later,
            parse_options=parse,
            convert_options=convert,
        )
        if gathered is None:
            # As many rows as the first range's lines suggest, and a tenth more: pages
            # of the arrays that stay unused are never touched.
            guess = int(len(mapped) / (stop - start) * part.num_rows * 1.1) + 1
            gathered = _Gathered(part.schema, guess)
        elif part.schema != gathered.schema:
            return whole()
        gathered.add(part)
        del part  # its memory goes to the next range's parse
    assert gathered is not None  # there is always one range
    return gathered.table()


class _Gathered:
    """The columns of a file's ranges, gathered while the ranges are parsed.

    Numbers (integers and floats) are copied into one array per column as each range
    comes in, so that a range's memory goes on to the next range's parse. Joining all
    ranges' pieces at the end would instead need every piece and the result at once,
    all of it fresh from the system: on the benchmark's file that was 35 MB more. Other
    columns keep their pieces, joined later as any table's are.
    """

    def __init__(self, schema: Any, rows: int) -> None:
        import numpy as np

        from mlops.tables.columns import is_numeric, storage_dtype

        self.schema = schema
        self.rows = 0
        self.values = {
            i: np.empty(rows, storage_dtype(field.type))
            for i, field in enumerate(schema)
            if is_numeric(field.type)
        }
        # Per number column: (first row, null mask) of each piece that has nulls.
        self.nulls: dict[int, list[tuple[int, Any]]] = {i: [] for i in self.values}
        self.pieces: dict[int, list[Any]] = {
            i: [] for i in range(len(schema)) if i not in self.values
        }

    def add(self, part: Any) -> None:
        """Take in the next range's table (its schema is the first range's)."""
        from mlops.tables.columns import null_mask, to_numpy

        end = self.rows + part.num_rows
        for i, column in enumerate(part.columns):
            if i in self.pieces:
                self.pieces[i].extend(column.chunks)
                continue
            values = self.values[i] = _with_room(self.values[i], self.rows, end)
            row = self.rows
            for chunk in column.chunks:
                values[row : row + len(chunk)] = to_numpy(chunk, raw=True)
                if chunk.null_count:
                    self.nulls[i].append((row, null_mask(chunk)))
                row += len(chunk)
        self.rows = end

    def table(self) -> Any:
        import numpy as np
        import pyarrow as pa

        columns = []
        for i, field in enumerate(self.schema):
            if i in self.pieces:
                columns.append(pa.chunked_array(self.pieces[i], type=field.type))
                continue
            validity = None
            if self.nulls[i]:
                valid = np.ones(self.rows, dtype=bool)
                for row, mask in self.nulls[i]:
                    valid[row : row + len(mask)] = ~mask
                validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
            # Left writable, unlike arrow's own buffers: numpy's bincount, which most
            # checks use, copies a read-only input first (20 ms on a million rows, here).
            # The checks only read a column's values.
            values = pa.py_buffer(self.values[i][: self.rows])
            columns.append(pa.Array.from_buffers(field.type, self.rows, [validity, values]))
        return pa.Table.from_arrays(columns, schema=self.schema)


def _with_room(values: Any, filled: int, rows: int) -> Any:
    """``values``, or a bigger copy of its first ``filled`` items, to hold ``rows`` items."""
    import numpy as np

    if len(values) >= rows:
        return values
    bigger = np.empty(max(rows, 2 * len(values)), values.dtype)
    bigger[:filled] = values[:filled]
    return bigger


def _read_csv(path: Path, columns: frozenset[str] | None) -> Loaded:
    plan = _csv_plan(path, columns)
    if plan is not None and plan.arrow:
        try:
            return _arrow_csv(path, plan), plan.header, None
        except (ValueError, OSError, NotImplementedError):
            pass  # a file pyarrow rejects: pandas reads it or says why
    # Duplicate or empty column names (pandas renames them), or an odd file.
    pd = import_serially("pandas")

    usecols = None if plan is None or plan.usecols is None else list(plan.usecols)
    frame = pd.read_csv(path, sep=plan.sep if plan else ",", usecols=usecols)
    header = plan.header if plan is not None and plan.header else tuple(map(str, frame.columns))
    return to_arrow(frame), header, frame


def _read_parquet(path: Path, columns: frozenset[str] | None) -> Loaded:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    # A pandas index stored as a column is not data (pandas read it back as the index).
    index = {
        c for c in (schema.pandas_metadata or {}).get("index_columns", ()) if isinstance(c, str)
    }
    names = tuple(str(n) for n in schema.names if n not in index)
    usecols = list(names) if columns is None else [c for c in names if c in columns] or [names[0]]
    return pq.read_table(path, columns=usecols), names, None


def _read_jsonl(path: Path) -> Loaded:
    import pyarrow as pa
    import pyarrow.json as pjson

    if path.name.lower().endswith(".json") and _holds_array(path):
        pd = import_serially("pandas")

        # One array of records (as DataFrame.to_json(orient="records") writes), not lines.
        frame = pd.read_json(path, orient="records")
        return to_arrow(frame), tuple(map(str, frame.columns)), frame
    try:
        table = _nulls_as_float(pjson.read_json(path))
        return table, tuple(table.column_names), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # e.g. a column holding both numbers and text: pandas reads it or says why
    pd = import_serially("pandas")

    frame = pd.read_json(path, lines=True)
    return to_arrow(frame), tuple(map(str, frame.columns)), frame


def _holds_array(path: Path) -> bool:
    """Whether the JSON file ``path`` starts with ``[`` (after a BOM and white space)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"[")
