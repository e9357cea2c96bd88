"""Shell completion of the names a repository defines: stages, check suites, remotes, models.

Each completer runs only when the shell asks (``_MLOPS_COMPLETE`` set), imports what
it reads inside its body, and never fails: a broken or missing file completes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

Completer = Callable[[str], list[str]]


def _quiet(fn: Callable[[], Iterable[str]]) -> Completer:
    """``fn``'s names that start with what was typed; nothing when reading them fails."""

    def complete(incomplete: str) -> list[str]:
        try:
            names = sorted(set(fn()))
        except Exception:  # completion must never print a traceback into the shell
            return []
        return [n for n in names if n.startswith(incomplete)]

    # Not functools.wraps: typer reads the signature, and must see ``incomplete``.
    complete.__name__, complete.__doc__ = fn.__name__, fn.__doc__
    return complete


def _root() -> Path:
    from mlops.core.repo import find_git_root

    root: Path = find_git_root()
    return root


@_quiet
def stages() -> Iterable[str]:
    """Stage names, and the names of foreach/matrix groups."""
    from mlops.pipeline.schema import load_pipeline

    pipeline = load_pipeline(_root(), required=False)
    for stage in pipeline.stages.values():
        yield stage.name
        if stage.group:
            yield stage.group


@_quiet
def suites() -> Iterable[str]:
    """Check suites under ``checks:`` (and the files it includes)."""
    from mlops.checks.spec import load_suites
    from mlops.pipeline import PIPELINE_FILE

    return load_suites(_root() / PIPELINE_FILE)


@_quiet
def remotes() -> Iterable[str]:
    """Configured remotes."""
    from mlops.core.repo import find_repo
    from mlops.remote.config import list_remotes

    return [r.name for r in list_remotes(find_repo())]


@_quiet
def models() -> Iterable[str]:
    """Model names, ``NAME@ALIAS`` for every alias held and ``NAME:VERSION``."""
    from mlops.registry.tags import read_registry

    for name, registry in read_registry(_root()).items():
        yield name
        yield from (f"{name}@{alias}" for alias in registry.aliases())
        yield from (f"{name}:{version.label}" for version in registry.versions)


@_quiet
def model_names() -> Iterable[str]:
    """Model names only."""
    from mlops.registry.tags import read_registry

    return read_registry(_root())
