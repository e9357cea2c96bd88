"""Request bodies to checked columns: JSON records, column-split JSON, MLflow's forms, CSV.

Every problem is a ``RequestError`` (an HTTP 4xx) naming the column at fault. Values are
checked against the model's signature in plain Python, so that the frame the model sees
holds only finite numbers where numbers are expected (the model is then told not to
check again).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

from mlops.errors import RequestError
from mlops.registry.signature import FeatureType, Signature
from mlops.serve import codec

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_MISSING = object()
_NUMBERS = {int, float}


@dataclass(frozen=True)
class Rows:
    """Checked input: each feature's values in the signature's order, and the row count."""

    names: tuple[str, ...]
    columns: tuple[list[Any], ...]
    count: int

    def names_only(self) -> Rows:
        """The names and count without the values (for whoever holds them elsewhere)."""
        return Rows(self.names, (), self.count)

    def records(self) -> list[dict[str, Any]]:
        """One mapping per row (for the prediction log)."""
        return [
            dict(zip(self.names, values, strict=True))
            for values in zip(*self.columns, strict=False)
        ]


def parse_body(body: bytes, content_type: str, signature: Signature, mlflow: bool) -> Rows:
    """Checked rows of a request body; ``mlflow`` takes MLflow's ``/invocations`` forms."""
    if not body.strip():
        raise RequestError("empty body: send JSON records, column-split JSON or CSV")
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return from_csv(body, signature)
    try:
        doc = codec.loads(body)
    except UnicodeDecodeError:
        raise RequestError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return from_mlflow(doc, signature) if mlflow else from_document(doc, signature)


def from_document(doc: Any, signature: Signature) -> Rows:
    """``/predict`` JSON: a record, a list of records, or ``{"columns": [...], "data": [...]}``."""
    if isinstance(doc, dict) and "columns" in doc and "data" in doc:
        return _split(doc, signature)
    if isinstance(doc, dict):
        return _records([doc], signature)
    if isinstance(doc, list):
        return _records(doc, signature)
    raise RequestError(
        'expected a JSON object (one row), a list of objects, or {"columns": [...], "data": [...]}'
    )


def from_mlflow(doc: Any, signature: Signature) -> Rows:
    """MLflow's scoring forms: ``dataframe_split``, ``dataframe_records``, ``instances``,
    ``inputs`` (records, lists of values in the model's column order, or column -> values)."""
    keys = [k for k in MLFLOW_KEYS if isinstance(doc, dict) and k in doc]
    if len(keys) != 1:
        raise RequestError(f"expected a JSON object with exactly one of {', '.join(MLFLOW_KEYS)}")
    value = doc[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(value, dict):
            raise RequestError('dataframe_split: expected {"columns": [...], "data": [...]}')
        return _split(value, signature)
    if keys[0] == "dataframe_records":
        if not isinstance(value, list):
            raise RequestError("dataframe_records: expected a list of objects")
        return _records(value, signature)
    if isinstance(value, dict):
        return _columnar(value, signature)
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        return _split({"columns": list(signature.names), "data": value}, signature)
    if isinstance(value, list):
        return _records(value, signature)
    raise RequestError(f"{keys[0]}: expected a list of rows or an object of columns")


def from_csv(body: bytes, signature: Signature) -> Rows:
    """CSV with a header row; values are converted to the signature's types."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise RequestError("the CSV body is not UTF-8 text") from None
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise RequestError(f"malformed CSV: {exc}") from None
    if len(table) < 2:
        raise RequestError("the CSV body has no data rows under its header")
    header = table[0]
    _check_names(header, signature)
    columns = []
    for name in signature.names:
        index = header.index(name)
        kind = _kind(signature, name)
        values = []
        for line, row in enumerate(table[1:], start=2):
            if len(row) != len(header):
                raise RequestError(
                    f"CSV line {line}: {len(row)} values for {len(header)} columns", 422
                )
            values.append(_from_text(row[index], kind, name, line))
        columns.append(values)
    return Rows(signature.names, tuple(columns), len(table) - 1)


def _split(doc: dict[str, Any], signature: Signature) -> Rows:
    names, data = doc.get("columns"), doc.get("data")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RequestError('"columns" must be a list of column names')
    if not isinstance(data, list) or not data:
        raise RequestError('"data" must be a non-empty list of rows')
    _check_names(names, signature)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(names):
            raise RequestError(
                f'"data" row {i}: expected a list of {len(names)} values, one per column', 422
            )
    columns = []
    for name in signature.names:
        index = names.index(name)
        columns.append(_checked([row[index] for row in data], _kind(signature, name), name))
    return Rows(signature.names, tuple(columns), len(data))


def _records(records: list[Any], signature: Signature) -> Rows:
    if not records:
        raise RequestError("no rows: the list of records is empty")
    wanted = set(signature.names)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestError(f"row {i}: expected an object of column: value")
        if record.keys() != wanted:
            _check_names(list(record), signature, f"row {i}: ")
    columns = tuple(
        _checked([r[name] for r in records], _kind(signature, name), name)
        for name in signature.names
    )
    return Rows(signature.names, columns, len(records))


def _columnar(doc: dict[str, Any], signature: Signature) -> Rows:
    _check_names(list(doc), signature)
    lengths = set()
    for name in signature.names:
        if not isinstance(doc[name], list):
            raise RequestError(f"column {name!r}: expected a list of values", 422, name)
        lengths.add(len(doc[name]))
    if len(lengths) != 1 or 0 in lengths:
        raise RequestError("columns must be non-empty lists of one length", 422)
    columns = tuple(_checked(doc[name], _kind(signature, name), name) for name in signature.names)
    return Rows(signature.names, columns, lengths.pop())


def _check_names(given: list[str], signature: Signature, where: str = "") -> None:
    expected = signature.names
    listed = ", ".join(expected)
    for name in given:
        if name not in expected:
            raise RequestError(
                f"{where}unknown column {name!r}: the model takes {listed}", 422, name
            )
    for name in expected:
        if name not in given:
            raise RequestError(
                f"{where}missing column {name!r}: the model takes {listed}", 422, name
            )
    if len(given) != len(set(given)):
        twice = next(n for n in given if given.count(n) > 1)
        raise RequestError(f"{where}column {twice!r} is given twice", 422, twice)


def _kind(signature: Signature, name: str) -> FeatureType:
    return signature.features[signature.names.index(name)].type


def _checked(values: list[Any], kind: FeatureType, name: str) -> list[Any]:
    """``values`` if each fits ``kind``; else the error names the column and the row."""
    if kind is FeatureType.NUMBER:
        # The common case at a glance: ints and floats whose sum is finite (so is each).
        # Anything else (or a sum that overflows) is looked at value by value.
        types = set(map(type, values))
        if types <= _NUMBERS and (float not in types or _finite_sum(values)):
            return values
    for i, value in enumerate(values):
        if not _fits(value, kind):
            raise RequestError(
                f"column {name!r} row {i}: {_described(value)} where {_expected(kind)} is expected",
                422,
                name,
            )
    return values


def _finite_sum(values: list[Any]) -> bool:
    try:
        return math.isfinite(sum(values))
    except OverflowError:  # an int too large for a float
        return False


def _fits(value: Any, kind: FeatureType) -> bool:
    kind_of = type(value)
    if kind is FeatureType.NUMBER:
        return (kind_of is float and math.isfinite(value)) or kind_of is int
    if kind is FeatureType.STRING:
        return kind_of is str
    if kind is FeatureType.BOOLEAN:
        return kind_of is bool
    return kind_of in (str, bool, int) or (kind_of is float and math.isfinite(value))


def _described(value: Any) -> str:
    if value is None:
        return "null (a missing value)"
    if isinstance(value, float):
        return f"{value} (not a finite number)"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"{type(value).__name__} {json.dumps(value)[:40]}"


def _expected(kind: FeatureType) -> str:
    return {
        FeatureType.NUMBER: "a finite number",
        FeatureType.STRING: "a string",
        FeatureType.BOOLEAN: "true or false",
        FeatureType.ANY: "a number or a string",
    }[kind]


def _from_text(text: str, kind: FeatureType, name: str, line: int) -> Any:
    """A CSV field as the signature's type."""
    if kind is FeatureType.STRING:
        return text
    if kind is FeatureType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    else:
        try:
            number = float(text)
        except ValueError:
            if kind is FeatureType.ANY:
                return text
        else:
            if math.isfinite(number):
                return number
            if kind is FeatureType.ANY:
                return text
    raise RequestError(
        f"column {name!r} CSV line {line}: {_described(text if text else None)} where "
        f"{_expected(kind)} is expected",
        422,
        name,
    )
