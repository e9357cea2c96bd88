"""Check suites as declared in YAML: parsing, validation and ``include:`` resolution.

Everything here is pure and light (PyYAML and the standard library only), so that
the pipeline can load and validate suites without paying for pandas or sklearn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mlops.core.sections import read_document
from mlops.core.yamlio import Lines, parsed_cache_dir
from mlops.errors import CheckError

#: Check types written as ``- type: argument`` under ``expect:``.
DATA_CHECK_TYPES = (
    "schema",
    "not_null",
    "unique",
    "between",
    "allowed",
    "rows",
    "no_duplicate_rows",
    "drift",
    "regex",
    "class_balance",
    "custom",
    "command",
)
MODEL_CHECK_TYPES = ("metric", "predicts")
CHECK_TYPES = DATA_CHECK_TYPES + MODEL_CHECK_TYPES
#: The one expression name that is not a scikit-learn metric.
LATENCY = "latency_ms_per_1k_rows"
SCHEMA_TYPES = ("int", "float", "number", "str", "bool", "datetime", "category")
SUITE_KEYS = ("data", "model", "target", "features", "expect", "description")
_OPS = (">=", "<=", "==", ">", "<")
_EXPRESSION = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|==|>|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
# Check types whose subject is the suite's ``data:`` file.
_NEEDS_DATA = frozenset(DATA_CHECK_TYPES) - {"command"}


class CheckProblem(CheckError):
    """A check cannot be evaluated; ``key`` is the YAML key (or column) at fault.

    Raised and caught inside ``mlops.checks``: the runner turns it into a result
    with status ``error`` whose message names the suite, the check and the key.
    """

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(detail)
        self.key = key


@dataclass(frozen=True)
class Condition:
    """``name op threshold``, as in ``accuracy >= 0.9``."""

    name: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the condition."""
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<=":
            return value <= self.threshold
        if self.op == ">":
            return value > self.threshold
        if self.op == "<":
            return value < self.threshold
        return value == self.threshold

    @property
    def expected(self) -> str:
        return f"{self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Check:
    """One item under ``expect:``.

    ``args`` is the argument normalised by this module; its shape per ``kind``:
    schema ``((col, type), ...)``; not_null ``(col, ...)``; unique ``((col, ...), ...)``
    (one key per tuple); between ``((col, low|None, high|None), ...)``; allowed
    ``((col, (value, ...)), ...)``; rows ``(min|None, max|None)``; no_duplicate_rows
    ``(col, ...)`` or ``None`` for all columns; drift ``{"reference", "max_psi",
    "bins", "columns"}``; regex ``((col, pattern), ...)``; class_balance
    ``((col, min|None, max|None), ...)``; custom ``"pkg.module:function"``; command
    ``{"cmd", "timeout"}``; score and latency a :class:`Condition`; metric ``{"file",
    "key", "min", "max"}``; predicts ``{"rows", "column", "tolerance"}``.
    """

    kind: str
    label: str
    args: Any
    index: int
    where: str

    def columns(self) -> frozenset[str] | None:
        """Columns of the suite's data this check reads (``None``: all of them)."""
        if self.kind in ("schema", "between", "allowed", "regex", "class_balance"):
            return frozenset(item[0] for item in self.args)
        if self.kind == "not_null":
            return frozenset(self.args)
        if self.kind == "unique":
            return frozenset(col for key in self.args for col in key)
        if self.kind == "no_duplicate_rows":
            return None if self.args is None else frozenset(self.args)
        if self.kind == "drift":
            cols = self.args["columns"]
            return None if cols is None else frozenset(cols)
        if self.kind == "custom":
            return None
        return frozenset()


@dataclass(frozen=True)
class Suite:
    """A named list of checks, with the files they apply to."""

    name: str
    checks: tuple[Check, ...]
    where: str
    data: str | None = None
    model: str | None = None
    target: str | None = None
    features: tuple[str, ...] | None = None
    description: str = ""

    def definition(self) -> dict[str, Any]:
        """What the suite checks, and on which files: not where it is written."""
        return {
            "data": self.data,
            "model": self.model,
            "target": self.target,
            "features": self.features,
            "checks": [[c.kind, c.label, c.args] for c in self.checks],
        }

    def data_columns(self) -> frozenset[str] | None:
        """Columns of ``data`` that running this suite needs (``None``: all)."""
        needed: set[str] = set()
        for check in self.checks:
            if check.kind in _NEEDS_DATA:
                cols = check.columns()
                if cols is None:
                    return None
                needed |= cols
            elif check.kind in ("score", "latency"):
                if self.features is None:
                    return None
                needed.update(self.features)
                if self.target:
                    needed.add(self.target)
        return frozenset(needed)


class StageSuites(NamedTuple):
    """The suites a pipeline stage names (the pipeline reads its ``checks:``)."""

    name: str
    before: tuple[str, ...]
    after: tuple[str, ...]


def load_suites(mlops_yaml: Path) -> dict[str, Suite]:
    """Every suite under ``checks:`` of ``mlops_yaml`` and of the files it ``include:``s.

    Other top-level keys (``stages``, ``monitor``...) are left to their owners. A
    missing ``mlops_yaml`` holds no suites.
    """
    suites: dict[str, Suite] = {}
    if mlops_yaml.exists():
        _load_file(mlops_yaml.resolve(), mlops_yaml.resolve().parent, (), set(), suites, True)
    return suites


def suites_fingerprint(named: Iterable[tuple[str, str]], suites: Mapping[str, Suite]) -> str:
    """A hash of the definitions of the suites ``named`` as (phase, name) pairs: it changes
    when one of their checks, its arguments or files change (a name not in ``suites``
    counts as undefined), and not when only their place in the YAML moves."""
    import json

    from mlops.storage.hashing import hash_bytes

    doc = [
        [phase, name, suites[name].definition() if name in suites else None]
        for phase, name in named
    ]
    return hash_bytes(json.dumps(doc, sort_keys=True, default=repr).encode())


def validate_suite_refs(names: Iterable[str], suites: Mapping[str, Suite], where: str) -> None:
    """Raise ``CheckError`` if a suite named at ``where`` (e.g. "stage 'train' checks.before")
    is not defined."""
    for name in names:
        if name not in suites:
            known = ", ".join(sorted(suites)) or "none"
            raise CheckError(
                f"{where}: suite {name!r} is not defined under checks: (defined: {known})"
            )


def parse_condition(text: str) -> Condition | None:
    """``accuracy >= 0.9`` as a :class:`Condition`; ``None`` if it does not parse."""
    match = _EXPRESSION.match(text)
    if match is None:
        return None
    return Condition(match["name"], match["op"], float(match["value"]))


# --- files and include: ----------------------------------------------------------------


def _load_file(
    path: Path,
    base: Path,
    chain: tuple[Path, ...],
    done: set[Path],
    suites: dict[str, Suite],
    is_main: bool,
) -> None:
    if path in chain:
        cycle = " -> ".join(_show(p, base) for p in (*chain, path))
        raise CheckError(f"include cycle: {cycle}")
    if path in done:
        return  # included twice through different files: its suites are already in
    done.add(path)
    shown = _show(path, base)
    if not path.exists():
        raise CheckError(f"{_show(chain[-1], base)}: included file {shown} does not exist")
    if path.is_dir():
        raise CheckError(
            f"{_show(chain[-1], base)}: included {shown} is a folder (include: lists YAML files)"
        )
    document = read_document(path, shown, CheckError, parsed_cache_dir(base))
    if document is None or document.data is None:  # removed since, or empty
        return
    data, lines = document.data, document.lines
    if not isinstance(data, dict):
        raise CheckError(f"{shown}: expected a mapping at the top level")
    if not is_main:
        extra = sorted(set(data) - {"checks", "include"})
        if extra:
            raise CheckError(
                f"{document.at((extra[0],))}: key {extra[0]!r} is not allowed in an "
                "included file (only checks: and include:)"
            )
    for name, suite in _parse_checks(data.get("checks"), shown, lines).items():
        if name in suites:
            raise CheckError(
                f"{suite.where}: suite {name!r} is already defined at {suites[name].where}"
            )
        suites[name] = suite
    includes = data.get("include") or []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise CheckError(f"{document.at(('include',))}: include: must be a list of paths")
    for item in includes:
        _load_file((path.parent / item).resolve(), base, (*chain, path), done, suites, False)


def _show(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


# --- suites ------------------------------------------------------------------------------


def _parse_checks(block: Any, shown: str, lines: Lines) -> dict[str, Suite]:
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise CheckError(
            f"{shown}:{lines.get(('checks',), 1)}: checks: must map suite names to suites"
        )
    return {str(name): _parse_suite(str(name), body, shown, lines) for name, body in block.items()}


def _parse_suite(name: str, body: Any, shown: str, lines: Lines) -> Suite:
    where = f"{shown}:{lines.get(('checks', name), 1)}"
    prefix = f"{where}: suite {name!r}"
    if not isinstance(body, dict):
        raise CheckError(f"{prefix}: expected a mapping with expect: and data:/model:")
    unknown = sorted(set(body) - set(SUITE_KEYS))
    if unknown:
        raise CheckError(f"{prefix}: unknown key {unknown[0]!r} (valid: {', '.join(SUITE_KEYS)})")
    for key in ("data", "model", "target", "description"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise CheckError(f"{prefix}, key {key!r}: expected a string")
    features = body.get("features")
    if features is not None and (
        not isinstance(features, list) or not all(isinstance(f, str) for f in features)
    ):
        raise CheckError(f"{prefix}, key 'features': expected a list of column names")
    expect = body.get("expect")
    if not isinstance(expect, list) or not expect:
        raise CheckError(f"{prefix}, key 'expect': expected a non-empty list of checks")
    checks = tuple(
        _parse_check(item, i + 1, f"{shown}:{lines.get(('checks', name, 'expect', i), 1)}", name)
        for i, item in enumerate(expect)
    )
    suite = Suite(
        name=name,
        checks=checks,
        where=where,
        data=body.get("data"),
        model=body.get("model"),
        target=body.get("target"),
        features=tuple(features) if features is not None else None,
        description=body.get("description") or "",
    )
    _check_suite_needs(suite, prefix)
    return suite


def _check_suite_needs(suite: Suite, prefix: str) -> None:
    for check in suite.checks:
        head = f"{check.where}: suite {suite.name!r}, check {check.index} ({check.label})"
        if check.kind in _NEEDS_DATA and suite.data is None:
            raise CheckError(f"{head}, key 'data': this check needs the suite's data: file")
        if check.kind in ("score", "latency", "predicts") and suite.model is None:
            raise CheckError(f"{head}, key 'model': this check needs the suite's model: file")
        if check.kind in ("score", "latency") and suite.data is None:
            raise CheckError(f"{head}, key 'data': this check needs the suite's data: file")
        if check.kind == "score" and suite.target is None:
            raise CheckError(f"{head}, key 'target': a metric needs the suite's target: column")


def _parse_check(item: Any, index: int, where: str, suite: str) -> Check:
    valid = f"{', '.join(CHECK_TYPES)}, or an expression like 'accuracy >= 0.9'"
    if isinstance(item, str):
        if item.strip() == "no_duplicate_rows":
            return Check("no_duplicate_rows", "no_duplicate_rows", None, index, where)
        condition = parse_condition(item)
        head = f"{where}: suite {suite!r}, check {index}"
        if condition is None:
            raise CheckError(
                f"{head}, key {item!r}: cannot parse the expression; expected "
                f"'<metric> <op> <number>' such as 'accuracy >= 0.9' (ops: {' '.join(_OPS)})"
            )
        kind = "latency" if condition.name == LATENCY else "score"
        return Check(kind, condition.name, condition, index, where)
    if not isinstance(item, dict) or len(item) != 1:
        raise CheckError(
            f"{where}: suite {suite!r}, check {index}: expected one 'type: argument' "
            f"or an expression (types: {valid})"
        )
    ((kind, arg),) = item.items()
    if kind not in CHECK_TYPES:
        raise CheckError(
            f"{where}: suite {suite!r}, check {index}, key {kind!r}: unknown check type "
            f"(valid: {valid})"
        )
    head = f"{where}: suite {suite!r}, check {index} ({kind})"
    return Check(kind, kind, _PARSERS[kind](arg, head), index, where)


# --- one parser per check type: validate and normalise the argument ------------------------


def _mapping(arg: Any, head: str, what: str) -> dict[str, Any]:
    if not isinstance(arg, dict) or not arg:
        raise CheckError(f"{head}: expected a mapping of {what}")
    return {str(k): v for k, v in arg.items()}


def _names(arg: Any, head: str) -> tuple[str, ...]:
    if isinstance(arg, str):
        return (arg,)
    if not isinstance(arg, list) or not arg or not all(isinstance(c, str) for c in arg):
        raise CheckError(f"{head}: expected a list of column names")
    return tuple(arg)


def _number(value: Any, head: str, key: str, whole: bool = False) -> float | None:
    """``value`` as a float, or ``None``; with ``whole``, an integer stays an int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
        raise CheckError(f"{head}, key {key!r}: expected a number, got {value!r}")
    return value if whole and isinstance(value, int) else float(value)


def _bounds(
    arg: Any, head: str, key: str, whole: bool = False
) -> tuple[float | None, float | None]:
    if isinstance(arg, list) and len(arg) == 2:
        low, high = arg
    elif isinstance(arg, dict) and arg and set(arg) <= {"min", "max"}:
        low, high = arg.get("min"), arg.get("max")
    else:
        raise CheckError(f"{head}, key {key!r}: expected [min, max] or {{min: .., max: ..}}")
    bounds = (_number(low, head, key, whole), _number(high, head, key, whole))
    if bounds == (None, None):
        raise CheckError(f"{head}, key {key!r}: give at least one of min and max")
    return bounds


def _parse_schema(arg: Any, head: str) -> tuple[tuple[str, str], ...]:
    out = []
    for col, typ in _mapping(arg, head, "column: type").items():
        if typ not in SCHEMA_TYPES:
            raise CheckError(
                f"{head}, key {col!r}: unknown type {typ!r} (valid: {', '.join(SCHEMA_TYPES)})"
            )
        out.append((col, str(typ)))
    return tuple(out)


def _parse_unique(arg: Any, head: str) -> tuple[tuple[str, ...], ...]:
    if isinstance(arg, str):
        arg = [arg]
    if not isinstance(arg, list) or not arg:
        raise CheckError(f"{head}: expected a list of columns (a nested list for a combined key)")
    return tuple(_names(key, head) for key in arg)


def _parse_between(arg: Any, head: str) -> tuple[tuple[str, float | None, float | None], ...]:
    # Whole-number bounds stay ints: an integer column is compared with them exactly.
    return tuple(
        (col, *_bounds(b, head, col, whole=True))
        for col, b in _mapping(arg, head, "column: [min, max]").items()
    )


def _parse_allowed(arg: Any, head: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    out = []
    for col, values in _mapping(arg, head, "column: [allowed values]").items():
        if not isinstance(values, list) or not values:
            raise CheckError(f"{head}, key {col!r}: expected a non-empty list of allowed values")
        out.append((col, tuple(values)))
    return tuple(out)


def _parse_rows(arg: Any, head: str) -> tuple[float | None, float | None]:
    return _bounds(arg, head, "rows")


def _parse_no_duplicate_rows(arg: Any, head: str) -> tuple[str, ...] | None:
    if arg is True:
        return None
    if isinstance(arg, list):
        return _names(arg, head)
    raise CheckError(f"{head}: expected true or a list of columns (remove the line to disable it)")


def _parse_drift(arg: Any, head: str) -> dict[str, Any]:
    spec = _mapping(arg, head, "reference:, max_psi:, columns:, bins:")
    unknown = sorted(set(spec) - {"reference", "max_psi", "columns", "bins"})
    if unknown:
        raise CheckError(
            f"{head}, key {unknown[0]!r}: unknown (valid: reference, max_psi, columns, bins)"
        )
    if not isinstance(spec.get("reference"), str):
        raise CheckError(f"{head}, key 'reference': expected the path of the reference data file")
    max_psi = _number(spec.get("max_psi", 0.2), head, "max_psi")
    bins = spec.get("bins", 10)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise CheckError(f"{head}, key 'bins': expected a whole number of at least 2")
    columns = spec.get("columns")
    return {
        "reference": spec["reference"],
        "max_psi": max_psi,
        "bins": bins,
        "columns": None if columns is None else _names(columns, f"{head}, key 'columns'"),
    }


def _parse_regex(arg: Any, head: str) -> tuple[tuple[str, str], ...]:
    out = []
    for col, pattern in _mapping(arg, head, "column: pattern").items():
        if not isinstance(pattern, str):
            raise CheckError(f"{head}, key {col!r}: expected a regular expression string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise CheckError(f"{head}, key {col!r}: invalid regular expression: {exc}") from exc
        out.append((col, pattern))
    return tuple(out)


def _parse_class_balance(arg: Any, head: str) -> tuple[tuple[str, float | None, float | None], ...]:
    out = []
    for col, b in _mapping(arg, head, "column: {min: share, max: share}").items():
        low, high = _bounds(b, head, col)
        for bound in (low, high):
            if bound is not None and not 0 <= bound <= 1:
                raise CheckError(f"{head}, key {col!r}: shares are between 0 and 1, got {bound:g}")
        out.append((col, low, high))
    return tuple(out)


def _parse_custom(arg: Any, head: str) -> str:
    if not isinstance(arg, str) or not re.fullmatch(r"[\w.]+:\w+", arg):
        raise CheckError(f"{head}: expected 'package.module:function', got {arg!r}")
    return arg


def _parse_command(arg: Any, head: str) -> dict[str, Any]:
    if isinstance(arg, str):
        arg = {"cmd": arg}
    if (
        not isinstance(arg, dict)
        or not isinstance(arg.get("cmd"), str)
        or set(arg) - {"cmd", "timeout"}
    ):
        raise CheckError(f"{head}: expected a shell command or {{cmd: .., timeout: seconds}}")
    timeout = _number(arg.get("timeout", 600), head, "timeout")
    return {"cmd": arg["cmd"], "timeout": timeout}


def _parse_metric(arg: Any, head: str) -> dict[str, Any]:
    spec = _mapping(arg, head, "file:, key:, min:, max:")
    unknown = sorted(set(spec) - {"file", "key", "min", "max"})
    if unknown:
        raise CheckError(f"{head}, key {unknown[0]!r}: unknown (valid: file, key, min, max)")
    for key in ("file", "key"):
        if not isinstance(spec.get(key), str):
            raise CheckError(f"{head}, key {key!r}: expected a string")
    low, high = _number(spec.get("min"), head, "min"), _number(spec.get("max"), head, "max")
    if low is None and high is None:
        raise CheckError(f"{head}, key 'min': give at least one of min and max")
    return {"file": spec["file"], "key": spec["key"], "min": low, "max": high}


def _parse_predicts(arg: Any, head: str) -> dict[str, Any]:
    spec = _mapping(arg, head, "rows:, column:")
    unknown = sorted(set(spec) - {"rows", "column", "tolerance"})
    if unknown:
        raise CheckError(f"{head}, key {unknown[0]!r}: unknown (valid: rows, column, tolerance)")
    for key in ("rows", "column"):
        if not isinstance(spec.get(key), str):
            raise CheckError(f"{head}, key {key!r}: expected a string")
    tolerance = _number(spec.get("tolerance", 0), head, "tolerance")
    return {"rows": spec["rows"], "column": spec["column"], "tolerance": tolerance}


_PARSERS: dict[str, Any] = {
    "schema": _parse_schema,
    "not_null": _names,
    "unique": _parse_unique,
    "between": _parse_between,
    "allowed": _parse_allowed,
    "rows": _parse_rows,
    "no_duplicate_rows": _parse_no_duplicate_rows,
    "drift": _parse_drift,
    "regex": _parse_regex,
    "class_balance": _parse_class_balance,
    "custom": _parse_custom,
    "command": _parse_command,
    "metric": _parse_metric,
    "predicts": _parse_predicts,
}
