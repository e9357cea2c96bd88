"""``mlops.lock`` (JSON): what each stage last ran with and produced, and which run made it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import PipelineError
from mlops.fsutil import atomic_write_text
from mlops.pipeline.params import ParamValues
from mlops.pipeline.revisions import read_paths_at
from mlops.storage.hashing import ALGORITHM, DIR_SUFFIX, is_valid_oid
from mlops.storage.paths import unsafe_reason
from mlops.yamlio import YamlProblem, parse_json

if TYPE_CHECKING:
    from mlops.data.workspace import Store

LOCK_FILE = "mlops.lock"
SCHEMA = 1
_NOTE = "Written by `mlops run`: commit this file, do not edit it by hand."


@dataclass(frozen=True)
class FileHash:
    """The content of a dep or output: a file's hash, or a folder's manifest id (``.dir``)."""

    path: str
    oid: str
    size: int
    files: int = 1

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "hash": self.oid, "size": self.size}
        if self.oid.endswith(DIR_SUFFIX):
            data["files"] = self.files
        return data


@dataclass(frozen=True)
class LockEntry:
    """One stage as it last succeeded. ``record`` is the object id of the run record;
    ``checks`` tells which definitions of its check suites judged it."""

    cmd: tuple[str, ...]
    deps: tuple[FileHash, ...]
    params: ParamValues
    outs: tuple[FileHash, ...]
    wdir: str = "."
    env: tuple[tuple[str, str], ...] = ()
    run: str = ""
    record: str = ""
    checks: str = ""  # fingerprint of the stage's check suites ("": it has none)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"cmd": self.cmd[0] if len(self.cmd) == 1 else list(self.cmd)}
        if self.wdir != ".":
            data["wdir"] = self.wdir
        if self.env:
            data["env"] = dict(self.env)
        data["deps"] = [d.to_dict() for d in self.deps]
        if self.params:
            data["params"] = self.params
        data["outs"] = [o.to_dict() for o in self.outs]
        if self.checks:
            data["checks"] = self.checks
        data["run"] = self.run
        data["record"] = self.record
        return data


@dataclass(frozen=True)
class Lock:
    """Every stage's entry, by stage name."""

    stages: dict[str, LockEntry] = field(default_factory=dict)


def read_lock(root: Path) -> Lock:
    """The workspace's ``mlops.lock``; an empty lock when there is none."""
    try:
        text = (root / LOCK_FILE).read_text()
    except FileNotFoundError:
        return Lock()
    return parse_lock(text, LOCK_FILE)


def parse_lock(text: str, where: str) -> Lock:
    """Parse the lock's JSON; ``where`` names the file (and commit) in messages."""
    fix = "restore it from Git, or delete it and run `mlops run` to rebuild it"
    if not text.strip():
        return Lock()
    try:
        doc = parse_json(text, max_depth=None)
    except YamlProblem as exc:
        raise PipelineError(f"{exc.located(where)}; {fix}") from None
    try:
        if doc.get("algo", ALGORITHM) != ALGORITHM:
            raise PipelineError(f"{where}: unknown hash algorithm {doc['algo']!r}")
        stages = {str(name): _entry(body) for name, body in (doc.get("stages") or {}).items()}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise PipelineError(f"{where}: not a valid lock file ({exc}); {fix}") from None
    return Lock(stages)


def _entry(body: dict[str, Any]) -> LockEntry:
    cmd = body["cmd"]
    return LockEntry(
        cmd=(cmd,) if isinstance(cmd, str) else tuple(str(c) for c in cmd),
        deps=tuple(_file_hash(d) for d in body.get("deps") or []),
        params={str(f): dict(v) for f, v in (body.get("params") or {}).items()},
        outs=tuple(_file_hash(o) for o in body.get("outs") or []),
        wdir=str(body.get("wdir", ".")),
        env=tuple((str(k), str(v)) for k, v in (body.get("env") or {}).items()),
        run=str(body.get("run") or ""),
        record=str(body.get("record") or ""),
        checks=str(body.get("checks") or ""),
    )


def _file_hash(item: dict[str, Any]) -> FileHash:
    oid, path = item["hash"], item["path"]
    reason = unsafe_reason(path)
    if reason is not None:
        # The lock comes from a commit, maybe a teammate's: its paths are checked as
        # a manifest's are, before anything is placed from them.
        raise ValueError(f"path {path!r} is refused: {reason}")
    if not is_valid_oid(oid):
        raise ValueError(f"invalid hash {oid!r} for {path!r}")
    return FileHash(str(item["path"]), oid, int(item.get("size", 0)), int(item.get("files", 1)))


def lock_text(lock: Lock) -> str:
    """The lock as indented JSON (stages in the order given): quick to read, fine to diff."""
    doc = {
        "note": _NOTE,
        "schema": SCHEMA,
        "algo": ALGORITHM,
        "stages": {name: entry.to_dict() for name, entry in lock.stages.items()},
    }
    return json.dumps(doc, indent=2, default=str) + "\n"


def write_lock(root: Path, lock: Lock, scratch: Path | None = None) -> None:
    """Replace ``mlops.lock`` atomically (its temporary in ``scratch``, see
    ``atomic_write_bytes``)."""
    atomic_write_text(root / LOCK_FILE, lock_text(lock), scratch)


def lock_objects(store: Store, commits: list[str]) -> set[str]:
    """Objects named by ``mlops.lock`` in the workspace and at ``commits``: stage outputs
    and run records. Folder manifests are returned as is (the caller expands them)."""
    root = store.repo.root
    places: list[tuple[str | None, str]] = [(None, LOCK_FILE)]
    places += [(commit, LOCK_FILE) for commit in commits]
    used: set[str] = set()
    for (commit, _), data in read_paths_at(root, places).items():
        if data is None:
            continue
        where = LOCK_FILE if commit is None else f"{LOCK_FILE} at {commit[:10]}"
        for entry in parse_lock(data.decode(errors="replace"), where).stages.values():
            used.update(out.oid for out in entry.outs)
            if entry.record:
                used.add(entry.record)
    return used
