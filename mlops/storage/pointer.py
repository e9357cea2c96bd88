"""Pointer files (``PATH.mlops``): which content a tracked file or folder should have."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.core.fsutil import atomic_write_text
from mlops.core.yamlio import MAX_YAML_BYTES, YamlProblem, key_hint, parse_yaml
from mlops.errors import InputError
from mlops.storage.content import ContentRef
from mlops.storage.hashing import ALGORITHM, is_valid_oid
from mlops.storage.paths import check_name

SUFFIX = ".mlops"
KEYS = ("path", "algo", "hash", "size", "files")
_HEADER = "# Written by mlops: commit this file, do not edit it by hand.\n"


@dataclass(frozen=True)
class Pointer(ContentRef):
    """The recorded content of one tracked path (``path``: relative to the pointer file's
    folder)."""

    def to_text(self) -> str:
        """The pointer file's YAML."""
        return (
            f"{_HEADER}path: {_quote(self.path)}\nalgo: {ALGORITHM}\nhash: {self.oid}\n"
            f"size: {self.size}\nfiles: {self.files}\n"
        )


def _quote(text: str) -> str:
    import json

    # A JSON string is valid YAML and needs no escaping rules of our own.
    return json.dumps(text)


def pointer_path(data_path: Path) -> Path:
    """The pointer file for a tracked path."""
    return data_path.with_name(data_path.name + SUFFIX)


def data_path(pointer_file: Path, pointer: Pointer) -> Path:
    """The tracked path a pointer describes."""
    return pointer_file.parent / pointer.path


def write_pointer(pointer_file: Path, pointer: Pointer, scratch: Path | None = None) -> None:
    """Write a pointer file atomically (its temporary in ``scratch``: ``atomic_write_bytes``)."""
    atomic_write_text(pointer_file, pointer.to_text(), scratch)


def _parse_plain(text: str) -> dict[str, object] | None:
    """Read the flat ``key: value`` form mlops writes, or None for anything else.

    Pointers are read on every status and Git hook; this skips loading a YAML
    parser for them. Any other shape goes to the YAML parser.
    """
    import json

    doc: dict[str, object] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(": ")
        if not sep or not key.isidentifier() or key in doc:
            return None
        if value.startswith('"'):
            try:
                doc[key] = json.loads(value)
            except ValueError:
                return None
        elif value.isascii() and value.isdigit():
            doc[key] = int(value)
        elif value.isalnum() or (value.endswith(".dir") and value[:-4].isalnum()):
            doc[key] = value
        else:
            return None
    return doc


def parse_pointer(text: str, where: str) -> Pointer:
    """Parse pointer YAML; ``where`` names the file in error messages."""
    if len(text) > MAX_YAML_BYTES:
        raise InputError(f"{where}: not a pointer file (over {MAX_YAML_BYTES:,} bytes)")
    doc = _parse_plain(text)
    if doc is None:
        try:
            doc = parse_yaml(text)
        except YamlProblem as exc:
            raise InputError(exc.located(where)) from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: not a pointer file (expected a YAML mapping)")
    for key in doc:
        if key not in KEYS:
            raise InputError(
                f"{where}{_line_of(text, key)}: unknown key {key!r}{key_hint(key, KEYS)}"
            )
    for key in ("path", "algo", "hash"):
        if key not in doc:
            raise InputError(f"{where}: missing key {key!r}")
    if doc["algo"] != ALGORITHM:
        raise InputError(
            f"{where}: unknown hash algorithm {doc['algo']!r} (this mlops knows {ALGORITHM})"
        )
    path, oid = doc["path"], doc["hash"]
    if not isinstance(path, str) or not path or "/" in path or path in (".", ".."):
        raise InputError(f"{where}: key 'path' must be a file or folder name beside the pointer")
    check_name(path, where)
    if not isinstance(oid, str) or not is_valid_oid(oid):
        raise InputError(f"{where}: key 'hash' is not a valid {ALGORITHM} hash: {oid!r}")
    size, files = doc.get("size", 0), doc.get("files", 1)
    if type(size) is not int or type(files) is not int or size < 0 or files < 0:
        raise InputError(f"{where}: keys 'size' and 'files' must be whole numbers of at least 0")
    return Pointer(path=path, oid=oid, size=size, files=files)


def _line_of(text: str, key: object) -> str:
    """``:LINE`` of the line that starts with ``key:`` (for messages), or ""."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return f":{number}"
    return ""


def read_pointer(pointer_file: Path, root: Path) -> Pointer:
    """Read and validate a pointer file."""
    where = (
        pointer_file.relative_to(root).as_posix()
        if pointer_file.is_absolute()
        else str(pointer_file)
    )
    try:
        with open(pointer_file, "rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)  # a hostile clone's pointer may be huge
    except FileNotFoundError:
        raise InputError(f"{where}: pointer file not found") from None
    if len(data) > MAX_YAML_BYTES:
        raise InputError(f"{where}: not a pointer file (over {MAX_YAML_BYTES:,} bytes)")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InputError(f"{where}: not a pointer file (not UTF-8 text)") from None
    return parse_pointer(text, where)
