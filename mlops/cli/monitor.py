"""``mlops monitor``: score a batch for drift and live metrics, retrain on alerts; history."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from mlops.cli.app import Options, app, console, echo, emit_json, json_option, styled

monitor_app = typer.Typer(
    help="Score a batch against the production model for drift and live metrics (exit 1 on "
    "an alert not healed); --retrain heals; `history` lists the results.",
    invoke_without_command=True,
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.callback(invoke_without_command=True)
def monitor(
    ctx: typer.Context,
    data: str | None = typer.Option(
        None, "--data", help="Score this batch file (default: the newest unseen batch)."
    ),
    retrain: bool | None = typer.Option(
        None,
        "--retrain/--no-retrain",
        help="On an alert, retrain, judge and promote (default: monitor.on_alert).",
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML report here."),
    json: bool = json_option(),
) -> None:
    """Score a batch against the production model; exit 1 on an alert it did not heal."""
    if ctx.invoked_subcommand is not None:
        return
    from mlops.cli.pipeline import _Printer
    from mlops.core.repo import find_repo
    from mlops.monitor.run import MonitorStatus, run_monitor

    argv = ("mlops", "monitor", *(("--data", data) if data else ()), "--retrain")
    printer = _Printer(prefix=False, to_stderr=True)
    result = run_monitor(find_repo(), data, retrain, html, printer, argv)
    if json:
        emit_json(result.to_dict())
    else:
        _render(result)
    if result.status == MonitorStatus.ALERT:
        raise typer.Exit(1)


@monitor_app.command()
def label(
    file: str | None = typer.Argument(
        None,
        help="A table of request_id, row (optional) and the label (default: the "
        "labels sent to the server's /feedback).",
    ),
    json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Join labels that arrived later into the prediction logs, by request id."""
    from mlops.core.repo import find_repo
    from mlops.monitor.labels import join_labels

    result = join_labels(find_repo(), file)
    if json:
        emit_json(result.to_dict())
        return
    echo(
        f"joined {result.matched} labels into {result.files} prediction logs "
        f"({result.labels} read"
        + (f", {result.pending} for requests not in a closed log yet" if result.pending else "")
        + ")"
    )


@monitor_app.command()
def history(
    model: str | None = typer.Option(None, "--model", help="Only this model's results."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the newest N results."),
    json: bool = json_option("Print the history as JSON."),
) -> None:
    """Every scored batch, oldest first: status, drift, live metrics and retraining episodes."""
    from mlops.core.repo import find_repo
    from mlops.monitor.history import list_records

    records = list_records(find_repo().mlops_dir, model=model, limit=limit)
    if json:
        emit_json([_summary(r) for r in records])
        return
    if not records:
        echo("no monitoring results yet: score a batch with `mlops monitor`")
        return
    from rich.table import Table

    table = Table("time", "record", "model", "batch", "status", "drifted", "metrics", "episode")
    for r in records:
        drifted = f"{r.drift.get('drifted_share', 0.0):.0%}"
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in r.metrics.items())
        table.add_row(
            r.time[:19].replace("T", " "),
            r.record_id[:12],
            f"{r.model}:{r.version}",
            r.batch_path,
            styled("healthy", "green") if r.healthy else styled("alert", "bold red"),
            drifted,
            metrics or "-",
            _episode(r.links),
        )
    _print(table)


def _summary(record: Any) -> dict[str, Any]:
    """A record as JSON without the plot histograms."""
    from mlops.monitor.drift import DriftReport

    data = record.to_dict()
    data["drift"] = DriftReport.from_dict(record.drift).to_dict(histograms=False)
    return {"id": record.record_id, **data}


def _episode(links: Mapping[str, Any]) -> str:
    retrain = links.get("retrain")
    if not retrain:
        return "-"
    status = retrain.get("status", "?")
    candidate = (retrain.get("candidate") or {}).get("ref")
    return f"{links.get('episode', '?')} {status}" + (f" {candidate}" if candidate else "")


def _print(renderable: Any) -> None:
    if Options.quiet:
        return
    out = console()
    if not out.is_terminal:
        out.width = 200  # a log has no width: never cut names
    out.print(renderable)


def _render(result: Any) -> None:
    from rich.table import Table

    from mlops.monitor.run import MonitorStatus

    if result.status == MonitorStatus.NO_BATCH:
        echo(result.note)
        return
    record = result.record
    drift, links = record.drift, record.links
    reference = links.get("reference", {})
    echo(
        f"Batch {record.batch_path} ({drift['batch_rows']} rows) against "
        f"{record.model}:{record.version} ({links.get('model', {}).get('alias', '?')}); "
        f"reference {reference.get('path')} ({drift['reference_rows']} rows, "
        f"{reference.get('source')})"
    )
    table = Table("feature", "kind", "test", "statistic", "p-value", "PSI", "drifted")
    features = list(drift["features"]) + ([drift["prediction"]] if drift["prediction"] else [])
    for f in features:
        table.add_row(
            f["name"],
            f["kind"],
            f["test"],
            _number(f["statistic"]),
            _number(f["pvalue"]),
            _number(f["psi"]),
            styled(f"yes ({', '.join(f['reasons'])})", "bold red") if f["drifted"] else "no",
        )
    _print(table)
    if record.metrics:
        metrics = Table("metric", "value", "limit", "ok")
        for name, value in record.metrics.items():
            limit = record.limits.get(name)
            ok = "-" if limit is None else _holds(value, limit)
            shown = "-" if limit is None else f"{limit[0]} {limit[1]:g}"
            metrics.add_row(name, f"{value:.4f}", shown, ok)
        _print(metrics)
    not_judged = links.get("not_judged") or []
    if not_judged:
        echo(f"Limits not judged: no labels yet ({', '.join(not_judged)})")
    if record.healthy:
        limits = "no limit judged" if not_judged else "every limit holds"
        echo(f"HEALTHY: {drift['drifted_share']:.0%} of features drifted, {limits}")
    else:
        echo("ALERT:")
        for line in record.alerts:
            echo(f"  - {line}")
    retrain = links.get("retrain")
    if retrain:
        _render_episode(links["episode"], retrain, record)
    echo(f"Stored as record {result.record_id[:12]} (`mlops monitor history`)")
    if result.html:
        echo(f"HTML report: {result.html}")


def _render_episode(episode: str, retrain: Mapping[str, Any], record: Any) -> None:
    status, reason = retrain["status"], retrain["reason"]
    production = f"{record.model}:{record.version}"
    if status == "failed":
        echo(f"mlops: error: retraining failed (episode {episode}): {reason}", err=True)
    elif status == "kept":
        echo(f"Retraining (episode {episode}) kept production {production}: {reason}")
    else:
        echo(f"Retraining (episode {episode}) promoted a new model: {reason}")
    run = retrain.get("run") or {}
    if run.get("id"):
        echo(f"  run {run['id']} ({run['status']})")
    if retrain.get("candidate"):
        echo(f"  candidate {retrain['candidate']['ref']}")
    promotion = retrain.get("promotion")
    if promotion:
        echo(f"  {promotion['alias']}: {promotion['from']} -> {promotion['to']}")
    data = retrain.get("data") or {}
    if data.get("restored"):
        echo(f"  {data['path']} was put back as it was")
    elif data:
        verb = "added to" if data["mode"] == "append" else "replaced"
        echo(f"  {data['rows_added']} rows of the batch {verb} {data['path']}")


def _holds(value: float, limit: tuple[str, float]) -> Any:
    op, bound = limit
    ok = value >= bound if op == ">=" else value <= bound
    return styled("yes", "green") if ok else styled("no", "bold red")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
