"""Data for the remote tests, tracked and committed, and remotes configured through the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.repos import git


def make_data(repo: Path, small: int = 60, big: int = 2) -> None:
    """``data/images`` (small files, packed on push), ``data/models`` (larger, loose), and
    ``data/labels.csv``, a single tracked file."""
    images = repo / "data" / "images"
    for i in range(small):
        folder = images / f"{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.png").write_bytes(os.urandom(1000 + i))
    models = repo / "data" / "models"
    models.mkdir(parents=True)
    for i in range(big):
        (models / f"m{i}.bin").write_bytes(os.urandom(300_000 + i))
    (repo / "data" / "labels.csv").write_text("".join(f"{i},{i % 3}\n" for i in range(small)))
    script = models / "serve.sh"
    script.write_text("#!/bin/sh\necho serve\n")
    script.chmod(0o755)


def track(repo: Path, *paths: str, message: str = "track data") -> None:
    result = run_cli(repo, "add", *paths)
    assert result.exit_code == 0, result.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def files_of(root: Path, rel: str = "data") -> dict[str, tuple[bytes, bool]]:
    """Every file below ``root/rel``: its bytes and executable bit."""
    found = {}
    for path in sorted((root / rel).rglob("*")):
        if path.is_file() and path.name != ".gitignore" and not path.name.endswith(".mlops"):
            found[path.relative_to(root).as_posix()] = (
                path.read_bytes(),
                os.access(path, os.X_OK),
            )
    return found


def s3_remote(repo: Path, bucket: str, endpoint: str, name: str = "origin") -> None:
    added = run_cli(repo, "remote", "add", name, f"s3://{bucket}/store", "--default")
    assert added.exit_code == 0, added.stderr
    assert run_cli(repo, "remote", "modify", name, "endpoint_url", endpoint).exit_code == 0
