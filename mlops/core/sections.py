"""Reading ``mlops.yaml`` once for every section of it, and errors that name their line.

The pipeline (``stages:``), the check suites (``checks:``), monitoring (``monitor:``) and
the registry's settings (``models:``) each validate their own section; this module gives
them the parsed document, the line of every node, and one way to report a problem at a
path of keys: ``mlops.yaml:LINE: monitor.thresholds.share: must be between 0 and 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlops.core.yamlio import Lines, YamlProblem, line_at, load_yaml_lines
from mlops.errors import MlopsError

E = TypeVar("E", bound=MlopsError)


class Invalid(Exception):
    """A problem at a path of keys in a document; ``Document.error`` adds the line."""

    def __init__(self, keys: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.keys = keys
        self.message = message


@dataclass(frozen=True)
class Document:
    """A parsed YAML file: its data, where each node starts, and the name it is shown by."""

    where: str
    data: Any
    lines: Lines = field(default_factory=dict, compare=False)

    def at(self, keys: tuple[Any, ...]) -> str:
        """``where:LINE`` of the deepest node of ``keys`` the document has."""
        line = line_at(self.lines, keys)
        return f"{self.where}:{line}" if line else self.where

    def section(self, name: str) -> Any:
        """The top-level ``name:`` section as written, or None (also when the document is
        not a mapping: the pipeline's reader says so)."""
        return self.data.get(name) if isinstance(self.data, dict) else None

    def error(self, exc: Invalid, kind: type[E], dotted: bool = False) -> E:
        """``kind`` with one line: where, then (``dotted``) the keys, then the problem."""
        keys = f"{'.'.join(map(str, exc.keys))}: " if dotted and exc.keys else ""
        return kind(f"{self.at(exc.keys)}: {keys}{exc.message}")


def parse_document(
    data: bytes, where: str, kind: type[MlopsError], cache: Path | None = None
) -> Document:
    """``data`` parsed (``cache``: a folder of parsed documents, see ``load_yaml``); a
    syntax error or a document beyond the limits raises ``kind`` naming ``where``."""
    try:
        parsed, lines = load_yaml_lines(data, cache)
    except YamlProblem as exc:
        raise kind(exc.located(where)) from None
    return Document(where, parsed, lines)


def read_document(
    path: Path, where: str, kind: type[MlopsError], cache: Path | None = None
) -> Document | None:
    """The document at ``path``, or None when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise kind(f"{where}: cannot read: {exc.strerror}") from None
    return parse_document(data, where, kind, cache)
