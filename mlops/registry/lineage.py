"""Lineage: what produced a model version or a tracked file, back to the raw data; and the
reverse, which model versions were trained on some data.

An input is explained, in this order, by a run record whose stage produced it
(``.mlops/runs.db`` or a record object), by an ``mlops.lock`` entry, by a pointer
file (raw data added with ``mlops add``), or as a file kept in Git.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from mlops.core.repo import Repo
from mlops.errors import InputError, RegistryError
from mlops.registry.provenance import RunIndex
from mlops.registry.records import ModelVersion, split_reference
from mlops.registry.tags import read_registry, resolve
from mlops.storage.store import Store, open_store
from mlops.workspace.tracked import find_targets


class NodeKind(StrEnum):
    """What a lineage node is."""

    MODEL = "model"
    OUTPUT = "output"  # made by a pipeline stage
    DATA = "data"  # added with ``mlops add``
    GIT = "git"  # a file kept in Git, such as code
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LineageNode:
    """One model version or file content and how it was made."""

    kind: NodeKind
    name: str  # "iris:3" or a path relative to the repository root
    hash: str
    source: str = ""  # where the facts come from
    run: str | None = None
    stage: str | None = None
    commit: str | None = None
    cmd: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    inputs: tuple[LineageNode, ...] = ()

    def walk(self) -> list[LineageNode]:
        """This node and every node above it."""
        found = [self]
        for node in self.inputs:
            found += node.walk()
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "hash": self.hash,
            "source": self.source,
            "run": self.run,
            "stage": self.stage,
            "commit": self.commit,
            "cmd": list(self.cmd),
            "params": self.params,
            "note": self.note,
            "inputs": [n.to_dict() for n in self.inputs],
        }


@dataclass(frozen=True)
class UsedBy:
    """A model version whose lineage includes the data asked about."""

    version: ModelVersion
    direct: bool  # the data was an input of the stage that made the model
    via: str  # the path under which the version's lineage holds the data

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.version.model,
            "version": self.version.label,
            "id": self.version.id,
            "direct": self.direct,
            "via": self.via,
            "time": self.version.time,
            "author": self.version.author,
        }


def lineage(repo: Repo, target: str) -> LineageNode:
    """The lineage of a model version (``NAME:VERSION``, ``NAME@ALIAS``) or a tracked path."""
    with open_store(repo) as store:
        if _is_model(repo, target):
            return _Tracer(store, read_registry(repo.root)).model(resolve(repo, target))
        path, oid = data_version(store, target)
        return _Tracer(store, read_registry(repo.root)).content(path, oid)


def used_by(repo: Repo, target: str) -> tuple[str, str, list[UsedBy]]:
    """(path, hash, versions): the model versions trained on this content of ``target``."""
    if _is_model(repo, target):
        raise InputError(f"{target}: --used-by takes a data path, not a model version")
    with open_store(repo) as store:
        path, oid = data_version(store, target)
        registries = read_registry(repo.root)
        tracer = _Tracer(store, registries)
        found = []
        for registry in registries.values():
            for version in registry.versions:
                hits = [n for n in tracer.model(version).walk()[1:] if n.hash == oid]
                if hits:
                    found.append(UsedBy(version, oid in version.data.values(), hits[0].name))
        return path, oid, found


def _is_model(repo: Repo, target: str) -> bool:
    """A model reference rather than a path: no such file, and ``:`` or ``@`` or a model's name."""
    if os.path.lexists(target):
        return False
    if ":" in target or "@" in target:
        return True
    try:
        name = split_reference(target)[0]
    except RegistryError:  # not a valid model name: a path
        return False
    return name in read_registry(repo.root, name)


def data_version(store: Store, target: str) -> tuple[str, str]:
    """The repository path and committed content hash of a tracked file or pipeline output."""
    from mlops.pipeline.lock import read_lock

    repo = store.repo
    path = Path(os.path.abspath(target))
    if path != repo.root and repo.root not in path.parents:
        raise InputError(f"{target}: outside the repository {repo.root}")
    rel = repo.relpath(path)
    for found in find_targets(repo):
        if found.relpath(repo) == rel:
            return rel, found.pointer.oid
    for entry in read_lock(repo.root).stages.values():
        for out in entry.outs:
            if out.path == rel:
                return rel, out.oid
    raise InputError(
        f"{target}: not tracked by mlops (no pointer file) and not a stage output in mlops.lock"
    )


class _Tracer:
    """Explains contents recursively, remembering what it already explained."""

    def __init__(self, store: Store, registries: dict[str, Any]) -> None:
        records = tuple(
            v.run.record
            for registry in registries.values()
            for v in registry.versions
            if v.run is not None and v.run.record
        )
        commits = tuple(
            sorted(
                {v.commit for r in registries.values() for v in r.versions if v.commit is not None}
            )
        )
        self.store = store
        self.root = store.repo.root
        self.index = RunIndex(store, commits, records)
        self.commits = commits
        self.seen: dict[tuple[str, str], LineageNode] = {}
        self._pointers: dict[str, tuple[str, set[str]]] | None = None
        self._git_files: set[str] | None = None

    def model(self, version: ModelVersion) -> LineageNode:
        run = version.run
        return LineageNode(
            kind=NodeKind.MODEL,
            name=version.ref,
            hash=version.content.oid,
            source=f"registry tag {version.tag}",
            run=run.id if run else None,
            stage=run.stage if run else None,
            commit=version.commit,
            params=version.params,
            note="" if run else "registered without a run: its inputs are not recorded",
            inputs=tuple(self.content(p, h) for p, h in sorted(version.data.items())),
        )

    def content(self, path: str, oid: str) -> LineageNode:
        key = (path, oid)
        if key not in self.seen:
            self.seen[key] = LineageNode(NodeKind.UNKNOWN, path, oid, note="(cycle)")
            self.seen[key] = self._explain(path, oid)
        return self.seen[key]

    def _explain(self, path: str, oid: str) -> LineageNode:
        made = self.index.producer(path, oid)
        if made is not None:
            record, stage = made.record, made.stage
            return LineageNode(
                kind=NodeKind.OUTPUT,
                name=path,
                hash=oid,
                source=f"run record {record.id}",
                run=record.id,
                stage=stage.name,
                commit=record.commit,
                cmd=stage.cmd,
                params=stage.params,
                inputs=tuple(self.content(p, h) for p, h in sorted(stage.deps.items())),
            )
        in_lock = self.index.lock_producer(path, oid)
        if in_lock is not None:
            commit, name, entry = in_lock
            return LineageNode(
                kind=NodeKind.OUTPUT,
                name=path,
                hash=oid,
                source="mlops.lock" + (f" at {commit[:10]}" if commit else ""),
                run=entry.run or None,
                stage=name,
                commit=commit,
                cmd=entry.cmd,
                params=entry.params,
                inputs=tuple(self.content(d.path, d.oid) for d in entry.deps),
            )
        pointers = self.pointers()
        if path in pointers:
            pointer_file, oids = pointers[path]
            note = "" if oid in oids else "this content is not in any pointer file seen"
            return LineageNode(
                NodeKind.DATA, path, oid, source=f"pointer file {pointer_file}", note=note
            )
        if path in self.git_files():
            return LineageNode(NodeKind.GIT, path, oid, source="file in Git")
        return LineageNode(
            NodeKind.UNKNOWN, path, oid, note="no run, lock entry or pointer explains it"
        )

    def pointers(self) -> dict[str, tuple[str, set[str]]]:
        """Raw data paths -> (pointer file, every content seen in the workspace or at commits)."""
        if self._pointers is None:
            from mlops.core.git import read_blobs, tree_files
            from mlops.storage.pointer import SUFFIX, parse_pointer

            repo = self.store.repo
            found: dict[str, tuple[str, set[str]]] = {}
            for target in find_targets(repo):
                pointer_file = repo.relpath(target.pointer_file)
                found[target.relpath(repo)] = (pointer_file, {target.pointer.oid})
            for commit in self.commits:
                blobs = tree_files(self.root, commit, SUFFIX)
                contents = read_blobs(self.root, blobs.values())
                for name, blob in blobs.items():
                    pointer = parse_pointer(contents[blob].decode(errors="replace"), name)
                    data = posixpath.join(posixpath.dirname(name), pointer.path)
                    found.setdefault(data, (name, set()))[1].add(pointer.oid)
            self._pointers = found
        return self._pointers

    def git_files(self) -> set[str]:
        if self._git_files is None:
            from mlops.core.git import git

            out = git(self.root, "ls-files", "-z", "--cached")
            self._git_files = {name for name in out.decode().split("\0") if name}
        return self._git_files
