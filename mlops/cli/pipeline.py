"""Pipeline commands: run, dag, runs list/show/diff, params diff, metrics show/diff."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import typer

from mlops.cli import complete
from mlops.cli.app import Options, app, echo, emit_json, json_option

JSON = json_option()
REVISIONS = typer.Argument(
    None, help="REV_A [REV_B]: compare two commits, or REV_A (default HEAD) with the workspace."
)
_SHOWN_REASONS = 3
_DIGITS = 6

runs_app = typer.Typer(
    help="Run history: list, show and compare recorded runs.", no_args_is_help=True
)
params_app = typer.Typer(help="Parameters across commits.", no_args_is_help=True)
metrics_app = typer.Typer(help="Metrics across commits.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(params_app, name="params")
app.add_typer(metrics_app, name="metrics")


def _repo() -> Any:
    from mlops.core.repo import find_repo

    return find_repo()


def _reasons(reasons: tuple[str, ...] | list[str]) -> str:
    shown = "; ".join(reasons[:_SHOWN_REASONS])
    more = len(reasons) - _SHOWN_REASONS
    return shown + (f"; and {more} more" if more > 0 else "")


class _Printer:
    """Shows run events as they happen; stage output gets a ``[stage]`` prefix with -j > 1."""

    def __init__(self, prefix: bool, to_stderr: bool) -> None:
        self.prefix = prefix
        self.to_stderr = to_stderr

    def __call__(self, event: Any) -> None:
        from mlops.pipeline.results import EventKind, StageState

        kind, stage = event.kind, event.stage
        if kind == EventKind.OUTPUT:
            line = f"[{stage}] {event.text}" if self.prefix else event.text
            if event.stderr:
                echo(line, err=True)
            elif not Options.quiet:
                echo(line, err=self.to_stderr)
        elif kind == EventKind.SKIPPED:
            self._say(f"Stage '{stage}' skipped: {_reasons(event.reasons)}")
        elif kind == EventKind.RESTORED:
            self._say(f"Stage '{stage}' restored from the cache ({_reasons(event.reasons)})")
        elif kind == EventKind.STARTED:
            self._say(f"Running stage '{stage}': {_reasons(event.reasons)}")
        elif kind == EventKind.RECHECKING:
            self._say(
                f"Checking stage '{stage}' again, keeping its outputs: {_reasons(event.reasons)}"
            )
        elif kind == EventKind.FINISHED:
            result = event.result
            if result.status == StageState.RAN:
                self._say(f"Stage '{stage}' done in {result.duration:.1f} s")
            elif result.status == StageState.RECHECKED:
                self._say(f"Stage '{stage}' passed its changed checks in {result.duration:.1f} s")
            else:
                code = f" (exit code {result.exit_code})" if result.exit_code else ""
                echo(f"Stage '{stage}' {result.status}{code}", err=True)
        (sys.stderr if self.to_stderr else sys.stdout).flush()

    def _say(self, message: str) -> None:
        if not Options.quiet:
            echo(message, err=self.to_stderr)


@app.command()
def run(
    stages: list[str] = typer.Argument(
        None,
        help="Stages (or foreach groups) to bring up to date, with their upstream.",
        autocompletion=complete.stages,
    ),
    force: bool = typer.Option(False, "--force", "-f", help="Run the stages even if unchanged."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only say what would run."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Stages to run at the same time."),
    keep_going: bool = typer.Option(
        False,
        "--keep-going",
        "-k",
        help="After a failure, still run the stages that do not need it.",
    ),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="Where stages run: local, or dask (mlops[dask]); default run.executor in config.",
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="The Dask scheduler's address, tcp://HOST:8786."
    ),
    local: bool = typer.Option(
        False, "--local", help="With --executor dask: start a Dask cluster on this machine."
    ),
    remote: str | None = typer.Option(
        None, "--remote", "-r", help="The remote inputs and outputs move through (dask)."
    ),
    no_remote_cache: bool = typer.Option(
        False, "--no-remote-cache", help="Do not restore outputs from the remote's run cache."
    ),
    json: bool = JSON,
) -> None:
    """Run the pipeline in mlops.yaml, skipping stages whose inputs and outputs are unchanged."""
    from mlops.errors import PipelineError
    from mlops.flows.safeguards import run_with_safeguards
    from mlops.pipeline.results import ExecutorKind, RunOptions, StageState

    flags = {"--force": force, "--dry-run": dry_run, "--keep-going": keep_going, "--json": json}
    argv = ("mlops", "run", *(stages or ()), *(f for f, on in flags.items() if on))
    argv += ("-j", str(jobs)) if jobs > 1 else ()
    argv += ("--executor", executor) if executor else ()
    argv += ("--local",) if local else ()
    kind = None if executor is None else ExecutorKind.named(executor, "--executor")
    options = RunOptions(
        tuple(stages or ()),
        force,
        dry_run,
        jobs,
        keep_going,
        argv,
        executor=kind,
        scheduler=scheduler,
        local_cluster=local,
        remote=remote,
        remote_cache=not no_remote_cache,
    )
    printer = None if dry_run else _Printer(prefix=jobs > 1 or kind is not None, to_stderr=json)
    result, registered = run_with_safeguards(_repo(), options, printer)
    if json:
        emit_json({**result.to_dict(), "registered": [r.to_dict() for r in registered]})
    elif dry_run:
        for s in result.stages:
            if s.status == StageState.STALE:
                echo(f"would run '{s.name}': {_reasons(s.reasons)}")
            elif s.status == StageState.RECHECK:
                echo(f"would check '{s.name}' again, keeping its outputs: {_reasons(s.reasons)}")
            else:
                echo(f"'{s.name}' is up to date")
    else:
        _summary(result)
        for r in registered:
            alias = f", now {r.version.model}@{r.promoted_to}" if r.promoted_to else ""
            echo(f"registered {r.version.model}:{r.version.number} from stage '{r.stage}'{alias}")
    failed = result.failed
    if failed:
        for s in failed:
            if s.stderr_tail:
                echo(f"--- last lines of stderr of stage '{s.name}' ---", err=True)
                for line in s.stderr_tail:
                    echo(f"    {line}", err=True)
        more = f" ({len(failed) - 1} more stage(s) failed)" if len(failed) > 1 else ""
        raise PipelineError(failed[0].error + more)


def _summary(result: Any) -> None:
    from mlops.pipeline.results import StageState as S

    shown = (S.RAN, S.RECHECKED, S.RESTORED, S.SKIPPED, S.FAILED, S.BLOCKED, S.CANCELLED)
    counts = [f"{result.count(status)} {status}" for status in shown if result.count(status)]
    echo(
        f"{len(result.stages)} stage(s): {', '.join(counts) or 'nothing to do'} "
        f"in {result.duration:.1f} s (run {result.run_id})"
    )
    if result.lock_written:
        echo("Updated mlops.lock: commit it with your code (git add mlops.lock ...)")


@app.command()
def dag(
    mermaid: bool = typer.Option(False, "--mermaid", help="Print a Mermaid flowchart."),
    dot: bool = typer.Option(False, "--dot", help="Print a Graphviz digraph."),
    json: bool = JSON,
) -> None:
    """Show the stages of mlops.yaml and what each depends on."""
    from mlops.pipeline import dag as dag_mod
    from mlops.pipeline.schema import load_pipeline

    graph = dag_mod.build_dag(load_pipeline(_repo().root))
    if json:
        emit_json(
            {
                "stages": list(graph.order),
                "edges": [{"from": a, "to": b} for a, b in graph.edges()],
            }
        )
    elif mermaid:
        echo(dag_mod.to_mermaid(graph))
    elif dot:
        echo(dag_mod.to_dot(graph))
    else:
        echo(dag_mod.to_text(graph))


def _when(timestamp: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


class TableFormat(StrEnum):
    RICH = "rich"
    CSV = "csv"
    MD = "md"
    JSON = "json"


_STATUS = typer.Option(
    None, "--status", "-s", help="Only runs that ended so: success, failed, interrupted."
)
_STAGE = typer.Option(None, "--stage", help="Only runs in which this stage ran (repeatable).")
_PER_COMMIT = typer.Option(False, "--per-commit", help="One row per commit: its newest run.")
_ALL_COMMITS = typer.Option(
    False, "--all-commits", "-A", help="Runs on every commit, not only HEAD's history."
)
_ONLY_CHANGED = typer.Option(
    False, "--only-changed", help="Hide params and metrics that are the same in every row."
)
_SORT_BY = typer.Option(None, "--sort-by", help="Sort by a column: a param, metric or 'started'.")
_ORDER = typer.Option("asc", "--sort-order", help="asc or desc (rows without a value go last).")
_CSV = typer.Option(False, "--csv", help="Print CSV.")
_MD = typer.Option(False, "--md", help="Print a Markdown table (for a CI comment).")


def _format_of(csv: bool, md: bool, json: bool) -> TableFormat:
    chosen = [
        f
        for f, on in ((TableFormat.CSV, csv), (TableFormat.MD, md), (TableFormat.JSON, json))
        if on
    ]
    if len(chosen) > 1:
        raise typer.BadParameter("choose one of --csv, --md and --json")
    return chosen[0] if chosen else TableFormat.RICH


def _experiments(query: Any, fmt: TableFormat, params: bool = True, metrics: bool = True) -> None:
    """The experiments table in ``fmt``."""
    from mlops.pipeline.experiments import runs_table, table_cells

    table = runs_table(_repo(), query)
    if fmt is TableFormat.JSON:
        data = table.to_dict()
        if not params:
            data["params"] = []
        if not metrics:
            data["metrics"] = []
        emit_json(data)
        return
    # CSV keeps every digit for scripts; people read six significant ones.
    digits = None if fmt is TableFormat.CSV else _DIGITS
    header, rows = table_cells(table, params, metrics, digits)
    if fmt is TableFormat.CSV:
        import csv as csv_mod

        writer = csv_mod.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    elif fmt is TableFormat.MD:
        for line in _markdown(header, rows):
            echo(line)
    elif not rows:
        echo("No runs recorded match: `mlops run` records one.")
    else:
        # Aligned by hand: rich's Table measures every cell and took 5 s for 5,000 runs.
        _table(tuple(header), [tuple(value or "-" for value in row) for row in rows])


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        escaped = (c.replace("\\", "\\\\").replace("|", "\\|") for c in cells)
        return "| " + " | ".join(escaped) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]


def _query(
    status: list[str] | None,
    stage: list[str] | None,
    per_commit: bool,
    all_commits: bool,
    only_changed: bool,
    sort_by: str | None,
    order: str,
    limit: int | None,
) -> Any:
    from mlops.pipeline.experiments import RunStatus, SortOrder, TableQuery

    try:
        statuses = tuple(RunStatus(s) for s in status or ())
    except ValueError:
        raise typer.BadParameter(
            f"--status must be one of {', '.join(s.value for s in RunStatus)}"
        ) from None
    try:
        sort_order = SortOrder(order)
    except ValueError:
        raise typer.BadParameter("--sort-order must be asc or desc") from None
    return TableQuery(
        statuses,
        tuple(stage or ()),
        per_commit,
        all_commits,
        only_changed,
        sort_by,
        sort_order,
        limit,
    )


@runs_app.command("table")
def runs_table(
    status: list[str] = _STATUS,
    stage: list[str] = _STAGE,
    per_commit: bool = _PER_COMMIT,
    all_commits: bool = _ALL_COMMITS,
    only_changed: bool = _ONLY_CHANGED,
    sort_by: str = _SORT_BY,
    order: str = _ORDER,
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="Show at most this many rows."),
    csv: bool = _CSV,
    md: bool = _MD,
    json: bool = JSON,
) -> None:
    """The experiments table: one row per run (or commit), params and metrics as columns."""
    query = _query(status, stage, per_commit, all_commits, only_changed, sort_by, order, limit)
    _experiments(query, _format_of(csv, md, json))


@runs_app.command("list")
def runs_list(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs to show."),
    params: bool = typer.Option(False, "--params", help="The experiments table, with params."),
    metrics: bool = typer.Option(False, "--metrics", help="The experiments table, with metrics."),
    status: list[str] = _STATUS,
    stage: list[str] = _STAGE,
    per_commit: bool = _PER_COMMIT,
    all_commits: bool = _ALL_COMMITS,
    only_changed: bool = _ONLY_CHANGED,
    sort_by: str = _SORT_BY,
    order: str = _ORDER,
    csv: bool = _CSV,
    md: bool = _MD,
    json: bool = JSON,
) -> None:
    """Recorded runs, newest first; with --params or --metrics, as the experiments table."""
    table_options = (status, stage, per_commit, all_commits, only_changed, sort_by, csv, md)
    if params or metrics:
        query = _query(status, stage, per_commit, all_commits, only_changed, sort_by, order, limit)
        _experiments(query, _format_of(csv, md, json), params, metrics)
        return
    if any(table_options):
        raise typer.BadParameter("table options need --params or --metrics (or `mlops runs table`)")
    from mlops.pipeline.runs import list_runs

    records = list_runs(_repo(), limit)
    if json:
        emit_json([dict(r.to_dict(), object=r.object_id) for r in records])
        return
    if not records:
        echo("No runs recorded yet: `mlops run` records one.")
        return
    echo(f"{'ID':<12}  {'STARTED':<19}  {'STATUS':<11}  {'COMMIT':<9}  RAN  REST  SKIP  FAIL  TIME")
    for r in records:
        commit = (r.commit or "-")[:8] + ("*" if r.dirty else "")
        echo(
            f"{r.id:<12}  {_when(r.started):<19}  {r.status:<11}  {commit:<9}  "
            f"{r.count('ran'):>3}  {r.count('restored'):>4}  {r.count('skipped'):>4}  "
            f"{r.count('failed'):>4}  {r.ended - r.started:.1f}s"
        )


@runs_app.command("show")
def runs_show(
    run_id: str = typer.Argument(..., help="A run id, or an unambiguous prefix of one."),
    json: bool = JSON,
) -> None:
    """Everything recorded about one run."""
    from mlops.pipeline.runs import get_run

    r = get_run(_repo(), run_id)
    if json:
        emit_json(dict(r.to_dict(), object=r.object_id))
        return
    echo(f"run {r.id}: {r.status}, {_when(r.started)}, {r.ended - r.started:.1f} s")
    echo(f"  by {r.user}@{r.host} on commit {r.commit or '(none)'}{' (dirty)' if r.dirty else ''}")
    echo(f"  command: {' '.join(r.argv)}")
    packages = ", ".join(f"{k} {v}" for k, v in r.packages.items())
    echo(f"  python {r.python}; {packages}")
    echo(f"  record object: {r.object_id}")
    for s in r.stages:
        echo(f"  {s.name}: {s.status} ({s.duration:.1f} s) {_reasons(s.reasons)}")
        if s.error:
            echo(f"      error: {s.error}")
        for file, values in s.metrics.items():
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            echo(f"      {file}: {shown}")


@runs_app.command("diff")
def runs_diff(
    run_a: str = typer.Argument(..., help="The first run id (or prefix)."),
    run_b: str = typer.Argument(..., help="The second run id (or prefix)."),
    all_rows: bool = typer.Option(False, "--all", "-a", help="Show unchanged values too."),
    json: bool = JSON,
) -> None:
    """Params, metrics and data hashes of two runs, side by side."""
    from mlops.pipeline.runs import diff_runs

    a, b, rows = diff_runs(_repo(), run_a, run_b)
    if json:
        emit_json({"a": a.id, "b": b.id, "rows": [row.to_dict() for row in rows]})
        return
    shown = [row for row in rows if all_rows or row.changed]
    if not shown:
        echo(f"No differences in params, metrics or data between runs {a.id} and {b.id}.")
        return

    def cell(kind: str, value: Any) -> str:
        if value is None:
            return "-"
        return str(value)[:12] if kind == "data" else str(value)

    table = [(row.kind, row.name, cell(row.kind, row.a), cell(row.kind, row.b)) for row in shown]
    _table(("KIND", "NAME", a.id, b.id), table)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _format(value: Any) -> str:
    return "-" if value is None else str(value)


def _changes(changes: list[Any], what: str, with_delta: bool) -> None:
    if not changes:
        echo(f"No {what} changes.")
        return
    header = ("FILE", "KEY", "OLD", "NEW", *(("CHANGE",) if with_delta else ()))
    rows = []
    for c in changes:
        row: tuple[str, ...] = (c.file, c.key, _format(c.old), _format(c.new))
        if with_delta:
            row += ("-" if c.delta is None else f"{c.delta:+.6g}",)
        rows.append(row)
    _table(header, rows)


def _show_changes(changes: list[Any], what: str, json: bool) -> None:
    """Params or metrics changes as JSON or a table (metrics get a delta column)."""
    if json:
        emit_json([c.to_dict() for c in changes])
    else:
        _changes(changes, what, with_delta=what == "metric")


@params_app.command("diff")
def params_diff(
    revisions: list[str] = REVISIONS,
    all_rows: bool = typer.Option(False, "--all", "-a", help="Show unchanged parameters too."),
    json: bool = JSON,
) -> None:
    """Parameters the stages read, compared between commits or with the workspace."""
    from mlops.pipeline.history import params_diff as diff

    _show_changes(diff(_repo(), revisions or [], all_rows), "parameter", json)


@metrics_app.command("show")
def metrics_show(
    all_commits: bool = typer.Option(
        False,
        "--all-commits",
        "-A",
        help="Also every commit reachable from a branch, a tag or HEAD.",
    ),
    json: bool = JSON,
) -> None:
    """The metrics files of the pipeline, in the workspace (and at every commit)."""
    from mlops.pipeline import history

    repo = _repo()
    shown = history.all_metrics(repo) if all_commits else history.metrics_show(repo)
    if json:
        emit_json([m.to_dict() for m in shown])
        return
    rows = []
    for at in shown:
        rev = at.rev if at.rev == history.WORKSPACE else at.rev[:10]
        if at.error:
            rows.append((rev, "-", "-", f"error: {at.error}"))
        for file, values in at.metrics.items():
            rows.extend((rev, file, key, _format(value)) for key, value in values.items())
    if not rows:
        echo("No metrics: declare metrics files under a stage's `metrics:` in mlops.yaml.")
        return
    _table(("REV", "FILE", "KEY", "VALUE"), rows)


@metrics_app.command("diff")
def metrics_diff(
    revisions: list[str] = REVISIONS,
    all_rows: bool = typer.Option(False, "--all", "-a", help="Show unchanged metrics too."),
    json: bool = JSON,
) -> None:
    """Metrics compared between commits or with the workspace."""
    from mlops.pipeline.history import metrics_diff as diff

    result = diff(_repo(), revisions or [], all_rows)
    _show_changes(result.changes, "metric", json)
    for note in result.notes:
        echo(f"note: {note}", err=True)
