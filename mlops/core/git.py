"""Git plumbing through the ``git`` command: fast to start, reads any revision's files.
Every call mlops makes to Git goes through this module.

Plain ``git`` rather than a binding such as GitPython (about 100 ms to import): the
hot paths (status, hooks) need only a few plumbing calls.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from mlops.errors import InputError, MlopsError


def run_git(
    root: Path, *args: str, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git args`` in ``root``; the finished process, whatever its exit code."""
    try:
        return subprocess.run(
            ["git", *args], cwd=root, input=input, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise MlopsError("git is not installed or not on PATH") from None


def git(root: Path, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
    """Run ``git args`` in ``root``; return standard output (``check``: a failure raises,
    naming Git's last line of error)."""
    proc = run_git(root, *args, input=input)
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise MlopsError(f"git {args[0]} failed: {message[-1] if message else proc.returncode}")
    return proc.stdout


def ignore_pattern(name: str) -> str:
    """The ``.gitignore`` line matching exactly the file or folder ``name`` beside it.

    The leading ``/`` anchors it (so it matches nothing deeper, and a leading ``!`` or
    ``#`` of the name is not read as a negation or a comment); ``*``, ``?``, ``[`` and
    the backslash are escaped, and so are trailing spaces and a last carriage return,
    which Git strips from a line (a bracket expression holding the CR keeps it).
    """
    escaped = "".join("\\" + c if c in "\\*?[" else c for c in name)
    kept = escaped.rstrip(" ")
    line = "/" + kept + "\\ " * (len(escaped) - len(kept))
    return line[:-1] + "[\r]" if line.endswith("\r") else line


def resolve_revision(root: Path, rev: str) -> str:
    """The commit id of ``rev``; an unknown revision is an input error."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise InputError(f"unknown Git revision {rev!r}")
    return proc.stdout.decode().strip()


def has_commits(root: Path) -> bool:
    """Whether HEAD points at a commit."""
    return (
        subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=root,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def worktree_files(root: Path, pattern: str) -> list[str]:
    """Files matching ``pattern`` that Git tracks or would track (not ignored), relative."""
    out = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", pattern)
    return sorted({name for name in out.decode(errors="surrogateescape").split("\0") if name})


def tracked_paths(root: Path, *paths: str) -> list[str]:
    """Files under ``paths`` that are in Git's index."""
    # Literal: a data file named ``*.csv`` names that file, not every CSV.
    out = git(root, "ls-files", "-z", "--cached", "--", *(f":(literal){p}" for p in paths))
    return [name for name in out.decode(errors="surrogateescape").split("\0") if name]


def tree_files(root: Path, commit: str, suffix: str) -> dict[str, str]:
    """Paths ending in ``suffix`` in ``commit``'s tree, mapped to their blob ids."""
    out = git(root, "ls-tree", "-r", "-z", "--full-tree", commit)
    found = {}
    for record in out.decode(errors="surrogateescape").split("\0"):
        if not record:
            continue
        meta, _, name = record.partition("\t")
        parts = meta.split()
        if parts[1] == "blob" and name.endswith(suffix):
            found[name] = parts[2]
    return found


def read_blobs(root: Path, blob_ids: Iterable[str]) -> dict[str, bytes]:
    """The contents of several blobs, read in one ``git cat-file --batch``."""
    ids = list(dict.fromkeys(blob_ids))
    if not ids:
        return {}
    out = git(root, "cat-file", "--batch", input=("\n".join(ids) + "\n").encode())
    contents: dict[str, bytes] = {}
    pos = 0
    for blob in ids:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        if len(header) < 3:
            raise MlopsError(f"git cat-file: object {blob} is missing")
        size = int(header[2])
        contents[blob] = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
    return contents


def read_file_at(root: Path, commit: str, path: str) -> bytes | None:
    """A file's bytes at ``commit``, or None when it does not exist there."""
    proc = subprocess.run(
        ["git", "cat-file", "blob", f"{commit}:{path}"], cwd=root, capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def ref_commits(root: Path) -> list[str]:
    """The commits every branch and tag points at (tags peeled), plus HEAD."""
    out = git(
        root,
        "for-each-ref",
        "--format=%(objectname) %(*objectname) %(*objecttype) %(objecttype)",
        "refs/heads",
        "refs/tags",
        "refs/remotes",
    )
    commits = set()
    for line in out.decode().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] == "commit":
            commits.add(parts[1])
        elif parts and parts[-1] == "commit":
            commits.add(parts[0])
    if has_commits(root):
        commits.add(resolve_revision(root, "HEAD"))
    return sorted(commits)


def all_commits(root: Path) -> list[str]:
    """Every commit reachable from any ref."""
    if not has_commits(root):
        return []
    return git(root, "rev-list", "--all").decode().split()


def branch_commits(root: Path) -> list[str]:
    """Every commit reachable from a branch, a tag or HEAD (not other refs: stashes,
    experiments, notes, remote-tracking branches)."""
    if not has_commits(root):
        return []
    return git(root, "rev-list", "--branches", "--tags", "HEAD").decode().split()


def ignored_by(root: Path, path: str) -> str | None:
    """The ignore rule that makes Git ignore ``path`` (``.gitignore:3: /metrics.json``),
    or None when Git does not ignore it."""
    out = git(root, "check-ignore", "-v", "--no-index", "--", path, check=False).decode()
    line = out.splitlines()[0] if out.strip() else ""
    if not line or "\t" not in line:
        return None
    rule = line.split("\t", 1)[0]  # source:line:pattern
    source, number, pattern = rule.split(":", 2)
    if pattern.startswith("!"):  # a negated rule matched: the path is not ignored
        return None
    return f"{source}:{number}: {pattern}"


class StatusProbe:
    """``git status`` of the work tree, started at once and read later: the commit checked
    out and whether tracked files differ from it."""

    # --no-optional-locks: never hold Git's index lock while stages may use Git.
    _ARGS = ("--no-optional-locks", "status", "--porcelain=v2", "--branch", "--untracked-files=no")

    def __init__(self, root: Path) -> None:
        try:
            self._proc = subprocess.Popen(
                ["git", *self._ARGS], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise MlopsError("git is not installed or not on PATH") from None

    def result(self) -> tuple[str | None, bool]:
        """Wait for it: the commit (None before the first) and whether the tree is dirty."""
        out, _ = self._proc.communicate()
        commit, dirty = None, False
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("# branch.oid "):
                oid = line.split()[2]
                commit = None if oid == "(initial)" else oid
            elif not line.startswith("#"):
                dirty = True
        return commit, dirty
