"""``mlops check``: run data and model check suites without running any stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mlops.cli import complete
from mlops.cli.app import Options, app, console, echo, emit_json, json_option, styled


@app.command()
def check(
    suites: list[str] = typer.Argument(
        None, help="Names of suites under checks: to run.", autocompletion=complete.suites
    ),
    stage: str | None = typer.Option(
        None,
        "--stage",
        help="Run the before and after suites of this stage.",
        autocompletion=complete.stages,
    ),
    all_suites: bool = typer.Option(False, "--all", help="Run every suite."),
    json: bool = json_option("Print the results as JSON."),
    junit: Path | None = typer.Option(
        None, "--junit", help="Also write the results as JUnit XML to this file."
    ),
) -> None:
    """Run data and model checks on the current files (for Git hooks and CI); exit 1 on failure."""
    if not (suites or stage or all_suites):
        raise typer.BadParameter("name suites to run, or use --stage STAGE or --all")
    from mlops.checks import to_junit
    from mlops.core.fsutil import atomic_write_text
    from mlops.core.repo import find_git_root
    from mlops.errors import InputError
    from mlops.pipeline.guards import run_declared_checks

    report = run_declared_checks(find_git_root(), suites or (), stage, all_suites)
    if json:
        emit_json(report.to_dict())
    else:
        _render(report, stage)
    if junit is not None:  # after the report: a path that cannot be written loses nothing
        try:
            atomic_write_text(junit, to_junit(report))
        except OSError as exc:
            raise InputError(f"--junit {junit}: cannot write: {exc.strerror or exc}") from exc
    if not report.passed:
        raise typer.Exit(1)


def _render(report: Any, stage: str | None) -> None:
    from mlops.checks import ERROR, FAIL, PASS, describe

    if not report.suites:
        if stage is not None:
            echo(f"stage {stage!r} names no check suites (under its checks: before/after)")
        else:
            echo("no check suites selected (none are defined under checks: in mlops.yaml)")
        return
    if not Options.quiet:
        from rich.table import Table

        table = Table("suite", "check", "column", "status", "observed", "expected")
        style = {PASS: "green", FAIL: "bold red", ERROR: "bold magenta"}
        for r in report.results:
            table.add_row(
                r.suite,
                r.check,
                r.column or "",
                styled(r.status, style[r.status]),
                _show(r.observed),
                r.expected,
            )
        out = console()
        if not out.is_terminal:
            out.width = 200  # a CI log has no width: never cut suite or check names
        out.print(table)
    for r in report.results:
        if r.status == FAIL:
            echo(f"FAIL {describe(r)}")
        elif r.status == ERROR:
            echo(f"mlops: error: {r.message}", err=True)
    counts = report.counts()
    echo(
        f"{len(report.results)} checks: {counts[PASS]} ok, {counts[FAIL]} failed, "
        f"{counts[ERROR]} could not run ({report.seconds:.2f} s)"
    )


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_show(v)}" for k, v in value.items())
    return str(value)
