"""``mlops unprotect``: turn linked, read-only workspace files into editable copies."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from mlops.data.workspace import find_targets, scan_folder
from mlops.errors import InputError
from mlops.repo import Repo, repo_lock


def unprotect(repo: Repo, paths: list[str]) -> int:
    """Replace each file under the tracked ``paths`` by a writable copy; return how many."""
    if not paths:
        raise InputError("name at least one tracked file or folder to unprotect")
    count = 0
    with repo_lock(repo, wait=30, purpose="unprotect"):
        for target in find_targets(repo, paths):
            path = target.data_path
            if not path.exists():
                raise InputError(
                    f"{target.relpath(repo)}: not in the workspace; run `mlops checkout`"
                )
            files = [Path(f.abspath) for f in scan_folder(path)] if path.is_dir() else [path]
            for file in files:
                _make_private_copy(file)
                count += 1
    return count


def _make_private_copy(path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)  # follows a symlink to the cache object
        mode = stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWUSR
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
