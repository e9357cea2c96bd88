"""Placing files from the cache into the workspace: reflink, hardlink, symlink or copy."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from mlops.errors import CacheError

# ioctl number of FICLONE on Linux: clone a whole file (copy-on-write).
_FICLONE = 0x40049409
# Errors meaning "this link type does not work here", so the next one is tried.
_UNSUPPORTED = {
    errno.EXDEV,
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EINVAL,
    errno.ENOTTY,
    errno.EPERM,
    errno.EMLINK,
    errno.ENOSYS,
}


class LinkUnsupported(OSError):
    """The link type cannot be made between these two places."""


def reflink(src: str, dst: str) -> None:
    """Copy-on-write clone of ``src`` at ``dst`` (Btrfs, XFS, APFS-like filesystems)."""
    import fcntl

    with open(src, "rb") as source:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(fd, _FICLONE, source.fileno())
        except OSError as exc:
            os.close(fd)
            os.unlink(dst)
            raise LinkUnsupported(exc.errno, f"reflink not supported: {exc.strerror}") from exc
        os.close(fd)


def copy(src: str, dst: str) -> None:
    """A plain copy (the kernel's copy_file_range/sendfile where possible)."""
    shutil.copyfile(src, dst)


def hardlink(src: str, dst: str) -> None:
    """A second name for the same inode."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            raise LinkUnsupported(exc.errno, f"hardlink not supported: {exc.strerror}") from exc
        raise


def symlink(src: str, dst: str) -> None:
    """A symbolic link to the absolute cache path."""
    try:
        os.symlink(os.path.abspath(src), dst)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            raise LinkUnsupported(exc.errno, f"symlink not supported: {exc.strerror}") from exc
        raise


LINKERS = {"reflink": reflink, "hardlink": hardlink, "symlink": symlink, "copy": copy}
# Link types whose workspace file shares the cache's bytes, so it must stay read-only.
SHARED = {"hardlink", "symlink"}


class Linker:
    """Places files with the first configured link type that works, remembering it."""

    def __init__(self, link_types: list[str]) -> None:
        self._candidates = list(link_types)
        self.chosen: str | None = None

    def probe(self, cache_dir: Path, workspace_dir: Path) -> str:
        """Settle the link type by trying each on a scratch file; return it."""
        src, dst = _probe_name(str(cache_dir)), _probe_name(str(workspace_dir))
        try:
            try:
                os.makedirs(cache_dir, exist_ok=True)
                with open(src, "wb") as handle:
                    handle.write(b"probe")
            except OSError as exc:
                raise CacheError(
                    f"cannot write to the cache folder {cache_dir}: {exc.strerror}"
                ) from exc
            return self.place(src, dst)
        finally:
            for path in (src, dst):
                # NotADirectoryError: the cache folder is a file; the CacheError says so.
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    os.unlink(path)

    def place(self, src: str, dst: str, storing: bool = False) -> str:
        """Make ``dst`` (which must not exist) a link or copy of ``src``; return the type used.

        ``storing`` is for the workspace-to-cache direction, where a symlink
        would point the wrong way: the bytes are copied into the cache instead.
        """
        if self.chosen is not None:
            _action(self.chosen, storing)(src, dst)
            return self.chosen
        last: OSError | None = None
        for kind in self._candidates:
            try:
                _action(kind, storing)(src, dst)
            except LinkUnsupported as exc:
                last = exc
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(dst)
                continue
            self.chosen = kind
            return kind
        raise LinkUnsupported(
            last.errno if last else errno.EOPNOTSUPP,
            f"none of the link types {self._candidates} works here ({last})",
        )


def _probe_name(folder: str) -> str:
    return os.path.join(folder, f".link-probe-{os.getpid()}")


def _action(kind: str, storing: bool) -> Callable[[str, str], None]:
    return copy if storing and kind == "symlink" else LINKERS[kind]
