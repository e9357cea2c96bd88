"""DVC's data into mlops's cache: each file linked in (no second copy where the file
system allows), read once for its MD5 (checked against DVC's) and its BLAKE3 (its id).

A file's bytes come from DVC's cache, or from the workspace when its MD5 matches;
DVC's cache objects are never changed (a hard link is made only to an object that is
read-only already, so making the mlops object read-only changes nothing of DVC's).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from blake3 import blake3

from mlops.core.parallel import Progress
from mlops.dvcimport.dvcfiles import DIR_SUFFIX as DVC_DIR_SUFFIX
from mlops.dvcimport.dvcfiles import DvcHash, cache_object
from mlops.storage.hashing import DIR_SUFFIX, MMAP_THRESHOLD, hash_bytes
from mlops.storage.links import LinkUnsupported, copy, hardlink, reflink
from mlops.storage.manifest import Entry, build_manifest
from mlops.storage.paths import is_safe_relpath
from mlops.storage.store import Store

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_CHUNK = 8 << 20
_MD5 = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Imported:
    """A DVC path's content under mlops: its id (``.dir`` for a folder), size, file count."""

    oid: str
    size: int
    files: int = 1


@dataclass(frozen=True)
class Missing:
    """Content whose bytes were not found (or not intact) in DVC's cache or the workspace."""

    path: str
    reason: str


@dataclass
class _FileTask:
    """One file content (by MD5) to find, verify and (with ``store``) put in the cache."""

    md5: str
    sources: list[str] = field(default_factory=list)  # absolute paths to try, in order
    store: bool = False
    size: int = 0


def md5_and_blake3(path: str) -> tuple[str, str, int]:
    """A file's MD5 and BLAKE3 hex digests and size, from one read.

    A big file is memory-mapped and both digests run at once: MD5 on a thread of its
    own (hashlib lets go of the GIL), BLAKE3 on every core.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < MMAP_THRESHOLD:
            data = os.read(fd, size + 1)
            while chunk := os.read(fd, 1 << 16):
                data += chunk
            return hashlib.md5(data).hexdigest(), blake3(data).hexdigest(), len(data)
        import mmap

        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            md5 = hashlib.md5()

            def run_md5() -> None:
                for start in range(0, len(view), _CHUNK):
                    md5.update(view[start : start + _CHUNK])

            worker = threading.Thread(target=run_md5, name="mlops-md5")
            worker.start()
            try:
                digest = blake3(view, max_threads=blake3.AUTO).hexdigest()
            finally:
                worker.join()
            view.release()
            return md5.hexdigest(), digest, size
    finally:
        os.close(fd)


def dvc_dir_md5(entries: list[tuple[str, str]]) -> str:
    """The MD5 DVC gives a folder of (relative path, MD5) files: that of its listing."""
    listing = [{"md5": md5, "relpath": path} for path, md5 in sorted(entries)]
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + DVC_DIR_SUFFIX


class ObjectImporter:
    """Imports the contents of DVC paths (see the module's docstring)."""

    def __init__(self, store: Store, dvc_cache: str) -> None:
        self.store = store
        self.dvc_cache = dvc_cache
        self.root = str(store.repo.root)
        # The ways to bring a file in, best first; one that fails here is dropped.
        self._kinds = ["reflink", "hardlink", "copy"]

    def listing(self, found: DvcHash) -> list[tuple[str, str]] | Missing:
        """The (relative path, MD5) files of a DVC folder: its ``.dir`` object from DVC's
        cache (checked against its MD5), else the workspace folder if it hashes the same."""
        obj = cache_object(self.dvc_cache, found.md5)
        try:
            data = Path(obj).read_bytes()
        except OSError:
            data = None
        if data is not None:
            if hashlib.md5(data).hexdigest() + DVC_DIR_SUFFIX != found.md5:
                return Missing(found.path, f"DVC's listing {found.md5} is corrupt (MD5 differs)")
            try:
                rows = [(str(r["relpath"]), str(r["md5"])) for r in json.loads(data)]
            except (ValueError, KeyError, TypeError):
                return Missing(found.path, f"DVC's listing {found.md5} is not valid JSON")
            bad = [path for path, md5 in rows if not _safe(path) or not _MD5.fullmatch(md5)]
            if bad:
                return Missing(found.path, f"DVC's listing {found.md5} names {bad[0]!r}")
            return rows
        here = self._workspace_listing(found.path)
        if here is not None and dvc_dir_md5(here) == found.md5:
            return here
        return Missing(found.path, f"folder listing {found.md5} is not in DVC's cache")

    def _workspace_listing(self, rel: str) -> list[tuple[str, str]] | None:
        folder = os.path.join(self.root, rel)
        if not os.path.isdir(folder) or os.path.islink(folder):
            return None
        rows = []
        for top, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
            for name in files:
                path = os.path.join(top, name)
                with open(path, "rb") as handle:
                    digest = hashlib.file_digest(handle, "md5").hexdigest()
                rows.append((os.path.relpath(path, folder).replace(os.sep, "/"), digest))
        return rows

    def import_all(
        self, wanted: Sequence[tuple[DvcHash, bool]], progress: Progress | None = None
    ) -> dict[tuple[str, str], Imported | Missing]:
        """Each (DVC path, whether its objects go into the cache) by (path, MD5)."""
        tasks: dict[str, _FileTask] = {}
        layouts: dict[tuple[str, str], list[tuple[str, str]] | Missing] = {}

        def task(md5: str, workspace: str, store: bool) -> None:
            item = tasks.setdefault(md5, _FileTask(md5))
            item.store = item.store or store
            ws = os.path.join(self.root, workspace)
            if ws not in item.sources:
                item.sources.append(ws)

        for found, store in wanted:
            key = (found.path, found.md5)
            if key not in layouts:
                layouts[key] = self.listing(found) if found.is_dir else [("", found.md5)]
            rows = layouts[key]
            if isinstance(rows, Missing):
                continue
            for rel, md5 in rows:
                task(md5, f"{found.path}/{rel}" if rel else found.path, store)
        done = self._run(list(tasks.values()), progress)
        results: dict[tuple[str, str], Imported | Missing] = {}
        for (path, md5), rows in layouts.items():
            if isinstance(rows, Missing):
                results[(path, md5)] = rows
            elif not md5.endswith(DVC_DIR_SUFFIX):
                got = done.get(md5)
                results[(path, md5)] = (
                    Imported(got[0], got[1]) if got else Missing(path, self._why(tasks[md5]))
                )
            else:
                results[(path, md5)] = self._folder(path, md5, rows, done, tasks)
        return results

    def _folder(
        self,
        path: str,
        md5: str,
        rows: list[tuple[str, str]],
        done: dict[str, tuple[str, int]],
        tasks: dict[str, _FileTask],
    ) -> Imported | Missing:
        lacking = [rel for rel, file_md5 in rows if file_md5 not in done]
        if lacking:
            return Missing(
                path,
                f"{len(lacking)} of {len(rows)} files are not in DVC's cache (first: {lacking[0]})",
            )
        entries = []
        for rel, file_md5 in rows:
            oid, size = done[file_md5]
            entries.append(Entry(rel, oid, size, _executable(os.path.join(self.root, path, rel))))
        manifest = build_manifest(entries)
        data = manifest.to_bytes()
        stored = any(tasks[m].store for _, m in rows)
        oid = (
            self.store.cache.add_bytes(data, DIR_SUFFIX)
            if stored or not rows
            else hash_bytes(data) + DIR_SUFFIX
        )
        return Imported(oid, manifest.size, len(entries))

    def _why(self, item: _FileTask) -> str:
        if os.path.exists(cache_object(self.dvc_cache, item.md5)):
            return f"DVC's cache object {item.md5} is corrupt (MD5 differs)"
        return f"{item.md5} is not in DVC's cache and the workspace holds other bytes"

    def _run(self, tasks: list[_FileTask], progress: Progress | None) -> dict[str, tuple[str, int]]:
        """MD5 -> (BLAKE3, size) of every task whose bytes were found intact."""
        cache = self.store.cache
        for item in tasks:
            obj = cache_object(self.dvc_cache, item.md5)
            # Stored objects come from DVC's cache first (a link, not a copy); hashes
            # alone from the workspace first (what a dep or metric holds now).
            if item.store:
                item.sources.insert(0, obj)
            else:
                item.sources.append(obj)
            with contextlib.suppress(OSError):
                item.size = os.stat(item.sources[0]).st_size

        def process(item: _FileTask) -> tuple[str, str, int] | None:
            for source in item.sources:
                got = self._import_one(item, source)
                if got is not None:
                    return item.md5, *got
            return None

        big = [t for t in tasks if t.size >= MMAP_THRESHOLD]
        small = [t for t in tasks if t.size < MMAP_THRESHOLD]
        # Big files, and one small one to settle the link type before workers fork.
        outcomes = [process(t) for t in big + small[:1]]
        outcomes += cache.map_files(process, small[1:], None, progress, "importing")
        return {md5: (oid, size) for md5, oid, size in (o for o in outcomes if o)}

    def _import_one(self, item: _FileTask, source: str) -> tuple[str, int] | None:
        """(BLAKE3, size) of ``source`` if its MD5 is the task's; stored when asked."""
        try:
            st = os.stat(source)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        if not item.store:
            md5, oid, size = md5_and_blake3(source)
            if md5 != item.md5:
                return None
            if size == st.st_size:
                self.store.state.put(st, oid)
            return oid, size
        for kind in list(self._kinds):
            if kind == "hardlink" and st.st_mode & _WRITE_BITS:
                continue  # making our object read-only would change DVC's file
            try:
                if kind == "hardlink":
                    return self._hardlink(item, source, st)
                return self._copied(item, source, kind)
            except LinkUnsupported:
                self._kinds.remove(kind)  # not on this file system: not tried again
        return None

    def _hardlink(self, item: _FileTask, source: str, st: os.stat_result) -> tuple[str, int] | None:
        """A second name in our cache for a read-only file of DVC's: hashed, then linked
        (the same inode either way: no copy to check apart)."""
        md5, oid, size = md5_and_blake3(source)
        if md5 != item.md5:
            return None
        cache = self.store.cache
        cache.prepare_folder(oid)
        with contextlib.suppress(FileExistsError):
            hardlink(source, cache.path(oid))
        self.store.state.put(st, oid)
        return oid, size

    def _copied(self, item: _FileTask, source: str, kind: str) -> tuple[str, int] | None:
        """A reflink (or copy) of ``source`` in our cache: placed, then hashed, then named."""
        cache = self.store.cache
        tmp = cache.temp_path()
        try:
            (reflink if kind == "reflink" else copy)(source, tmp)
            md5, oid, size = md5_and_blake3(tmp)
            if md5 != item.md5:
                os.unlink(tmp)
                return None
            cache.prepare_folder(oid)
            if cache.exists(oid):
                os.unlink(tmp)
            else:
                cache.adopt(tmp, oid)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return oid, size


def _safe(relpath: str) -> bool:
    """A listing's path obeys the rule for received paths, and names no .dvc folder."""
    return is_safe_relpath(relpath) and ".dvc" not in relpath.lower().split("/")


def _executable(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IXUSR)
    except OSError:
        return False


def placeholder(md5: str) -> str:
    """An id no content has, for a lock entry whose bytes are unknown: the stage is
    then stale for mlops as it is for DVC."""
    suffix = DIR_SUFFIX if md5.endswith(DVC_DIR_SUFFIX) else ""
    return hash_bytes(f"dvc-md5:{md5}".encode()) + suffix
