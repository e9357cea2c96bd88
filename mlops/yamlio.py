"""Reading YAML with the C parser when present, and errors that carry the line.

``load_yaml`` also remembers parsed documents by the hash of their bytes, so that an
unchanged mlops.yaml, params.yaml or config.yaml is neither parsed nor PyYAML imported
again: commands that only read them stay quick. Entries live in ``.mlops/tmp/`` (never
committed), one marshal file per content hash; a document marshal cannot hold (a YAML
date, say) is simply parsed every time.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.fsutil import atomic_write_bytes, sweep_temporaries
from mlops.storage.hashing import hash_bytes

_KEEP = 64  # remembered documents kept; older ones go when a new one is written


class YamlProblem(Exception):
    """The text is not valid YAML; ``line`` is 1-based when known."""

    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem

    def located(self, where: str) -> str:
        """``where:LINE: problem``, for a one-line error message."""
        at = f":{self.line}" if self.line else ""
        return f"{where}{at}: invalid YAML: {self.problem}"


def parse_yaml(text: str | bytes) -> Any:
    """The YAML document in ``text``; a syntax error raises ``YamlProblem``."""
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise _problem(exc) from None


def _problem(exc: Exception) -> YamlProblem:
    mark = getattr(exc, "problem_mark", None)
    return YamlProblem(
        mark.line + 1 if mark is not None else None,
        getattr(exc, "problem", None) or "not valid YAML",
    )


def parsed_cache_dir(root: Path) -> Path | None:
    """Where parsed documents of the repository at ``root`` are kept (None: no .mlops/)."""
    mlops_dir = root / ".mlops"
    if not mlops_dir.is_dir():
        return None
    # marshal's format belongs to one Python version.
    return mlops_dir / "tmp" / f"yaml-py{sys.version_info[0]}{sys.version_info[1]}"


def load_yaml(data: bytes, folder: Path | None) -> Any:
    """The YAML document in ``data``, from ``folder`` when it was parsed before."""
    return _remembered(data, folder, "", parse_yaml)


# Where each node of a document starts: its path of keys and indexes -> its 1-based line.
Lines = dict[tuple[Any, ...], int]


def parse_yaml_lines(text: str | bytes) -> tuple[Any, Lines]:
    """The YAML document in ``text`` and the line of each of its nodes (for messages).

    A mapping entry's line is its key's. A syntax error raises ``YamlProblem``.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        doc = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _problem(exc) from None
    finally:
        loader.dispose()
    lines: Lines = {}
    if node is not None:
        _node_lines(node, (), lines, yaml)
    return doc, lines


def load_yaml_lines(data: bytes, folder: Path | None) -> tuple[Any, Lines]:
    """``parse_yaml_lines`` of ``data``, from ``folder`` when it was parsed before."""
    doc, lines = _remembered(data, folder, "-lines", parse_yaml_lines)
    return doc, lines


def _node_lines(node: Any, path: tuple[Any, ...], out: Lines, yaml: Any) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                _node_lines(value, (*path, key.value), out, yaml)
                out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _node_lines(value, (*path, i), out, yaml)


def _remembered(data: bytes, folder: Path | None, kind: str, parse: Callable[[bytes], Any]) -> Any:
    entry = folder / (hash_bytes(data)[:40] + kind) if folder is not None else None
    if entry is not None:
        with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
            return marshal.loads(entry.read_bytes())
    parsed = parse(data)
    if entry is not None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: not marshallable
            atomic_write_bytes(entry, marshal.dumps(parsed))
            _trim(entry.parent)
    return parsed


def _trim(folder: Path) -> None:
    sweep_temporaries(folder)  # the hidden temporaries of writers killed before their rename
    entries = [e for e in os.scandir(folder) if not e.name.startswith(".")]
    if len(entries) > _KEEP:
        entries.sort(key=lambda e: e.stat().st_mtime_ns)
        for old in entries[: len(entries) - _KEEP]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old.path)
