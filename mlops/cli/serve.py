"""Serving commands: ``mlops serve`` and ``mlops predict``."""

from __future__ import annotations

from pathlib import Path

import typer

from mlops.cli.app import app, echo, emit_json


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
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="Threads running the model, per worker (default: 2 per CPU, at most 8).",
    ),
) -> None:
    """Serve a registered model over HTTP, follow its alias, log its predictions."""
    from mlops.core.repo import find_repo
    from mlops.serve.server import serve as run_server

    folder = None if log_dir is None else str(log_dir)
    run_server(
        find_repo(), reference, host, port, workers, folder, not no_log,
        log_rows, log_seconds, poll, max_body, threads,
    )  # fmt: skip


@app.command()
def predict(
    reference: str = typer.Argument(..., help="NAME@ALIAS or NAME:VERSION."),
    data: str = typer.Option(..., "--data", help="The rows to score (CSV, Parquet, JSON lines)."),
    out: str = typer.Option(..., "--out", "-o", help="Where to write rows and predictions."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
    chunk_rows: int = typer.Option(10_000, "--chunk-rows", help="Rows scored at a time."),
    log_dir: Path | None = typer.Option(
        None, "--log-dir", help="Log the predictions here (default: monitor.batches)."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Do not log predictions."),
    json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Score a file with a registered model, chunk by chunk, and log the predictions."""
    from mlops.core.repo import find_repo
    from mlops.serve.batch import predict_file

    folder = None if log_dir is None else str(log_dir)
    result = predict_file(find_repo(), reference, data, out, force, chunk_rows, folder, not no_log)
    if json:
        emit_json(result.to_dict())
        return
    echo(
        f"scored {result.rows} rows of {data} with {result.model}:{result.version} "
        f"into {result.out} ({result.chunks} chunks)"
    )
    if result.logged:
        echo(f"  predictions logged to {result.logged}")
