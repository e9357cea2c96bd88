"""Serving commands: ``mlops serve`` and ``mlops predict``."""

from __future__ import annotations

from pathlib import Path

import typer

from mlops.cli.app import app


@app.command()
def serve(
    reference: str | None = typer.Argument(
        None, help="NAME@ALIAS or NAME:VERSION (default: monitor.model of mlops.yaml)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    log_dir: Path | None = typer.Option(
        None, "--log-dir", help="Write prediction logs here (default: monitor.batches)."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Do not log predictions."),
    log_rows: int = typer.Option(10_000, "--log-rows", help="Close a log file after N rows."),
    log_seconds: float = typer.Option(
        300.0, "--log-seconds", help="Close a log file after this many seconds."
    ),
    poll: float = typer.Option(2.0, "--poll", help="Seconds between checks of the alias."),
    max_body: int = typer.Option(10 * 1024 * 1024, "--max-body", help="Largest body, in bytes."),
) -> None:
    """Serve a registered model over HTTP, follow its alias, log its predictions."""
    from mlops.repo import find_repo
    from mlops.serve.server import default_reference, log_folder, require_extra
    from mlops.serve.server import serve as run_server

    require_extra()
    repo = find_repo()
    ref = reference or default_reference(repo)
    folder = log_folder(repo, None if log_dir is None else str(log_dir), not no_log)
    run_server(repo, ref, host, port, workers, folder, log_rows, log_seconds, poll, max_body)
