"""The registry in Git: one annotated tag per record, all read by one ``for-each-ref``.

Plain ``git`` (through ``mlops.core.git``) rather than GitPython: reading the whole
registry is a single process (~5 ms) where GitPython costs ~100 ms to import and
would start ``git`` processes for tag creation anyway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.core.git import git, has_commits, run_git
from mlops.core.repo import Repo
from mlops.errors import RegistryError
from mlops.registry.records import (
    REF_PREFIX,
    AliasEvent,
    ModelRegistry,
    ModelVersion,
    build_registry,
    canonical,
    check_name,
    parse_tag,
    split_reference,
)

_FORMAT = "%(refname)%00%(objecttype)%00%(*objectname)%00%(contents:body)%00"


def read_registry(root: Path, model: str | None = None) -> dict[str, ModelRegistry]:
    """Every model's registry (or only ``model``'s), by name; a bad tag is an error naming it."""
    pattern = REF_PREFIX + (f"{model}/" if model else "")
    out = git(root, "for-each-ref", f"--format={_FORMAT}", pattern.rstrip("/"))
    fields = out.decode(errors="replace").split("\0")
    records: dict[str, list[ModelVersion | AliasEvent]] = {}
    for i in range(0, len(fields) - 4, 4):
        ref, objecttype, target, body = fields[i].lstrip("\n"), *fields[i + 1 : i + 4]
        tag = ref.removeprefix("refs/tags/")
        record = parse_tag(tag, objecttype, target, body)
        records.setdefault(record.model, []).append(record)
    return {name: build_registry(name, found) for name, found in sorted(records.items())}


def model_registry(root: Path, model: str) -> ModelRegistry:
    """One model's registry; an unknown model is an error listing the known ones."""
    check_name(model, "model")
    found = read_registry(root, model).get(model)
    if found is None or not found.versions:
        names = (
            ", ".join(read_registry(root)) or "none yet: register one with `mlops model register`"
        )
        raise RegistryError(f"no model named {model!r} in the registry (models: {names})")
    return found


def resolve(repo: Repo, reference: str) -> ModelVersion:
    """The version named by ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` (``NAME``: the latest)."""
    name, version, alias = split_reference(reference)
    registry = model_registry(repo.root, name)
    return registry.resolve_alias(alias) if alias else registry.resolve(version or "latest")


def identity(root: Path) -> str:
    """``Name <email>`` of whoever Git would record, from ``git config user.name/email``."""
    proc = run_git(root, "var", "GIT_COMMITTER_IDENT")
    if proc.returncode != 0:
        raise RegistryError(
            "Git does not know who you are: set `git config user.name` and `git config user.email`"
        )
    ident = proc.stdout.decode(errors="replace").strip()
    return ident.rsplit(" ", 2)[0]  # drop the timestamp and time zone


def now() -> str:
    """The current time in UTC, ISO 8601 with microseconds (records sort by it)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def tag_target(root: Path, commit: str | None) -> str:
    """What a new tag points at: ``commit`` when Git has it, else HEAD, else a blob.

    Pointing at the commit keeps the code of every version alive in Git and lets
    ``git fetch`` bring the tags along with the commits they are on.
    """
    for candidate in (commit, "HEAD" if has_commits(root) else None):
        if candidate is None:
            continue
        proc = run_git(root, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
    return (
        git(root, "hash-object", "-w", "--stdin", input=b"mlops model registry\n").decode().strip()
    )


def create_tag(root: Path, tag: str, summary: str, body: dict[str, Any], target: str) -> None:
    """Create the annotated tag ``tag`` holding ``body``; never replaces an existing tag."""
    message = summary.encode() + b"\n\n" + canonical(body) + b"\n"
    proc = run_git(
        root, "tag", "-a", "--no-sign", "--cleanup=verbatim", "-F", "-", tag, target, input=message
    )
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RegistryError(
            f"cannot create registry tag {tag}: {lines[-1] if lines else 'git tag failed'}"
        )
