"""Built-in data checks, vectorised over the columns of a pyarrow Table with numpy.

Each check returns :class:`Outcome` values. The common path (the check passes) does
the least work possible, often a min/max or a sort; the rows and values that broke
a check are only looked for once it is known to have failed. Missing values are
nulls and, in float columns, NaN (as pandas counts them).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.checks.files import DataStore
from mlops.checks.report import ERROR, FAIL, PASS, CheckStatus
from mlops.checks.spec import Check, CheckProblem, Suite
from mlops.core.imports import importing
from mlops.tables import columns as col
from mlops.tables.read import Data

MAX_EXAMPLES = 5


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
    status: CheckStatus
    observed: Any
    expected: str
    message: str = ""
    failing: int = 0
    examples: tuple[Any, ...] = ()


def jsonable(value: Any) -> Any:
    """A numpy, pandas or pyarrow scalar as a plain Python value (NaN and NaT become None)."""
    if hasattr(value, "as_py"):
        value = value.as_py()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):  # a list or map in a JSON-lines or Parquet column
        return [jsonable(v) for v in value]
    if isinstance(value, dict):  # a struct: a JSON object
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return None if str(value) == "NaT" else value.isoformat()
    return str(value)


def show(value: Any) -> str:
    """A value as a short string for messages."""
    value = jsonable(value)
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def row_examples(mask: Any, column: Any = None) -> tuple[dict[str, Any], ...]:
    """The first rows (0-based positions) where ``mask`` is true, with their values in
    ``column`` (a pyarrow array) if given."""
    import numpy as np

    rows = [int(r) for r in np.flatnonzero(mask)[:MAX_EXAMPLES]]
    if column is None:
        return tuple({"row": r} for r in rows)
    return tuple({"row": r, "value": jsonable(column[r])} for r in rows)


def plural(count: int, word: str, words: str = "") -> str:
    """``1 value``, ``2 values``."""
    return f"{count} {word if count == 1 else words or word + 's'}"


def _comparable(data: Data, name: str, kind: str) -> Any:
    """The column ``name`` for a check that compares its values, or a clear error if
    they cannot be compared (unions and the like, see ``columns.comparable``)."""
    array = data.column(name)
    if not col.comparable(array.type):
        raise CheckProblem(
            name, f"column {name!r} holds nested values ({array.type}) that {kind} cannot compare"
        )
    return array


def _rows_text(examples: tuple[dict[str, Any], ...], failing: int) -> str:
    parts = [f"{e['row']}: {show(e['value'])}" if "value" in e else str(e["row"]) for e in examples]
    more = ", ..." if failing > len(examples) else ""
    return f"{'row' if len(parts) == 1 and not more else 'rows'} {', '.join(parts)}{more}"


def _bounds_text(low: float | None, high: float | None) -> str:
    def text(bound: float | None) -> str:
        return str(bound) if isinstance(bound, int) else f"{bound:g}"  # ints in full

    if low is None:
        return f"<= {text(high)}"
    if high is None:
        return f">= {text(low)}"
    return f"[{text(low)}, {text(high)}]"


# --- per-column checks: (data, item, context) -> Outcome ------------------------------------


def _type_matches(array: Any, name: str) -> bool:
    import pyarrow as pa

    typ = array.type
    if pa.types.is_null(typ):
        # pandas' object: text only if it has no values at all (is_string_dtype says so).
        return name == "str" and not len(array)
    if name == "category":
        return bool(pa.types.is_dictionary(typ))
    if name == "bool":
        return bool(pa.types.is_boolean(typ))
    if name == "datetime":
        return bool(pa.types.is_timestamp(typ) or pa.types.is_date(typ))
    if name == "str":
        return col.is_text(typ)
    if name == "int":
        return bool(pa.types.is_integer(typ))
    # float (and number) accepts integers too: a float column of whole numbers reads as int.
    return col.is_numeric(typ)


def schema_one(data: Data, item: tuple[str, str], ctx: Context) -> Outcome:
    column, typ = item
    if column not in data.table.column_names:
        return Outcome(
            column, FAIL, "missing", typ, f"column {column!r} is missing from {data.shown}", 1
        )
    array = data.column(column)
    dtype = col.type_name(array.type)
    if _type_matches(array, typ):
        return Outcome(column, PASS, dtype, typ)
    return Outcome(
        column, FAIL, dtype, typ, f"column {column!r} has dtype {dtype}, expected {typ}", 1
    )


def not_null_one(data: Data, column: str, ctx: Context) -> Outcome:
    array = data.column(column)
    failing = col.missing_count(array)
    if not failing:
        return Outcome(column, PASS, 0, "no nulls")
    mask = col.missing(array)
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


def _has_duplicates(array: Any) -> bool:
    import numpy as np

    values = col.present(array)
    if values is None:  # text and other types: code them by hashing
        found, _ = col.codes(array)
        kept = found[found >= 0]
        return bool(len(kept)) and int(np.bincount(kept).max()) > 1
    if len(values) < 2 or bool((values[1:] > values[:-1]).all()):
        return False  # ids are often sorted already: one comparison pass instead of a sort
    ordered = np.sort(values)
    return bool((ordered[1:] == ordered[:-1]).any())


def _duplicate_examples(
    data: Data, names: list[str], skip_missing: bool, kind: str
) -> tuple[int, list[tuple[list[Any], list[int], int]]]:
    """Rows equal on the columns ``names``: how many, and the first groups of them as
    (values, first rows, size), in the order they first occur."""
    import numpy as np

    arrays = [_comparable(data, n, kind) for n in names]
    group, sizes = col.duplicates(arrays, skip_missing)
    rows = np.flatnonzero(group >= 0)
    if not len(rows):
        return 0, []
    # np.unique's first index of each group, in row order: the groups as they first occur.
    ids, first = np.unique(group[rows], return_index=True)
    examples = []
    for g in ids[np.argsort(first)][:MAX_EXAMPLES]:
        members = np.flatnonzero(group == g)
        head = int(members[0])
        values = [jsonable(array[head]) for array in arrays]
        examples.append((values, [int(r) for r in members[:MAX_EXAMPLES]], int(sizes[g])))
    return len(rows), examples


def unique_one(data: Data, key: tuple[str, ...], ctx: Context) -> Outcome:
    label = "+".join(key)
    arrays = [_comparable(data, c, "unique") for c in key]
    if len(key) == 1 and not _has_duplicates(arrays[0]):
        return Outcome(label, PASS, 0, "unique")
    failing, groups = _duplicate_examples(data, list(key), len(key) == 1, "unique")
    if not failing:
        return Outcome(label, PASS, 0, "unique")
    examples: tuple[dict[str, Any], ...] = tuple(
        {"value": values[0] if len(key) == 1 else values, "rows": rows, "count": count}
        for values, rows, count in groups
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
        examples,
    )


def _numbers(array: Any, name: str, kind: str) -> Any:
    """The column as a numpy array of numbers, or a clear error. Integers are their stored
    values (floats would round those past 2**53), whatever a missing slot holds; floats
    have NaN where missing; a column of nothing but missing values (type null) is NaN."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_null(array.type):
        return np.full(len(array), np.nan)
    if not col.is_numeric(array.type):
        dtype = col.type_name(array.type)
        raise CheckProblem(
            name, f"column {name!r} is not numeric (dtype {dtype}); {kind} needs numbers"
        )
    return col.to_numpy(array, raw=pa.types.is_integer(array.type))


def _outside(values: Any, low: float | None, high: float | None) -> Any:
    """A mask of ``values`` below ``low`` or above ``high`` (NaN is neither).

    An integer array and an int bound compare exactly, as pandas compares an int64
    column with Python ints, however big the bound; a float bound compares as floats.
    """
    import numpy as np

    mask = np.zeros(len(values), dtype=bool)
    for bound, below in ((low, True), (high, False)):
        if bound is None:
            continue
        if isinstance(bound, int) and values.dtype.kind in "iu":
            info = np.iinfo(values.dtype)
            if not info.min <= bound <= info.max:  # every value is on one side of it
                mask |= below == (bound > info.max)
                continue
            bound = values.dtype.type(bound)
        mask |= values < bound if below else values > bound
    return mask


def between_one(data: Data, item: tuple[str, float | None, float | None], ctx: Context) -> Outcome:
    import numpy as np

    column, low, high = item
    array = data.column(column)
    values = _numbers(array, column, "between")
    expected = _bounds_text(low, high)
    # The missing slots of an integer column hold anything: they are left out first.
    gone = col.missing(array) if values.dtype.kind in "iu" and array.null_count else None
    present = values if gone is None else values[~gone]
    if not len(present):
        return Outcome(column, PASS, None, expected)
    lo, hi = present.min(), present.max()
    if present.dtype.kind == "f" and (np.isnan(lo) or np.isnan(hi)):  # missing values
        present = present[~np.isnan(present)]
        if not len(present):
            return Outcome(column, PASS, None, expected)
        lo, hi = present.min(), present.max()
    observed = {"min": jsonable(lo), "max": jsonable(hi)}
    # The extremes decide, compared just as each value would be below.
    if not _outside(np.array([lo, hi], dtype=present.dtype), low, high).any():
        return Outcome(column, PASS, observed, expected)
    mask = _outside(values, low, high)  # NaN compares False: nulls are not_null's business
    if gone is not None:
        mask &= ~gone
    failing = int(mask.sum())
    examples = row_examples(mask, array)
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
    import pyarrow as pa

    column, values = item
    expected = f"in {list(values)}"
    array = _comparable(data, column, "allowed")
    try:
        # The column's lists and dicts cannot be looked up in a set: compare one by one.
        allowed: set[Any] | tuple[Any, ...] = (
            values if pa.types.is_nested(col.decoded(array).type) else set(values)
        )
    except TypeError:  # a list or mapping among the values: compare one by one
        allowed = values
    if all(v in allowed for v in col.distinct(array)):
        return Outcome(column, PASS, 0, expected)
    found, distinct = col.codes(array)
    kept = found[found >= 0]
    counts = np.bincount(kept, minlength=len(distinct))
    keys = np.flatnonzero(counts)
    bad = [k for k, v in zip(keys, col.values_at(distinct, keys), strict=True) if v not in allowed]
    rows = np.flatnonzero(np.isin(found, bad))
    failing = len(rows)
    # The most frequent first; ties in the order they first occur.
    codes, first = np.unique(found[rows], return_index=True)
    firsts = dict(zip(codes.tolist(), rows[first].tolist(), strict=True))
    order = sorted(bad, key=lambda k: (-counts[k], firsts[int(k)]))[:MAX_EXAMPLES]
    examples = [
        {
            "value": jsonable(value),
            "count": int(counts[k]),
            "rows": [int(r) for r in rows[found[rows] == k][:3]],
        }
        for k, value in zip(order, col.values_at(distinct, order), strict=True)
    ]
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
    import numpy as np
    import pyarrow as pa

    column, pattern = item
    array = data.column(column)
    text = col.decoded(array)
    if pa.types.is_nested(text.type):
        raise CheckProblem(
            column,
            f"column {column!r} holds nested values ({array.type}); "
            "regex matches text and numbers only",
        )
    if not col.is_text(text.type):
        text = text.cast(pa.string())  # numbers are matched by their text
    ok = None
    if not _re2_differs(pattern, text):
        try:
            # RE2, as pandas uses for arrow-backed text; nulls give null, read as False.
            anchored = col.regex_options(f"^(?:{pattern})$")
            ok = col.to_numpy(col.compute("match_substring_regex", text, options=anchored))
        except pa.ArrowInvalid:
            pass  # a pattern RE2 does not support (lookaround...)
    if ok is None:  # Python's re
        compiled = re.compile(pattern)
        ok = np.array(
            [v is None or compiled.fullmatch(v) is not None for v in text.to_pylist()], dtype=bool
        )
    mask = ~ok & ~col.missing(array)
    failing = int(mask.sum())
    expected = f"matches {pattern}"
    if not failing:
        return Outcome(column, PASS, 0, expected)
    examples = row_examples(mask, array)
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


# RE2's \w, \d and \b (and their negations) know ASCII only, and its \s leaves out \v and
# \x1c-\x1f; Python's re, which pandas uses in these cases, knows Unicode. On text without
# such characters they agree, and RE2 is many times faster.
_CLASSES = re.compile(r"\\[wWdDbBsS]")
_SPACE_CLASSES = re.compile(r"\\[sS]")


def _re2_differs(pattern: str, text: Any) -> bool:
    """Whether RE2 may judge ``text`` differently from Python's ``re`` for ``pattern``."""
    if not _CLASSES.search(pattern):
        return False
    if col.compute("all", col.compute("string_is_ascii", text)).as_py() is not True:
        return True
    if not _SPACE_CLASSES.search(pattern):
        return False
    odd_spaces = col.compute(
        "match_substring_regex", text, options=col.regex_options("[\\x0b\\x1c-\\x1f]")
    )
    return col.compute("any", odd_spaces).as_py() is not False


def class_balance_one(
    data: Data, item: tuple[str, float | None, float | None], ctx: Context
) -> Outcome:
    column, low, high = item
    keys, counts = col.value_counts(_comparable(data, column, "class_balance"))
    total = max(int(counts.sum()), 1)
    shares = [(k, int(c) / total) for k, c in zip(keys, counts, strict=True)]
    observed = {str(jsonable(k)): round(v, 4) for k, v in shares}
    expected = f"each class share {_bounds_text(low, high)}"
    bad = [
        (k, v)
        for k, v in shares
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
    count = data.rows
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
    names = list(data.table.column_names if check.args is None else check.args)
    failing, groups = _duplicate_examples(data, names, False, "no_duplicate_rows")
    column = None if check.args is None else "+".join(names)
    if not failing:
        return [Outcome(column, PASS, 0, "no duplicate rows")]
    examples = tuple({"rows": rows} for _, rows, _ in groups)
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
    """Labels and (current, reference) counts of the PSI bins of a column, missing values
    last; the bins of ``mlops monitor`` (see ``mlops.tables.stats``)."""
    import numpy as np

    from mlops.tables.stats import numeric_psi_counts, present_sorted

    if col.is_numeric(current.type) and col.is_numeric(reference.type):
        ref, cur = col.to_numpy(reference), col.to_numpy(current)
        if ref.dtype != cur.dtype:  # as monitoring reads them: both as floats
            ref, cur = ref.astype(np.float64), cur.astype(np.float64)
        (a, a_missing), (b, b_missing) = present_sorted(ref), present_sorted(cur)
        edges, ref_counts, cur_counts = numeric_psi_counts(a, a_missing, b, b_missing, bins)
        bounds = [-math.inf, *edges.tolist(), math.inf]
        labels = [
            f"({show(low)}, {show(high)}{')' if high == math.inf else ']'}"
            for low, high in itertools.pairwise(bounds)
        ]
        if len(ref_counts) > len(labels):
            labels.append("null")
        return labels, cur_counts, ref_counts
    cur_keys, cur_counts = col.value_counts(current, dropna=False)
    ref_keys, ref_counts = col.value_counts(reference, dropna=False)
    # Each value by a hashable stand-in (lists and dicts are not), in order of appearance.
    values: dict[Any, Any] = {}
    for k in [*ref_keys, *cur_keys]:
        values.setdefault(_key(k), k)
    where = {k: i for i, k in enumerate(values)}

    def spread(found: list[Any], counts: Any) -> Any:
        out = np.zeros(len(where), dtype=np.int64)
        for k, c in zip(found, counts, strict=True):
            out[where[_key(k)]] = c
        return out

    return (
        [str(jsonable(v)) for v in values.values()],
        spread(cur_keys, cur_counts),
        spread(ref_keys, ref_counts),
    )


def _key(value: Any) -> Any:
    """``value`` hashable: a list as a tuple, a dict as a tuple of its items."""
    if isinstance(value, list):
        return tuple(map(_key, value))
    if isinstance(value, dict):
        return tuple((k, _key(v)) for k, v in value.items())
    return value


def drift_check(check: Check, data: Data, ctx: Context) -> list[Outcome]:
    import numpy as np

    from mlops.tables.stats import psi_terms

    args = check.args
    reference = ctx.store.table(args["reference"], "reference")
    ref_names = reference.table.column_names
    columns = args["columns"] or [c for c in data.table.column_names if c in ref_names]
    expected = f"psi <= {args['max_psi']:g}"
    outcomes = []
    for column in columns:
        current = _comparable(data, column, "drift")
        if column not in ref_names:
            raise CheckProblem(
                column, f"column {column!r} is not in the reference file {reference.shown}"
            )
        labels, cur_counts, ref_counts = _psi_bins(
            current, _comparable(reference, column, "drift"), args["bins"]
        )
        ref, cur, contributions = psi_terms(ref_counts, cur_counts)
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


def _own_copy(frame: Any) -> Any:
    """A copy of ``frame`` that user code may edit in place: the frame is shared with the
    suites' other checks. From pandas 3 on, copy-on-write makes a shallow copy enough
    (its columns are copied only when written to); pandas 2 needs a full copy."""
    import pandas as pd

    return frame.copy(deep=int(pd.__version__.split(".", 1)[0]) < 3)


def custom_check(check: Check, data: Data, ctx: Context) -> list[Outcome]:
    func = import_function(check.args, ctx.root)
    try:
        verdict = func(_own_copy(data.frame))
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
    # sys.path is global, and so are imports: stages checked in parallel threads take turns.
    with importing():
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
    import subprocess

    from mlops.core.processes import GROUPS, kill_group

    cmd, timeout = check.args["cmd"], check.args["timeout"]
    # A group of its own, so that a timeout stops the command's children too.
    proc = GROUPS.start(
        cmd,
        shell=True,
        cwd=ctx.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",  # any bytes: the output is only shown
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        kill_group(proc.pid)
        proc.communicate()
        raise CheckProblem("command", f"{cmd!r} did not finish within {timeout:g} s") from exc
    except BaseException:
        kill_group(proc.pid)  # Ctrl-C: leave no command running behind us
        proc.wait()
        raise
    finally:
        GROUPS.finish(proc)
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
