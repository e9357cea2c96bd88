"""The run cache on a remote: entries (run-cache key -> output hashes) kept beside the
objects, under ``runcache/``, so that a teammate's run or a cluster worker restores the
outputs of a run someone else already made (``mlops push --run-cache`` sends this clone's;
``mlops run --executor dask`` reads and writes them)."""

from __future__ import annotations

import json

from mlops.core.repo import Repo
from mlops.pipeline.lock import FileHash
from mlops.pipeline.runs import open_runs
from mlops.remote.backend import Backend
from mlops.remote.transfer import remote_has, send_objects
from mlops.storage.store import Store, expand_folders

# Where run-cache entries live on a remote: beside the objects, under their own folder.
RUN_CACHE_FOLDER = "runcache"


def entry_key(key: str) -> str:
    """The remote key of the run-cache entry ``key`` (the objects' fan-out, in its folder)."""
    return f"{RUN_CACHE_FOLDER}/{key[:2]}/{key[2:]}"


def read_entry(backend: Backend, key: str) -> tuple[FileHash, ...] | None:
    """The outputs the remote's run cache names for ``key``, or None."""
    try:
        data = backend.read(entry_key(key))
    except FileNotFoundError:
        return None
    try:
        return tuple(FileHash(**o) for o in json.loads(data)["outs"])
    except (ValueError, KeyError, TypeError):
        return None  # a damaged entry: the stage runs


def entry_bytes(outs: tuple[FileHash, ...]) -> bytes:
    """A run-cache entry as stored on a remote (the local run cache's form)."""
    return json.dumps({"outs": [vars(o) for o in outs]}, sort_keys=True).encode()


def object_ids(store: Store, outs: tuple[FileHash, ...] | list[FileHash]) -> set[str]:
    """Every object ``outs`` need: their ids and the files of their folders' manifests."""
    return expand_folders(store.cache, {o.oid for o in outs})


def push_entries(repo: Repo, store: Store, backend: Backend, jobs: int) -> int:
    """Send this clone's run-cache entries the remote lacks, with their outputs' objects
    (an entry whose objects this cache no longer has is left out); return how many."""
    runs = open_runs(repo)
    try:
        entries = runs.cache_entries()
    finally:
        runs.close()
    if not entries:
        return 0
    wanted = {}
    # Which entries the remote has: asked together (in parallel, or by listing its folders).
    have = remote_has(backend, sorted(entries), jobs, f"{RUN_CACHE_FOLDER}/")
    for key in sorted(set(entries) - have):
        outs = tuple(FileHash(**o) for o in entries[key]["outs"])
        needed = object_ids(store, outs)
        if store.cache.existing(needed) == needed:
            wanted[key] = (outs, needed)
    if not wanted:
        return 0
    send_objects(store, backend, set().union(*(n for _, n in wanted.values())), jobs)
    for key, (outs, _) in wanted.items():  # after their objects: an entry never dangles
        backend.write(entry_key(key), entry_bytes(outs))
    return len(wanted)
