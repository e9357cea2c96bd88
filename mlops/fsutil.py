"""Small filesystem helpers shared by every layer: atomic writes and read-only bits."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    import tempfile  # here: commands that write nothing (status) skip its imports

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write (a full disk) names no file itself
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 text, keeping an existing file's permission bits.

    Text read with ``errors="surrogateescape"`` (a user's file that is not all UTF-8)
    is written back byte for byte.
    """
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
    data = text.encode("utf-8", "surrogateescape")
    atomic_write_bytes(path, data, mode if mode is not None else 0o644)


def make_read_only(path: Path | str) -> None:
    """Remove every write bit, keeping read and executable bits."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(path: Path | str) -> None:
    """Give the owner write permission."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode | stat.S_IWUSR)


def make_private_copy(path: Path) -> None:
    """Replace ``path`` (a link into the cache, say) by a writable copy of its bytes, atomically."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)  # follows a symlink to the cache object
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
