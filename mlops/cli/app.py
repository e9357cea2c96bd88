"""The typer application and what every command shares: output, errors, options."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from typer.core import TyperGroup


class _MlopsGroup(TyperGroup):
    """Turns library errors into one line and an exit code, for every command.

    Living in the command group (not in ``main``) means typer's test runner sees
    exactly what a user sees.
    """

    def invoke(self, ctx: Any) -> Any:
        from mlops.errors import MlopsError

        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            sys.stderr.write(f"mlops: error: {exc.message}\n")
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            sys.stderr.write("mlops: interrupted\n")
            ctx.exit(130)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if getattr(exc, "exit_code", None) is not None and hasattr(exc, "show"):
                raise  # click's own usage errors keep exit code 2
            if Options.debug:
                import traceback

                traceback.print_exception(exc)
            else:
                sys.stderr.write(
                    f"mlops: internal error: {type(exc).__name__}: {exc} "
                    "(run with --debug for the traceback)\n"
                )
            ctx.exit(3)


app = typer.Typer(
    cls=_MlopsGroup,
    name="mlops",
    help="Version data, models and pipelines next to your Git commits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: rendering them with rich costs ~100 ms at start-up.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Options:
    """Global options set by the top-level callback."""

    quiet: bool = False
    debug: bool = False


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors and results."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Version data, models and pipelines next to your Git commits."""
    Options.quiet = quiet
    Options.debug = debug


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on standard output (for ``--json``)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def echo(message: str = "", err: bool = False) -> None:
    """Print one line unless ``--quiet`` (errors always print)."""
    if Options.quiet and not err:
        return
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")


def console(stderr: bool = False) -> Any:
    """A rich console, created on first use so that start-up stays light.

    Text is printed as it is: what we print holds names and values from the user's
    files, where rich's markup (``[red]``, ``[/]``) or emoji codes (``:warning:``)
    would be changed, or fail to render. Styles are given with ``styled``.
    """
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)


def styled(text: str, style: str) -> Any:
    """``text`` shown in ``style`` (a rich style such as ``"bold red"``) by ``console()``."""
    from rich.text import Text

    return Text(text, style=style)


def progress_enabled() -> bool:
    """Progress bars only on a terminal and never with ``--quiet``."""
    return not Options.quiet and sys.stderr.isatty()
