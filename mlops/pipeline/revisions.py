"""Reading files at Git revisions (or in the workspace) without checking anything out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from mlops.core.git import git

# (commit, path); commit None means the workspace
Place = tuple[str | None, str]


def read_paths_at(root: Path, places: Iterable[Place]) -> dict[Place, bytes | None]:
    """The bytes of each (commit, path), None where it does not exist or is not a file.

    Every path at every commit is read by one ``git cat-file --batch``; workspace
    places (commit None) are read from disk.
    """
    wanted = list(dict.fromkeys(places))
    found: dict[Place, bytes | None] = {}
    at_commits = [p for p in wanted if p[0] is not None]
    for commit, path in wanted:
        if commit is None:
            try:
                found[(None, path)] = (root / path).read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                found[(None, path)] = None
    if not at_commits:
        return found
    names = "".join(f"{commit}:{path}\n" for commit, path in at_commits)
    out = git(root, "cat-file", "--batch", input=names.encode())
    pos = 0
    for place in at_commits:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        pos = header_end + 1
        if len(header) != 3 or not header[2].isdigit():  # "<name> missing", "ambiguous"
            found[place] = None
            continue
        size = int(header[2])
        found[place] = out[pos : pos + size] if header[1] == b"blob" else None
        pos += size + 1
    return found


def reader_at(root: Path, commit: str | None) -> Callable[[str], bytes | None]:
    """Reads a file (relative to the root) at ``commit``, or in the workspace for None."""

    def read(path: str) -> bytes | None:
        return read_paths_at(root, [(commit, path)])[(commit, path)]

    return read
