"""Small filesystem helpers shared by every layer: atomic writes and read-only bits."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
from pathlib import Path

_unique = itertools.count()


def temp_path(folder: str | Path, hidden: bool = False) -> str:
    """A fresh temporary path in ``folder``, owned by this process (``sweep_temporaries``).

    Short (the process id and a counter), so never too long for the file system however
    long the name it stands for; ``hidden`` starts it with a dot, for one that must sit
    beside the user's files.
    """
    return f"{folder}/{'.' if hidden else ''}{os.getpid()}-{next(_unique)}.mlops-tmp"


def replace_from(tmp: str, dest: str) -> None:
    """``os.replace(tmp, dest)``; when ``tmp`` is on another file system, by way of a
    copy to a temporary beside ``dest``. ``tmp`` is gone afterwards either way."""
    try:
        os.replace(tmp, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    near = temp_path(os.path.dirname(dest) or ".", hidden=True)
    try:
        shutil.copy2(tmp, near)
        os.replace(near, dest)
    finally:
        for leftover in (near, tmp):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def sweep_temporaries(folder: str | Path) -> int:
    """Delete the temporaries in ``folder`` whose process no longer runs (it was killed
    before it could rename or remove them); return how many went."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    swept = 0
    for name in names:
        pid, sep, _ = name.lstrip(".").partition("-")
        if not (sep and pid.isdigit() and name.endswith(".mlops-tmp")) or _alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, name))
            swept += 1
    return swept


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and only waits to be reaped (Linux): a killed worker whose
    parent died too is reparented to PID 1, which in a container may never reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
    except OSError:
        return False  # no /proc here: trust kill()
    return bool(fields) and fields[0] == b"Z"


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to the descriptor ``fd`` (``os.write`` may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def atomic_write_bytes(
    path: Path, data: bytes, mode: int | None = None, scratch: Path | None = None
) -> None:
    """Write ``data`` to ``path`` through a temporary file, then rename.

    The temporary is made in ``scratch`` (a folder of mlops's own on the same file
    system, such as ``.mlops/tmp``) when given, so that a process killed meanwhile
    leaves nothing among the user's files; else beside ``path``, hidden.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(scratch if scratch is not None else path.parent, hidden=scratch is None)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
        if mode is not None:
            os.chmod(tmp, mode)
        replace_from(tmp, str(path))
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write (a full disk) names no file itself
        raise


def atomic_write_text(path: Path, text: str, scratch: Path | None = None) -> None:
    """Atomically write UTF-8 text, keeping an existing file's permission bits.

    Text read with ``errors="surrogateescape"`` (a user's file that is not all UTF-8)
    is written back byte for byte.
    """
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
    data = text.encode("utf-8", "surrogateescape")
    atomic_write_bytes(path, data, mode if mode is not None else 0o644, scratch)


def make_read_only(path: Path | str) -> None:
    """Remove every write bit, keeping read and executable bits."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(path: Path | str) -> None:
    """Give the owner write permission."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode | stat.S_IWUSR)


def make_private_copy(path: Path, scratch: Path | None = None) -> None:
    """Replace ``path`` (a link into the cache, say) by a writable copy of its bytes,
    atomically (the temporary in ``scratch`` as for ``atomic_write_bytes``)."""
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(scratch if scratch is not None else path.parent, hidden=scratch is None)
    try:
        shutil.copyfile(path, tmp)  # follows a symlink to the cache object
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR)
        replace_from(tmp, str(path))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
