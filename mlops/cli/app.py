"""The typer application and what every command shares: output, errors, options."""

from __future__ import annotations

import errno
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
            _error(exc.message, exc.exit_code)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            sys.stderr.write("mlops: interrupted\n")
            ctx.exit(130)
        except (typer.Exit, typer.Abort, BrokenPipeError):
            raise  # typer ends a closed pipe (`| head`) quietly, with exit code 1
        except Exception as exc:
            if getattr(exc, "exit_code", None) is not None and hasattr(exc, "show"):
                raise  # click's own usage errors keep exit code 2
            problem = os_problem(exc)
            if problem:
                sys.stderr.write(f"mlops: error: {problem}\n")
                ctx.exit(1)
            if Options.debug:
                import traceback

                traceback.print_exception(exc)
            message = f"internal error: {type(exc).__name__}: {exc}"
            if Options.debug:
                if Options.json and not Options.emitted:
                    emit_json({"error": message, "exit_code": 3})
            else:
                _error(message + " (run with --debug for the traceback)", 3, prefix="mlops: ")
            ctx.exit(3)


def os_problem(exc: BaseException) -> str | None:
    """One line for what the system refused (a full disk, a read-only or unwritable
    place, a name too long), naming the path and what to do; None for anything else."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        # SQLite reports the same conditions in words, without the path.
        text = str(exc)
        for words, code in (
            ("readonly", errno.EACCES),
            ("unable to open", errno.EACCES),
            ("full", errno.ENOSPC),
        ):
            if words in text:
                return _os_line(code, ".mlops/*.db", text)
        return None
    if not isinstance(exc, OSError) or exc.errno not in _OS_ADVICE:
        return None
    paths = [_shown(p) for p in (exc.filename, exc.filename2) if p is not None]
    return _os_line(exc.errno, " -> ".join(paths) or "a file", exc.strerror or str(exc))


def _shown(path: object) -> str:
    """``path`` relative to the current folder when it is below it (shorter to read)."""
    import os

    text = os.fsdecode(path) if isinstance(path, str | bytes) else str(path)
    relative = os.path.relpath(text) if os.path.isabs(text) else text
    return relative if not relative.startswith("..") else text


def _os_line(code: int, where: str, what: str) -> str:
    return f"{where}: {what}: {_OS_ADVICE[code]}"


_SPACE = "free some space (`mlops gc` removes cache objects nothing needs) and run it again"
_ACCESS = "check the owner and permissions of it and of its folder, then run it again"
# What the system refuses that the user must fix, and how.
_OS_ADVICE = {
    errno.ENOSPC: _SPACE,
    errno.EDQUOT: _SPACE,
    errno.EROFS: "the file system is read-only: remount it writable or work in a copy",
    errno.EACCES: _ACCESS,
    errno.EPERM: _ACCESS,
    errno.ENAMETOOLONG: "use a shorter name (most file systems allow 255 bytes a name)",
}


def _error(message: str, exit_code: int, prefix: str = "mlops: error: ") -> None:
    """One line on standard error; with ``--json`` also a JSON object on standard output,
    so that a script reading one stream sees the failure."""
    sys.stderr.write(f"{prefix}{message}\n")
    if Options.json and not Options.emitted:  # one JSON document on stdout, never two
        emit_json({"error": message, "exit_code": exit_code})


app = typer.Typer(
    cls=_MlopsGroup,
    name="mlops",
    help="Version data, models and pipelines next to your Git commits.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: rendering them with rich costs ~100 ms at start-up.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Options:
    """Global options set by the top-level callback."""

    quiet: bool = False
    debug: bool = False
    json: bool = False  # set by a command's --json, which is parsed after the callback
    emitted: bool = False  # the command printed its JSON document already


def _show_version(value: bool) -> None:
    if value:
        from mlops import __version__

        sys.stdout.write(f"mlops {__version__}\n")
        raise typer.Exit()


def _json_given(value: bool) -> bool:
    Options.json = Options.json or value
    return value


def json_option(help: str = "Print the result as JSON.") -> Any:
    """The ``--json`` option of every command that reports (errors then come as JSON too)."""
    return typer.Option(False, "--json", help=help, callback=_json_given)


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors and results."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_show_version,
        is_eager=True,
    ),
) -> None:
    """Version data, models and pipelines next to your Git commits."""
    Options.quiet = quiet
    Options.debug = debug
    Options.json = Options.emitted = False


def human_size(n: int) -> str:
    """A byte count as people read it (``12.3 MiB``)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on standard output (for ``--json``)."""
    Options.emitted = True
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
