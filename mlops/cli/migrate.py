"""Coming from another tool: ``mlops import-dvc``."""

from __future__ import annotations

from typing import Any

import typer

from mlops.cli.app import app, echo, emit_json, human_size


@app.command("import-dvc")
def import_dvc(
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only say what would be done."),
    force: bool = typer.Option(
        False,
        "--force",
        "-f",
        help="Replace mlops files and remotes that exist with other content.",
    ),
    json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Turn this DVC repository into an mlops one: pipeline, lock, data, remotes.

    DVC's files are left as they are; what has no mlops equivalent is listed.
    """
    from mlops.cli.progress import progress_bar
    from mlops.dvcimport.importer import import_dvc as run_import

    with progress_bar() as report:
        result = run_import(dry_run=dry_run, force=force, progress=report)
    if json:
        emit_json(result.to_dict())
    else:
        _show(result)
    if result.missing and not dry_run:
        from mlops.errors import CacheError

        raise CacheError(
            f"{len(result.missing)} path(s) could not be imported: get them with `dvc pull`"
            " (or `dvc fetch`), then run `mlops import-dvc` again"
        )


def _show(result: Any) -> None:
    dry_run = result.dry_run
    verb = "would import" if dry_run else "imported"
    echo(f"{verb} {len(result.stages)} stage(s), {len(result.locked)} with their dvc.lock state")
    if dry_run and result.stages:
        echo(f"  stages: {_some(result.stages)}")
    echo(f"{verb} {len(result.pointers)} path(s) tracked by .dvc files")
    if dry_run and result.pointers:
        echo(f"  pointers: {_some(result.pointers)}")
    where = "found in DVC's cache" if dry_run else "in mlops's cache now"
    echo(
        f"data of those and of the cached outputs: {result.files} file(s), "
        f"{human_size(result.size)} {where}"
    )
    for remote in result.remotes:
        default = " (default)" if remote.default else ""
        secrets = (
            f"; {', '.join(sorted(remote.local))} in .mlops/config.local.yaml"
            if remote.local
            else ""
        )
        echo(f"{verb} remote {remote.name}{default}{secrets}")
    for missing in result.missing:
        echo(f"missing: {missing.path}: {missing.reason}", err=True)
    if result.notes:
        echo("not imported (left as it is):")
        for note in result.notes:
            echo(f"  {note}")
    if not dry_run:
        if result.written:
            echo(f"wrote {', '.join(result.written)}")
        echo("Commit mlops.yaml, mlops.lock, the .mlops pointer files and .mlops/config.yaml.")


def _some(names: tuple[str, ...], shown: int = 10) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
