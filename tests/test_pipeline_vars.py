"""``vars:``, ``${...}`` from params files, ``matrix:`` and ``frozen:``, as DVC users write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.errors import PipelineError
from mlops.pipeline.schema import ParamsRef, load_pipeline, parse_pipeline
from tests.helpers.cli import run_cli
from tests.helpers.files import write
from tests.helpers.pipeline import read_lock, run_ok
from tests.helpers.repos import commit_all


def stale(repo: Path) -> dict[str, list[str]]:
    stages = json.loads(run_cli(repo, "status", "--json").stdout)["stages"]
    return {s["stage"]: s["reasons"] for s in stages if s["stale"]}


def test_vars_from_params_files_and_inline_in_every_field(tmp_path: Path) -> None:
    write(tmp_path, "params.yaml", "train:\n  seed: 7\n  epochs: 3\nmodel: forest\n")
    write(tmp_path, "conf/paths.yaml", "data: {raw: data/raw.csv, out: data/prep}\nextra: 1\n")
    write(
        tmp_path,
        "mlops.yaml",
        """\
        vars:
          - conf/paths.yaml:data
          - work: src
            flags: [--fast, --quiet]
        stages:
          prepare:
            cmd: python prepare.py ${data.raw} --seed ${train.seed} \\${HOME}
            wdir: ${work}
            deps: ["../${data.raw}"]
            outs: ["../${data.out}"]
            params: ["${model}"]
          train:
            cmd: python train.py --model ${model}
            deps: ${flags}
            metrics: ["metrics-${model}.json"]
        """,
    )
    stages = load_pipeline(tmp_path).stages
    prepare = stages["prepare"]
    assert prepare.cmd == ("python prepare.py data/raw.csv --seed 7 ${HOME}",)
    assert prepare.wdir == "src"
    assert prepare.deps == ("data/raw.csv",)
    assert prepare.outputs[0].path == "data/prep"
    # Values read from params files are params of the stage: a change makes it stale.
    assert prepare.params == (
        ParamsRef("src/params.yaml", ("forest",)),
        ParamsRef("conf/paths.yaml", ("data.raw", "data.out")),
        ParamsRef("params.yaml", ("train.seed", "model")),
    )
    train = stages["train"]
    assert train.deps == ("--fast", "--quiet")  # a whole reference keeps the list
    assert train.outputs[0].path == "metrics-forest.json"
    assert train.params == (ParamsRef("params.yaml", ("model",)),)


def test_generated_names_follow_dvcs_rules() -> None:
    # As DVC names them (so dvc.lock's entries apply after `mlops import-dvc`): true and
    # false, every position once a list holds a list or mapping, a matrix's composite
    # values by key and position. test_import_dvc_vars checks them against DVC itself.
    stages = parse_pipeline(
        """\
stages:
  flags:
    foreach: [true, 3, null]
    do: {cmd: echo}
  mixed:
    foreach: [a, [1]]
    do: {cmd: echo}
  keyed:
    foreach: {true: 1, b: 2}
    do: {cmd: echo}
  grid:
    matrix: {flag: [false], opts: [[1], {a: 1}]}
    cmd: echo
"""
    ).stages
    assert list(stages) == [
        "flags@true",
        "flags@3",
        "flags@None",
        "mixed@0",
        "mixed@1",
        "keyed@true",
        "keyed@b",
        "grid@false-opts0",
        "grid@false-opts1",
    ]


def test_matrix_expands_every_combination(tmp_path: Path) -> None:
    write(tmp_path, "params.yaml", "lrs: [0.1, 0.01]\n")
    write(
        tmp_path,
        "mlops.yaml",
        """\
        stages:
          train:
            matrix:
              model: [cnn, xgb]
              lr: ${lrs}
            cmd: python train.py --model ${item.model} --lr ${item.lr}
            outs: ["models/${item.model}-${item.lr}.bin"]
        """,
    )
    stages = load_pipeline(tmp_path).stages
    assert list(stages) == ["train@cnn-0.1", "train@cnn-0.01", "train@xgb-0.1", "train@xgb-0.01"]
    assert stages["train@xgb-0.01"].cmd == ("python train.py --model xgb --lr 0.01",)
    assert stages["train@xgb-0.01"].outputs[0].path == "models/xgb-0.01.bin"
    assert {s.group for s in stages.values()} == {"train"}


def test_foreach_over_a_list_from_params(tmp_path: Path) -> None:
    write(tmp_path, "params.yaml", "splits: [train, test]\n")
    write(
        tmp_path,
        "mlops.yaml",
        "stages:\n  split:\n    foreach: ${splits}\n    do:\n      cmd: split ${item}\n",
    )
    assert [s.cmd for s in load_pipeline(tmp_path).stages.values()] == [
        ("split train",),
        ("split test",),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stages:\n  a:\n    cmd: echo ${training.seed}\n",
            "mlops.yaml:3: stage 'a': ${training.seed}: 'training' is not defined",
        ),
        (
            "stages:\n  a:\n    cmd: echo\n    deps: [x, '${train.nope}']\n",
            "mlops.yaml:4: stage 'a': ${train.nope}: 'train' has no 'nope'",
        ),
        (
            "vars:\n  - missing.yaml\nstages:\n  a:\n    cmd: echo ${x}\n",
            "mlops.yaml:2: vars: the params file 'missing.yaml' does not exist",
        ),
        (
            "stages:\n  a:\n    cmd: echo ${train}\n",
            "mlops.yaml:3: stage 'a': ${train} is a mapping, which cannot be written inside",
        ),
        (
            "stages:\n  a:\n    matrix: {m: 3}\n    cmd: echo\n",
            "mlops.yaml:3: stage 'a': matrix 'm' must be a non-empty list",
        ),
    ],
)
def test_unresolved_references_name_the_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    write(tmp_path, "params.yaml", "train:\n  seed: 1\n")
    write(tmp_path, "mlops.yaml", text)
    with pytest.raises(PipelineError) as caught:
        load_pipeline(tmp_path)
    assert caught.value.message.startswith(expected), caught.value.message


def test_unresolved_reference_at_run_is_one_line_and_runs_nothing(repo: Path) -> None:
    write(repo, "mlops.yaml", "stages:\n  a:\n    cmd: echo ${train.seed} > out.txt\n")
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert result.stderr == (
        "mlops: error: mlops.yaml:3: stage 'a': ${train.seed}: 'train' is not defined\n"
    )
    assert not (repo / "out.txt").exists()


def test_a_changed_value_makes_only_its_stages_stale(repo: Path) -> None:
    write(repo, "params.yaml", "train:\n  seed: 1\n  other: 5\n")
    write(
        repo,
        "mlops.yaml",
        """\
        stages:
          train:
            cmd: echo seed ${train.seed} > model.txt
            outs: [model.txt]
          other:
            cmd: echo nothing > other.txt
            outs: [other.txt]
        """,
    )
    run_ok(repo)
    assert (repo / "model.txt").read_text() == "seed 1\n"
    assert read_lock(repo)["stages"]["train"]["params"] == {"params.yaml": {"train.seed": 1}}
    assert stale(repo) == {}
    write(repo, "params.yaml", "train:\n  seed: 2\n  other: 6\n")
    assert stale(repo) == {"train": ["command changed", "param train.seed changed (1 -> 2)"]}
    ran = json.loads(run_ok(repo, "--json").stdout)
    assert {s["stage"]: s["status"] for s in ran["stages"]} == {"train": "ran", "other": "skipped"}
    assert (repo / "model.txt").read_text() == "seed 2\n"


def test_matrix_stages_run_and_each_is_its_own_identity(repo: Path) -> None:
    write(repo, "params.yaml", "sizes: [1, 2]\n")
    write(
        repo,
        "mlops.yaml",
        """\
        stages:
          make:
            matrix: {size: "${sizes}", kind: [a]}
            cmd: echo ${item.kind} ${item.size} > out-${item.kind}${item.size}.txt
            outs: ["out-${item.kind}${item.size}.txt"]
        """,
    )
    run_ok(repo)
    assert (repo / "out-a2.txt").read_text() == "a 2\n"
    write(repo, "params.yaml", "sizes: [1, 3]\n")
    assert stale(repo) == {"make@3-a": ["new stage (not in mlops.lock)"]}


def test_frozen_stage_is_never_run_again(repo: Path) -> None:
    write(repo, "raw.txt", "one\n")
    write(
        repo,
        "mlops.yaml",
        """\
        stages:
          download:
            cmd: cp raw.txt data.txt
            deps: [raw.txt]
            outs: [data.txt]
          use:
            cmd: cat data.txt > used.txt
            deps: [data.txt]
            outs: [used.txt]
        """,
    )
    run_ok(repo)
    commit_all(repo, "first")
    text = (repo / "mlops.yaml").read_text()
    write(
        repo, "mlops.yaml", text.replace("outs: [data.txt]", "outs: [data.txt]\n    frozen: true")
    )
    write(repo, "raw.txt", "two\n")
    assert stale(repo) == {}
    lock = (repo / "mlops.lock").read_bytes()
    ran = json.loads(run_ok(repo, "--json").stdout)
    assert {s["stage"]: (s["status"], s["reasons"]) for s in ran["stages"]} == {
        "download": ("skipped", ["frozen"]),
        "use": ("skipped", ["unchanged"]),
    }
    assert (repo / "data.txt").read_text() == "one\n"
    assert (repo / "mlops.lock").read_bytes() == lock
    with pytest.raises(PipelineError, match="field 'frozen' must be true or false"):
        parse_pipeline("stages:\n  a:\n    cmd: x\n    frozen: yes please\n")


def test_vars_inside_foreach_do_and_no_matrix_there() -> None:
    stages = parse_pipeline(
        "stages:\n  s:\n    foreach: [a]\n    do:\n      vars: [{word: hey}]\n"
        "      cmd: echo ${word} ${item}\n"
    ).stages
    assert stages["s@a"].cmd == ("echo hey a",)
    with pytest.raises(PipelineError) as bad:
        parse_pipeline(
            "stages:\n  s:\n    foreach: [a]\n    do:\n      matrix: {x: [1]}\n      cmd: echo\n"
        )
    assert bad.value.message == "mlops.yaml:5: stage 's': 'matrix' cannot be inside 'foreach'"
