"""Small real pipelines for the pipeline and run-record tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.cli import CliResult, run_cli
from tests.helpers.files import write

# prepare -> train -> evaluate, with params and metrics, in plain shell so that it is fast.
THREE_STAGES = """\
stages:
  prepare:
    cmd: mkdir -p data && cp raw.txt data/clean.txt && echo prepared
    deps: [raw.txt]
    outs: [data/clean.txt]
  train:
    cmd: cat data/clean.txt params.yaml > model.bin && echo trained
    deps: [data/clean.txt]
    params: [train.lr]
    outs: [model.bin]
  evaluate:
    cmd: >-
      {python} -c "import yaml,json; p=yaml.safe_load(open('params.yaml'));
      json.dump({'accuracy': 0.5 + p['train']['lr'], 'rows': 3}, open('metrics.json','w'))"
    deps: [model.bin]
    params: [train.lr]
    metrics: [metrics.json]
"""


def three_stage_project(repo: Path, lr: float = 0.1) -> Path:
    """The three-stage example with its input and params."""
    write(repo, "mlops.yaml", THREE_STAGES.replace("{python}", sys.executable))
    write(repo, "raw.txt", "a\nb\nc\n")
    write(repo, "params.yaml", f"train:\n  lr: {lr}\n  epochs: 3\n")
    return repo


def run_ok(repo: Path, *args: str) -> CliResult:
    """``mlops run ARGS`` through the CLI; it must succeed."""
    result = run_cli(repo, "run", *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def read_lock(repo: Path) -> dict[str, Any]:
    """``mlops.lock`` as data."""
    data: dict[str, Any] = yaml.safe_load((repo / "mlops.lock").read_text())
    return data


def runs_json(repo: Path) -> list[dict[str, Any]]:
    """``mlops runs list --json``, newest first."""
    result = run_cli(repo, "runs", "list", "--json")
    assert result.exit_code == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def statuses(run: dict[str, Any]) -> dict[str, str]:
    """Stage name -> status in one run record."""
    return {s["name"]: s["status"] for s in run["stages"]}
