"""``mlops run``: skip-unchanged, run cache, outputs, parallel stages, failures, dry runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.core.repo import Repo
from mlops.pipeline.results import GuardContext, RunOptions, Verdict
from mlops.pipeline.runner import run_pipeline
from tests.helpers.cli import run_cli
from tests.helpers.files import write
from tests.helpers.pipeline import read_lock, run_ok, runs_json, statuses, three_stage_project
from tests.helpers.repos import commit_all


def test_first_run_runs_everything_then_nothing(repo: Path) -> None:
    three_stage_project(repo)
    first = run_ok(repo)
    assert "Running stage 'prepare': new stage" in first.stdout
    assert "prepared" in first.stdout and "trained" in first.stdout
    assert json.loads((repo / "metrics.json").read_text())["accuracy"] == 0.6
    lock = read_lock(repo)
    assert list(lock["stages"]) == ["prepare", "train", "evaluate"]
    assert lock["stages"]["train"]["params"] == {"params.yaml": {"train.lr": 0.1}}
    run_id = runs_json(repo)[0]["id"]
    assert {e["run"] for e in lock["stages"].values()} == {run_id}

    second = run_ok(repo)
    for name in ("prepare", "train", "evaluate"):
        assert f"Stage '{name}' skipped: unchanged" in second.stdout
    assert "prepared" not in second.stdout
    assert read_lock(repo) == lock  # a no-op run leaves the lock alone
    assert statuses(runs_json(repo)[0]) == dict.fromkeys(lock["stages"], "skipped")


def test_changed_param_reruns_only_the_stages_that_read_it(repo: Path) -> None:
    three_stage_project(repo)
    run_ok(repo)
    write(repo, "params.yaml", "train:\n  lr: 0.3\n  epochs: 3\n")
    result = run_ok(repo)
    assert "Running stage 'train': param train.lr changed (0.1 -> 0.3)" in result.stdout
    assert statuses(runs_json(repo)[0]) == {
        "prepare": "skipped",
        "train": "ran",
        "evaluate": "ran",
    }
    assert json.loads((repo / "metrics.json").read_text())["accuracy"] == 0.8
    # A key the stages do not read changes nothing.
    write(repo, "params.yaml", "train:\n  lr: 0.3\n  epochs: 9\n")
    run_ok(repo)
    assert set(statuses(runs_json(repo)[0]).values()) == {"skipped"}


def test_changed_dep_and_changed_out(repo: Path) -> None:
    three_stage_project(repo)
    run_ok(repo)
    write(repo, "raw.txt", "a\nb\nc\nd\n")
    result = run_ok(repo)
    assert "Running stage 'prepare': dep raw.txt changed" in result.stdout
    assert (repo / "data/clean.txt").read_text() == "a\nb\nc\nd\n"
    # An output edited by hand: its inputs match the lock, so the locked output comes back.
    os.chmod(repo / "model.bin", 0o644)
    (repo / "model.bin").write_text("tampered")
    result = run_ok(repo)
    assert "Stage 'train' restored from the cache (out model.bin changed)" in result.stdout
    assert (repo / "model.bin").read_text().startswith("a\nb\nc\nd\n")
    assert statuses(runs_json(repo)[0])["train"] == "restored"


def test_run_cache_restores_outputs_without_running(repo: Path, tmp_path: Path) -> None:
    counter = tmp_path / "calls.log"
    write(
        repo,
        "mlops.yaml",
        f"""\
        stages:
          train:
            cmd: >-
              echo run >> {counter} && cat params.yaml > model.bin
              && mkdir -p plots && echo 1 > plots/p.csv
            params: [lr]
            outs: [model.bin, plots]
        """,
    )
    write(repo, "params.yaml", "lr: 1\n")
    run_ok(repo)
    write(repo, "params.yaml", "lr: 2\n")
    run_ok(repo)
    write(repo, "params.yaml", "lr: 1\n")
    result = run_ok(repo)
    assert "Stage 'train' restored from the cache (param lr changed (2 -> 1))" in result.stdout
    assert counter.read_text().count("run") == 2  # the third run did not execute the command
    assert (repo / "model.bin").read_text() == "lr: 1\n"
    assert (repo / "plots/p.csv").read_text() == "1\n"
    assert read_lock(repo)["stages"]["train"]["params"] == {"params.yaml": {"lr": 1}}
    # --force runs the command even so.
    run_ok(repo, "--force")
    assert counter.read_text().count("run") == 3


def test_uncached_persistent_outputs_wdir_and_env(repo: Path) -> None:
    write(
        repo,
        "mlops.yaml",
        """\
        stages:
          grow:
            cmd: echo "$GREETING" >> log.txt && echo "$MLOPS_STAGE" > report.txt
            wdir: work
            env: {GREETING: hello}
            outs:
              - log.txt: {persist: true}
              - report.txt: {cache: false}
        """,
    )
    (repo / "work").mkdir()
    run_ok(repo)
    run_ok(repo, "--force")
    assert (repo / "work/log.txt").read_text() == "hello\nhello\n"  # kept between runs
    assert (repo / "work/report.txt").read_text() == "grow\n"
    ignored = (repo / "work/.gitignore").read_text().splitlines()
    assert "/log.txt" in ignored and "/report.txt" not in ignored
    entry = read_lock(repo)["stages"]["grow"]
    assert entry["wdir"] == "work" and entry["env"] == {"GREETING": "hello"}
    assert [o["path"] for o in entry["outs"]] == ["work/log.txt", "work/report.txt"]


def test_foreach_stages_run(repo: Path) -> None:
    write(
        repo,
        "mlops.yaml",
        """\
        stages:
          fit:
            foreach:
              small: {n: 1}
              big: {n: 2}
            do:
              cmd: echo ${item.n} > out-${key}.txt
              outs: ["out-${key}.txt"]
        """,
    )
    run_ok(repo, "fit")  # a foreach group name selects all its stages
    assert (repo / "out-small.txt").read_text() == "1\n"
    assert (repo / "out-big.txt").read_text() == "2\n"
    assert set(read_lock(repo)["stages"]) == {"fit@small", "fit@big"}


def test_selected_stage_runs_with_its_upstream_only(repo: Path) -> None:
    three_stage_project(repo)
    run_ok(repo, "train")
    assert (repo / "model.bin").exists() and not (repo / "metrics.json").exists()
    assert set(read_lock(repo)["stages"]) == {"prepare", "train"}
    result = run_cli(repo, "run", "trian")
    assert result.exit_code == 1
    assert "no stage named 'trian' in mlops.yaml (did you mean 'train'?)" in result.stderr


# Each stage marks that it started, then waits for the other's mark: they both end only
# when they run at the same time (run one at a time, the first gives up after 60 s).
MEET = (
    "import pathlib, sys, time; me, other = sys.argv[1:]; pathlib.Path(me).touch(); "
    "end = time.monotonic() + 60\n"
    "while not pathlib.Path(other).exists():\n"
    "    if time.monotonic() > end: sys.exit('the other stage never started')\n"
    "    time.sleep(0.02)"
)


def test_parallel_stages_overlap_and_prefix_output(repo: Path) -> None:
    (repo / "meet.py").write_text(MEET)
    write(
        repo,
        "mlops.yaml",
        f"""\
        stages:
          one:
            cmd: {sys.executable} meet.py 1.on 2.on && echo first > one.txt && echo hello-one
            outs: [one.txt]
          two:
            cmd: {sys.executable} meet.py 2.on 1.on && echo second > two.txt && echo hello-two
            outs: [two.txt]
        """,
    )
    result = run_ok(repo, "-j", "2")
    assert "[one] hello-one" in result.stdout and "[two] hello-two" in result.stdout


def test_failure_stops_downstream_and_keep_going_runs_the_rest(repo: Path) -> None:
    write(
        repo,
        "mlops.yaml",
        """\
        stages:
          broken:
            cmd: echo "something bad happened" >&2; exit 3
            outs: [b.txt]
          after:
            cmd: cp b.txt c.txt
            deps: [b.txt]
            outs: [c.txt]
          other:
            cmd: echo fine > o.txt
            outs: [o.txt]
        """,
    )
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "mlops: error: stage 'broken' failed with exit code 3" in result.stderr
    assert "something bad happened" in result.stderr  # the end of its stderr
    assert statuses(runs_json(repo)[0]) == {
        "broken": "failed",
        "after": "blocked",
        "other": "cancelled",
    }
    assert not (repo / "mlops.lock").exists()
    result = run_cli(repo, "run", "--keep-going")
    assert result.exit_code == 1
    assert statuses(runs_json(repo)[0]) == {
        "broken": "failed",
        "after": "blocked",
        "other": "ran",
    }
    assert set(read_lock(repo)["stages"]) == {"other"}  # only what succeeded


def test_dry_run_changes_nothing(repo: Path) -> None:
    three_stage_project(repo)
    result = run_ok(repo, "--dry-run")
    assert "would run 'prepare': new stage (not in mlops.lock)" in result.stdout
    assert not (repo / "data").exists() and not (repo / "mlops.lock").exists()
    assert runs_json(repo) == []
    run_ok(repo)
    write(repo, "raw.txt", "changed\n")
    result = run_ok(repo, "-n", "--json")
    data = json.loads(result.stdout)
    assert data["status"] == "dry-run"
    assert [(s["stage"], s["status"]) for s in data["stages"]] == [
        ("prepare", "stale"),
        ("train", "stale"),
        ("evaluate", "stale"),
    ]
    assert data["stages"][1]["reasons"] == ["upstream stage 'prepare' is stale"]


def test_status_lists_stale_stages(repo: Path) -> None:
    three_stage_project(repo)
    result = run_cli(repo, "status", "--exit-code")
    assert result.exit_code == 1
    assert "stage prepare: stale: new stage (not in mlops.lock)" in result.stdout
    run_ok(repo)
    result = run_cli(repo, "status", "--exit-code")
    assert result.exit_code == 0, result.stdout
    assert "Data and pipelines are up to date." in result.stdout
    write(repo, "params.yaml", "train:\n  lr: 0.2\n  epochs: 3\n")
    result = run_cli(repo, "status", "--json")
    stages = {s["stage"]: s for s in json.loads(result.stdout)["stages"]}
    assert stages["prepare"]["stale"] is False
    assert stages["train"]["reasons"] == ["param train.lr changed (0.1 -> 0.2)"]
    assert stages["evaluate"]["reasons"][0] == "upstream stage 'train' is stale"


def test_dag_renderings(repo: Path) -> None:
    three_stage_project(repo)
    assert run_cli(repo, "dag").stdout.splitlines() == [
        "prepare",
        "train     <- prepare",
        "evaluate  <- train",
    ]
    mermaid = run_cli(repo, "dag", "--mermaid").stdout
    assert mermaid.startswith("flowchart TD") and "s0 --> s1" in mermaid
    assert '"train" -> "evaluate";' in run_cli(repo, "dag", "--dot").stdout
    data = json.loads(run_cli(repo, "dag", "--json").stdout)
    assert data["edges"] == [
        {"from": "prepare", "to": "train"},
        {"from": "train", "to": "evaluate"},
    ]


def test_gc_keeps_lock_outputs_and_run_records(repo: Path) -> None:
    three_stage_project(repo)
    run_ok(repo)
    commit_all(repo, "pipeline")
    lock = read_lock(repo)
    result = run_cli(repo, "gc")
    assert result.exit_code == 0, result.stderr
    cache = repo / ".mlops/cache"
    for entry in lock["stages"].values():
        for oid in [o["hash"] for o in entry["outs"]] + [entry["record"]]:
            assert (cache / oid[:2] / oid[2:]).exists(), oid
    (repo / "model.bin").unlink()
    run_ok(repo)  # restored from the kept objects
    assert statuses(runs_json(repo)[0])["train"] == "restored"


def test_hooks_run_before_and_after_and_can_fail_a_stage(repo: Path) -> None:
    three_stage_project(repo)
    seen: list[tuple[str, str, int]] = []

    def hook(ctx: GuardContext) -> Verdict:
        seen.append((ctx.stage.name, ctx.phase, len(ctx.outs)))
        if ctx.stage.name == "evaluate" and ctx.phase == "before":
            return Verdict(False, "suite 'model_ok' failed", {"suite": "model_ok"})
        return Verdict(True, data={"phase": ctx.phase})

    run_ok(repo)
    (repo / "metrics.json").write_text('{"accuracy": 0.6, "rows": 3}')  # stale, no change
    write(repo, "raw.txt", "a\nb\n")
    result = run_pipeline(Repo(repo), RunOptions(), guard=hook)
    assert result.status == "failed"
    assert result.failed[0].error == (
        "stage 'evaluate': checks before it failed: suite 'model_ok' failed"
    )
    assert seen == [
        ("prepare", "before", 0),
        ("prepare", "after", 1),
        ("train", "before", 0),
        ("train", "after", 1),
        ("evaluate", "before", 0),
    ]
    records = {s["name"]: s for s in runs_json(repo)[0]["stages"]}
    assert records["train"]["checks"] == {
        "before": {"phase": "before"},
        "after": {"phase": "after"},
    }
    assert records["evaluate"]["checks"] == {"before": {"suite": "model_ok"}}
    lock = read_lock(repo)["stages"]
    assert lock["train"]["run"] == lock["prepare"]["run"] != lock["evaluate"]["run"]
    # A stage refused by its checks keeps its outputs.
    assert (repo / "metrics.json").read_text() == '{"accuracy": 0.6, "rows": 3}'


@pytest.mark.slow
def test_example_script_runs_end_to_end(tmp_path: Path) -> None:
    script = Path(__file__).parent.parent / "examples" / "run_example.sh"
    env = {**os.environ, "PYTHON": sys.executable, "CLEANUP": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    second_run = proc.stdout.split("$ mlops run   # prepare is unchanged")[1]
    assert "Stage 'prepare' skipped: unchanged" in second_run
    assert "Running stage 'train': param train.max_depth changed (1 -> 3)" in second_run
    assert "metrics.json  accuracy" in proc.stdout.split("$ mlops metrics diff")[1]
    stricter = proc.stdout.split("accuracy floors to 0.8")[1]
    assert "Checking stage 'train' again, keeping its outputs: checks changed" in stricter
    assert "1 rechecked, 2 skipped" in stricter
    assert list(tmp_path.iterdir()) == []  # CLEANUP=1 removed the repository


def test_date_params_and_side_effect_stages(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    write(
        repo,
        "mlops.yaml",
        f"""\
        stages:
          deploy:
            cmd: echo deployed >> {log}
            params: [release.day]
        """,
    )
    write(repo, "params.yaml", "release: {day: 2024-05-01}\n")
    run_ok(repo)
    assert read_lock(repo)["stages"]["deploy"]["params"] == {
        "params.yaml": {"release.day": "2024-05-01"}
    }
    run_ok(repo)  # a YAML date compares equal to its locked text: skipped
    write(repo, "params.yaml", "release: {day: 2024-06-01}\n")
    run_ok(repo)
    write(repo, "params.yaml", "release: {day: 2024-05-01}\n")
    run_ok(repo)  # no outputs to restore: the side effect happens again
    assert log.read_text().count("deployed") == 3
