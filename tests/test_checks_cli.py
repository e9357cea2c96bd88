"""``mlops check``: the table, --json, --junit, --stage, --all, exit codes, every bad input."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.helpers.checks import ISSUE_YAML, model_project
from tests.helpers.cli import run_cli, run_subprocess

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_project(tmp_path_factory.mktemp("template") / "p")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the issue's example project (Git repository, data, model)."""
    return Path(shutil.copytree(template, tmp_path / "p"))


def break_training_data(root: Path) -> None:
    """Deliberately broken data: an impossible age, an unknown label, a repeated id."""
    import pandas as pd

    frame = pd.read_csv(root / "data/train.csv")
    frame.loc[3, "age"] = 150
    frame.loc[9, "label"] = 2
    frame.loc[11, "id"] = 5
    frame.to_csv(root / "data/train.csv", index=False)


def test_issue_example_passes(project: Path) -> None:
    result = run_cli(project, "check", "--all")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "clean_training_data" in result.stdout and "good_model" in result.stdout
    assert "latency_ms_per_1k_rows" in result.stdout
    assert "22 checks: 22 ok, 0 failed, 0 could not run" in result.stdout
    assert result.stderr == ""


def test_broken_data_fails_with_rows_and_values(project: Path) -> None:
    break_training_data(project)
    result = run_cli(project, "check", "clean_training_data")
    assert result.exit_code == 1
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert fails == [
        "FAIL clean_training_data > unique > id: 2 rows share duplicated values of 'id': "
        "5 in rows 5, 11",
        "FAIL clean_training_data > between > age: 1 value of 'age' outside [0, 120] (row 3: 150)",
        "FAIL clean_training_data > allowed > label: 1 value of 'label' not allowed: 2 (1x, row 9)",
    ]
    # The model suite was not asked for.
    assert "good_model" not in result.stdout


def test_json_output(project: Path) -> None:
    break_training_data(project)
    result = run_cli(project, "check", "--all", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False
    assert report["counts"] == {"pass": 19, "fail": 3, "error": 0}
    suites = {s["suite"]: s for s in report["suites"]}
    assert suites["good_model"]["passed"] is True
    between = next(r for r in suites["clean_training_data"]["results"] if r["check"] == "between")
    assert between == {
        **between,
        "column": "age",
        "status": "fail",
        "observed": {"min": 18, "max": 150},
        "expected": "[0, 120]",
        "failing": 1,
        "examples": [{"row": 3, "value": 150}],
        "where": "mlops.yaml:8",
    }


def test_junit_output(project: Path) -> None:
    break_training_data(project)
    (project / "mlops.yaml").write_text(
        ISSUE_YAML.replace(
            "- custom: mypkg.checks:income_is_plausible", "- custom: mypkg.checks:gone"
        )
    )
    result = run_cli(project, "check", "--all", "--junit", "reports/checks.xml")
    assert result.exit_code == 1
    root = ET.parse(project / "reports/checks.xml").getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("22", "3", "1")
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"clean_training_data", "good_model"}
    cases = {c.get("name"): c for c in suites["clean_training_data"].iter("testcase")}
    failure = cases["between[age]"].find("failure")
    assert failure is not None
    assert failure.get("message") == "1 value of 'age' outside [0, 120] (row 3: 150)"
    assert '{"row": 3, "value": 150}' in (failure.text or "")
    error = cases["custom"].find("error")
    assert error is not None and "has no function 'gone'" in (error.get("message") or "")
    assert cases["schema[age]"].find("failure") is None


def test_stage_runs_its_before_and_after_suites(project: Path) -> None:
    result = run_cli(project, "check", "--stage", "train", "--json")
    assert result.exit_code == 0, result.stderr
    assert [s["suite"] for s in json.loads(result.stdout)["suites"]] == [
        "clean_training_data",
        "good_model",
    ]
    missing = run_cli(project, "check", "--stage", "deploy")
    assert missing.exit_code == 1
    assert (
        missing.stderr
        == "mlops: error: mlops.yaml: no stage 'deploy' under stages: (stages: train)\n"
    )


def test_no_selection_is_a_usage_error(project: Path) -> None:
    result = run_cli(project, "check")
    assert result.exit_code == 2
    assert "name suites to run, or use --stage STAGE or --all" in result.stderr


def test_no_suites_defined(project: Path) -> None:
    (project / "mlops.yaml").write_text("stages: {}\n")
    result = run_cli(project, "check", "--all")
    assert result.exit_code == 0
    assert "no check suites selected" in result.stdout


def test_stage_without_checks(project: Path) -> None:
    _edit(project, "stages:\n", "stages:\n  plain:\n    cmd: 'true'\n")
    result = run_cli(project, "check", "--stage", "plain")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (
        result.stdout.strip()
        == "stage 'plain' names no check suites (under its checks: before/after)"
    )


def test_junit_names_two_checks_of_one_kind_apart(project: Path) -> None:
    """Two command: checks of one suite get different JUnit names (CI tools merge equal ones)."""
    _edit(
        project,
        "      - rows: {min: 100}\n",
        "      - rows: {min: 100}\n      - command: 'true'\n      - command: 'false'\n",
    )
    result = run_cli(project, "check", "clean_training_data", "--junit", "checks.xml")
    assert result.exit_code == 1
    suite = ET.parse(project / "checks.xml").getroot().find("testsuite")
    assert suite is not None
    names = [c.get("name") or "" for c in suite.iter("testcase")]
    commands = [n for n in names if n.startswith("command")]
    assert len(commands) == 2 and len(set(commands)) == 2, names
    assert all(n.startswith("command (mlops.yaml:") for n in commands)
    assert len(set(names)) == len(names)


def _edit(root: Path, old: str, new: str) -> None:
    text = (root / "mlops.yaml").read_text()
    assert old in text
    (root / "mlops.yaml").write_text(text.replace(old, new))


# Every bad input of the issue: (old text in mlops.yaml, replacement, the one error line).
BAD_INPUTS = {
    "unknown check type": (
        "- rows: {min: 100}",
        "- rowz: {min: 100}",
        "mlops.yaml:10: suite 'clean_training_data', check 6, key 'rowz': unknown check type "
        "(valid: schema, not_null, unique, between, allowed, rows, no_duplicate_rows, drift, "
        "regex, class_balance, custom, command, metric, predicts, or an expression like "
        "'accuracy >= 0.9')",
    ),
    "column not in the data": (
        "not_null: [age, label]",
        "not_null: [age, labels]",
        "mlops.yaml:6: suite 'clean_training_data', check 2 (not_null), key 'labels': column "
        "'labels' is not in data/train.csv (columns: id, age, income, label, city, email)",
    ),
    "expression that does not parse": (
        "- accuracy >= 0.9 ",
        "- accuracy >== 0.9 ",
        "mlops.yaml:20: suite 'good_model', check 1, key 'accuracy >== 0.9': cannot parse the "
        "expression; expected '<metric> <op> <number>' such as 'accuracy >= 0.9' "
        "(ops: >= <= == > <)",
    ),
    "missing data file": (
        "data: data/train.csv ",
        "data: data/trian.csv ",
        "mlops.yaml:2: suite 'clean_training_data', key 'data': data file data/trian.csv "
        "does not exist",
    ),
    "missing reference file": (
        "reference: data/reference.csv",
        "reference: data/ref.csv",
        "mlops.yaml:12: suite 'clean_training_data', check 8 (drift), key 'reference': "
        "data file data/ref.csv does not exist",
    ),
    "missing model file": (
        "model: model.joblib ",
        "model: models/model.joblib ",
        "mlops.yaml:14: suite 'good_model', key 'model': model file "
        "models/model.joblib does not exist",
    ),
    "custom function cannot be imported": (
        "mypkg.checks:income_is_plausible",
        "mypkg.checkz:income_is_plausible",
        "mlops.yaml:13: suite 'clean_training_data', check 9 (custom), key "
        "'mypkg.checkz:income_is_plausible': cannot import mypkg.checkz: ModuleNotFoundError: "
        "No module named 'mypkg.checkz'",
    ),
    "custom function raises": (
        "mypkg.checks:income_is_plausible",
        "mypkg.checks:explodes",
        "mlops.yaml:13: suite 'clean_training_data', check 9 (custom), key "
        "'mypkg.checks:explodes': custom function raised RuntimeError: boom",
    ),
    "unknown sklearn metric": (
        "- f1 >= 0.85",
        "- f2 >= 0.85",
        "mlops.yaml:21: suite 'good_model', check 2 (f2), key 'f2': unknown scikit-learn metric "
        "'f2' (did you mean r2, f1? valid: sklearn.metrics.get_scorer_names() or a "
        "sklearn.metrics function of (y_true, y_pred))",
    ),
    "suite used by a stage but not defined": (
        "after: [good_model]",
        "after: [good_models]",
        "mlops.yaml: stage 'train' checks.after: suite 'good_models' is not defined under "
        "checks: (defined: clean_training_data, good_model)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(project: Path, case: str) -> None:
    old, new, message = BAD_INPUTS[case]
    _edit(project, old, new)
    before = {
        p: p.read_bytes() for p in project.rglob("*") if p.is_file() and ".git" not in p.parts
    }
    result = run_cli(project, "check", "--stage", "train")
    assert result.exit_code == 1
    assert result.stderr == f"mlops: error: {message}\n"
    after = {p: p.read_bytes() for p in project.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before  # nothing written, nothing lost


def test_include_cycle(project: Path) -> None:
    (project / "checks").mkdir()
    (project / "checks/a.yaml").write_text("include: [b.yaml]\n")
    (project / "checks/b.yaml").write_text("include: [a.yaml]\n")
    (project / "mlops.yaml").write_text("include: [checks/a.yaml]\n" + ISSUE_YAML)
    result = run_cli(project, "check", "--all")
    assert result.exit_code == 1
    assert result.stderr == (
        "mlops: error: include cycle: "
        "mlops.yaml -> checks/a.yaml -> checks/b.yaml -> checks/a.yaml\n"
    )


def test_include_of_a_folder(project: Path) -> None:
    (project / "shared").mkdir()
    (project / "mlops.yaml").write_text("include: [shared]\n" + ISSUE_YAML)
    result = run_cli(project, "check", "--all")
    assert result.exit_code == 1
    assert result.stderr == (
        "mlops: error: mlops.yaml: included shared is a folder (include: lists YAML files)\n"
    )


def test_suites_from_an_included_file(project: Path) -> None:
    shared = yaml.safe_load(ISSUE_YAML)
    (project / "shared").mkdir()
    (project / "shared/checks.yaml").write_text(yaml.safe_dump({"checks": shared["checks"]}))
    (project / "mlops.yaml").write_text(
        yaml.safe_dump({"include": ["shared/checks.yaml"], "stages": shared["stages"]})
    )
    result = run_cli(project, "check", "--stage", "train", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["pass"] == 22
    assert report["suites"][0]["results"][0]["where"].startswith("shared/checks.yaml:")


def test_subprocess_json_from_a_subfolder(project: Path) -> None:
    break_training_data(project)
    proc = run_subprocess(project / "data", "check", "clean_training_data", "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["counts"] == {"pass": 14, "fail": 3, "error": 0}
    proc = run_subprocess(project, "check", "good_model")
    assert proc.returncode == 0, proc.stderr
    assert "5 checks: 5 ok, 0 failed, 0 could not run" in proc.stdout


@pytest.mark.parametrize("users_value", [None, "9"])
def test_commands_see_the_environment_as_the_user_left_it(
    project: Path, users_value: str | None
) -> None:
    """Reading data imports numpy with OpenBLAS's busy-wait turned down; a ``command:``
    check run after it must not inherit that setting, and a value the user set stays."""
    _edit(
        project,
        "      - rows: {min: 100}\n",
        "      - rows: {min: 100}\n"
        "      - command: 'echo \"${OPENBLAS_THREAD_TIMEOUT-unset}\" > seen.txt'\n",
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if users_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = users_value
    proc = run_subprocess(project, "check", "clean_training_data", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "seen.txt").read_text().strip() == (users_value or "unset")


def test_names_and_values_are_shown_as_they_are(git_repo: Path) -> None:
    """Brackets and colons in a file's names and values are not read as rich markup or
    emoji codes: shown unchanged, and a stray ``[/]`` does not break the table."""
    (git_repo / "tags.csv").write_text("[note],tag\n1,[/]\n2,:warning:\n3,[red]x\n4,ok\n")
    (git_repo / "mlops.yaml").write_text(
        "checks:\n"
        "  tags[1]:\n"
        "    data: tags.csv\n"
        "    expect:\n"
        "      - not_null: ['[note]']\n"
        "      - allowed: {tag: [ok]}\n"
    )
    result = run_cli(git_repo, "check", "tags[1]")
    assert result.exit_code == 1, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if "tags[1]" in line]
    assert any("[note]" in row and "pass" in row for row in rows), result.stdout
    assert any("[/]" in row and ":warning:" in row and "[red]x" in row for row in rows)
    assert "FAIL tags[1] > allowed > tag: 3 values of 'tag' not allowed" in result.stdout


def test_pre_commit_hook_declared() -> None:
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(hooks, list)
    hook = next(h for h in hooks if h["id"] == "mlops-check")
    assert hook == {
        **hook,
        "entry": "mlops check --all",
        "language": "python",
        "pass_filenames": False,
        "always_run": True,
    }


def test_help_text() -> None:
    result = run_cli(REPO_ROOT, "check", "--help")
    assert result.exit_code == 0
    for option in ("--stage", "--all", "--json", "--junit"):
        assert option in result.stdout


def test_command_output_with_control_and_non_utf8_bytes(git_repo: Path) -> None:
    """A command's coloured or binary output still makes a failure (not an error) with its
    last lines, and a JUnit file that XML parsers accept."""
    (git_repo / "mlops.yaml").write_text(
        "checks:\n"
        "  tools:\n"
        "    expect:\n"
        "      - command: \"printf '\\\\033[31mred\\\\033[0m\\\\n'; exit 1\"\n"
        "      - command: \"printf 'bad \\\\377 byte\\\\n'; exit 2\"\n"
    )
    result = run_cli(git_repo, "check", "tools", "--junit", "checks.xml")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "2 failed, 0 could not run" in result.stdout and result.stderr == ""
    cases = list(ET.parse(git_repo / "checks.xml").getroot().iter("testcase"))
    messages = [case.find("failure").get("message") for case in cases]  # type: ignore[union-attr]
    assert "exited with 1" in messages[0] and "red" in messages[0]
    assert "exited with 2" in messages[1] and "byte" in messages[1]


def test_junit_file_that_cannot_be_written(git_repo: Path) -> None:
    """--junit naming a folder or a path under a file: one clear error, exit 1, the report
    still shown."""
    (git_repo / "mlops.yaml").write_text("checks:\n  ok:\n    expect:\n      - command: 'true'\n")
    (git_repo / "reports").mkdir()
    (git_repo / "plain").write_text("keep\n")
    for target in ("reports", "plain/checks.xml"):
        result = run_cli(git_repo, "check", "ok", "--junit", target)
        assert result.exit_code == 1, result.stdout + result.stderr
        assert "1 checks: 1 ok" in result.stdout
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"mlops: error: --junit {target}: "), lines
    assert (git_repo / "plain").read_text() == "keep\n"
    assert list((git_repo / "reports").iterdir()) == []


def test_nested_json_values(git_repo: Path) -> None:
    """JSON lines with lists and objects: ``unique``, ``allowed`` and ``no_duplicate_rows``
    compare them by value and report rows and values; ``regex`` cannot match them and
    says so in one line naming the suite, check and column. Exit 1, no traceback, in
    the test runner and as a real process."""
    (git_repo / "t.jsonl").write_text(
        '{"id": 1, "tags": ["a", "b"], "meta": {"k": 1}}\n'
        '{"id": 2, "tags": ["b"], "meta": {"k": 2}}\n'
        '{"id": 3, "tags": ["a", "b"], "meta": {"k": 1}}\n'
    )
    (git_repo / "mlops.yaml").write_text(
        "checks:\n"
        "  nested:\n"
        "    data: t.jsonl\n"
        "    expect:\n"
        "      - unique: [tags]\n"
        "      - allowed: {meta: [{k: 1}]}\n"
        "      - no_duplicate_rows: [tags, meta]\n"
        "      - regex: {tags: 'a.*'}\n"
    )
    fails = [
        "FAIL nested > unique > tags: 2 rows share duplicated values of 'tags': "
        "['a', 'b'] in rows 0, 2",
        "FAIL nested > allowed > meta: 1 value of 'meta' not allowed: {'k': 2} (1x, row 1)",
        "FAIL nested > no_duplicate_rows > tags+meta: 2 rows duplicated: rows 0, 2",
    ]
    error = (
        "mlops: error: mlops.yaml:8: suite 'nested', check 4 (regex), key 'tags': column "
        "'tags' holds nested values (list<item: string>); regex matches text and numbers only"
    )
    result = run_cli(git_repo, "check", "nested")
    assert result.exit_code == 1
    assert [line for line in result.stdout.splitlines() if line.startswith("FAIL")] == fails
    assert result.stderr.splitlines() == [error]
    proc = run_subprocess(git_repo, "check", "nested", "--json")
    assert (proc.returncode, proc.stderr) == (1, "")
    report = json.loads(proc.stdout)
    assert report["counts"] == {"pass": 0, "fail": 3, "error": 1}
    unique, _, _, regex = report["suites"][0]["results"]
    assert unique["examples"] == [{"value": ["a", "b"], "rows": [0, 2], "count": 2}]
    assert f"mlops: error: {regex['message']}" == error
