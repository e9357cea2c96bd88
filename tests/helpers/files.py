"""Writing the files a test project is made of."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write(root: Path, name: str, text: str) -> Path:
    """Write ``text`` (dedented) to ``root/name``, making its folders."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def rewrite(path: Path, text: str) -> None:
    """New content under a new inode, as editors and hardlinked workspaces do."""
    path.unlink()
    path.write_text(text)
