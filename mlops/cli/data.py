"""Data versioning commands: init, add, status, checkout, diff, gc, fsck, unprotect, config."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from mlops.cli.app import app, echo, emit_json, human_size, json_option

JSON = json_option()
JOBS = typer.Option(None, "--jobs", "-j", min=1, help="Parallel threads (default: 2 per core).")


def _repo() -> Any:
    from mlops.core.repo import find_repo

    return find_repo()


@app.command()
def init() -> None:
    """Set up .mlops/ in the current Git repository."""
    from mlops.core.repo import init_repo

    repo, created = init_repo()
    if created:
        echo(
            f"Initialised mlops in {repo.mlops_dir}; "
            "commit .mlops/config.yaml and .mlops/.gitignore"
        )
    else:
        echo(f"mlops is already set up in {repo.root}; nothing changed")


@app.command()
def add(
    paths: list[str] = typer.Argument(..., help="Files or folders to snapshot."),
    jobs: int | None = JOBS,
    json: bool = JSON,
) -> None:
    """Snapshot files or folders into the cache, write PATH.mlops, ignore PATH in Git."""
    from mlops.cli.progress import progress_bar
    from mlops.workspace.add import add as add_paths

    with progress_bar() as report:
        results = add_paths(_repo(), paths, jobs, report)
    if json:
        emit_json([r.__dict__ for r in results])
        return
    for r in results:
        what = f"{r.files} files" if r.files != 1 or r.oid.endswith(".dir") else "1 file"
        size = human_size(r.size)
        echo(f"added {r.path} ({what}, {size}, {r.stored} new objects) -> {r.pointer}")
    if results:
        import posixpath

        ignores = {posixpath.join(posixpath.dirname(r.pointer), ".gitignore") for r in results}
        files = " ".join([r.pointer for r in results] + sorted(ignores))
        echo(f"To track the changes with Git, run: git add {files}")


@app.command()
def status(
    paths: list[str] = typer.Argument(None, help="Limit to these tracked paths."),
    json: bool = JSON,
    exit_code: bool = typer.Option(
        False, "--exit-code", help="Exit with 1 when anything differs (for hooks and CI)."
    ),
    jobs: int | None = JOBS,
) -> None:
    """Show what differs between workspace, pointers and cache."""
    from mlops.pipeline import has_pipeline
    from mlops.workspace.status import data_status

    repo = _repo()
    results = data_status(repo, paths or None, jobs)
    stages: list[Any] = []
    if has_pipeline(repo.root):  # a data-only repository skips loading the pipeline code
        from mlops.pipeline.plan import pipeline_status

        stages = pipeline_status(repo)
    if json:
        emit_json({"data": [r.to_dict() for r in results], "stages": [s.to_dict() for s in stages]})
    else:
        _print_status(results, stages)
    if exit_code and not (all(r.clean for r in results) and not any(s.stale for s in stages)):
        raise typer.Exit(1)


def _print_status(results: list[Any], stages: list[Any]) -> None:
    from mlops.workspace.status import CacheState, WorkspaceState

    dirty = [r for r in results if not r.clean]
    stale = [s for s in stages if s.stale]
    for s in stale:
        echo(f"stage {s.name}: stale: {'; '.join(s.reasons)}")
    if not dirty:
        if not stale:
            echo("Data and pipelines are up to date." if results or stages else "No tracked data.")
        return
    for r in dirty:
        parts = []
        if r.workspace != WorkspaceState.UNCHANGED:
            parts.append(r.workspace)
        if r.cache != CacheState.OK:
            parts.append(f"{r.missing_objects} object(s) missing from the cache")
            if r.corrupt_objects:
                parts.append(
                    f"{r.corrupt_objects} of them found corrupt (set aside in .mlops/corrupt/); "
                    "`mlops pull` fetches them again"
                )
        echo(f"{r.path}: {', '.join(parts)}")
        for label, files in (("added", r.added), ("modified", r.modified), ("deleted", r.deleted)):
            for name in files[:20]:
                echo(f"    {label}: {name}")
            if len(files) > 20:
                echo(f"    ... and {len(files) - 20} more {label}")


@app.command()
def checkout(
    paths: list[str] = typer.Argument(None, help="Limit to these tracked paths."),
    force: bool = typer.Option(
        False, "--force", "-f", help="Replace files even when their content is not in the cache."
    ),
    jobs: int | None = JOBS,
    json: bool = JSON,
) -> None:
    """Make the workspace match the pointers of the current commit."""
    from mlops.cli.progress import progress_bar
    from mlops.workspace.checkout import checkout as do_checkout

    with progress_bar() as report:
        results = do_checkout(_repo(), paths or None, force, jobs, report)
    if json:
        emit_json([r.to_dict() for r in results])
        return
    for r in results:
        if r.placed or r.removed:
            echo(f"{r.path}: {r.placed} placed, {r.removed} removed, {r.unchanged} unchanged")
        for name in r.replaced:
            echo(f"    replaced (content was not in the cache): {name}")
    if not any(r.placed or r.removed for r in results):
        echo("Workspace already matches the pointers.")


@app.command()
def diff(
    revisions: list[str] = typer.Argument(
        None, help="REV_A [REV_B]: compare two commits, or REV_A (default HEAD) with the workspace."
    ),
    json: bool = JSON,
) -> None:
    """Tracked data added, modified and deleted between commits or the workspace."""
    from mlops.workspace.diff import ChangeKind, parse_revisions
    from mlops.workspace.diff import diff as data_diff

    changes = data_diff(_repo(), *parse_revisions(revisions or []))
    if json:
        emit_json([c.to_dict() for c in changes])
        return
    if not changes:
        echo("No data changes.")
        return
    marks = {ChangeKind.ADDED: "+", ChangeKind.MODIFIED: "~", ChangeKind.DELETED: "-"}
    for c in changes:
        echo(f"{marks[c.change]} {c.change:<8} {c.path}")
    counts = {k: sum(1 for c in changes if c.change == k) for k in marks}
    echo(", ".join(f"{n} {k}" for k, n in counts.items()))


@app.command()
def gc(
    all_commits: bool = typer.Option(
        False, "--all-commits", help="Keep what any commit needs, not only branches and tags."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only say what would go."),
    json: bool = JSON,
) -> None:
    """Remove cache objects that no branch, tag or the workspace needs."""
    from mlops.flows.roots import gc as collect

    result = collect(_repo(), all_commits, dry_run)
    if json:
        emit_json(result.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    echo(f"{verb} {result.removed} object(s), {human_size(result.bytes)}; kept {result.kept}")


@app.command()
def fsck(jobs: int | None = JOBS, json: bool = JSON) -> None:
    """Re-hash every cache object; move corrupt ones to .mlops/corrupt/."""
    from mlops.cli.progress import progress_bar
    from mlops.storage.fsck import fsck as check_cache

    with progress_bar() as report:
        result = check_cache(_repo(), jobs, report)
    if json:
        emit_json(result.to_dict())
    else:
        for oid in result.corrupt:
            echo(f"corrupt: {oid} (moved to .mlops/corrupt/)")
        echo(f"checked {result.checked} object(s), {len(result.corrupt)} corrupt")
    if result.corrupt:
        raise typer.Exit(1)


class MonitorAction(StrEnum):
    """What ``mlops fsmonitor`` does."""

    START = "start"
    STOP = "stop"
    STATUS = "status"


@app.command()
def fsmonitor(
    action: MonitorAction = typer.Argument(MonitorAction.STATUS, help="start, stop or status."),
) -> None:
    """The file-system monitor that `core.fsmonitor: true` makes status use (a daemon)."""
    from mlops.workspace import fsmonitor as monitor

    root = _repo().root
    if action is MonitorAction.START:
        monitor.start(root)
        echo(f"the file-system monitor of {root} is running")
    elif action is MonitorAction.STOP:
        stopped = monitor.stop(root)
        echo("stopped the file-system monitor" if stopped else "no file-system monitor was running")
    else:
        running = monitor.running(root)
        echo(f"the file-system monitor of {root} is {'running' if running else 'not running'}")
        if not running:
            raise typer.Exit(1)


@app.command()
def unprotect(paths: list[str] = typer.Argument(..., help="Tracked files or folders.")) -> None:
    """Turn linked, read-only workspace files into editable copies."""
    from mlops.workspace.unprotect import unprotect as make_editable

    count = make_editable(_repo(), paths)
    echo(f"{count} file(s) are now editable copies; `mlops add` them when done")


@app.command()
def config(
    key: str = typer.Argument(..., help="A dotted key, such as cache.link or core.remote."),
    value: str = typer.Argument(None, help="The new value (YAML); omit it to read the key."),
    local: bool = typer.Option(
        False, "--local", help="Use .mlops/config.local.yaml (not committed)."
    ),
    unset: bool = typer.Option(False, "--unset", help="Remove the key."),
    json: bool = JSON,
) -> None:
    """Read or write a setting, like `git config` (secrets are shown as ***)."""
    from mlops.core import repo as repo_mod
    from mlops.core.secrets import masked

    repo = _repo()
    if unset:
        repo_mod.config_unset(repo, key, local)
    elif value is None:
        current = masked(repo_mod.config_get(repo, key), key)
        if json:
            emit_json(current)
        else:
            echo(", ".join(map(str, current)) if isinstance(current, list) else str(current))
    else:
        repo_mod.config_set(repo, key, repo_mod.parse_config_value(value), local)
