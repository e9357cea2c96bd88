"""`mlops import-dvc` of a pipeline using DVC's ``vars``, ``${...}``, ``foreach``,
``matrix`` and ``frozen``, made and run by a real DVC."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.cli import run_cli
from tests.helpers.dvc import dvc, dvc_stage_edges, needs_dvc
from tests.helpers.files import write
from tests.helpers.repos import git, init_git

pytestmark = needs_dvc

# Each script writes its arguments (and what it read) to its last argument.
GEN = """\
import os, sys
os.makedirs(os.path.dirname(sys.argv[-1]) or ".", exist_ok=True)
open(sys.argv[-1], "w").write(" ".join(sys.argv[1:-1]) + "\\n")
"""
TRAIN = """\
import os, sys
*args, out = sys.argv[1:]
data = "".join(open(f"data/{s}.txt").read() for s in ("a", "b"))
os.makedirs(os.path.dirname(out), exist_ok=True)
open(out, "w").write(" ".join(args) + "\\n" + data)
"""
REPORT = """\
import sys
title, *models, out = sys.argv[1:]
open(out, "w").write(title + "\\n" + "".join(open(m).read() for m in models))
"""
PARAMS = """\
seed: 7
train:
  lr: 0.1
  epochs: 2
shards: [a, b]
"""
CONFIG = "data_dir: data\nmodels: [cnn, xgb]\n"
DVC_YAML = """\
vars:
  - config.yaml
  - out_dir: models
stages:
  make:
    foreach: ${shards}
    do:
      cmd: {python} gen.py ${item} ${seed} ${data_dir}/${item}.txt
      deps: [gen.py]
      outs: ["${data_dir}/${item}.txt"]
  train:
    matrix:
      model: ${models}
      lr: [0.1, 0.01]
    cmd: >-
      {python} train.py ${item.model} ${item.lr} ${train.epochs}
      ${out_dir}/${item.model}-${item.lr}.txt
    deps: [train.py, "${data_dir}/a.txt", "${data_dir}/b.txt"]
    outs: ["${out_dir}/${key}.txt"]
  report:
    vars:
      - title: Report
    cmd: {python} report.py "${title}" ${out_dir}/cnn-0.1.txt ${out_dir}/xgb-0.01.txt report.txt
    deps: [report.py, "${out_dir}/cnn-0.1.txt", "${out_dir}/xgb-0.01.txt"]
    outs: [report.txt]
  greet:
    wdir: sub
    vars: [local.yaml]
    cmd: {python} ../gen.py ${greeting} greeting.txt
    deps: [../gen.py]
    outs: [greeting.txt]
  shout:
    foreach: [x]
    do:
      vars: [{word: hey}]
      cmd: {python} gen.py ${word} ${item} shout-${item}.txt
      outs: ["shout-${item}.txt"]
  snapshot:
    cmd: {python} gen.py snapshot ${seed} snapshot.txt
    deps: [gen.py, "${data_dir}/a.txt"]
    outs: [snapshot.txt]
    frozen: false
"""


def _python(text: str) -> str:
    return text.replace("{python}", sys.executable)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project after `dvc repro`, its snapshot stage then frozen, all committed."""
    repo = init_git(tmp_path_factory.mktemp("dvc-vars") / "project")
    dvc(repo, "init", "-q")
    for name, text in (
        ("gen.py", GEN),
        ("train.py", TRAIN),
        ("report.py", REPORT),
        ("params.yaml", PARAMS),
        ("config.yaml", CONFIG),
        ("sub/local.yaml", "greeting: hello\n"),
        ("dvc.yaml", _python(DVC_YAML)),
    ):
        write(repo, name, text)
    dvc(repo, "repro", "-q")
    write(repo, "dvc.yaml", _python(DVC_YAML).replace("frozen: false", "frozen: true"))
    assert json.loads(dvc(repo, "status", "--json")) == {}
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "dvc pipeline with vars")
    return repo


def _imported(project: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(project, repo, symlinks=True)
    result = run_cli(repo, "import-dvc", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["not_imported"] == []
    return repo


def _run(repo: Path) -> dict[str, str]:
    result = run_cli(repo, "run", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    return {s["stage"]: s["status"] for s in json.loads(result.stdout)["stages"]}


def _dvc_ran(output: str) -> set[str]:
    import re

    return set(re.findall(r"Running stage '([^']+)'", output))


DVC_STAGES = {
    "make@a",
    "make@b",
    "train@cnn-0.1",
    "train@cnn-0.01",
    "train@xgb-0.1",
    "train@xgb-0.01",
    "report",
    "greet",
    "shout@x",
    "snapshot",
}


def test_the_pipeline_is_dvcs_and_nothing_is_stale(project: Path, tmp_path: Path) -> None:
    repo = _imported(project, tmp_path)
    text = (repo / "mlops.yaml").read_text()
    doc: dict[str, Any] = yaml.safe_load(text)
    # Carried over as written, references and all: the values stay in their files.
    assert doc["vars"] == ["config.yaml", {"out_dir": "models"}]
    assert doc["stages"]["make"]["foreach"] == "${shards}"
    assert doc["stages"]["train"]["matrix"] == {"model": "${models}", "lr": [0.1, 0.01]}
    assert doc["stages"]["snapshot"]["frozen"] is True
    assert doc["stages"]["greet"]["vars"] == ["sub/local.yaml"]  # DVC reads it from wdir

    graph = json.loads(run_cli(repo, "dag", "--json").stdout)
    assert set(graph["stages"]) == DVC_STAGES
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert edges == dvc_stage_edges(repo)
    assert ("make@b", "train@xgb-0.01") in edges and ("train@cnn-0.1", "report") in edges

    dvc_lock = yaml.safe_load((repo / "dvc.lock").read_text())
    lock = json.loads((repo / "mlops.lock").read_text())
    assert set(lock["stages"]) == set(dvc_lock["stages"]) == DVC_STAGES
    # What a ${...} reads from a params file is a param of the stage for mlops; dvc.lock
    # has none (DVC sees the values in the command and paths), so today's are locked.
    assert "params" not in dvc_lock["stages"]["make@a"]
    assert lock["stages"]["make@a"]["params"] == {
        "params.yaml": {"seed": 7},
        "config.yaml": {"data_dir": "data"},
    }
    assert lock["stages"]["greet"]["params"] == {"sub/local.yaml": {"greeting": "hello"}}

    status = run_cli(repo, "status", "--json")
    assert status.exit_code == 0, status.stderr
    assert [s["stage"] for s in json.loads(status.stdout)["stages"] if s["stale"]] == []
    assert set(_run(repo).values()) == {"skipped"}


@pytest.mark.parametrize(
    ("file", "old", "new", "stages"),
    [
        # seed: read by make's cmd (foreach over ${shards}); the frozen snapshot reads it
        # too and depends on data/a.txt, and still does not run.
        (
            "params.yaml",
            "seed: 7",
            "seed: 8",
            DVC_STAGES - {"greet", "snapshot", "shout@x"},
        ),
        # train.epochs: read by the matrix stage's cmd.
        (
            "params.yaml",
            "epochs: 2",
            "epochs: 3",
            {"train@cnn-0.1", "train@cnn-0.01", "train@xgb-0.1", "train@xgb-0.01", "report"},
        ),
        # A stage's own vars file, named from its wdir.
        ("sub/local.yaml", "hello", "howdy", {"greet"}),
    ],
)
def test_a_changed_value_runs_what_dvc_repro_runs(
    project: Path, tmp_path: Path, file: str, old: str, new: str, stages: set[str]
) -> None:
    repo = _imported(project, tmp_path)
    frozen = (repo / "snapshot.txt").read_bytes()
    path = repo / file
    path.write_text(path.read_text().replace(old, new))
    twin = tmp_path / "twin"
    shutil.copytree(repo, twin, symlinks=True)
    # `dvc status` names the stages whose own inputs changed; mlops those downstream too.
    stale = json.loads(run_cli(repo, "status", "--json").stdout)["stages"]
    assert {s["stage"] for s in stale if s["stale"]} == stages
    # DVC lists the frozen stage whose dep changed too, though `dvc repro` never runs it.
    assert set(json.loads(dvc(twin, "status", "--json"))) <= stages | {"snapshot"}
    assert _dvc_ran(dvc(twin, "repro")) == stages
    statuses = _run(repo)
    assert {name for name, status in statuses.items() if status == "ran"} == stages
    assert statuses["snapshot"] != "ran"
    assert (repo / "snapshot.txt").read_bytes() == frozen == (twin / "snapshot.txt").read_bytes()
    for name in ("report.txt", "sub/greeting.txt", "models/xgb-0.01.txt", "data/b.txt"):
        assert (repo / name).read_bytes() == (twin / name).read_bytes()
    assert _run(repo) == dict.fromkeys(statuses, "skipped")


def test_generated_stages_are_named_as_dvc_names_them(tmp_path: Path) -> None:
    repo = init_git(tmp_path / "repo")
    dvc(repo, "init", "-q")
    write(
        repo,
        "dvc.yaml",
        """\
        stages:
          flags:
            foreach: [true, false, 3, 0.5, null, a]
            do: {cmd: echo flag}
          mixed:
            foreach: [a, [1, 2], {x: 1}]
            do: {cmd: echo mixed}
          keyed:
            foreach: {true: 1, 2: 2, b: 3}
            do: {cmd: "echo ${item}"}
          grid:
            matrix:
              flag: [true, false]
              opts: [[1, 2], {a: 1}]
              lr: [0.1, 0.001]
            cmd: echo ${item.flag} ${item.lr}
        """,
    )
    names = dvc(repo, "stage", "list", "--name-only").split()
    result = run_cli(repo, "import-dvc", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["stages"] == names
    assert "flags@true" in names and "mixed@1" in names and "grid@false-opts1-0.001" in names


def test_a_command_mlops_reads_otherwise_is_named_and_stale(tmp_path: Path) -> None:
    # DVC reads YAML 1.2 (1e-3 is a number), mlops YAML 1.1 (1e-3 is text).
    repo = init_git(tmp_path / "repo")
    dvc(repo, "init", "-q")
    write(repo, "params.yaml", "lr: 1e-3\n")
    write(repo, "dvc.yaml", "stages:\n  fit:\n    cmd: echo ${lr} > fit.txt\n    outs: [fit.txt]\n")
    dvc(repo, "repro", "-q")
    assert (repo / "fit.txt").read_text() == "0.001\n"
    result = run_cli(repo, "import-dvc", "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)["not_imported"]
    notes = [f"{n['where']} {n['what']}: {n['why']}" for n in found]
    assert notes == [
        "dvc.lock:3 stage fit: mlops's command 'echo 1e-3 > fit.txt' is not dvc.lock's"
        " 'echo 0.001 > fit.txt': it is stale until it runs"
    ]
    status = json.loads(run_cli(repo, "status", "--json").stdout)["stages"]
    assert [(s["stage"], s["stale"]) for s in status] == [("fit", True)]
