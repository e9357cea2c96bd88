"""The team flow as users live it: run, push, git clone, pull, status clean, run does nothing.

Pipelines here mix cached outputs (a model, a prepared folder) with outputs Git keeps
(``cache: false`` outs, metrics, a plots folder).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.helpers.cli import ok, run_cli
from tests.helpers.files import write
from tests.helpers.repos import commit_all, git

PIPELINE = """\
stages:
  prepare:
    cmd: mkdir -p data/prepared && cp raw.txt data/prepared/a.txt && cp raw.txt data/prepared/b.txt
    deps: [raw.txt]
    outs: [data/prepared]
  train:
    cmd: >-
      {python} -c "import os; os.makedirs('plots', exist_ok=True);
      open('model.bin','w').write(open('data/prepared/a.txt').read() * 3);
      open('summary.txt','w').write('trained\\n');
      open('metrics.json','w').write('{{\\"acc\\": 0.9}}');
      open('plots/loss.csv','w').write('step,loss\\n1,0.5\\n')"
    deps: [data/prepared]
    outs:
      - model.bin
      - summary.txt:
          cache: false
    metrics: [metrics.json]
    plots: [plots]
"""


def stale(repo: Path) -> list[dict[str, object]]:
    """The stale stages ``mlops status --json`` reports."""
    stages = json.loads(ok(repo, "status", "--json"))["stages"]
    return [s for s in stages if s["stale"]]


def assert_clean(repo: Path) -> None:
    result = run_cli(repo, "status", "--exit-code")
    assert result.exit_code == 0, result.stdout + result.stderr


def project(repo: Path) -> Path:
    write(repo, "mlops.yaml", PIPELINE.replace("{python}", sys.executable))
    write(repo, "raw.txt", "a\nb\n")
    ok(repo, "remote", "add", "store", "../store", "--default")
    ok(repo, "run")
    commit_all(repo, "pipeline")
    return repo


def test_push_with_uncached_outputs_metrics_and_plots(repo: Path) -> None:
    project(repo)
    pushed = run_cli(repo, "push", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    assert json.loads(pushed.stdout)["objects"] > 0
    again = json.loads(ok(repo, "push", "--json"))
    assert again["objects"] == 0


def test_push_with_a_lock_written_before_cache_was_recorded(repo: Path) -> None:
    """Older locks do not say which outputs are cached: the pipeline file tells."""
    project(repo)
    lock = json.loads((repo / "mlops.lock").read_text())
    for entry in lock["stages"].values():
        for out in entry["outs"]:
            del out["cache"]
    (repo / "mlops.lock").write_text(json.dumps(lock, indent=2) + "\n")
    commit_all(repo, "old lock")
    pushed = run_cli(repo, "push")
    assert pushed.exit_code == 0, pushed.stderr
    assert_clean(repo)  # no cache option recorded: nothing to compare


def test_changing_an_outputs_cache_option_makes_the_stage_stale(repo: Path) -> None:
    project(repo)
    assert_clean(repo)
    text = (repo / "mlops.yaml").read_text()
    (repo / "mlops.yaml").write_text(text.replace("cache: false", "cache: true"))
    found = stale(repo)
    assert [s["stage"] for s in found] == ["train"]
    assert found[0]["reasons"] == ["out summary.txt cache option changed"]
    # Git still tracks the file it kept while uncached: refused, as add refuses it.
    refused = run_cli(repo, "run")
    assert refused.exit_code == 1
    assert "output 'summary.txt' is tracked by Git; untrack it first" in refused.stderr
    git(repo, "rm", "-q", "--cached", "summary.txt")
    ok(repo, "run")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "summary.txt cached")
    assert_clean(repo)
    lock = json.loads((repo / "mlops.lock").read_text())
    outs = {o["path"]: o["cache"] for o in lock["stages"]["train"]["outs"]}
    assert outs == {
        "model.bin": True,
        "summary.txt": True,
        "metrics.json": False,
        "plots": False,
    }


def test_clone_and_pull_bring_the_pipeline_outputs(tmp_path: Path, repo: Path) -> None:
    project(repo)
    ok(repo, "push")
    lock = (repo / "mlops.lock").read_bytes()
    other = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    ok(other, "pull")
    for rel in ("model.bin", "data/prepared/a.txt", "data/prepared/b.txt", "summary.txt"):
        assert (other / rel).read_bytes() == (repo / rel).read_bytes(), rel
    assert_clean(other)
    ran = json.loads(ok(other, "run", "--json"))
    assert {s["stage"]: s["status"] for s in ran["stages"]} == {
        "prepare": "skipped",
        "train": "skipped",
    }
    assert (other / "mlops.lock").read_bytes() == lock
    assert git(other, "status", "--porcelain") == ""


def test_pull_a_stage_output_by_path(tmp_path: Path, repo: Path) -> None:
    project(repo)
    ok(repo, "push")
    other = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    ok(other, "pull", "model.bin")
    assert (other / "model.bin").read_bytes() == (repo / "model.bin").read_bytes()
    assert not (other / "data" / "prepared").exists()
    ok(other, "pull", "data/prepared")
    assert (other / "data/prepared/b.txt").read_bytes() == b"a\nb\n"


def test_run_after_clone_restores_outputs_without_rewriting_the_lock(
    tmp_path: Path, repo: Path
) -> None:
    project(repo)
    ok(repo, "push")
    lock = (repo / "mlops.lock").read_bytes()
    other = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    ok(other, "fetch")
    ran = json.loads(ok(other, "run", "--json"))
    assert {s["stage"]: s["status"] for s in ran["stages"]} == {
        "prepare": "restored",
        "train": "restored",
    }
    assert (other / "model.bin").read_bytes() == (repo / "model.bin").read_bytes()
    assert (other / "mlops.lock").read_bytes() == lock


def test_pull_names_the_stage_output_nobody_pushed(tmp_path: Path, repo: Path) -> None:
    project(repo)
    other = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    (tmp_path / "store").mkdir()  # the remote exists, but nothing was pushed to it
    result = run_cli(other, "pull", "model.bin")
    assert result.exit_code == 1
    assert "(model.bin)" in result.stderr and "not on the remote" in result.stderr
