"""Plots across revisions: ``mlops plots show`` and ``mlops plots diff``."""

from __future__ import annotations

import typer

from mlops.cli.app import app, echo, emit_json

plots_app = typer.Typer(
    help="Plot files of the pipeline across revisions, as one self-contained HTML page.",
    no_args_is_help=True,
)
app.add_typer(plots_app, name="plots")

_OUTPUT = typer.Option("plots.html", "--output", "-o", help="The HTML file to write.")
_FORCE = typer.Option(False, "--force", "-f", help="Replace a file that is not an mlops page.")
_JSON = typer.Option(False, "--json", help="Also print the plots' data as JSON.")


def _draw(revs: list[str], output: str, force: bool, json: bool) -> None:
    from pathlib import Path

    from mlops.core.repo import find_repo
    from mlops.plots.data import collect
    from mlops.plots.html import render_page, write_page

    plots = collect(find_repo(), revs)
    path = Path(output)
    write_page(path, render_page(plots, revs), force)
    if json:
        emit_json({"output": str(path), "revisions": revs, "plots": [p.to_dict() for p in plots]})
        return
    problems = sum(1 for p in plots for s in p.series if s.error)
    note = f" ({problems} file(s) missing or unreadable: see the page)" if problems else ""
    echo(f"wrote {path}: {len(plots)} plot(s) at {', '.join(revs)}{note}")


@plots_app.command("show")
def show(
    revisions: list[str] = typer.Argument(
        None, help="Revisions to overlay ('workspace' for the work tree; default: it alone)."
    ),
    output: str = _OUTPUT,
    force: bool = _FORCE,
    json: bool = _JSON,
) -> None:
    """Draw the plot files stages declare, at one or more revisions overlaid."""
    _draw(revisions or ["workspace"], output, force, json)


@plots_app.command("diff")
def diff(
    revisions: list[str] = typer.Argument(
        None, help="REV_A [REV_B]: default HEAD and the workspace; REV_A alone: with the workspace."
    ),
    output: str = _OUTPUT,
    force: bool = _FORCE,
    json: bool = _JSON,
) -> None:
    """Draw the plots of two revisions overlaid."""
    revs = list(revisions or [])
    if len(revs) > 2:
        raise typer.BadParameter("give at most two revisions")
    if len(revs) < 2:
        revs = [*(revs or ["HEAD"]), "workspace"]
    _draw(revs, output, force, json)
