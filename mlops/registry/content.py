"""A version's content: resolve references, fetch what the cache lacks, verify, place, load."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.repo import Repo
from mlops.errors import CacheError, RegistryError, RemoteError, WorkspaceConflict
from mlops.registry.records import ModelVersion
from mlops.registry.tags import read_registry, resolve
from mlops.storage.manifest import Entry
from mlops.storage.store import Store, load_sound_manifest, open_store

_CHUNK = 1 << 20


def registry_objects(repo: Repo) -> set[str]:
    """Every registered version's content and run record: kept by gc, carried by push/pull."""
    roots: set[str] = set()
    for registry in read_registry(repo.root).values():
        for version in registry.versions:
            roots.add(version.content.oid)
            if version.run is not None and version.run.record:
                roots.add(version.run.record)
    return roots


@dataclass(frozen=True)
class GotModel:
    """What ``get_model`` wrote: where, how many files and bytes, and what it fetched."""

    version: ModelVersion
    path: str
    files: int
    size: int
    fetched: int  # objects brought from the remote

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.version.model,
            "version": self.version.label,
            "hash": self.version.content.oid,
            "path": self.path,
            "files": self.files,
            "size": self.size,
            "fetched": self.fetched,
        }


def get_model(
    repo: Repo,
    reference: str,
    out: str | os.PathLike[str],
    force: bool = False,
    remote: str | None = None,
) -> GotModel:
    """Write a version's content to ``out`` (a writable copy), checking every file's hash.

    Objects missing from the cache are fetched from ``remote`` (default: the
    default remote). An existing ``out`` is replaced only with ``force``;
    nothing is written unless every file matched its hash.
    """
    version = resolve(repo, reference)
    target = Path(os.path.abspath(out))
    if os.path.lexists(target) and not force:
        raise WorkspaceConflict(f"{out}: already exists; use --force to replace it")
    with open_store(repo) as store:
        fetched = ensure_content(store, version, remote)
        entries = _entries(store, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{os.getpid()}.mlops-get"
        try:
            for entry in entries:
                dst = tmp / entry.path if entry.path else tmp
                dst.parent.mkdir(parents=True, exist_ok=True)
                _copy_verified(store, version, entry, dst)
            _replace(tmp, target)
        finally:
            _remove(tmp)
    size = sum(e.size for e in entries)
    return GotModel(version, str(target), len(entries), size, fetched)


def load_model(reference: str, repo: Repo | None = None) -> Any:
    """The model object of ``NAME@ALIAS`` or ``NAME:VERSION``, after checking its hash."""
    from mlops.core.repo import find_repo

    repo = repo or find_repo()
    return load_version(repo, resolve(repo, reference))


def load_version(repo: Repo, version: ModelVersion, remote: str | None = None) -> Any:
    """The model object of a resolved ``version``, fetched if needed, hash-checked, loaded
    as its recorded format says (a skops file runs no code)."""
    from mlops.registry.formats import load_bytes
    from mlops.storage.hashing import hash_bytes

    if version.content.is_dir:
        raise RegistryError(
            f"{version.ref} is a folder of {version.content.files} files: "
            "write it out with `mlops model get` and load it with its own library"
        )
    with open_store(repo) as store:
        ensure_content(store, version, remote)
    data = store.cache.read_bytes(version.content.oid)
    if hash_bytes(data) != version.content.oid:
        raise _corrupt(version, version.content.oid)
    return load_bytes(data, version.format, version.content.path, version.ref)


def ensure_content(store: Store, version: ModelVersion, remote: str | None) -> int:
    """Fetch the version's objects the cache lacks (manifest first); return how many came."""
    cache, oid = store.cache, version.content.oid
    fetched = 0
    if not cache.exists(oid):
        fetched += _fetch(store, version, [oid], remote)
    if version.content.is_dir:
        wanted = [e.oid for e in _entries(store, version)]
        missing = sorted(set(wanted) - cache.existing(wanted))
        if missing:
            fetched += _fetch(store, version, missing, remote)
    return fetched


def _fetch(store: Store, version: ModelVersion, oids: list[str], remote: str | None) -> int:
    from mlops.remote.config import list_remotes
    from mlops.remote.transfer import fetch_objects

    if remote is None and not list_remotes(store.repo):
        raise CacheError(
            f"{version.ref}: its content {version.content.oid[:12]} is not in the cache and "
            "no remote is configured: add one with `mlops remote add NAME URL --default`"
        )
    try:
        return fetch_objects(store.repo, oids, remote=remote).objects
    except RemoteError as exc:
        raise RemoteError(f"{version.ref}: {exc.message}") from None


def _entries(store: Store, version: ModelVersion) -> list[Entry]:
    content = version.content
    if not content.is_dir:
        return [Entry("", content.oid, content.size)]
    return list(load_sound_manifest(store.cache, content.oid, version.ref).entries)


def _copy_verified(store: Store, version: ModelVersion, entry: Entry, dst: Path) -> None:
    """Copy an object to ``dst``, hashing the bytes on the way; a mismatch is an error."""
    from blake3 import blake3

    hasher = blake3()
    try:
        with open(store.cache.path(entry.oid), "rb") as src, open(dst, "wb") as sink:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
                sink.write(chunk)
    except FileNotFoundError:
        raise CacheError(
            f"{version.ref}: object {entry.oid[:12]} is not in the cache: run `mlops pull`"
        ) from None
    if hasher.hexdigest() != entry.oid:
        raise _corrupt(version, entry.oid)
    os.chmod(dst, 0o755 if entry.executable else 0o644)


def _corrupt(version: ModelVersion, oid: str) -> CacheError:
    return CacheError(
        f"{version.ref}: cache object {oid[:12]} does not match its hash (corrupt); "
        "nothing was written: run `mlops fsck`, then fetch it again with `mlops pull`"
    )


def _replace(tmp: Path, target: Path) -> None:
    """Put ``tmp`` at ``target``; what stood there is removed only once ``tmp`` is in place."""
    if not os.path.lexists(target) or (tmp.is_file() and not target.is_dir()):
        os.replace(tmp, target)
        return
    aside = target.parent / f".{target.name}.{os.getpid()}.mlops-old"
    os.replace(target, aside)
    os.replace(tmp, target)
    _remove(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
