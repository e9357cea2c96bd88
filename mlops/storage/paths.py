"""The rules every received path obeys before anything is written from it.

Pointers, lock entries, folder manifests, packs and remote listings come from other
people's commits and pushes: untrusted, as a tree object is for Git. A path from them
is relative and normalised (no empty, ``.`` or ``..`` component, no leading ``/``),
holds no NUL, and has no component that is ``.git`` or ``.mlops`` in any case (Git's
``verify_path``; CVE-2014-9390 planted a ``.GIT`` on case-insensitive file systems).
A backslash is an ordinary character of a POSIX file name and is allowed.

Writing is the other half: nothing is written, deleted or followed through a
symbolic link inside the work tree (``refuse_symlinks``).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from mlops.errors import InputError

RESERVED = (".git", ".mlops")

# One component that may not appear: empty (also a leading, trailing or doubled "/"),
# "." or "..", or a reserved name in any case. A NUL anywhere.
_BAD_COMPONENT = r"(?:\.{0,2}|(?i:\.git|\.mlops))"
# Matched as the regular expressions below match it (Unicode case folding), so that the
# one-pass checks and ``unsafe_reason`` agree on every name.
_RESERVED_NAME = re.compile(r"(?i:\.git|\.mlops)")
_UNSAFE = re.compile(rf"(?:^|/){_BAD_COMPONENT}(?:/|$)|\x00")
# The same over many paths joined by NUL, which no path may hold: one pass for a
# manifest of a million entries.
_UNSAFE_JOINED = re.compile(rf"(?:^|[/\x00]){_BAD_COMPONENT}(?:[/\x00]|$)")


def unsafe_reason(path: object) -> str | None:
    """Why ``path`` may not be written from (None: it may)."""
    if not isinstance(path, str):
        return "not a string"
    if not path:
        return "empty"
    if "\x00" in path:
        return "holds a NUL byte"
    if path.startswith("/"):
        return "absolute"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return "not normalised (an empty, '.' or '..' component)"
        if _RESERVED_NAME.fullmatch(part):
            return f"has a {part!r} component"
    return None


def is_safe_relpath(path: object) -> bool:
    """A relative, normalised path inside its folder, with no reserved component."""
    return isinstance(path, str) and _UNSAFE.search(path) is None


def all_safe(paths: list[str]) -> bool:
    """Whether every one of ``paths`` (strings) is ``is_safe_relpath``, in one pass."""
    if not paths:
        return True
    joined = "\x00".join(paths)
    return joined.count("\x00") == len(paths) - 1 and _UNSAFE_JOINED.search(joined) is None


def layout_conflict(paths: list[str]) -> str | None:
    """A path named twice, or both a file and a folder of others (None: neither).

    Both make a manifest corrupt: which of two contents, or a file or a folder, would
    depend on the order of writing.
    """
    unique = set(paths)
    if len(unique) != len(paths):
        seen: set[str] = set()
        for path in paths:
            if path in seen:
                return f"{path!r} is listed twice"
            seen.add(path)
    folders: set[str] = set()
    # Over the distinct parent folders only: a folder of a million files has few.
    for parent in {path.rpartition("/")[0] for path in unique}:
        while parent and parent not in folders:
            folders.add(parent)
            parent = parent.rpartition("/")[0]
    both = folders & unique
    if both:
        return f"{min(both)!r} is both a file and a folder"
    return None


def check_name(name: str, where: str) -> None:
    """Refuse a single file or folder name (a pointer's ``path``) that is not safe."""
    reason = unsafe_reason(name)
    if reason is None and "/" in name:
        reason = "not a single name"
    if reason is not None:
        raise InputError(f"{where}: path {name!r} is refused: {reason}")


def refuse_symlinks(root: Path, path: Path, cache_dir: Path | None = None) -> None:
    """Refuse to write at ``path`` when it, or a folder between ``root`` and it, is a
    symbolic link (or not a folder where one is needed): writing there would land
    wherever the link points. ``path`` itself may be a link into ``cache_dir``: the
    workspace file of the ``symlink`` link type.

    ``path`` must lie below ``root``; a component that does not exist yet ends the walk.
    """
    rel = path.relative_to(root)
    current = root
    for i, part in enumerate(rel.parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        is_last = i == len(rel.parts) - 1
        if stat.S_ISLNK(st.st_mode) and not (is_last and _links_into(current, cache_dir)):
            raise InputError(
                f"{current.relative_to(root).as_posix()}: a symbolic link; mlops never writes "
                "through one (replace it by a folder or remove it, then try again)"
            )
        if not is_last and not stat.S_ISDIR(st.st_mode):
            raise InputError(
                f"{current.relative_to(root).as_posix()}: a file where a folder is needed "
                f"for {rel.as_posix()}"
            )


def _links_into(link: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    target = os.readlink(link)
    return os.path.isabs(target) and os.path.normpath(target).startswith(f"{folder}/")
