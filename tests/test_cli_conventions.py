"""What people expect of a CLI: --version, shell completion, JSON errors, pre-commit stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mlops
from tests.helpers.cli import run_cli, run_subprocess
from tests.helpers.files import write

ROOT = Path(__file__).resolve().parent.parent


def test_version() -> None:
    result = run_cli(Path.cwd(), "--version")
    assert result.exit_code == 0 and result.stdout == f"mlops {mlops.__version__}\n"
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"mlops {mlops.__version__}"


@pytest.fixture
def named(repo: Path) -> Path:
    """A repository with stages (one foreach group), check suites, remotes and a model."""
    write(
        repo,
        "mlops.yaml",
        """\
        stages:
          prepare:
            cmd: echo prepare
          train:
            cmd: echo train
          fit:
            foreach: [small, large]
            do:
              cmd: echo ${item}
        checks:
          raw_data:
            data: raw.csv
            expect: [rows: {min: 1}]
          model_ok:
            data: raw.csv
            expect: [rows: {min: 1}]
        """,
    )
    for name in ("origin", "backup"):
        assert run_cli(repo, "remote", "add", name, f"../{name}").exit_code == 0
    (repo / "model.bin").write_bytes(b"weights")
    assert run_cli(repo, "model", "register", "iris", "model.bin").exit_code == 0
    assert run_cli(repo, "model", "promote", "iris", "1", "--to", "staging").exit_code == 0
    return repo


def complete(repo: Path, shell: str, line: str) -> str:
    """What the shell's completion asks ``mlops`` for ``line`` (the cursor at its end)."""
    env = {**os.environ, "_MLOPS_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        words = line.split(" ")
        env.update(COMP_WORDS=line, COMP_CWORD=str(len(words) - 1))
    else:
        env["_TYPER_COMPLETE_ARGS"] = line
        if shell == "fish":
            env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    proc = run_subprocess(repo, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_completion_of_stages_suites_remotes_and_models(named: Path) -> None:
    assert complete(named, "bash", "mlops run ").split() == [
        "fit",
        "fit@large",
        "fit@small",
        "prepare",
        "train",
    ]
    assert complete(named, "bash", "mlops run fit@s").split() == ["fit@small"]
    assert complete(named, "bash", "mlops check ").split() == ["model_ok", "raw_data"]
    assert complete(named, "bash", "mlops check --stage p").split() == ["prepare"]
    assert complete(named, "bash", "mlops push -r ").split() == ["backup", "origin"]
    assert complete(named, "bash", "mlops remote remove o").split() == ["origin"]
    assert complete(named, "bash", "mlops model show iris").split() == [
        "iris",
        "iris:1",
        "iris@staging",
    ]
    assert complete(named, "bash", "mlops model history ").split() == ["iris"]
    assert '"train"' in complete(named, "zsh", "mlops run t")
    assert complete(named, "fish", "mlops pull --remote b").split() == ["backup"]


def test_completion_outside_a_repository_or_with_a_broken_file_is_empty(
    tmp_path: Path, repo: Path
) -> None:
    assert complete(tmp_path, "bash", "mlops run ").split() == []
    write(repo, "mlops.yaml", "stages: [not, a, mapping]\n")
    assert complete(repo, "bash", "mlops run ").split() == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_the_script(repo: Path, shell: str) -> None:
    proc = run_subprocess(repo, "--show-completion", shell)
    assert proc.returncode == 0, proc.stderr
    assert "_MLOPS_COMPLETE" in proc.stdout


def test_an_error_under_json_is_a_json_object_on_stdout(repo: Path) -> None:
    result = run_cli(repo, "push", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "error": result.stderr.removeprefix("mlops: error: ").strip(),
        "exit_code": 1,
    }
    assert "no default remote" in result.stderr
    proc = run_subprocess(repo, "run", "--json")  # no mlops.yaml
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"].startswith("no mlops.yaml")
    # Without --json, standard output stays empty.
    plain = run_cli(repo, "push")
    assert plain.exit_code == 1 and plain.stdout == ""


def test_pre_commit_hooks_declare_their_stages() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["mlops-check"]["stages"] == ["pre-commit", "manual"]
    assert all("stages" in hook for hook in hooks.values())
