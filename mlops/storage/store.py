"""The object store opened for one command: the cache, its state cache and link policy."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from mlops.core.repo import Repo
from mlops.errors import CacheError
from mlops.storage.cache import Cache
from mlops.storage.hashing import DIR_SUFFIX, hash_bytes
from mlops.storage.links import Linker
from mlops.storage.manifest import Manifest, parse_manifest, validate_manifest
from mlops.storage.state import StateCache


class Store:
    """The repository's cache, state cache and link policy, opened for one command.

    Used as a context manager (``with open_store(repo) as store:``), it writes the
    hashes it learnt to the state cache when the block ends, however it ends, and
    closes the state cache's connection: one left open to a garbage collector checkpoints
    and deletes the write-ahead log at a moment nobody chose (under a copy of the
    repository, say).
    """

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.cache = Cache(
            repo.cache_dir,
            StateCache(repo.mlops_dir / "state.db"),
            scratch=repo.scratch_dir,
            aside=repo.mlops_dir / "corrupt",
        )
        self.cache.sweep()

    @property
    def state(self) -> StateCache:
        return self.cache.state

    @cached_property
    def linker(self) -> Linker:
        # Read on first use: commands that only look (status, diff) skip the config.
        return Linker(self.repo.link_types())

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.state.flush()
        finally:
            self.state.close()


def open_store(repo: Repo) -> Store:
    """Open the cache of ``repo``."""
    return Store(repo)


def load_manifest(cache: Cache, oid: str, where: str) -> Manifest:
    """A folder's manifest from the cache, named after ``where`` when it is missing."""
    return parse_manifest(manifest_bytes(cache, oid, where), oid)


def load_sound_manifest(cache: Cache, oid: str, where: str) -> Manifest:
    """``load_manifest``, checked by ``validate_manifest`` before files are written from it.

    Once per manifest: the state cache remembers the ones that passed, and a remembered
    one is trusted only while its bytes still hash to its id (hashing costs a fraction of
    judging every path).
    """
    data = manifest_bytes(cache, oid, where)
    manifest = parse_manifest(data, oid)
    known = cache.state.is_sound_manifest(oid)
    if not (known and hash_bytes(data) == oid.removesuffix(DIR_SUFFIX)):
        validate_manifest(manifest, oid)
        cache.state.put_sound_manifest(oid)
    return manifest


def manifest_bytes(cache: Cache, oid: str, where: str) -> bytes:
    """The stored bytes of a folder's manifest (see ``load_manifest``)."""
    if not cache.exists(oid):
        raise CacheError(
            f"{where}: folder manifest {oid} is not in the cache: run `mlops pull` first"
        )
    return cache.read_bytes(oid)


def expand_folders(cache: Cache, oids: Iterable[str]) -> set[str]:
    """``oids`` and the files of each folder among them whose manifest is in ``cache``."""
    found = set(oids)
    for oid in list(found):
        if oid.endswith(DIR_SUFFIX) and cache.exists(oid):
            found.update(e.oid for e in load_manifest(cache, oid, oid).entries)
    return found
