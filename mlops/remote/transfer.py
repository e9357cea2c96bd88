"""``push`` / ``fetch`` / ``pull``: move only the objects the other side lacks.

Which objects: what the caller's ``Roots`` name (``mlops.flows.roots`` knows what a
repository needs), each folder with the files its manifest lists; fetch brings
manifests first, so that the files they list are known.

How: small objects travel in packs (see ``packs.py``), others one by one, on a
thread pool. Every object that arrives in the cache is hashed first; a mismatch
is dropped and reported. A manifest that would place files outside its folder
is dropped too. Whatever fails, the rest is still moved, so a rerun moves only
what is left.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from mlops.core.fsutil import atomic_write_bytes
from mlops.core.parallel import Progress
from mlops.core.repo import Repo, repo_lock
from mlops.errors import CacheError, MlopsError, RemoteError
from mlops.remote.backend import Backend, open_backend
from mlops.remote.config import get_remote
from mlops.remote.packs import (
    MIN_OBJECTS,
    SMALL_OBJECT,
    Located,
    RangeRead,
    build_index,
    group_into_packs,
    index_key,
    pack_key,
    parse_index,
    plan_reads,
)
from mlops.remote.writer import ObjectWriter
from mlops.storage.hashing import DIR_SUFFIX, hash_bytes, hash_file
from mlops.storage.manifest import parse_manifest, validate_manifest
from mlops.storage.store import Store, expand_folders, load_manifest, open_store
from mlops.workspace.checkout import CheckoutResult, checkout_targets
from mlops.workspace.tracked import Target

R = TypeVar("R")
_WRITERS = min(2, os.cpu_count() or 1)
# Asking about this many objects one by one is always cheap enough.
_ASK_EACH = 16
# Seconds between progress reports while objects move.
_REPORT_EVERY = 0.1


@dataclass(frozen=True)
class TransferResult:
    """What a push or fetch moved."""

    remote: str
    action: str  # "push" or "fetch"
    objects: int  # objects moved
    bytes: int
    present: int  # needed objects the destination already had
    packs: int  # packs written (push) or read from (fetch)
    run_cache: int = 0  # run-cache entries pushed (``push --run-cache``)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        if not self.run_cache:
            del data["run_cache"]
        return data


@dataclass(frozen=True)
class PullResult:
    """A fetch followed by a checkout."""

    fetch: TransferResult
    checkout: list[CheckoutResult]

    def to_dict(self) -> dict[str, object]:
        return {
            "fetch": self.fetch.to_dict(),
            "checkout": [r.to_dict() for r in self.checkout],
        }


@dataclass
class _Tally:
    """Counters that worker tasks return and the main thread adds up."""

    objects: int = 0
    bytes: int = 0
    corrupt: list[str] = field(default_factory=list)  # content does not match the id
    missing: list[str] = field(default_factory=list)  # not found where it should be
    unsafe: list[str] = field(default_factory=list)  # manifest problems, as messages

    def add(self, other: _Tally) -> None:
        self.objects += other.objects
        self.bytes += other.bytes
        self.corrupt += other.corrupt
        self.missing += other.missing
        self.unsafe += other.unsafe


def default_transfer_jobs() -> int:
    """Threads for network transfers: they mostly wait, so more than for disk work."""
    return min(32, (os.cpu_count() or 1) * 4)


@contextlib.contextmanager
def _session(repo: Repo, remote: str | None, purpose: str) -> Iterator[tuple[Store, Backend]]:
    """The remote's back end and the opened store, under the repository lock."""
    backend = open_backend(get_remote(repo, remote), repo)
    with repo_lock(repo, wait=30, purpose=purpose), open_store(repo) as store:
        yield store, backend


@dataclass(frozen=True)
class Roots:
    """What to move, from the caller. ``find(store)`` names the objects; with ``folders``,
    a folder named by its manifest comes with the files it lists, once the manifest is
    in the cache (``find`` is asked again as manifests arrive). ``targets()`` are the
    tracked paths they belong to, placed by ``pull`` and named in messages."""

    find: Callable[[Store], set[str]]
    targets: Callable[[], list[Target]] = list
    folders: bool = True

    def needed(self, store: Store) -> set[str]:
        """Every object to move."""
        found = self.find(store)
        return expand_folders(store.cache, found) if self.folders else found


def push(
    repo: Repo,
    roots: Roots,
    remote: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Send the objects ``roots`` name that the remote lacks."""
    with _session(repo, remote, "push") as (store, backend):
        return _push(store, backend, roots, jobs or default_transfer_jobs(), progress)


def fetch(
    repo: Repo,
    roots: Roots,
    remote: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Bring into the cache the objects ``roots`` name.

    Takes the repository lock: call it without holding it.
    """
    with _session(repo, remote, "fetch") as (store, backend):
        return _fetch(store, backend, roots, jobs or default_transfer_jobs(), progress)


def pull(
    repo: Repo,
    roots: Roots,
    remote: str | None = None,
    jobs: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> PullResult:
    """``fetch``, then ``checkout`` of the roots' targets."""
    with _session(repo, remote, "pull") as (store, backend):
        fetched = _fetch(store, backend, roots, jobs or default_transfer_jobs(), progress)
        targets = roots.targets()
        return PullResult(fetched, checkout_targets(store, targets, force, jobs, progress))


def fetch_objects(
    repo: Repo,
    oids: list[str],
    remote: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> TransferResult:
    """Bring exactly ``oids`` into the cache, for features that know which objects they need.

    Takes the repository lock: call it without holding it.
    """
    return fetch(repo, Roots(lambda store: set(oids), folders=False), remote, jobs, progress)


def send_objects(store: Store, backend: Backend, oids: set[str], jobs: int) -> TransferResult:
    """Push ``oids`` (with the files of the folders among them) to an opened ``backend``,
    for callers that keep one open across many transfers (a pipeline executor's). No
    repository lock: the caller holds what it needs."""
    return _push(store, backend, Roots(lambda _store: oids), jobs, None)


def receive_objects(store: Store, backend: Backend, oids: set[str], jobs: int) -> TransferResult:
    """Fetch ``oids`` (with the files of the folders among them) from an opened ``backend``
    into ``store``: ``send_objects``'s other half."""
    return _fetch(store, backend, Roots(lambda _store: oids), jobs, None)


def _describe(store: Store, roots: Roots, oid: str) -> str:
    """A tracked path that needs ``oid`` (for messages), or the bare id."""
    for target in roots.targets():
        where = target.relpath(store.repo)
        if target.pointer.oid == oid:
            return f"{oid} ({where})"
        if target.pointer.is_dir and store.cache.exists(target.pointer.oid):
            for entry in load_manifest(store.cache, target.pointer.oid, where).entries:
                if entry.oid == oid:
                    return f"{oid} ({where}/{entry.path})"
    return oid


# What the remote has -------------------------------------------------------------


def load_pack_index(
    store: Store, backend: Backend, names: list[str], jobs: int
) -> dict[str, Located]:
    """Where every packed object is, from the remote's pack indexes (kept locally by id)."""
    # A listing is the remote's word: only names that are pack ids are read (an id is
    # the index's hash, so nothing else could be one), never a path built from others.
    ids = sorted({n[: -len(".idx")] for n in names if _PACK_INDEX.fullmatch(n)})

    def load(pack_id: str) -> dict[str, Located]:
        kept = _kept_index(store, pack_id)
        try:
            data = kept.read_bytes()
        except FileNotFoundError:
            data = b""
        if hash_bytes(data) != pack_id:
            try:
                data = backend.read(index_key(pack_id))
            except FileNotFoundError:
                return {}  # removed since the listing
            if hash_bytes(data) != pack_id:
                raise RemoteError(
                    f"{backend.where()}: pack index {index_key(pack_id)} does not match its id; "
                    "remove it (and its .pack) from the remote, then push again"
                )
            atomic_write_bytes(kept, data)
        return parse_index(data, pack_id)

    index: dict[str, Located] = {}
    for part in _run_parallel([partial(load, p) for p in ids], jobs):
        for oid, where in part.items():
            index.setdefault(oid, where)
    return index


_PACK_INDEX = re.compile(r"[0-9a-f]{64}\.idx")


def _kept_index(store: Store, pack_id: str) -> Path:
    """Where a pack index is kept once read: indexes never change, their id is their hash."""
    return store.repo.tmp_dir / "pack-index" / f"{pack_id}.idx"


def remote_has(backend: Backend, oids: list[str], jobs: int, folder: str = "") -> set[str]:
    """Which loose ``oids`` the remote holds: asking per object, or listing, whichever is cheaper.

    Asking costs a request per object; listing the wanted folders costs a request
    per folder and page; listing the whole remote costs one request per page, one
    after another. The fullest wanted folder is listed first to estimate the
    remote's size, then the way with the fewest rounds of requests is taken.
    ``folder``: ids fanned out under that folder instead (``runcache/``, say), which
    the whole remote's listing does not cover.
    """
    if len(oids) <= _ASK_EACH:
        return _ask_each(backend, oids, jobs, folder)
    by_prefix: dict[str, list[str]] = {}
    for oid in oids:
        by_prefix.setdefault(oid[:2], []).append(oid)
    sample = max(by_prefix, key=lambda p: len(by_prefix[p]))
    sample_names = backend.list_names(folder + sample)
    found = {sample + name for name in sample_names} & set(by_prefix.pop(sample))
    rest = [oid for group in by_prefix.values() for oid in group]
    pages = max(1, math.ceil(len(sample_names) / backend.page_size))
    rounds = {
        "ask": len(rest) / jobs,
        "folders": len(by_prefix) * pages / jobs,
    }
    if not folder:
        rounds["all"] = max(1, math.ceil(256 * len(sample_names) / backend.page_size))
    way = min(rounds, key=lambda k: rounds[k])
    if way == "ask":
        return found | _ask_each(backend, rest, jobs, folder)
    if way == "all":
        return found | (set(rest) & backend.list_all())
    prefixes = sorted(by_prefix)
    listed = _run_parallel([partial(backend.list_names, folder + p) for p in prefixes], jobs)
    for prefix, names in zip(prefixes, listed, strict=True):
        found.update(set(by_prefix[prefix]) & {prefix + name for name in names})
    return found


def _ask_each(backend: Backend, oids: list[str], jobs: int, folder: str = "") -> set[str]:
    keys = [folder + _key(oid) for oid in oids]
    flags = _run_parallel([partial(backend.exists, key) for key in keys], jobs)
    return {oid for oid, flag in zip(oids, flags, strict=True) if flag}


def _key(oid: str) -> str:
    """The remote key of a loose object: the same fan-out as the local cache."""
    return f"{oid[:2]}/{oid[2:]}"


# Push ---------------------------------------------------------------------------------


def _push(
    store: Store, backend: Backend, roots: Roots, jobs: int, progress: Progress | None
) -> TransferResult:
    cache = store.cache
    if progress:
        progress("finding what the remote lacks", 0, 0)
    needed = roots.needed(store)
    index = load_pack_index(store, backend, backend.open(create=True), jobs)
    local = cache.existing(needed)
    unpacked = sorted(needed - index.keys())
    on_remote = (needed & index.keys()) | remote_has(backend, unpacked, jobs)
    send = sorted(local - on_remote)
    sizes = {oid: os.stat(cache.path(oid)).st_size for oid in send}
    small = [(oid, sizes[oid]) for oid in send if sizes[oid] <= SMALL_OBJECT]
    if len(small) < MIN_OBJECTS or not backend.spec.options.get("pack", True):
        small = []
    packed = {oid for oid, _ in small}
    groups = group_into_packs(small)
    if progress:
        progress("finding what the remote lacks", len(needed), len(needed))
    meter = _Meter(progress, "pushing", len(send), sum(sizes.values()))

    def send_pack(group: list[tuple[str, int]]) -> _Tally:
        tally, blobs = _Tally(), []
        for oid, _size in group:
            data = cache.read_bytes(oid)
            if hash_bytes(data) != oid.removesuffix(DIR_SUFFIX):
                tally.corrupt.append(oid)
                continue
            blobs.append((oid, data))
            # Reading and checking thousands of small files is most of a pack's time.
            meter.add(1, len(data))
        if blobs:
            index_data = build_index([(oid, len(data)) for oid, data in blobs])
            pack_id = hash_bytes(index_data)
            backend.write(pack_key(pack_id), b"".join(data for _, data in blobs))
            backend.write(index_key(pack_id), index_data)  # last: the pack is now visible
            atomic_write_bytes(_kept_index(store, pack_id), index_data)
            tally.objects, tally.bytes = len(blobs), sum(len(data) for _, data in blobs)
        return tally

    def send_loose(oid: str) -> _Tally:
        if not cache.verify(oid):
            return _Tally(corrupt=[oid])
        backend.upload(cache.path(oid), _key(oid))
        meter.add(1, sizes[oid])
        return _Tally(objects=1, bytes=sizes[oid])

    tasks = [partial(send_pack, group) for group in groups]
    tasks += [partial(send_loose, oid) for oid in send if oid not in packed]
    tally = _transfer(tasks, jobs, meter, "push")
    tally.missing += sorted(needed - local - on_remote)
    problems = []
    if tally.corrupt:
        problems.append(
            f"{len(tally.corrupt)} cache object(s) are corrupt and were not pushed "
            f"(first: {_describe(store, roots, tally.corrupt[0])}); run `mlops fsck`"
        )
    if tally.missing:
        problems.append(
            f"{len(tally.missing)} needed object(s) are neither in the cache nor on the remote "
            f"(first: {_describe(store, roots, tally.missing[0])})"
        )
    if problems:
        raise RemoteError(
            f"{backend.where()}: pushed {tally.objects} object(s), but " + "; ".join(problems)
        )
    return TransferResult(
        backend.spec.name, "push", tally.objects, tally.bytes, len(on_remote), len(groups)
    )


# Fetch --------------------------------------------------------------------------------


def _fetch(
    store: Store, backend: Backend, roots: Roots, jobs: int, progress: Progress | None
) -> TransferResult:
    """Fetch what ``roots`` name; they are asked again after manifests arrive."""
    cache = store.cache
    index = load_pack_index(store, backend, backend.open(create=False), jobs)
    tally = _Tally()
    attempted: set[str] = set()
    present: set[str] = set()
    packs: set[str] = set()
    # Manifests first: the files a folder needs are known only once its manifest is here.
    while True:
        needed = roots.needed(store)
        have = cache.existing(needed)
        present |= have - attempted
        absent = needed - have - attempted
        manifests = {oid for oid in absent if oid.endswith(DIR_SUFFIX)}
        batch = sorted(manifests or absent)
        attempted.update(batch)
        packs.update(index[oid].pack for oid in batch if oid in index)
        tally.add(_receive(store, backend, batch, index, jobs, progress))
        if not manifests:
            break
    problems = []
    if tally.corrupt:
        problems.append(
            f"{len(tally.corrupt)} object(s) did not match their id and were dropped "
            f"(first: {_describe(store, roots, tally.corrupt[0])})"
        )
    problems += tally.unsafe[:1]
    if tally.missing:
        problems.append(
            f"{len(tally.missing)} object(s) are not on the remote "
            f"(first: {_describe(store, roots, tally.missing[0])}); "
            "push them from a clone that has them"
        )
    if problems:
        raise RemoteError(
            f"{backend.where()}: fetched {tally.objects} object(s), but " + "; ".join(problems)
        )
    return TransferResult(
        backend.spec.name, "fetch", tally.objects, tally.bytes, len(present), len(packs)
    )


def _receive(
    store: Store,
    backend: Backend,
    oids: list[str],
    index: dict[str, Located],
    jobs: int,
    progress: Progress | None,
) -> _Tally:
    """Fetch ``oids`` into the cache: packed ones by ranged reads, others one by one."""
    reads = plan_reads([(oid, index[oid]) for oid in oids if oid in index])
    loose = [oid for oid in oids if oid not in index]

    # Reads wait on the network and run on every thread, but storing thousands of small
    # objects is CPU and file-system work: more writers than cores only fight for the GIL.
    writers = threading.BoundedSemaphore(_WRITERS)
    writer = ObjectWriter(store.cache)

    def read_range(read: RangeRead) -> _Tally:
        try:
            data = backend.read(pack_key(read.pack), read.start, read.end)
        except FileNotFoundError:
            return _Tally(missing=[oid for oid, _, _ in read.items])
        tally = _Tally()
        with writers:
            for oid, offset, size in read.items:
                tally.add(_accept(writer, oid, data[offset : offset + size]))
        meter.add(len(read.items), sum(size for _, _, size in read.items))
        return tally

    def read_loose(oid: str) -> _Tally:
        store.cache.prepare_folder(oid)
        tmp = store.cache.temp_path()
        try:
            backend.download(_key(oid), tmp)
            tally = _accept_file(store, writer, oid, tmp)
            meter.add(1, tally.bytes)
            return tally
        except FileNotFoundError:
            return _Tally(missing=[oid])
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # Loose objects' sizes are known only once they arrive: the bytes' total grows then.
    total_bytes = sum(index[oid].size for oid in oids if oid in index)
    meter = _Meter(progress, "fetching", len(oids), total_bytes)
    tasks = [partial(read_range, read) for read in reads]
    tasks += [partial(read_loose, oid) for oid in loose]
    with writer:
        return _transfer(tasks, jobs, meter, "fetch")


def _accept(writer: ObjectWriter, oid: str, data: bytes) -> _Tally:
    """Store fetched bytes if they hash to ``oid`` (and, for a manifest, are safe)."""
    if hash_bytes(data) != oid.removesuffix(DIR_SUFFIX):
        return _Tally(corrupt=[oid])
    problem = _unsafe_manifest(oid, data)
    if problem:
        return _Tally(unsafe=[problem])
    writer.write(oid, data)
    return _Tally(objects=1, bytes=len(data))


def _accept_file(store: Store, writer: ObjectWriter, oid: str, tmp: str) -> _Tally:
    """Move a downloaded file into the cache if it hashes to ``oid``."""
    if oid.endswith(DIR_SUFFIX):
        with open(tmp, "rb") as handle:
            return _accept(writer, oid, handle.read())
    size = os.stat(tmp).st_size
    if hash_file(tmp, size) != oid:
        return _Tally(corrupt=[oid])
    # Also records the object in the state cache, so checkout never hashes it again.
    store.cache.adopt(tmp, oid)
    return _Tally(objects=1, bytes=size)


def _unsafe_manifest(oid: str, data: bytes) -> str | None:
    """Why a fetched manifest must not enter the cache, or None when it is sound."""
    if not oid.endswith(DIR_SUFFIX):
        return None
    try:
        validate_manifest(parse_manifest(data, oid), oid)
    except CacheError as exc:
        return f"{exc.message} (it could write outside the repository); it was dropped"
    return None


# Running tasks ------------------------------------------------------------------------


class _Meter:
    """Objects and bytes moved so far, reported together as tasks advance (from any
    thread): ``VERB objects`` and ``VERB MiB``, from zero before the first one moves."""

    def __init__(self, progress: Progress | None, verb: str, objects: int, size: int) -> None:
        self.progress, self.verb = progress, verb
        self.total_objects, self.total_bytes = objects, size
        self.objects = self.bytes = 0
        self.lock = threading.Lock()
        self.last = 0.0
        self._report()

    def add(self, objects: int, size: int) -> None:
        if self.progress is None:
            return
        with self.lock:
            self.objects += objects
            self.bytes += size
            now = time.monotonic()
            if now - self.last >= _REPORT_EVERY or self.objects >= self.total_objects:
                self.last = now
                self._report()

    def _report(self) -> None:
        if self.progress is None or not self.total_objects:
            return
        total = max(self.total_bytes, self.bytes)
        mib = math.ceil(total / (1 << 20))
        done = min(self.objects, self.total_objects)
        self.progress(f"{self.verb} objects", done, self.total_objects)
        if mib:
            self.progress(f"{self.verb} MiB", math.ceil(self.bytes / (1 << 20)), mib)

    def finish(self) -> None:
        with self.lock:
            self._report()


def _transfer(
    tasks: Sequence[Callable[[], _Tally]], jobs: int, meter: _Meter, command: str
) -> _Tally:
    """Run transfer tasks in parallel (``meter`` reports as they go); stop at the first
    failure."""
    tally = _Tally()
    try:
        for part in _run_parallel(tasks, jobs, ordered=False):
            tally.add(part)
        meter.finish()
    except MlopsError as exc:
        raise type(exc)(
            f"{exc.message}; {tally.objects} object(s) were moved before that: "
            f"run `mlops {command}` again to move the rest"
        ) from None
    return tally


def _run_parallel(tasks: Sequence[Callable[[], R]], jobs: int, ordered: bool = True) -> Iterator[R]:
    """Run ``tasks`` on ``jobs`` threads; yield results in order (or as they finish).

    On the first failure the tasks not yet started are cancelled and the error
    is raised once the running ones have stopped.
    """
    if len(tasks) <= 1:
        for task in tasks:
            yield task()
        return
    with ThreadPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
        futures = [pool.submit(task) for task in tasks]
        try:
            for future in futures if ordered else as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
