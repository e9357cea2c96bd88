"""The local object store: ``cache/<2 hex>/<rest>``, written atomically, read-only."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from mlops.errors import CacheError
from mlops.fsutil import make_read_only
from mlops.storage.hashing import DIR_SUFFIX, hash_bytes, hash_file
from mlops.storage.links import SHARED, Linker
from mlops.storage.state import StateCache


def _tmp_name(target: str) -> str:
    # Dot-names are never taken for objects, so a temporary left by a killed
    # process is invisible to every reader and swept by ``gc``.
    head, tail = os.path.split(target)
    return os.path.join(head, f".{tail}.{os.getpid()}.{id(target):x}.tmp")


class Cache:
    """A content-addressed object store in a local folder."""

    def __init__(self, root: Path, state: StateCache) -> None:
        self.root = root
        self.state = state

    def path(self, oid: str) -> str:
        """Where the object ``oid`` lives (it may not exist)."""
        return os.path.join(self.root, oid[:2], oid[2:])

    def exists(self, oid: str) -> bool:
        """Whether the object is present."""
        return os.path.exists(self.path(oid))

    def existing(self, oids: Iterable[str]) -> set[str]:
        """The subset of ``oids`` present in the cache, listing folders when that is cheaper."""
        wanted = set(oids)
        if len(wanted) < 2000:
            return {oid for oid in wanted if self.exists(oid)}
        present: set[str] = set()
        for prefix in {oid[:2] for oid in wanted}:
            with contextlib.suppress(FileNotFoundError):
                present.update(prefix + name for name in os.listdir(self.root / prefix))
        return wanted & present

    def iter_objects(self) -> Iterator[str]:
        """Every object id in the cache."""
        if not self.root.is_dir():
            return
        for prefix in sorted(os.listdir(self.root)):
            folder = self.root / prefix
            if len(prefix) != 2 or not folder.is_dir():
                continue
            for name in os.listdir(folder):
                if not name.startswith("."):
                    yield prefix + name

    def _publish(self, tmp: str, oid: str) -> None:
        """Make a fully written temporary the object ``oid``."""
        make_read_only(tmp)
        target = self.path(oid)
        os.replace(tmp, target)
        self.state.put(os.stat(target), oid.removesuffix(DIR_SUFFIX))

    def _prepare(self, oid: str) -> str:
        target = self.path(oid)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cannot write to the cache folder {self.root}: {exc.strerror}"
            ) from exc
        return target

    def add_bytes(self, data: bytes, suffix: str = "") -> str:
        """Store ``data``; return its id (``suffix`` marks manifests as ``.dir``)."""
        oid = hash_bytes(data) + suffix
        if self.exists(oid):
            return oid
        tmp = _tmp_name(self._prepare(oid))
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            self._publish(tmp, oid)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise CacheError(f"cannot write to the cache folder {self.root}: {exc}") from exc
        return oid

    def read_bytes(self, oid: str) -> bytes:
        """The bytes of an object; a missing object is a clear error."""
        try:
            with open(self.path(oid), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise CacheError(
                f"object {oid} is not in the cache: run `mlops fetch` or `mlops pull`"
            ) from None

    def add_file(self, src: str, oid: str, linker: Linker) -> None:
        """Store the workspace file ``src`` (whose hash is ``oid``) and link it back.

        With a shared link type (hardlink, symlink) the workspace file ends up
        sharing the cache's bytes, read-only; with copy or reflink it is left as is.
        """
        target = self._prepare(oid)
        try:
            if not os.path.exists(target):
                tmp = _tmp_name(target)
                try:
                    linker.place(src, tmp, storing=True)
                    self._publish(tmp, oid)
                except BaseException:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
            if linker.chosen is None or (
                linker.chosen in SHARED and not _is_link_to(src, target, linker.chosen)
            ):
                self.place(oid, src, linker, executable=os.access(src, os.X_OK))
        except PermissionError as exc:
            raise CacheError(
                f"cannot write to the cache folder {self.root}: {exc.strerror}"
            ) from exc

    def place(self, oid: str, dst: str, linker: Linker, executable: bool = False) -> str:
        """Put object ``oid`` at workspace path ``dst``, atomically replacing what is there."""
        src = self.path(oid)
        tmp = _tmp_name(dst)
        try:
            kind = linker.place(src, tmp)
            if kind not in SHARED:
                mode = 0o755 if executable else 0o644
                os.chmod(tmp, mode & ~_umask())
            os.replace(tmp, dst)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return kind

    def verify(self, oid: str) -> bool:
        """Whether the object's bytes still hash to its id (trusting an unchanged stat)."""
        path = self.path(oid)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        digest = oid.removesuffix(DIR_SUFFIX)
        known = self.state.get(st)
        if known is not None:
            return known == digest
        actual = hash_file(path, st.st_size)
        if actual == digest:
            self.state.put(st, digest)
        return actual == digest

    def rehash(self, oid: str) -> bool:
        """Whether the object's bytes hash to its id, reading every byte."""
        try:
            return hash_file(self.path(oid)) == oid.removesuffix(DIR_SUFFIX)
        except FileNotFoundError:
            return False


def _is_link_to(path: str, target: str, kind: str) -> bool:
    try:
        if kind == "symlink":
            return os.path.islink(path) and os.readlink(path) == os.path.abspath(target)
        return os.stat(path).st_ino == os.stat(target).st_ino and not os.path.islink(path)
    except FileNotFoundError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_executable(st: os.stat_result) -> bool:
    """Whether the owner may execute the file."""
    return bool(st.st_mode & stat.S_IXUSR)
