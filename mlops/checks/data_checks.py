"""Built-in data checks, vectorised over pandas columns.

Each check returns :class:`Outcome` values. The common path (the check passes) does
the least work possible, often a min/max or a sort; the rows and values that broke
a check are only looked for once it is known to have failed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.checks.files import Data, DataStore
from mlops.checks.report import ERROR, FAIL, PASS
from mlops.checks.spec import Check, CheckProblem, Suite

MAX_EXAMPLES = 5
_IMPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class Context:
    """What a check may need besides its data: the suite, the project root, the files."""

    suite: Suite
    root: Path
    store: DataStore


@dataclass(frozen=True)
class Outcome:
    """One check's verdict on one column (or on the whole table when ``column`` is None)."""

    column: str | None
    status: str
    observed: Any
    expected: str
    message: str = ""
    failing: int = 0
    examples: tuple[Any, ...] = ()


def jsonable(value: Any) -> Any:
    """A numpy/pandas scalar as a plain Python value (NaN and NaT become None)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return None if str(value) == "NaT" else value.isoformat()
    return str(value)


def show(value: Any) -> str:
    """A value as a short string for messages."""
    value = jsonable(value)
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def row_examples(mask: Any, series: Any = None) -> tuple[dict[str, Any], ...]:
    """The first rows (0-based positions) where ``mask`` is true, with their values."""
    import numpy as np

    rows = [int(r) for r in np.flatnonzero(mask)[:MAX_EXAMPLES]]
    if series is None:
        return tuple({"row": r} for r in rows)
    values = series.iloc[rows].tolist()
    return tuple({"row": r, "value": jsonable(v)} for r, v in zip(rows, values, strict=True))


def plural(count: int, word: str, words: str = "") -> str:
    """``1 value``, ``2 values``."""
    return f"{count} {word if count == 1 else words or word + 's'}"


def _rows_text(examples: tuple[dict[str, Any], ...], failing: int) -> str:
    parts = [f"{e['row']}: {show(e['value'])}" if "value" in e else str(e["row"]) for e in examples]
    more = ", ..." if failing > len(examples) else ""
    return f"{'row' if len(parts) == 1 and not more else 'rows'} {', '.join(parts)}{more}"


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is None:
        return f"<= {high:g}"
    if high is None:
        return f">= {low:g}"
    return f"[{low:g}, {high:g}]"


def _numeric(series: Any, column: str, kind: str) -> Any:
    """The column as a numpy array of numbers (nulls as NaN), or a clear error."""
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if not is_numeric_dtype(series.dtype) or is_bool_dtype(series.dtype):
        raise CheckProblem(
            column, f"column {column!r} is not numeric (dtype {series.dtype}); {kind} needs numbers"
        )
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy()
    return series.to_numpy(dtype="float64", na_value=np.nan)


# --- per-column checks: (data, item, context) -> Outcome ------------------------------------


def _dtype_matches(dtype: Any, typ: str) -> bool:
    import pandas as pd
    from pandas.api import types

    if typ == "category":
        return isinstance(dtype, pd.CategoricalDtype)
    if typ == "bool":
        return bool(types.is_bool_dtype(dtype))
    if typ == "datetime":
        return bool(types.is_datetime64_any_dtype(dtype))
    if typ == "str":
        return bool(types.is_string_dtype(dtype)) and not isinstance(dtype, pd.CategoricalDtype)
    numeric = bool(types.is_numeric_dtype(dtype)) and not types.is_bool_dtype(dtype)
    if typ == "int":
        return bool(types.is_integer_dtype(dtype))
    # float accepts integers too: a float column that holds whole numbers reads as int.
    return numeric


def schema_one(data: Data, item: tuple[str, str], ctx: Context) -> Outcome:
    column, typ = item
    if column not in data.frame.columns:
        return Outcome(
            column, FAIL, "missing", typ, f"column {column!r} is missing from {data.shown}", 1
        )
    dtype = data.frame[column].dtype
    if _dtype_matches(dtype, typ):
        return Outcome(column, PASS, str(dtype), typ)
    hint = (
        " (missing values make pandas read integers as float)"
        if typ == "int" and dtype.kind == "f"
        else ""
    )
    return Outcome(
        column,
        FAIL,
        str(dtype),
        typ,
        f"column {column!r} has dtype {dtype}, expected {typ}{hint}",
        1,
    )


def not_null_one(data: Data, column: str, ctx: Context) -> Outcome:
    series = data.series(column)
    mask = series.isna().to_numpy()
    failing = int(mask.sum())
    if not failing:
        return Outcome(column, PASS, 0, "no nulls")
    examples = row_examples(mask)
    return Outcome(
        column,
        FAIL,
        failing,
        "no nulls",
        f"{plural(failing, 'null value')} in {column!r} ({_rows_text(examples, failing)})",
        failing,
        examples,
    )


def _has_duplicates(series: Any) -> bool:
    import numpy as np

    values = series.to_numpy() if isinstance(series.dtype, np.dtype) else None
    if values is not None and values.dtype.kind in "iu":
        # Integer ids are often sorted already: one comparison pass instead of hashing.
        if len(values) < 2 or bool((values[1:] > values[:-1]).all()):
            return False
        ordered = np.sort(values)
        return bool((ordered[1:] == ordered[:-1]).any())
    return not series.dropna().is_unique if series.hasnans else not series.is_unique


def unique_one(data: Data, key: tuple[str, ...], ctx: Context) -> Outcome:
    import numpy as np

    label = "+".join(key)
    if len(key) == 1:
        series = data.series(key[0])
        if not _has_duplicates(series):
            return Outcome(label, PASS, 0, "unique")
        mask = (series.duplicated(keep=False) & series.notna()).to_numpy()
    else:
        mask = data.frame[[data.series(c).name for c in key]].duplicated(keep=False).to_numpy()
        if not mask.any():
            return Outcome(label, PASS, 0, "unique")
    failing = int(mask.sum())
    positions = np.flatnonzero(mask)
    groups = data.frame.iloc[positions].groupby(list(key), sort=False, dropna=False).indices
    examples: list[dict[str, Any]] = []
    for value, members in list(groups.items())[:MAX_EXAMPLES]:
        values = value if isinstance(value, tuple) else (value,)
        examples.append(
            {
                "value": jsonable(values[0]) if len(key) == 1 else [jsonable(v) for v in values],
                "rows": [int(positions[m]) for m in members[:MAX_EXAMPLES]],
                "count": len(members),
            }
        )
    shown = "; ".join(
        f"{show(e['value'])} in rows {', '.join(map(str, e['rows']))}" for e in examples
    )
    return Outcome(
        label,
        FAIL,
        failing,
        "unique",
        f"{plural(failing, 'row')} share duplicated values of {label!r}: {shown}",
        failing,
        tuple(examples),
    )


def between_one(data: Data, item: tuple[str, float | None, float | None], ctx: Context) -> Outcome:
    import numpy as np

    column, low, high = item
    values = _numeric(data.series(column), column, "between")
    expected = _bounds_text(low, high)
    present = values if values.dtype.kind in "iu" else values[~np.isnan(values)]
    if not len(present):
        return Outcome(column, PASS, None, expected)
    lo, hi = present.min(), present.max()
    observed = {"min": jsonable(lo), "max": jsonable(hi)}
    if (low is None or lo >= low) and (high is None or hi <= high):
        return Outcome(column, PASS, observed, expected)
    mask = np.zeros(len(values), dtype=bool)
    if low is not None:
        mask |= values < low  # NaN compares False: nulls are not_null's business
    if high is not None:
        mask |= values > high
    failing = int(mask.sum())
    examples = row_examples(mask, data.frame[column])
    return Outcome(
        column,
        FAIL,
        observed,
        expected,
        f"{plural(failing, 'value')} of {column!r} outside {expected} "
        f"({_rows_text(examples, failing)})",
        failing,
        examples,
    )


def allowed_one(data: Data, item: tuple[str, tuple[Any, ...]], ctx: Context) -> Outcome:
    import numpy as np

    column, values = item
    series = data.series(column)
    expected = f"in {list(values)}"
    raw = series.to_numpy() if isinstance(series.dtype, np.dtype) else None
    if raw is not None and raw.dtype.kind in "iu" and len(raw):
        lo = int(raw.min())
        if int(raw.max()) - lo <= 1_000_000:
            # Small integer codes (labels, classes): count each value once, no hashing.
            present = np.flatnonzero(np.bincount(raw - lo)) + lo
            allowed = set(values)
            if all(int(v) in allowed for v in present):
                return Outcome(column, PASS, 0, expected)
    mask = (~series.isin(list(values)) & series.notna()).to_numpy()
    failing = int(mask.sum())
    if not failing:
        return Outcome(column, PASS, 0, expected)
    counts = series[mask].value_counts().head(MAX_EXAMPLES)
    examples = []
    for value, count in counts.items():
        rows = np.flatnonzero((series == value).to_numpy())[:3]
        examples.append(
            {"value": jsonable(value), "count": int(count), "rows": [int(r) for r in rows]}
        )
    shown = ", ".join(
        f"{show(e['value'])} ({e['count']}x, {'row' if e['count'] == 1 else 'rows'} "
        f"{', '.join(map(str, e['rows']))}{', ...' if e['count'] > len(e['rows']) else ''})"
        for e in examples
    )
    return Outcome(
        column,
        FAIL,
        failing,
        expected,
        f"{plural(failing, 'value')} of {column!r} not allowed: {shown}",
        failing,
        tuple(examples),
    )


def regex_one(data: Data, item: tuple[str, str], ctx: Context) -> Outcome:
    import pandas as pd

    column, pattern = item
    series = data.series(column)
    text = series if isinstance(series.dtype, pd.StringDtype) else series.astype("str")
    matched = text.str.fullmatch(pattern).to_numpy(dtype=bool, na_value=True)
    mask = ~matched & series.notna().to_numpy()
    failing = int(mask.sum())
    expected = f"matches {pattern}"
    if not failing:
        return Outcome(column, PASS, 0, expected)
    examples = row_examples(mask, series)
    return Outcome(
        column,
        FAIL,
        failing,
        expected,
        f"{plural(failing, 'value')} of {column!r} not matching {pattern!r} "
        f"({_rows_text(examples, failing)})",
        failing,
        examples,
    )


def class_balance_one(
    data: Data, item: tuple[str, float | None, float | None], ctx: Context
) -> Outcome:
    column, low, high = item
    shares = data.series(column).value_counts(normalize=True, dropna=True)
    observed = {str(jsonable(k)): round(float(v), 4) for k, v in shares.items()}
    expected = f"each class share {_bounds_text(low, high)}"
    bad = [
        (k, float(v))
        for k, v in shares.items()
        if (low is not None and v < low) or (high is not None and v > high)
    ]
    if not bad:
        return Outcome(column, PASS, observed, expected)
    examples = tuple({"class": jsonable(k), "share": round(v, 4)} for k, v in bad[:MAX_EXAMPLES])
    shown = ", ".join(f"{show(e['class'])}: {e['share']:.1%}" for e in examples)
    return Outcome(
        column,
        FAIL,
        observed,
        expected,
        f"{plural(len(bad), 'class', 'classes')} of {column!r} outside "
        f"{_bounds_text(low, high)}: {shown}",
        len(bad),
        examples,
    )


COLUMN_CHECKS: dict[str, Callable[[Data, Any, Context], Outcome]] = {
    "schema": schema_one,
    "not_null": not_null_one,
    "unique": unique_one,
    "between": between_one,
    "allowed": allowed_one,
    "regex": regex_one,
    "class_balance": class_balance_one,
}


# --- whole-table checks: (check, data, context) -> [Outcome] --------------------------------


def rows_check(check: Check, data: Data, ctx: Context) -> list[Outcome]:
    low, high = check.args
    count = len(data.frame)
    expected = _bounds_text(low, high)
    if (low is None or count >= low) and (high is None or count <= high):
        return [Outcome(None, PASS, count, expected)]
    return [
        Outcome(
            None,
            FAIL,
            count,
            expected,
            f"{data.shown} has {plural(count, 'row')}, expected {expected}",
            1,
        )
    ]


def no_duplicate_rows_check(check: Check, data: Data, ctx: Context) -> list[Outcome]:
    subset = None if check.args is None else [data.series(c).name for c in check.args]
    frame = data.frame if subset is None else data.frame[subset]
    mask = frame.duplicated(keep=False).to_numpy()
    failing = int(mask.sum())
    column = None if subset is None else "+".join(subset)
    if not failing:
        return [Outcome(column, PASS, 0, "no duplicate rows")]
    import numpy as np
    import pandas as pd

    positions = np.flatnonzero(mask)
    hashes = pd.util.hash_pandas_object(frame.iloc[positions], index=False).to_numpy()
    groups = list(pd.Series(hashes).groupby(hashes, sort=False).indices.values())[:MAX_EXAMPLES]
    examples = tuple({"rows": [int(positions[p]) for p in g[:MAX_EXAMPLES]]} for g in groups)
    shown = "; ".join("rows " + ", ".join(map(str, e["rows"])) for e in examples)
    return [
        Outcome(
            column,
            FAIL,
            failing,
            "no duplicate rows",
            f"{plural(failing, 'row')} duplicated: {shown}",
            failing,
            examples,
        )
    ]


def _psi_bins(current: Any, reference: Any, bins: int) -> tuple[list[str], Any, Any]:
    """Shares of each bin (numbers: reference quantiles; else: categories), nulls last."""
    import numpy as np
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    numeric = all(
        is_numeric_dtype(s.dtype) and not is_bool_dtype(s.dtype) for s in (current, reference)
    )
    if numeric:
        ref = reference.to_numpy(dtype="float64", na_value=np.nan)
        cur = current.to_numpy(dtype="float64", na_value=np.nan)
        present = ref[~np.isnan(ref)]
        edges = (
            np.unique(np.quantile(present, np.linspace(0, 1, bins + 1))[1:-1])
            if len(present)
            else np.array([])
        )
        labels = [
            f"[{a:g}, {b:g})" for a, b in zip([-np.inf, *edges], [*edges, np.inf], strict=True)
        ]

        def shares(values: Any) -> Any:
            nan = np.isnan(values)
            counts = np.bincount(
                np.searchsorted(edges, values[~nan], side="right"), minlength=len(labels)
            )
            return np.append(counts, nan.sum()) / max(len(values), 1)

        return [*labels, "null"], shares(cur), shares(ref)
    cur_counts = current.value_counts(dropna=False, normalize=True)
    ref_counts = reference.value_counts(dropna=False, normalize=True)
    keys = list(pd.Index(ref_counts.index).union(pd.Index(cur_counts.index), sort=False))
    return (
        [str(jsonable(k)) for k in keys],
        cur_counts.reindex(keys, fill_value=0).to_numpy(dtype=float),
        ref_counts.reindex(keys, fill_value=0).to_numpy(dtype=float),
    )


def drift_check(check: Check, data: Data, ctx: Context) -> list[Outcome]:
    import numpy as np

    args = check.args
    reference = ctx.store.table(args["reference"], "reference")
    columns = args["columns"] or [c for c in data.frame.columns if c in reference.frame.columns]
    expected = f"psi <= {args['max_psi']:g}"
    outcomes = []
    for column in columns:
        current = data.series(column)
        if column not in reference.frame.columns:
            raise CheckProblem(
                column, f"column {column!r} is not in the reference file {reference.shown}"
            )
        labels, cur, ref = _psi_bins(current, reference.frame[column], args["bins"])
        # A small floor keeps empty bins from making the logarithm infinite.
        cur_s, ref_s = np.clip(cur, 1e-4, None), np.clip(ref, 1e-4, None)
        contributions = (cur_s - ref_s) * np.log(cur_s / ref_s)
        psi = float(contributions.sum())
        if psi <= args["max_psi"]:
            outcomes.append(Outcome(column, PASS, round(psi, 6), expected))
            continue
        order = np.argsort(-contributions)
        # Bins that alone contribute more than their equal share of the allowed PSI.
        failing = int((contributions > args["max_psi"] / len(labels)).sum())
        examples = tuple(
            {
                "bin": labels[i],
                "reference": round(float(ref[i]), 4),
                "current": round(float(cur[i]), 4),
            }
            for i in order[:MAX_EXAMPLES]
            if contributions[i] > 0
        )
        shown = ", ".join(
            f"{e['bin']}: {e['reference']:.1%} -> {e['current']:.1%}" for e in examples[:3]
        )
        outcomes.append(
            Outcome(
                column,
                FAIL,
                round(psi, 6),
                expected,
                f"{column!r} drifted from {reference.shown}: "
                f"psi {psi:.3f} > {args['max_psi']:g} ({shown})",
                failing,
                examples,
            )
        )
    return outcomes


def custom_check(check: Check, data: Data, ctx: Context) -> list[Outcome]:
    func = import_function(check.args, ctx.root)
    try:
        verdict = func(data.frame)
    except Exception as exc:  # the user's code: any exception is their check erroring
        raise CheckProblem(
            check.args, f"custom function raised {type(exc).__name__}: {exc}"
        ) from exc
    message = ""
    if isinstance(verdict, tuple) and len(verdict) == 2 and isinstance(verdict[1], str):
        verdict, message = verdict
    import numpy as np

    if not isinstance(verdict, bool | np.bool_):
        raise CheckProblem(
            check.args,
            f"custom function returned {type(verdict).__name__}; expected bool or (bool, message)",
        )
    if verdict:
        return [Outcome(None, PASS, message or "pass", "pass", message)]
    return [
        Outcome(None, FAIL, message or "fail", "pass", message or f"{check.args} returned False", 1)
    ]


def import_function(spec: str, root: Path) -> Callable[..., Any]:
    """``pkg.module:function`` imported with the project root first on ``sys.path``."""
    import importlib
    import sys

    module_name, _, name = spec.partition(":")
    root_str = str(root)
    # sys.path is global: stages checked in parallel threads take turns.
    with _IMPORT_LOCK:
        added = root_str not in sys.path
        if added:
            sys.path.insert(0, root_str)
        importlib.invalidate_caches()  # the module may have been written since start-up
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or the module's own code failing on import
            raise CheckProblem(
                spec, f"cannot import {module_name}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            if added:
                sys.path.remove(root_str)
    func = getattr(module, name, None)
    if not callable(func):
        raise CheckProblem(spec, f"module {module_name} has no function {name!r}")
    return func  # type: ignore[no-any-return]


def command_check(check: Check, data: Data | None, ctx: Context) -> list[Outcome]:
    import os
    import signal
    import subprocess

    cmd, timeout = check.args["cmd"], check.args["timeout"]
    # A session of its own, so that a timeout stops the command's children too.
    proc = subprocess.Popen(
        cmd,
        shell=True,
        cwd=ctx.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise CheckProblem("command", f"{cmd!r} did not finish within {timeout:g} s") from exc
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)  # Ctrl-C: leave no command running behind us
        proc.wait()
        raise
    if proc.returncode == 0:
        return [Outcome(None, PASS, 0, "exit 0")]
    tail = [line for line in output.splitlines() if line.strip()][-3:]
    return [
        Outcome(
            None,
            FAIL,
            proc.returncode,
            "exit 0",
            f"{cmd!r} exited with {proc.returncode}" + (f": {' | '.join(tail)}" if tail else ""),
            1,
            tuple({"output": line} for line in tail),
        )
    ]


TABLE_CHECKS: dict[str, Callable[[Check, Any, Context], list[Outcome]]] = {
    "rows": rows_check,
    "no_duplicate_rows": no_duplicate_rows_check,
    "drift": drift_check,
    "custom": custom_check,
    "command": command_check,
}


def error_outcome(column: str | None, message: str) -> Outcome:
    """An outcome for a check that could not be evaluated."""
    return Outcome(column, ERROR, None, "", message)
