"""Git hooks: install them (chaining hooks already there) and what each one checks.

``post-checkout`` runs ``mlops checkout`` after a branch checkout, ``pre-commit``
refuses a commit while tracked data differs from its pointer (``mlops status``,
fast thanks to the state cache's folder fingerprints), and ``pre-push`` pushes the
data of the pushed commits to the default remote.

A hook already present is kept as ``<hook>.pre-mlops`` and run first by ours;
``--uninstall`` puts it back.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from mlops.core.fsutil import atomic_write_bytes
from mlops.core.git import git
from mlops.core.repo import MLOPS_DIR, Repo, find_git_root
from mlops.errors import InputError, NotARepoError
from mlops.workspace.status import WorkspaceState, data_status

HOOKS = ("post-checkout", "pre-commit", "pre-push")
MARKER = "# mlops-hook:"
KEPT_SUFFIX = ".pre-mlops"

_RUN_OLD = 'if [ -x "$0{kept}" ]; then {feed}"$0{kept}" "$@" || exit $?; fi\n'
# The hook calls the interpreter that installed it (its entry point skips loading the
# full command line, which matters on every commit), else ``mlops`` on PATH.
_TEMPLATE = """#!/bin/sh
{marker} {name} (written by `mlops install-hooks`; `mlops install-hooks --uninstall` removes it)
# A hook that was here before is kept as {name}{kept} and runs first.
mlops_hook() {{
    if [ -x {python} ]; then {python} -m mlops._githook {name} "$@"; else mlops hook {name} "$@"; fi
}}
{body}"""


@dataclass(frozen=True)
class HookChange:
    """What ``install-hooks`` did to one hook file."""

    hook: str
    path: str
    action: str  # installed, chained, updated, removed, restored, absent, foreign

    def to_dict(self) -> dict[str, str]:
        return {"hook": self.hook, "path": self.path, "action": self.action}


def mlops_repo_here() -> Repo | None:
    """The mlops repository of the current folder, or None (hooks then do nothing)."""
    try:
        root = find_git_root()
    except NotARepoError:
        return None
    return Repo(root) if (root / MLOPS_DIR).is_dir() else None


def hooks_dir(repo: Repo) -> Path:
    """Where Git looks for hooks (honours ``core.hooksPath``)."""
    out = git(repo.root, "rev-parse", "--git-path", "hooks").decode().strip()
    return (repo.root / out).resolve()


def hook_script(name: str, python: str = sys.executable) -> str:
    """The text of our Git hook ``name``."""
    # Git gives pre-push the pushed refs on standard input: both hooks need them.
    feed = 'printf "%s\\n" "$refs" | ' if name == "pre-push" else ""
    body = "refs=$(cat)\n" if name == "pre-push" else ""
    body += _RUN_OLD.format(kept=KEPT_SUFFIX, feed=feed) + f'{feed}mlops_hook "$@"\n'
    return _TEMPLATE.format(
        marker=MARKER, name=name, kept=KEPT_SUFFIX, python=shlex.quote(python), body=body
    )


def is_ours(path: Path) -> bool:
    """Whether the hook file at ``path`` was written by ``mlops install-hooks``."""
    try:
        with open(path, "rb") as handle:
            return MARKER.encode() in handle.read(4096)
    except (FileNotFoundError, IsADirectoryError):
        return False


def install_hooks(repo: Repo) -> list[HookChange]:
    """Install our hooks; a foreign hook is kept as ``<hook>.pre-mlops`` and chained."""
    folder = hooks_dir(repo)
    for name in HOOKS:
        path, kept = folder / name, folder / (name + KEPT_SUFFIX)
        if (path.exists() or path.is_symlink()) and not is_ours(path) and kept.exists():
            raise InputError(
                f"{path} is not mlops's hook and {kept.name} exists too; "
                f"merge or remove one of them, then run `mlops install-hooks` again"
            )
    folder.mkdir(parents=True, exist_ok=True)
    changes = []
    for name in HOOKS:
        path, kept = folder / name, folder / (name + KEPT_SUFFIX)
        if is_ours(path):
            action = "updated"
        elif path.exists() or path.is_symlink():
            os.rename(path, kept)
            action = "chained"
        else:
            action = "installed"
        atomic_write_bytes(path, hook_script(name).encode(), mode=0o755)
        changes.append(HookChange(name, str(path), action))
    return changes


def uninstall_hooks(repo: Repo) -> list[HookChange]:
    """Remove only our hooks, putting back the hooks they chained."""
    folder = hooks_dir(repo)
    changes = []
    for name in HOOKS:
        path, kept = folder / name, folder / (name + KEPT_SUFFIX)
        if not is_ours(path):
            action = "foreign" if path.exists() else "absent"
        elif kept.exists() or kept.is_symlink():
            os.replace(kept, path)
            action = "restored"
        else:
            path.unlink()
            action = "removed"
        changes.append(HookChange(name, str(path), action))
    return changes


def stale_pointers(repo: Repo) -> list[str]:
    """Why a commit must wait: each tracked path whose data changed but not its pointer."""
    return [
        f"{s.path} changed but its pointer {s.pointer} was not updated; "
        f"run `mlops add {s.path}` and `git add {s.pointer}`"
        for s in data_status(repo)
        if s.workspace == WorkspaceState.MODIFIED
    ]


def pushed_revisions(refs: str, env: dict[str, str]) -> list[str] | None:
    """The local commits a ``git push`` sends (pre-push standard input), or None for HEAD.

    Under the pre-commit framework the refs come in ``PRE_COMMIT_TO_REF`` instead.
    """
    lines = [line.split() for line in refs.splitlines() if line.strip()]
    if lines:
        return [parts[1] for parts in lines if len(parts) == 4 and set(parts[1]) != {"0"}]
    to_ref = env.get("PRE_COMMIT_TO_REF")
    return [to_ref] if to_ref else None


def is_branch_checkout(args: list[str], env: dict[str, str]) -> bool:
    """Whether a post-checkout hook call is for a branch checkout (not a file checkout)."""
    flag = args[2] if len(args) >= 3 else env.get("PRE_COMMIT_CHECKOUT_TYPE", "1")
    return flag == "1"
