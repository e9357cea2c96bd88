"""Reading YAML (and JSON) with the C parser when present, within limits, and errors that
carry the line. Every YAML file mlops reads goes through ``parse_yaml`` or ``load_yaml``.

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

from blake3 import blake3

from mlops.core.fsutil import atomic_write_bytes, sweep_temporaries

# Where each node of a document starts: its path of keys and indexes -> its 1-based line.
Lines = dict[tuple[Any, ...], int]

_KEEP = 64  # remembered documents kept; older ones go when a new one is written


# Limits on what is read: the files mlops reads are small text written by people, so a
# document beyond these is hostile or a mistake, refused before it costs time or memory.
MAX_YAML_BYTES = 1 << 20  # PyYAML builds about 1 MB of nodes per second here
MAX_JSON_BYTES = 64 << 20  # the lock is JSON; the C parser reads this in well under a second
MAX_DEPTH = 64  # levels of nested mappings and lists
# Lines and entries (see _entries): PyYAML takes a few microseconds a node, so this bounds
# the time a document within MAX_YAML_BYTES costs to well under a second.
MAX_ENTRIES = 40_000
MAX_ALIAS_NODES = 100_000  # nodes that aliases may add to a document (an alias bomb adds 10^9)


class YamlProblem(Exception):
    """The text is not valid YAML (or JSON) or is beyond the limits; ``line`` is 1-based."""

    def __init__(self, line: int | None, problem: str, syntax: str = "YAML") -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem
        self.syntax = syntax

    def located(self, where: str) -> str:
        """``where:LINE: problem``, for a one-line error message."""
        at = f":{self.line}" if self.line else ""
        return f"{where}{at}: invalid {self.syntax}: {self.problem}"


def parse_yaml(text: str | bytes) -> Any:
    """The YAML document in ``text``; a syntax error, a duplicate key or a document beyond
    the limits (size, nesting, alias expansion) raises ``YamlProblem``."""
    return _parse(text, False)[0]


def parse_json(text: str | bytes, max_depth: int | None = MAX_DEPTH) -> Any:
    """The JSON document in ``text``, within the size and nesting limits (``YamlProblem``).

    ``max_depth=None`` skips the nesting walk, for a file of a fixed shape read on every
    command (the lock), where Python's own recursion limit is the guard.
    """
    import json

    _check_size(text, MAX_JSON_BYTES, "JSON")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise YamlProblem(exc.lineno, exc.msg, "JSON") from None
    except RecursionError:
        raise YamlProblem(None, "nested too deeply", "JSON") from None
    except ValueError as exc:  # not UTF-8
        raise YamlProblem(None, str(exc), "JSON") from None
    if max_depth is not None:
        todo = [(doc, 1)]
        while todo:
            value, depth = todo.pop()
            if isinstance(value, dict | list):
                if depth > max_depth:
                    raise YamlProblem(None, f"nested more than {max_depth} levels deep", "JSON")
                items = value.values() if isinstance(value, dict) else value
                todo += ((item, depth + 1) for item in items)
    return doc


def _check_size(text: str | bytes, limit: int, syntax: str) -> None:
    if len(text) > limit:
        raise YamlProblem(
            None,
            f"the file is {len(text):,} bytes, over the {limit:,} bytes mlops reads "
            "(is it the right file?)",
            syntax,
        )


def _parse(text: str | bytes, with_lines: bool) -> tuple[Any, Lines]:
    import yaml

    _check_size(text, MAX_YAML_BYTES, "YAML")
    entries = _entries(text)
    if entries > MAX_ENTRIES:
        raise YamlProblem(
            None, f"it has {entries:,} lines and entries, over the {MAX_ENTRIES:,} mlops reads"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _Limits(yaml).check(node)
        doc = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _problem(exc) from None
    except RecursionError:  # the pure-Python parser, without libyaml's own depth limit
        raise YamlProblem(None, f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    lines: Lines = {}
    if with_lines:
        _node_lines(node, (), lines, yaml)
    return doc, lines


def _entries(text: str | bytes) -> int:
    """How many nodes ``text`` may hold, over-counted: each of these begins at most one or
    two (a line, an item after a comma, a value after a colon, a flow mapping or list, a
    block list item). C-speed, so a document is judged before PyYAML spends time on it."""
    data = text.encode(errors="replace") if isinstance(text, str) else text
    return sum(data.count(mark) for mark in (b"\n", b",", b":", b"{", b"[", b"- "))


def _problem(exc: Exception) -> YamlProblem:
    if hasattr(exc, "reason") and hasattr(exc, "position"):  # yaml.ReaderError: bad bytes
        return YamlProblem(None, f"not UTF-8 text ({exc.reason} at byte {exc.position})")
    mark = getattr(exc, "problem_mark", None)
    return YamlProblem(
        mark.line + 1 if mark is not None else None,
        getattr(exc, "problem", None) or "not valid YAML",
    )


class _Limits:
    """One pass over a composed document: duplicate keys, nesting depth, alias expansion.

    Each distinct mapping or list is visited once (aliases share their anchor's node), so
    the pass is linear in the document's size whatever its aliases expand to. Scalars are
    counted where they stand: an alias to a scalar costs as much text as it adds.
    """

    def __init__(self, yaml: Any) -> None:
        self.scalar = yaml.ScalarNode
        self.mapping = yaml.MappingNode
        self.seen: dict[int, tuple[int, int]] = {}  # node id -> (expanded nodes, height)
        self.open: set[int] = set()  # nodes being visited: an alias to one is a cycle
        self.written = 0  # nodes as written, aliases counted once

    def check(self, root: Any) -> None:
        if type(root) is self.scalar:
            return
        size, _ = self.visit(root, 1)
        if size - self.written > MAX_ALIAS_NODES:
            raise YamlProblem(
                root.start_mark.line + 1,
                f"its aliases expand it to {size:,} nodes (at most {MAX_ALIAS_NODES:,} "
                "more than written are read; an alias bomb?)",
            )

    @staticmethod
    def too_deep(node: Any) -> YamlProblem:
        return YamlProblem(node.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")

    def visit(self, node: Any, level: int) -> tuple[int, int]:
        """(expanded nodes, height) of a mapping or list."""
        key = id(node)
        if key in self.seen:  # an alias
            size, height = self.seen[key]
            if level + height - 1 > MAX_DEPTH:
                raise self.too_deep(node)
            self.written += 1
            return size, height
        if key in self.open:
            raise YamlProblem(node.start_mark.line + 1, "an alias refers to a node that holds it")
        if level > MAX_DEPTH:
            raise self.too_deep(node)
        self.open.add(key)
        if type(node) is self.mapping:
            first: dict[tuple[str, str], Any] = {}
            for key_node, _ in node.value:
                if type(key_node) is self.scalar and not key_node.tag.endswith(":merge"):
                    name = (key_node.tag, key_node.value)
                    if name in first:
                        raise YamlProblem(
                            key_node.start_mark.line + 1,
                            f"duplicate key {key_node.value!r} "
                            f"(first on line {first[name].start_mark.line + 1})",
                        )
                    first[name] = key_node
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value
        size = height = 1
        scalars = 0
        for child in children:
            if type(child) is self.scalar:
                scalars += 1
            else:
                child_size, child_height = self.visit(child, level + 1)
                size += child_size
                height = max(height, child_height + 1)
        size += scalars
        self.written += 1 + scalars
        if scalars and height == 1:
            height = 2
        if level + height - 1 > MAX_DEPTH:  # deep through an alias to a deep node
            raise self.too_deep(node)
        self.open.discard(key)
        self.seen[key] = size, height
        return size, height


def parsed_cache_dir(root: Path) -> Path | None:
    """Where parsed documents of the repository at ``root`` are kept (None: no .mlops/)."""
    mlops_dir = root / ".mlops"
    if not mlops_dir.is_dir():
        return None
    # marshal's format belongs to one Python version.
    # "2": documents parsed before duplicate keys and the limits were checked are not reused.
    return mlops_dir / "tmp" / f"yaml2-py{sys.version_info[0]}{sys.version_info[1]}"


def load_yaml(data: bytes, folder: Path | None) -> Any:
    """The YAML document in ``data``, from ``folder`` when it was parsed before."""
    return _remembered(data, folder, "", parse_yaml)


def parse_yaml_lines(text: str | bytes) -> tuple[Any, Lines]:
    """The YAML document in ``text`` and the line of each of its nodes (for messages).

    A mapping entry's line is its key's. Problems raise ``YamlProblem`` as ``parse_yaml``.
    """
    return _parse(text, True)


def line_at(lines: Lines, keys: tuple[Any, ...]) -> int | None:
    """The line of the deepest node along ``keys`` that ``lines`` knows."""
    for end in range(len(keys), -1, -1):
        if keys[:end] in lines:
            return lines[keys[:end]]
    return None


def key_hint(key: Any, valid: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for a mistyped key, else `` (valid keys: ...)``."""
    import difflib

    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (valid keys: {', '.join(valid)})"


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
    entry = folder / (blake3(data).hexdigest()[:40] + kind) if folder is not None else None
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
