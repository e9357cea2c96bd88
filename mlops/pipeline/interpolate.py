"""``${...}`` in ``mlops.yaml``: values from ``vars:``, params files, foreach and matrix items.

A reference is a dotted path (``${train.seed}``, ``${item.files}``, ``${layers.0}`` or
``${layers[0]}``). A string that is one whole reference takes the value's type (so
``deps: ${item.files}`` may be a list); inside a longer string the value must be a
scalar and is written as text. ``\\${`` is a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlops.core.sections import Invalid

REFERENCE = re.compile(r"(\\?)\$\{([^{}]*)\}")
_INDEX = re.compile(r"\[(\d+)\]")


class Unresolved(Invalid):
    """A reference that names nothing, or a value that cannot be written where it is."""


@dataclass
class Namespace:
    """What references may name: ``values`` by top-level name, and which params file each
    name came from (its references are then params of the stage that uses them).

    ``load`` fills in names on first use (params files are read only when referenced).
    """

    values: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    load: Callable[[], Namespace] | None = None
    hints: dict[str, str] = field(default_factory=dict)  # why a name is not defined here

    def child(
        self, values: dict[str, Any], files: dict[str, str] | None = None, **hints: str
    ) -> Namespace:
        """This namespace with ``values`` (foreach's item and key, a stage's vars) in front."""
        return Namespace(values, files or {}, lambda: self, hints)

    def find(self, name: str) -> tuple[bool, Any, str | None]:
        """(found, value, params file or None) of a top-level ``name``."""
        if name in self.values:
            return True, self.values[name], self.files.get(name)
        if name in self.hints:
            raise KeyError(self.hints[name])
        if self.load is not None:
            return self.load().find(name)
        return False, None, None


def parts(expression: str) -> list[str]:
    """``a.b[0].c`` -> ``["a", "b", "0", "c"]``."""
    return [p for p in _INDEX.sub(r".\1", expression.strip()).split(".")]


def lookup(namespace: Namespace, expression: str) -> tuple[Any, str | None]:
    """The value of ``expression`` and the params file it came from (None: not a file).
    A missing name raises KeyError naming the part that is missing."""
    names = parts(expression)
    if not names or not all(names):
        raise KeyError(f"${{{expression}}} is not a valid reference")
    found, value, file = namespace.find(names[0])
    if not found:
        raise KeyError(f"${{{expression}}}: {names[0]!r} is not defined")
    for depth, part in enumerate(names[1:], 1):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            where = ".".join(names[:depth])
            raise KeyError(f"${{{expression}}}: {where!r} has no {part!r}")
    return value, file


def as_text(value: Any) -> str | None:
    """A scalar as it is written in a command or path; None for lists and mappings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    return None


class Substitution:
    """Replaces references in a YAML value; remembers the params each one read."""

    def __init__(self, namespace: Namespace, where: str) -> None:
        self.namespace = namespace
        self.where = where  # "stage 'train'", for messages
        self.used: dict[str, list[str]] = {}  # params file -> dotted keys referenced

    def value(self, value: Any, keys: tuple[Any, ...]) -> Any:
        if isinstance(value, str):
            return self._string(value, keys)
        if isinstance(value, list):
            return [self.value(v, (*keys, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {
                self._string(k, keys) if isinstance(k, str) else k: self.value(v, (*keys, k))
                for k, v in value.items()
            }
        return value

    def _resolve(self, expression: str, keys: tuple[Any, ...]) -> Any:
        try:
            value, file = lookup(self.namespace, expression)
        except KeyError as exc:
            raise Unresolved(keys, f"{self.where}: {exc.args[0]}") from None
        if file is not None:
            key = ".".join(parts(expression))
            self.used.setdefault(file, [])
            if key not in self.used[file]:
                self.used[file].append(key)
        return value

    def _string(self, text: str, keys: tuple[Any, ...]) -> Any:
        if "${" not in text:
            return text
        whole = REFERENCE.fullmatch(text.strip())
        if whole and not whole.group(1):  # keep the value's type: `deps: ${files}`
            return self._resolve(whole.group(2), keys)

        def replace(match: re.Match[str]) -> str:
            if match.group(1):  # \${...}: a literal ${...}
                return match.group(0)[1:]
            value = self._resolve(match.group(2), keys)
            text = as_text(value)
            if text is None:
                raise Unresolved(
                    keys,
                    f"{self.where}: ${{{match.group(2).strip()}}} is a "
                    f"{'list' if isinstance(value, list) else 'mapping'}, which cannot be "
                    "written inside a string",
                )
            return text

        return REFERENCE.sub(replace, text)


def matrix_items(matrix: dict[str, list[Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every combination of a ``matrix:``, with its name suffix (values joined by ``-``;
    a list or mapping value is named by its key and position), as DVC names them."""
    combos: list[tuple[list[str], dict[str, Any]]] = [([], {})]
    for key, values in matrix.items():
        combos = [
            ([*names, _matrix_name(key, i, v)], {**item, key: v})
            for names, item in combos
            for i, v in enumerate(values)
        ]
    for names, item in combos:
        yield "-".join(names), item


def _matrix_name(key: str, index: int, value: Any) -> str:
    return f"{key}{index}" if isinstance(value, list | dict) else item_name(value)


def foreach_names(items: list[Any] | dict[Any, Any]) -> list[str]:
    """The name suffix of each foreach item, as DVC makes them: a mapping's keys; a list's
    values, or every position when any item is a list or mapping."""
    if isinstance(items, dict):
        return [item_name(k) for k in items]
    if any(isinstance(v, list | dict) for v in items):
        return [str(i) for i in range(len(items))]
    return [item_name(v) for v in items]


def item_name(value: Any) -> str:
    """A scalar as it appears in a generated stage name (``true``, ``0.1``, ``None``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
