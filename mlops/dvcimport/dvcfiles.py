"""Reading DVC's files: ``.dvc`` pointers, ``dvc.lock``, ``.dvc/config`` and its cache.

Only reads. Every path taken from them is checked (relative, normalised, inside the
repository, no ``.git``/``.mlops``/``.dvc`` component) before anything uses it.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.git import worktree_files
from mlops.core.yamlio import YamlProblem, parse_yaml_lines
from mlops.errors import InputError

DVC_DIR = ".dvc"
DVC_YAML = "dvc.yaml"
DVC_LOCK = "dvc.lock"
DVC_SUFFIX = ".dvc"
DIR_SUFFIX = ".dir"
_MD5 = re.compile(r"[0-9a-f]{32}(?:\.dir)?")
_RESERVED = (".git", ".mlops", DVC_DIR)


@dataclass(frozen=True)
class Note:
    """Something not imported, where it is written, and why."""

    where: str  # "dvc.yaml:12"
    what: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.why}"

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "what": self.what, "why": self.why}


@dataclass(frozen=True)
class DvcHash:
    """A path's content as DVC recorded it: an MD5 (``.dir`` for a folder's listing)."""

    path: str  # relative to the repository root
    md5: str
    size: int | None = None
    files: int | None = None

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(DIR_SUFFIX)


@dataclass(frozen=True)
class DvcPointer:
    """One output of a ``.dvc`` file (``dvc add``, ``dvc import``)."""

    dvc_file: str
    data: DvcHash


@dataclass(frozen=True)
class LockStage:
    """A stage of ``dvc.lock``: its command, and its deps, params and outs as DVC saw them."""

    name: str
    cmd: tuple[str, ...]
    deps: tuple[DvcHash, ...]
    params: dict[str, dict[str, Any]]  # file (root-relative) -> key -> value, as written
    outs: tuple[DvcHash, ...]
    where: str = DVC_LOCK  # file:line of its entry


@dataclass(frozen=True)
class DvcRemote:
    """A ``remote "NAME"`` section, from the shared config and the local one merged."""

    name: str
    options: dict[str, str]
    local_keys: frozenset[str]  # options that came from config.local
    where: str  # the section's file and line
    lines: dict[str, str]  # option -> its file and line


@dataclass(frozen=True)
class DvcConfig:
    """What ``.dvc/config`` (and ``config.local``) say about remotes and the cache."""

    remotes: tuple[DvcRemote, ...] = ()
    default_remote: str | None = None
    cache_dir: str = ""  # absolute


def check_path(raw: Any, base: str, where: str) -> str:
    """``raw`` (relative to folder ``base`` of the repository) as a root-relative POSIX
    path; an absolute path, one leaving the repository or naming a reserved folder is
    an input error naming ``where``."""
    if not isinstance(raw, str) or not raw or "\0" in raw or "\\" in raw:
        raise InputError(f"{where}: invalid path {raw!r}")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise InputError(f"{where}: path {raw!r} must be relative to the repository")
    path = posixpath.normpath(posixpath.join(base, raw))
    if path in (".", "..") or path.startswith("../"):
        raise InputError(f"{where}: path {raw!r} is outside the repository")
    if any(part.lower() in _RESERVED for part in path.split("/")):
        raise InputError(f"{where}: path {raw!r} is inside a folder mlops does not track")
    return path


def is_url(text: str) -> bool:
    """Whether a dep is a URL (``s3://...``, ``https://...``) rather than a path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text) is not None


def _hash(item: Any, base: str, where: str) -> DvcHash | None:
    """A ``path``/``md5``/``size``/``nfiles`` entry; None when it has no MD5 of DVC 3."""
    if not isinstance(item, dict) or "path" not in item:
        raise InputError(f"{where}: expected an entry with a 'path'")
    md5 = item.get("md5")
    if md5 is None or item.get("hash") != "md5":
        return None
    if not isinstance(md5, str) or not _MD5.fullmatch(md5):
        raise InputError(f"{where}: invalid md5 {md5!r}")
    size, files = item.get("size"), item.get("nfiles")
    if size is not None and not isinstance(size, int):
        raise InputError(f"{where}: 'size' must be a whole number")
    return DvcHash(check_path(item["path"], base, where), md5, size, files)


def _load(root: Path, rel: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    try:
        return parse_yaml_lines((root / rel).read_bytes())
    except YamlProblem as exc:
        raise InputError(exc.located(rel)) from None


def read_pointers(root: Path) -> tuple[list[DvcPointer], list[Note]]:
    """The outputs of every ``.dvc`` file Git tracks or would track."""
    pointers: list[DvcPointer] = []
    notes: list[Note] = []
    for rel in worktree_files(root, f"*{DVC_SUFFIX}"):
        if rel.split("/")[0] == DVC_DIR or not (root / rel).is_file():
            continue
        doc, lines = _load(root, rel)
        if not isinstance(doc, dict):
            raise InputError(f"{rel}: not a .dvc file (expected a YAML mapping)")
        base = posixpath.dirname(rel)
        wdir = doc.get("wdir")
        if wdir is not None:
            base = check_path(wdir, base, f"{rel}:{lines.get(('wdir',), 1)}")
        if doc.get("deps"):
            notes.append(
                Note(
                    f"{rel}:{lines.get(('deps',), 1)}",
                    "the source of `dvc import`/`import-url`",
                    "mlops has no import stage; its data is imported as tracked data",
                )
            )
        if doc.get("frozen"):
            notes.append(Note(f"{rel}:{lines.get(('frozen',), 1)}", "frozen", "not needed"))
        outs = doc.get("outs") or []
        if not isinstance(outs, list):
            raise InputError(f"{rel}:{lines.get(('outs',), 1)}: 'outs' must be a list")
        for i, item in enumerate(outs):
            where = f"{rel}:{lines.get(('outs', i), 1)}"
            found = _hash(item, base, where)
            if found is None:
                notes.append(Note(where, str(item.get("path")), _NO_MD5))
                continue
            for option in sorted(set(item) - _POINTER_KEYS):
                notes.append(
                    Note(
                        f"{rel}:{lines.get(('outs', i, option), 1)}",
                        f"option {option!r} of {found.path}",
                        "mlops keeps no such option for tracked data",
                    )
                )
            pointers.append(DvcPointer(rel, found))
    return pointers, notes


_POINTER_KEYS = {"path", "md5", "size", "nfiles", "hash", "cache", "persist"}
_NO_MD5 = (
    "no DVC 3 MD5 recorded (a DVC 2 hash: run `dvc cache migrate --dvc-files`, or `dvc commit`)"
)


def read_lock(root: Path, wdirs: dict[str, str]) -> tuple[dict[str, LockStage], list[Note]]:
    """``dvc.lock``'s stages (``wdirs``: each stage's folder, from dvc.yaml)."""
    if not (root / DVC_LOCK).is_file():
        return {}, []
    doc, lines = _load(root, DVC_LOCK)
    if doc is None:
        return {}, []
    if not isinstance(doc, dict) or not isinstance(doc.get("stages", {}), dict):
        raise InputError(f"{DVC_LOCK}: expected a mapping with 'stages'")
    if str(doc.get("schema", "2.0")) != "2.0":
        raise InputError(f"{DVC_LOCK}: schema {doc.get('schema')!r} is not DVC 3's '2.0'")
    stages: dict[str, LockStage] = {}
    notes: list[Note] = []
    for name, body in (doc.get("stages") or {}).items():
        where = f"{DVC_LOCK}:{lines.get(('stages', name), 1)}"
        if not isinstance(body, dict) or "cmd" not in body:
            raise InputError(f"{where}: stage {name!r} has no 'cmd'")
        base = wdirs.get(name, ".")
        hashes: dict[str, list[DvcHash]] = {"deps": [], "outs": []}
        for kind, found in hashes.items():
            for i, item in enumerate(body.get(kind) or []):
                at = f"{DVC_LOCK}:{lines.get(('stages', name, kind, i), 1)}"
                if isinstance(item, dict) and is_url(str(item.get("path", ""))):
                    continue  # an external dep: dvc.yaml's note covers it
                entry = _hash(item, base, at)
                if entry is None:
                    notes.append(Note(at, f"{kind[:-1]} {item.get('path')}", _NO_MD5))
                else:
                    found.append(entry)
        params: dict[str, dict[str, Any]] = {}
        for file, values in (body.get("params") or {}).items():
            at = f"{DVC_LOCK}:{lines.get(('stages', name, 'params', file), 1)}"
            params[check_path(file, base, at)] = dict(values or {})
        cmd = body["cmd"]
        stages[str(name)] = LockStage(
            str(name),
            (cmd,) if isinstance(cmd, str) else tuple(str(c) for c in cmd),
            tuple(hashes["deps"]),
            params,
            tuple(hashes["outs"]),
            where,
        )
    return stages, notes


def read_config(root: Path) -> DvcConfig:
    """Remotes and the cache folder from ``.dvc/config`` and ``.dvc/config.local``."""
    dvc_dir = root / DVC_DIR
    sections: dict[str, dict[str, str]] = {}
    local: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for name in ("config", "config.local"):
        rel = f"{DVC_DIR}/{name}"
        try:
            text = (dvc_dir / name).read_text()
        except FileNotFoundError:
            continue
        for section, key, value, line in parse_ini(text, rel):
            sections.setdefault(section, {})
            if key:
                sections[section][key] = value
                where[(section, key)] = f"{rel}:{line}"
            where.setdefault((section, ""), f"{rel}:{line}")
            if name == "config.local":
                local.setdefault(section, set()).add(key)
    remotes = []
    for section, options in sections.items():
        match = re.fullmatch(r'remote\s+"([^"]+)"', section)
        if match:
            lines = {key: where[(section, key)] for key in options}
            remotes.append(
                DvcRemote(
                    match.group(1),
                    options,
                    frozenset(local.get(section, ())),
                    where[(section, "")],
                    lines,
                )
            )
    cache = sections.get("cache", {})
    cache_dir = str(dvc_dir / "cache")
    if cache.get("dir"):
        # DVC reads a relative cache folder from the config file's folder.
        cache_dir = os.path.normpath(os.path.join(dvc_dir, os.path.expanduser(cache["dir"])))
    default = sections.get("core", {}).get("remote") or None
    return DvcConfig(tuple(remotes), default, cache_dir)


def parse_ini(text: str, where: str) -> list[tuple[str, str, str, int]]:
    """(section, key, value, line) of each setting in DVC's INI format (configobj's),
    and (section, "", "", line) of each section header.

    Section names may be quoted (``['remote "s3"']``), values too; ``#`` starts a comment.
    """
    found = []
    section: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InputError(f"{where}:{number}: invalid section header {line!r}")
            section = _unquote(line[1:-1].strip())
            found.append((section, "", "", number))
            continue
        key, sep, value = line.partition("=")
        if not sep or section is None or not key.strip():
            raise InputError(f"{where}:{number}: expected 'key = value' in a [section]")
        value = value.strip()
        if not value.startswith(("'", '"')):
            value = value.split(" #", 1)[0].strip()
        found.append((section, key.strip(), _unquote(value), number))
    return found


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def cache_object(cache_dir: str, md5: str) -> str:
    """Where DVC 3 keeps the object of ``md5`` (``files/md5/xx/rest``)."""
    return os.path.join(cache_dir, "files", "md5", md5[:2], md5[2:])
