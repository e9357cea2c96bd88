"""mlops.yaml validation, foreach expansion, params and the DAG, through the library."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.errors import PipelineError
from mlops.pipeline.dag import build_dag
from mlops.pipeline.lock import parse_lock
from mlops.pipeline.params import ParamFiles, stage_params
from mlops.pipeline.schema import ModelRegistration, Output, OutputKind, ParamsRef, parse_pipeline


def _error(text: str) -> str:
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(text)
    return caught.value.message


def test_full_stage_and_raw_sections() -> None:
    pipeline = parse_pipeline(
        """\
checks:
  clean: {data: data/train.csv, expect: [{rows: {min: 1}}]}
include: [more-checks.yaml]
monitor: {anything: [goes, here]}
stages:
  train:
    desc: fit the model
    cmd: [python train.py, echo done]
    wdir: src
    deps: [train.py, ../data/train.csv]
    params: [train.lr, {../conf/model.toml: [layers]}, {../extra.json: }]
    outs: [../model.pkl, {../cache: {cache: false, persist: true}}]
    metrics: [../metrics.json]
    plots: [{../plots: {cache: true}}]
    env: {SEED: 3, FAST: true}
    always_changed: false
    checks: {before: [clean], after: good_model}
    register: {name: churn, path: ../model.pkl, promote: staging}
"""
    )
    assert pipeline.sections == {
        "checks": {"clean": {"data": "data/train.csv", "expect": [{"rows": {"min": 1}}]}},
        "include": ["more-checks.yaml"],
        "monitor": {"anything": ["goes", "here"]},
    }
    stage = pipeline.stages["train"]
    assert stage.cmd == ("python train.py", "echo done")
    assert stage.wdir == "src"
    assert stage.deps == ("src/train.py", "data/train.csv")
    assert stage.params == (
        ParamsRef("src/params.yaml", ("train.lr",)),
        ParamsRef("conf/model.toml", ("layers",)),
        ParamsRef("extra.json", None),
    )
    assert stage.outputs == (
        Output("model.pkl", OutputKind.OUT, True),
        Output("cache", OutputKind.OUT, False, True),
        Output("metrics.json", OutputKind.METRIC, False),
        Output("plots", OutputKind.PLOT, True),
    )
    assert stage.env == (("SEED", "3"), ("FAST", "true"))
    assert stage.checks_before == ("clean",)
    assert stage.checks_after == ("good_model",)
    assert stage.register == ModelRegistration("churn", "model.pkl", "staging")


def test_foreach_list_and_map_substitution() -> None:
    pipeline = parse_pipeline(
        """\
stages:
  split:
    foreach: [train, test]
    do:
      cmd: python split.py ${item}
      outs: ["data/${item}.csv"]
  fit:
    foreach:
      small: {depth: 2, files: [a.csv, b.csv]}
      large: {depth: 8, files: [c.csv]}
    do:
      cmd: python fit.py --depth ${item.depth} --name ${key} --home $HOME
      deps: ${item.files}
      outs: ["model-${key}.pkl"]
"""
    )
    assert list(pipeline.stages) == ["split@train", "split@test", "fit@small", "fit@large"]
    assert pipeline.stages["split@test"].cmd == ("python split.py test",)
    assert pipeline.stages["split@test"].group == "split"
    large = pipeline.stages["fit@large"]
    assert large.cmd == ("python fit.py --depth 8 --name large --home $HOME",)
    assert large.deps == ("c.csv",)  # a whole-string reference keeps the list
    assert large.outputs[0].path == "model-large.pkl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stagse:\n  a: {cmd: x}\n",
            "mlops.yaml:1: unknown top-level key 'stagse' (did you mean 'stages'?)",
        ),
        ("stages: [a]\n", "mlops.yaml:1: 'stages' must be a mapping"),
        (
            "stages:\n  a: echo\n",
            "mlops.yaml:2: stage 'a' must be a mapping, not the string 'echo'",
        ),
        ("stages:\n  a:\n    deps: [x]\n", "mlops.yaml:2: stage 'a' has no 'cmd'"),
        (
            "stages:\n  a:\n    cmd: 3\n",
            "mlops.yaml:3: stage 'a': field 'cmd' must be a command string",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    deps: [x, 3]\n",
            "mlops.yaml:4: stage 'a': field 'deps' must be a list of paths, not the number 3",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    wdir: [x]\n",
            "stage 'a': field 'wdir' must be a path, not a list",
        ),
        ("stages:\n  a:\n    cmd: x\n    env: [x]\n", "stage 'a': field 'env' must be a mapping"),
        (
            "stages:\n  a:\n    cmd: x\n    always_changed: yes please\n",
            "stage 'a': field 'always_changed' must be true or false",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    outs: [{o: {persist: 1}}]\n",
            "stage 'a': field 'outs.o.persist' must be true or false",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    outs: [{o: {cahce: true}}]\n",
            "stage 'a': unknown option 'cahce' for 'o' in 'outs' (did you mean 'cache'?)",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    params: [{p.yaml: lr}]\n",
            "stage 'a': field 'params.p.yaml' must be a list of keys",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    checks: {befor: [s]}\n",
            "stage 'a': unknown key 'befor' in 'checks' (did you mean 'before'?)",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    register: yes\n",
            "stage 'a': field 'register' must be a mapping",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    outs: [../up.txt]\n",
            "stage 'a': outs path '../up.txt' is outside the repository",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    deps: [/etc/passwd]\n",
            "stage 'a': deps path '/etc/passwd' must be relative",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    outs: [.mlops/x]\n",
            "stage 'a': outs path '.mlops/x' is inside .mlops/",
        ),
        (
            "stages:\n  a:\n    cmd: x\n    outs: [o, o]\n",
            "stage 'a' declares the output 'o' twice",
        ),
        ("stages:\n  a b:\n    cmd: x\n", "mlops.yaml:2: invalid stage name 'a b'"),
        (
            "stages:\n  a:\n    foreach: 3\n    do: {cmd: x}\n",
            "stage 'a': field 'foreach' must be a list or a mapping",
        ),
        (
            "stages:\n  a:\n    foreach: [1]\n    cmd: x\n",
            "stage 'a': unknown key 'cmd' next to 'foreach' (put the stage's definition under",
        ),
        (
            "stages:\n  a:\n    foreach: [1]\n    do:\n      cmd: echo ${key}\n",
            "stage 'a@1': ${key} is only defined when foreach is a mapping",
        ),
    ],
)
def test_invalid_declarations_name_the_stage_field_and_line(text: str, expected: str) -> None:
    assert expected in _error(text)


def test_dag_errors() -> None:
    def dag_error(text: str) -> str:
        with pytest.raises(PipelineError) as caught:
            build_dag(parse_pipeline(text))
        return caught.value.message

    assert "output 'd/x' of stage 'b' is inside output 'd' of stage 'a'" in dag_error(
        "stages:\n  a: {cmd: x, outs: [d]}\n  b: {cmd: x, outs: [d/x]}\n"
    )
    assert "stage 'a' depends on its own output through dep 'o'" in dag_error(
        "stages:\n  a: {cmd: x, deps: [o], outs: [o]}\n"
    )
    assert "the stages form a cycle: a -> b -> c -> a" in dag_error(
        "stages:\n"
        "  a: {cmd: x, deps: [c.txt], outs: [a.txt]}\n"
        "  b: {cmd: x, deps: [a.txt], outs: [b.txt]}\n"
        "  c: {cmd: x, deps: [b.txt], outs: [c.txt]}\n"
    )


def test_dag_links_folders_both_ways() -> None:
    dag = build_dag(
        parse_pipeline(
            "stages:\n"
            "  make: {cmd: x, outs: [data/features, data/labels.csv]}\n"
            "  one: {cmd: x, deps: [data/features/part-0.csv]}\n"
            "  all: {cmd: x, deps: [data]}\n"
        )
    )
    assert dag.upstream == {"make": (), "one": ("make",), "all": ("make",)}
    assert dag.select(["one"]) == ("make", "one")


def test_params_from_named_files_and_whole_files(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(
        "train:\n  lr: 0.1\n  layers: [8, 4]\n  opt: {name: adam}\n"
    )
    (tmp_path / "model.toml").write_text("[net]\ndepth = 3\n")
    (tmp_path / "extra.json").write_text('{"seed": 7, "nested": {"a": 1}}')
    stage = parse_pipeline(
        "stages:\n  s:\n    cmd: x\n"
        "    params: [train.lr, train.opt, {model.toml: [net.depth]}, {extra.json: }]\n"
    ).stages["s"]
    assert stage_params(stage, ParamFiles(tmp_path)) == {
        "params.yaml": {"train.lr": 0.1, "train.opt.name": "adam"},
        "model.toml": {"net.depth": 3},
        "extra.json": {"seed": 7, "nested.a": 1},
    }


def test_corrupt_lock_is_a_clear_error() -> None:
    with pytest.raises(
        PipelineError, match=r"mlops.lock:3: invalid JSON: Expecting value; restore it from Git"
    ):
        parse_lock('{"stages": {\n  "a": {\n  "cmd": }}', "mlops.lock")
    with pytest.raises(PipelineError, match=r"mlops.lock: not a valid lock file .*'zz'"):
        parse_lock(
            '{"stages": {"a": {"cmd": "x", "outs": [{"path": "o", "hash": "zz"}]}}}', "mlops.lock"
        )
