"""``mlops.lock`` (JSON): what each stage last ran with and produced, and which run made it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.core.fsutil import atomic_write_text
from mlops.core.yamlio import YamlProblem, parse_json
from mlops.errors import PipelineError
from mlops.pipeline.params import ParamValues
from mlops.pipeline.revisions import read_paths_at, reader_at
from mlops.storage.content import ContentRef
from mlops.storage.hashing import ALGORITHM, DIR_SUFFIX, is_valid_oid
from mlops.storage.paths import unsafe_reason

if TYPE_CHECKING:
    from mlops.storage.store import Store
    from mlops.workspace.tracked import Target

LOCK_FILE = "mlops.lock"
SCHEMA = 1
_NOTE = "Written by `mlops run`: commit this file, do not edit it by hand."


@dataclass(frozen=True)
class FileHash(ContentRef):
    """The content of a dep or output (``path``: relative to the repository).

    ``cache`` (outputs only) is whether the output was stored in the object store;
    None for deps, and for outputs of locks written before it was recorded.
    """

    cache: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "hash": self.oid, "size": self.size}
        if self.oid.endswith(DIR_SUFFIX):
            data["files"] = self.files
        if self.cache is not None:
            data["cache"] = self.cache
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
    cache = item.get("cache")
    if cache is not None and not isinstance(cache, bool):
        raise ValueError(f"'cache' of {path!r} must be true or false")
    size, files = item.get("size", 0), item.get("files", 1)
    for key, value in (("size", size), ("files", files)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key!r} of {path!r} must be a whole number, not {value!r}")
    return FileHash(str(path), oid, size, files, cache)


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


def lock_objects(store: Store, commits: list[str], uncached: bool = False) -> set[str]:
    """Objects named by ``mlops.lock`` in the workspace and at ``commits``: cached stage
    outputs and run records. Folder manifests are returned as is (the caller expands them).

    Outputs with ``cache: false`` live in Git, not in the object store, so push and pull
    never need them (an older lock that did not record the option is judged by the
    pipeline file of the same commit); with ``uncached`` they are named too, for ``gc``
    to keep the copies a run made of small metrics and plots for the run cache."""
    root = store.repo.root
    places: list[tuple[str | None, str]] = [(None, LOCK_FILE)]
    places += [(commit, LOCK_FILE) for commit in commits]
    used: set[str] = set()
    found = read_paths_at(root, places)
    for (commit, _), data in found.items():
        if data is None:
            continue
        where = LOCK_FILE if commit is None else f"{LOCK_FILE} at {commit[:10]}"
        entries = parse_lock(data.decode(errors="replace"), where).stages
        for _, out in entries_outputs(root, commit, entries, cached_only=not uncached):
            used.add(out.oid)
        used.update(entry.record for entry in entries.values() if entry.record)
    return used


def output_target(root: Path, out: FileHash) -> Target:
    """A cached output as a tracked path (with no pointer file), for checkout to place."""
    from mlops.storage.pointer import Pointer, pointer_path
    from mlops.workspace.tracked import Target

    path = root / out.path
    return Target(pointer_path(path), Pointer(path.name, out.oid, out.size, out.files))


def output_targets(root: Path) -> list[Target]:
    """The cached outputs ``mlops.lock`` in the workspace names, as tracked paths: what
    ``pull`` places next to the pointer files' data (their paths were checked as the
    lock was read: it may come from anyone's commit)."""
    return [
        output_target(root, out)
        for _, out in entries_outputs(root, None, read_lock(root).stages, cached_only=True)
    ]


def entries_outputs(
    root: Path, commit: str | None, entries: dict[str, LockEntry], cached_only: bool
) -> Iterator[tuple[str, FileHash]]:
    """(stage, output) of every output of ``entries`` (the lock at ``commit``; None: the
    workspace); with ``cached_only``, of those kept in the object store. A lock written
    before outputs recorded their ``cache`` option is judged by the pipeline file at the
    same commit."""
    in_git: frozenset[tuple[str, str]] | None = None
    for name, entry in entries.items():
        for out in entry.outs:
            cached = out.cache
            if cached is None and cached_only:
                if in_git is None:
                    in_git = _uncached_outputs(root, commit)
                cached = (name, out.path) not in in_git
            if cached or not cached_only:
                yield name, out


def _uncached_outputs(root: Path, commit: str | None) -> frozenset[tuple[str, str]]:
    """(stage, path) of every ``cache: false`` output in the pipeline file at ``commit``
    (None: the workspace); empty when it cannot be read."""
    from mlops.pipeline import PIPELINE_FILE
    from mlops.pipeline.schema import parse_pipeline

    data = read_paths_at(root, [(commit, PIPELINE_FILE)])[(commit, PIPELINE_FILE)]
    if data is None:
        return frozenset()
    try:
        pipeline = parse_pipeline(data, PIPELINE_FILE, read=reader_at(root, commit))
    except PipelineError:
        return frozenset()
    return frozenset(
        (stage.name, out.path)
        for stage in pipeline.stages.values()
        for out in stage.outputs
        if not out.cache
    )
