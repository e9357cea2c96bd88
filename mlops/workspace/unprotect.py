"""``mlops unprotect``: turn linked, read-only workspace files into editable copies."""

from __future__ import annotations

from pathlib import Path

from mlops.core.fsutil import make_private_copy
from mlops.core.repo import Repo, repo_lock
from mlops.errors import InputError
from mlops.workspace.tracked import find_targets, scan_folder


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
                make_private_copy(file, repo.scratch_dir)
                count += 1
    return count
