"""The ported get-started project (examples/get-started) as a team lives it: make the
data, add it, run, push; a colleague clones, pulls, and finds nothing to do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers.cli import run_subprocess
from tests.helpers.repos import git, init_git

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "get-started"


def mlops(cwd: Path, *args: str) -> str:
    proc = run_subprocess(cwd, *args, env=ENV)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


# The stages call `python`: the interpreter the tests run in.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_get_started_run_push_clone_pull_and_nothing_to_do(tmp_path: Path) -> None:
    repo = init_git(tmp_path / "get-started")
    shutil.copytree(EXAMPLE, repo, dirs_exist_ok=True)
    mlops(repo, "init")
    data = subprocess.run(
        [sys.executable, "src/make_data.py"], cwd=repo, capture_output=True, text=True
    )
    assert data.returncode == 0, data.stderr
    mlops(repo, "add", "data/data.xml")
    mlops(repo, "remote", "add", "storage", "../storage", "--default")
    ran = json.loads(mlops(repo, "run", "--json"))
    assert [s["status"] for s in ran["stages"]] == ["ran"] * 4
    metrics = json.loads((repo / "eval" / "metrics.json").read_text())
    assert metrics["roc_auc"] > 0.8
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "get started")
    # Git keeps the metrics, the plots folder and the uncached importances.
    tracked = git(repo, "ls-files").split()
    assert {"eval/metrics.json", "eval/plots/roc.csv", "eval/importance.csv"} <= set(tracked)
    assert "model.pkl" not in tracked and "data/data.xml" not in tracked
    pushed = json.loads(mlops(repo, "push", "--json"))
    assert pushed["objects"] > 0
    lock = (repo / "mlops.lock").read_bytes()

    other = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    mlops(other, "pull")
    for rel in ("data/data.xml", "model.pkl", "data/prepared/train.tsv", "data/features/test.pkl"):
        assert (other / rel).read_bytes() == (repo / rel).read_bytes(), rel
    status = run_subprocess(other, "status", "--exit-code", env=ENV)
    assert status.returncode == 0, status.stdout + status.stderr
    again = json.loads(mlops(other, "run", "--json"))
    assert [s["status"] for s in again["stages"]] == ["skipped"] * 4
    assert (other / "mlops.lock").read_bytes() == lock
    assert git(other, "status", "--porcelain") == ""
    # A changed parameter reruns exactly the stages that read it.
    params = (other / "params.yaml").read_text().replace("n_est: 50", "n_est: 60")
    (other / "params.yaml").write_text(params)
    stale = json.loads(mlops(other, "status", "--json"))["stages"]
    assert {s["stage"]: s["reasons"] for s in stale if s["stale"]} == {
        "train": ["command changed", "param train.n_est changed (50 -> 60)"],
        "evaluate": ["upstream stage 'train' is stale"],
    }
