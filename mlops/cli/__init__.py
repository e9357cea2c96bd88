"""Command-line entry point.

Command modules import only typer at module level; each command imports the
library function it calls inside its body, so ``mlops --help`` stays fast.
"""

from __future__ import annotations

import typer

# Importing a command module registers its commands on ``app``.
from mlops.cli import checks, data, monitor, pipeline, registry, remote  # noqa: F401
from mlops.cli.app import Options, app


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors and results."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Version data, models and pipelines next to your Git commits."""
    Options.quiet = quiet
    Options.debug = debug


def main() -> None:
    """Console-script entry point."""
    app(prog_name="mlops")
