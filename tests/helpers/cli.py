"""The real CLI: through typer's test runner in this process, or as ``python -m mlops``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(cwd: Path, *args: str) -> CliResult:
    """Run the CLI through typer's test runner in ``cwd``."""
    from mlops.cli import load_app

    app = load_app()

    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_subprocess(cwd: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mlops`` as a real process in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


def ok(cwd: Path, *args: str) -> str:
    """``mlops ARGS`` through the CLI; it must succeed. Its standard output."""
    result = run_cli(cwd, *args)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


def as_json(cwd: Path, *args: str) -> Any:
    """``mlops ARGS --json`` through the CLI; it must succeed. Its output as data."""
    return json.loads(ok(cwd, *args, "--json"))


def error_lines(result: CliResult) -> list[str]:
    """The ``mlops: error:`` lines on standard error."""
    return [line for line in result.stderr.splitlines() if line.startswith("mlops: error:")]
