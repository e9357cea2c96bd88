"""Arrow columns as numpy arrays, value codes and counts, for the checks and statistics.

pyarrow's own ``to_numpy`` and ``pyarrow.array(list)`` import pandas (about half a
second), and ``group_by`` imports pyarrow.dataset, which does too; so numbers are
read from arrow's buffers here and grouping is done on integer codes with numpy.
Missing values are nulls and, in float columns, NaN (as pandas counts them).
"""

from __future__ import annotations

import math
from typing import Any

# Integer columns whose values span at most this many are coded by offset, no sort.
_SPAN = 1_000_000


def compute(name: str, *args: Any, options: Any = None) -> Any:
    """Call pyarrow's compute function ``name``."""
    return _compute_module().call_function(name, list(args), options)


def regex_options(pattern: str) -> Any:
    """Options of ``match_substring_regex`` for ``pattern``."""
    return _compute_module().MatchSubstringOptions(pattern)


def _compute_module() -> Any:
    """``pyarrow._compute``, the module behind ``pyarrow.compute``: importing the latter
    also builds a Python wrapper with a docstring for each of its ~300 functions, which
    costs a tenth of reading a million-row file. The public module if it moved."""
    from mlops.core.imports import import_serially

    try:
        return import_serially("pyarrow._compute")
    except ImportError:  # pragma: no cover - a pyarrow that moved it
        return import_serially("pyarrow.compute")


def is_text(typ: Any) -> bool:
    import pyarrow as pa

    # string_view (pyarrow 16+) has no is_ test in older versions.
    return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ)) or str(typ) == (
        "string_view"
    )


def is_numeric(typ: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ))


def type_name(typ: Any) -> str:
    """An arrow type as users know dtypes: int64, float64, str, bool, category... The
    null type (a column of nothing but missing values) is object, as pandas has it."""
    import pyarrow as pa

    if pa.types.is_null(typ):
        return "object"
    if pa.types.is_floating(typ):
        return f"float{typ.bit_width}"
    if pa.types.is_dictionary(typ):
        return "category"
    return "str" if is_text(typ) else str(typ)


def decoded(column: Any) -> Any:
    """A dictionary-encoded (category) column as plain values; any other column as is."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _chunks(array: Any) -> list[Any]:
    import pyarrow as pa

    return list(array.chunks) if isinstance(array, pa.ChunkedArray) else [array]


def _bits(buffer: Any, offset: int, length: int) -> Any:
    import numpy as np

    packed = np.frombuffer(buffer, dtype=np.uint8)
    return np.unpackbits(packed, count=offset + length, bitorder="little")[offset:].view(bool)


def storage_dtype(typ: Any) -> Any:
    """The numpy dtype of a numeric, boolean or temporal arrow type's values (temporal:
    their integer storage)."""
    import numpy as np
    import pyarrow as pa

    width = typ.bit_width // 8
    if pa.types.is_boolean(typ):
        return np.dtype(bool)
    if pa.types.is_floating(typ):
        return np.dtype(f"f{width}")
    if pa.types.is_unsigned_integer(typ):
        return np.dtype(f"u{width}")
    return np.dtype(f"i{width}")


def null_mask(chunk: Any) -> Any:
    """A numpy mask of the null slots of a (non-chunked) arrow array."""
    import numpy as np

    if not chunk.null_count:
        return np.zeros(len(chunk), dtype=bool)
    return ~_bits(chunk.buffers()[0], chunk.offset, len(chunk))


def to_numpy(array: Any, raw: bool = False) -> Any:
    """A numeric or boolean arrow array (chunked or not) as one numpy array.

    Integers and floats keep their dtype; with nulls they become floats with NaN in
    the null slots, unless ``raw`` (then a null slot holds whatever its storage holds).
    Booleans become ``bool`` (nulls False). Dates, times and timestamps become their
    integer storage, which orders as they do.
    """
    import numpy as np

    dtype = storage_dtype(array.type)
    nulls = bool(array.null_count) and not raw
    out = np.dtype(np.float64) if nulls and dtype.kind in "iu" else dtype
    parts = []
    for chunk in _chunks(array):
        offset, length = chunk.offset, len(chunk)
        if not length:
            continue
        buffers = chunk.buffers()
        if dtype.kind == "b":
            values = _bits(buffers[1], offset, length)
        else:
            values = np.frombuffer(buffers[1], dtype=dtype, count=offset + length)[offset:]
        if nulls and chunk.null_count:
            values = values.astype(out)  # a copy: the table's own values stay untouched
            values[null_mask(chunk)] = False if dtype.kind == "b" else np.nan
        parts.append(values)
    if len(parts) == 1:
        return parts[0].astype(out, copy=False)
    return np.concatenate(parts).astype(out, copy=False) if parts else np.empty(0, out)


def missing(column: Any) -> Any:
    """A numpy mask of the rows where ``column`` is null, or NaN in a float column."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_floating(column.type):
        return np.isnan(to_numpy(column))  # nulls come out as NaN
    if not column.null_count:
        return np.zeros(len(column), dtype=bool)
    if pa.types.is_null(column.type):
        return np.ones(len(column), dtype=bool)
    return np.concatenate([null_mask(c) for c in _chunks(column)])


def missing_count(column: Any) -> int:
    """How many rows of ``column`` are missing; no mask is made when none are."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_floating(column.type):
        values = to_numpy(column)
        # The minimum is NaN if any value is: one pass, no mask, for the common case.
        if not len(values) or not np.isnan(values.min()):
            return 0
        return int(np.count_nonzero(np.isnan(values)))
    return int(column.null_count)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def present(column: Any) -> Any:
    """The present values of a numeric, boolean or temporal column as a numpy array that
    sorts as the values do; ``None`` for other types (text...)."""
    import pyarrow as pa

    typ = column.type
    temporal = pa.types.is_temporal(typ) and not pa.types.is_interval(typ)
    if not (is_numeric(typ) or pa.types.is_boolean(typ) or temporal):
        return None
    values = to_numpy(column, raw=True)
    gone = missing(column)
    return values[~gone] if gone.any() else values


def _offsets(values: Any, gone: Any) -> tuple[Any, Any] | None:
    """Integer values (``gone`` marks the missing) as codes ``value - min``, with the
    values by code, if they span at most ``_SPAN`` (labels, classes): no sort, no hashing."""
    import numpy as np

    if values.dtype.kind not in "iu":
        return None
    some_gone = bool(gone.any())
    kept = values[~gone] if some_gone else values
    if not len(kept):
        return None
    lo, hi = int(kept.min()), int(kept.max())
    if hi - lo > _SPAN:
        return None
    if lo == 0 and not some_gone and values.dtype == np.int64:
        found = values  # the codes already (the table's own buffer: codes are only read)
    else:
        # Signed values widened first: in int8, 127 - (-128) overflows. Unsigned ones
        # (uint64 may exceed int64) cannot go below ``lo``, nor above it by more than _SPAN.
        wide = values.astype(np.int64, copy=False) if values.dtype.kind == "i" else values
        found = (wide - wide.dtype.type(lo)).astype(np.int64, copy=False)
        found[gone] = -1
    return found, np.arange(lo, hi + 1, dtype=values.dtype)


def codes(column: Any) -> tuple[Any, Any]:
    """An integer code per row (equal values get equal codes; -1 where missing) and the
    values by code, a numpy or arrow array: ``values[code]``. The column's type must be
    :func:`comparable`."""
    import numpy as np
    import pyarrow as pa

    gone = missing(column)
    if is_numeric(column.type) or pa.types.is_boolean(column.type):
        values = to_numpy(column, raw=True)
        offsets = _offsets(values, gone)
        if offsets is not None:
            return offsets
        distinct, found = np.unique(values, return_inverse=True)
        found = found.astype(np.int64).reshape(-1)
        found[gone] = -1
        return found, distinct
    array = _hashable(column)
    if pa.types.is_nested(array.type):
        return _first_seen(_nested_keys(array), gone, array)
    encoded = compute("dictionary_encode", array)
    found = to_numpy(encoded.indices, raw=True).astype(np.int64)  # a writable copy
    found[gone] = -1
    return found, encoded.dictionary


def comparable(typ: Any) -> bool:
    """Whether :func:`codes` can tell values of the arrow type ``typ`` equal or apart: the
    types arrow hashes, and lists, maps and structs of comparable types; not unions, list
    views or run-end encoded arrays."""
    import pyarrow as pa

    if isinstance(typ, pa.BaseExtensionType):
        return comparable(typ.storage_type)
    if pa.types.is_dictionary(typ):
        return comparable(typ.value_type)
    if pa.types.is_map(typ):
        return comparable(typ.key_type) and comparable(typ.item_type)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return comparable(typ.value_type)
    if pa.types.is_struct(typ):
        return all(comparable(typ.field(i).type) for i in range(typ.num_fields))
    return not pa.types.is_nested(typ)


def _hashable(column: Any) -> Any:
    """``column`` as one arrow array of plain values: categories decoded, an extension
    type (a UUID...) as its storage."""
    import pyarrow as pa

    array = decoded(column)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.storage if isinstance(array.type, pa.BaseExtensionType) else array


def _nested_keys(array: Any) -> Any:
    """A number per row of a list, map or struct array, equal where the values are equal,
    as Python compares the lists and dicts they are (missing rows get any number).

    A list is the bytes of its items' codes, which arrow's hashing numbers; a struct
    combines its fields' codes as :func:`duplicates` combines columns."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_struct(array.type):
        keys = np.zeros(len(array), dtype=np.int64)
        for field in array.flatten():
            keys = _mix(keys, codes(field)[0] + 1)  # 0: a missing field
        return keys
    if pa.types.is_fixed_size_list(array.type):  # its values ignore a slice's offset
        array = array.cast(pa.list_(array.type.value_field))
    items = codes(array.values)[0] + 1  # 0: a missing item; .values ignores the slice,
    starts = to_numpy(array.offsets).astype(np.int64) * items.itemsize  # .offsets do not
    as_bytes = pa.Array.from_buffers(
        pa.large_binary(), len(array), [None, pa.py_buffer(starts), pa.py_buffer(items)]
    )
    return to_numpy(compute("dictionary_encode", as_bytes).indices).astype(np.int64)


def _first_seen(keys: Any, gone: Any, array: Any) -> tuple[Any, Any]:
    """:func:`codes` from a number per row (``keys``): numbered in the order the values
    first occur, as arrow's hashing numbers them, with the values of ``array`` by code."""
    import numpy as np
    import pyarrow as pa

    rows = np.flatnonzero(~gone)
    _, first, inverse = np.unique(keys[rows], return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    found = np.full(len(keys), -1, dtype=np.int64)
    found[rows] = rank[inverse.reshape(-1)]
    # From numpy's buffer: pyarrow.array(ndarray) would import pandas.
    take = np.ascontiguousarray(rows[first[order]], dtype=np.int64)
    indices = pa.Array.from_buffers(pa.int64(), len(take), [None, pa.py_buffer(take)])
    return found, compute("take", array, indices)


def distinct(column: Any) -> list[Any]:
    """The distinct present values of ``column``, as Python values (no per-row codes)."""
    import numpy as np
    import pyarrow as pa

    if is_numeric(column.type) or pa.types.is_boolean(column.type):
        values = to_numpy(column, raw=True)
        gone = missing(column)
        offsets = _offsets(values, gone)
        if offsets is not None:
            found, by_code = offsets
            counts = np.bincount(found[found >= 0] if gone.any() else found)
            return list(by_code[np.flatnonzero(counts)].tolist())
        return list(np.unique(values[~gone] if gone.any() else values).tolist())
    plain = decoded(column)
    if pa.types.is_nested(plain.type) or isinstance(plain.type, pa.BaseExtensionType):
        return list(codes(column)[1].to_pylist())  # arrow's unique takes neither
    return [v for v in compute("unique", plain).to_pylist() if not is_missing(v)]


def values_at(distinct: Any, keys: Any) -> list[Any]:
    """The Python values of ``distinct`` (from :func:`codes`) at the codes ``keys``."""
    import numpy as np

    if isinstance(distinct, np.ndarray):
        return list(distinct[np.asarray(keys, dtype=np.int64)].tolist())
    if len(keys) > 1000:
        every = distinct.to_pylist()
        return [every[k] for k in keys]
    return [distinct[int(k)].as_py() for k in keys]


def value_counts(column: Any, dropna: bool = True) -> tuple[list[Any], Any]:
    """Each value of ``column`` (missing ones left out, or counted as one ``None`` when not
    ``dropna``) and how often it occurs, most frequent first (ties: first seen first)."""
    import numpy as np

    found, distinct = codes(column)
    gone = int(np.count_nonzero(found < 0))
    counts = np.bincount(found[found >= 0] if gone else found, minlength=len(distinct))
    keys = np.flatnonzero(counts)
    values, numbers = values_at(distinct, keys), counts[keys]
    if gone and not dropna:
        values, numbers = [*values, None], np.append(numbers, gone)
    order = np.argsort(-numbers, kind="stable")
    return [values[i] for i in order], numbers[order]


def duplicates(columns: list[Any], skip_missing: bool) -> tuple[Any, Any]:
    """Rows equal on every one of ``columns``: a group number per row (-1: a row no other
    row equals) and the size of each group. Missing values equal each other, but with
    ``skip_missing`` a row with a missing value is never a duplicate."""
    import numpy as np

    rows = len(columns[0])
    combined = np.zeros(rows, dtype=np.int64)
    alone = np.zeros(rows, dtype=bool)
    for column in columns:
        found, _ = codes(column)
        if skip_missing:
            alone |= found < 0
        combined = _mix(combined, found + 1)  # missing values: code 0, equal to each other
    combined[alone] = -1
    groups, inverse, sizes = np.unique(combined, return_inverse=True, return_counts=True)
    group = inverse.astype(np.int64).reshape(-1)
    single = (sizes[group] < 2) | (groups[group] < 0)
    group[single] = -1
    return group, sizes


def _mix(combined: Any, found: Any) -> Any:
    """One code per row for the pairs (``combined``, ``found``) of codes (none negative)."""
    import numpy as np

    size = int(found.max()) + 1 if len(found) else 1
    if int(combined.max(initial=0)) >= (2**62) // size:  # keep the product in int64
        combined = np.unique(combined, return_inverse=True)[1].astype(np.int64).reshape(-1)
    return combined * size + found
