"""Every bad input of the pipeline issue: one clear error line, exit 1, nothing lost."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from tests.helpers.cli import error_lines, run_cli
from tests.helpers.files import write
from tests.helpers.pipeline import run_ok, runs_json, statuses

# A pipeline that has run once: its lock and output must survive every bad input below.
GOOD = """\
stages:
  prep:
    cmd: cp raw.txt prepared.txt
    deps: [raw.txt]
    outs: [prepared.txt]
"""

BAD_CASES = {
    "cycle": (
        """\
          a:
            cmd: cp b.txt a.txt
            deps: [b.txt]
            outs: [a.txt]
          b:
            cmd: cp a.txt b.txt
            deps: [a.txt]
            outs: [b.txt]
        """,
        ["mlops.yaml:", ": the stages form a cycle: ", "a -> b -> a"],
    ),
    "out produced twice": (
        """\
          x:
            cmd: echo 1 > same.txt
            outs: [same.txt]
          y:
            cmd: echo 2 > same.txt
            outs: [same.txt]
        """,
        ["output 'same.txt' is produced by two stages: 'x' and 'y'"],
    ),
    "missing dep": (
        """\
          bad:
            cmd: cp nothere.csv out.txt
            deps: [nothere.csv]
            outs: [out.txt]
        """,
        ["stage 'bad': dep 'nothere.csv' does not exist and no stage produces it"],
    ),
    "missing params key": (
        """\
          bad:
            cmd: echo hi > out.txt
            params: [train.nope]
            outs: [out.txt]
        """,
        ["stage 'bad': params key 'train.nope' not found in params.yaml"],
    ),
    "missing params file": (
        """\
          bad:
            cmd: echo hi > out.txt
            params: [{conf/train.yaml: [lr]}]
            outs: [out.txt]
        """,
        ["stage 'bad': params file conf/train.yaml not found"],
    ),
    "command not found": (
        """\
          bad:
            cmd: no-such-command-xyz --flag
            deps: [prepared.txt]
            outs: [out.txt]
        """,
        ["stage 'bad': command not found (exit code 127)", "no-such-command-xyz"],
    ),
    "no declared out": (
        """\
          bad:
            cmd: "true"
            deps: [prepared.txt]
            outs: [never.txt]
        """,
        ["stage 'bad' exited 0 but did not produce its out 'never.txt'"],
    ),
    "foreach name twice": (
        """\
          fit:
            foreach: [small, small]
            do:
              cmd: echo ${item}
        """,
        ["mlops.yaml:6: stage 'fit@small' is defined twice (from the foreach of 'fit')"],
    ),
    "yaml syntax": (
        """\
          bad:
            cmd: echo: oops
            outs: [out.txt]
        """,
        ["mlops.yaml:7: invalid YAML: mapping values are not allowed"],
    ),
    "unknown key": (
        """\
          bad:
            cmd: echo hi
            dep: [raw.txt]
        """,
        ["mlops.yaml:8: stage 'bad': unknown key 'dep' (did you mean 'deps'?)"],
    ),
    "wrong type": (
        """\
          bad:
            cmd: echo hi
            outs: out.txt
        """,
        ["mlops.yaml:8: stage 'bad': field 'outs' must be a list of paths, not the string"],
    ),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_one_clear_error_and_loses_nothing(repo: Path, case: str) -> None:
    write(repo, "raw.txt", "raw\n")
    write(repo, "params.yaml", "train:\n  lr: 0.1\n")
    write(repo, "mlops.yaml", GOOD)
    run_ok(repo)
    lock_before = _digest(repo / "mlops.lock")
    out_before = _digest(repo / "prepared.txt")
    runs_before = len(runs_json(repo))

    extra, expected = BAD_CASES[case]
    write(repo, "mlops.yaml", GOOD + textwrap.indent(textwrap.dedent(extra), "  "))
    result = run_cli(repo, "run")

    assert result.exit_code == 1, result.stdout + result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert _digest(repo / "mlops.lock") == lock_before
    assert _digest(repo / "prepared.txt") == out_before
    runs = runs_json(repo)
    if len(runs) > runs_before:  # errors found while running are recorded as a failed run
        assert runs[0]["status"] == "failed"
        assert statuses(runs[0])["prep"] == "skipped"


def test_bad_input_as_a_subprocess(repo: Path) -> None:
    from tests.helpers.cli import run_subprocess

    write(repo, "mlops.yaml", "stages:\n  a:\n    cmd: echo a\n    deps: [missing.txt]\n")
    proc = run_subprocess(repo, "run")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "mlops: error: mlops.yaml:4: stage 'a': dep 'missing.txt' does not exist and no stage "
        "produces it"
    )


def test_no_pipeline_file(repo: Path) -> None:
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "no mlops.yaml in" in error_lines(result)[0]


def test_tracked_but_not_checked_out_dep_gets_a_hint(repo: Path) -> None:
    write(repo, "data.csv", "x\n")
    assert run_cli(repo, "add", "data.csv").exit_code == 0
    (repo / "data.csv").unlink()
    write(repo, "mlops.yaml", "stages:\n  a:\n    cmd: cat data.csv\n    deps: [data.csv]\n")
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "run `mlops checkout data.csv`" in error_lines(result)[0]


def test_an_unknown_executor_is_one_line_from_the_flag_or_the_config(repo: Path) -> None:
    write(repo, "mlops.yaml", "stages:\n  a:\n    cmd: echo hi > a.txt\n    outs: [a.txt]\n")
    result = run_cli(repo, "run", "--executor", "spark")
    assert result.exit_code == 1
    assert error_lines(result) == [
        "mlops: error: --executor: unknown executor 'spark' (valid: local, dask)"
    ]
    assert run_cli(repo, "config", "run.executor", "spark").exit_code == 0
    result = run_cli(repo, "run")
    assert result.exit_code == 1
    assert "run.executor in .mlops/config.yaml: unknown executor 'spark'" in result.stderr
    assert not (repo / "a.txt").exists()
