"""Check suites in YAML: parsing, include:, and every declaration error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlops.checks import (
    CHECK_TYPES,
    Condition,
    load_suites,
    parse_condition,
    validate_suite_refs,
)
from mlops.errors import CheckError
from mlops.pipeline.guards import run_declared_checks
from mlops.pipeline.schema import load_pipeline
from tests.helpers.checks import ISSUE_YAML
from tests.helpers.files import write


def test_issue_yaml_parses_as_written(tmp_path: Path) -> None:
    suites = load_suites(write(tmp_path, "mlops.yaml", ISSUE_YAML))
    assert list(suites) == ["clean_training_data", "good_model"]
    data = suites["clean_training_data"]
    assert data.data == "data/train.csv"
    assert [c.kind for c in data.checks] == [
        "schema", "not_null", "unique", "between", "allowed", "rows",
        "no_duplicate_rows", "drift", "custom",
    ]  # fmt: skip
    assert data.checks[3].args == (("age", 0.0, 120.0),)
    assert data.checks[3].where == "mlops.yaml:8"
    model = suites["good_model"]
    assert (model.model, model.target, model.features) == (
        "model.joblib",
        "label",
        ("age", "income"),
    )
    assert [c.kind for c in model.checks] == ["score", "score", "metric", "predicts", "latency"]
    assert model.checks[0].args == Condition("accuracy", ">=", 0.9)
    assert model.checks[4].args == Condition("latency_ms_per_1k_rows", "<=", 50.0)
    # Only the columns the checks read are planned: the custom check needs them all.
    assert data.data_columns() is None
    assert model.data_columns() == {"age", "income", "label"}


def test_a_stages_suites_are_read_with_the_pipeline(tmp_path: Path) -> None:
    write(tmp_path, "mlops.yaml", ISSUE_YAML)
    train = load_pipeline(tmp_path).stages["train"]
    assert (train.checks_before, train.checks_after) == (("clean_training_data",), ("good_model",))
    with pytest.raises(CheckError, match=r"no stage 'deploy' under stages: \(stages: train\)"):
        run_declared_checks(tmp_path, stage="deploy")


def test_validate_suite_refs_names_stage_and_suite(tmp_path: Path) -> None:
    suites = load_suites(write(tmp_path, "mlops.yaml", ISSUE_YAML))
    validate_suite_refs(["good_model"], suites, "stage 'train' checks.after")
    with pytest.raises(CheckError) as info:
        validate_suite_refs(["good_modle"], suites, "mlops.yaml: stage 'train' checks.after")
    assert str(info.value) == (
        "mlops.yaml: stage 'train' checks.after: suite 'good_modle' is not defined under "
        "checks: (defined: clean_training_data, good_model)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accuracy >= 0.9", Condition("accuracy", ">=", 0.9)),
        ("f1>0.5", Condition("f1", ">", 0.5)),
        ("  log_loss <= 1e-1 ", Condition("log_loss", "<=", 0.1)),
        ("r2 == -1", Condition("r2", "==", -1.0)),
        ("accuracy >== 0.9", None),
        ("accuracy => 0.9", None),
        ("accuracy >= high", None),
        (">= 0.9", None),
    ],
)
def test_parse_condition(text: str, expected: Condition | None) -> None:
    assert parse_condition(text) == expected


def test_condition_holds() -> None:
    assert Condition("a", ">=", 0.9).holds(0.9)
    assert not Condition("a", ">", 0.9).holds(0.9)
    assert Condition("a", "<", 1).holds(0.5)
    assert not Condition("a", "<=", 1).holds(1.5)
    assert Condition("a", "==", 2).holds(2.0)


def test_include_relative_to_including_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "shared/common.yaml",
        """\
        include: [more/extra.yaml]
        checks:
          ids: {data: data/train.csv, expect: [{unique: [id]}]}
        """,
    )
    write(
        tmp_path,
        "shared/more/extra.yaml",
        "checks:\n  enough: {data: data/train.csv, expect: [{rows: {min: 1}}]}\n",
    )
    main = write(
        tmp_path,
        "mlops.yaml",
        "include: shared/common.yaml\nchecks:\n  own: {data: a.csv, expect: [no_duplicate_rows]}\n",
    )
    suites = load_suites(main)
    assert sorted(suites) == ["enough", "ids", "own"]
    assert suites["enough"].where == "shared/more/extra.yaml:2"
    assert suites["own"].checks[0].kind == "no_duplicate_rows"


def test_include_same_file_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "include: [c.yaml]\n")
    write(tmp_path, "b.yaml", "include: [c.yaml]\n")
    write(tmp_path, "c.yaml", "checks:\n  s: {data: d.csv, expect: [{rows: {min: 1}}]}\n")
    assert list(load_suites(write(tmp_path, "mlops.yaml", "include: [a.yaml, b.yaml]\n"))) == ["s"]


def test_include_cycle(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "include: [sub/b.yaml]\n")
    write(tmp_path, "sub/b.yaml", "include: [../a.yaml]\n")
    main = write(tmp_path, "mlops.yaml", "include: [a.yaml]\n")
    with pytest.raises(CheckError) as info:
        load_suites(main)
    assert str(info.value) == "include cycle: mlops.yaml -> a.yaml -> sub/b.yaml -> a.yaml"


BAD_DECLARATIONS = [
    (
        "- colour: {x: [red]}",
        "mlops.yaml:5: suite 's', check 1, key 'colour': unknown check type (valid: "
        + ", ".join(CHECK_TYPES)
        + ", or an expression like 'accuracy >= 0.9')",
    ),
    (
        "- accuracy >== 0.9",
        "mlops.yaml:5: suite 's', check 1, key 'accuracy >== 0.9': cannot parse the expression; "
        "expected '<metric> <op> <number>' such as 'accuracy >= 0.9' (ops: >= <= == > <)",
    ),
    (
        "- between: {age: [0]}",
        "mlops.yaml:5: suite 's', check 1 (between), key 'age': expected [min, max] or "
        "{min: .., max: ..}",
    ),
    (
        "- schema: {age: integer}",
        "mlops.yaml:5: suite 's', check 1 (schema), key 'age': unknown type 'integer' "
        "(valid: int, float, number, str, bool, datetime, category)",
    ),
    (
        "- regex: {email: '(ab'}",
        "mlops.yaml:5: suite 's', check 1 (regex), key 'email': invalid regular expression: "
        "missing ), unterminated subpattern at position 0",
    ),
    (
        "- between: {age: [0, .nan]}",
        "mlops.yaml:5: suite 's', check 1 (between), key 'age': expected a number, got nan",
    ),
    (
        "- drift: {reference: r.csv, max_psi: high}",
        "mlops.yaml:5: suite 's', check 1 (drift), key 'max_psi': expected a number, got 'high'",
    ),
    (
        "- custom: not a function",
        "mlops.yaml:5: suite 's', check 1 (custom): expected 'package.module:function', "
        "got 'not a function'",
    ),
    (
        "- class_balance: {label: {min: 2}}",
        "mlops.yaml:5: suite 's', check 1 (class_balance), key 'label': shares are between "
        "0 and 1, got 2",
    ),
    (
        "- accuracy >= 0.9",
        "mlops.yaml:5: suite 's', check 1 (accuracy), key 'model': this check needs the "
        "suite's model: file",
    ),
]


@pytest.mark.parametrize(("item", "message"), BAD_DECLARATIONS)
def test_bad_declarations(tmp_path: Path, item: str, message: str) -> None:
    main = write(
        tmp_path, "mlops.yaml", f"checks:\n  s:\n    data: d.csv\n    expect:\n      {item}\n"
    )
    with pytest.raises(CheckError) as info:
        load_suites(main)
    assert str(info.value) == message


def test_bad_suite_keys_and_duplicates(tmp_path: Path) -> None:
    main = write(
        tmp_path, "mlops.yaml", "checks:\n  s: {dta: d.csv, expect: [no_duplicate_rows]}\n"
    )
    with pytest.raises(
        CheckError, match=r"^mlops.yaml:2: suite 's': unknown key 'dta' \(valid: data,"
    ):
        load_suites(main)
    write(tmp_path, "other.yaml", "checks:\n  s: {data: d.csv, expect: [no_duplicate_rows]}\n")
    main = write(
        tmp_path,
        "mlops.yaml",
        "include: [other.yaml]\nchecks:\n  s: {data: d.csv, expect: [no_duplicate_rows]}\n",
    )
    with pytest.raises(CheckError) as info:
        load_suites(main)
    assert str(info.value) == "other.yaml:2: suite 's' is already defined at mlops.yaml:3"


def test_included_file_missing_or_with_foreign_keys(tmp_path: Path) -> None:
    main = write(tmp_path, "mlops.yaml", "include: [nowhere.yaml]\n")
    with pytest.raises(
        CheckError, match=r"^mlops.yaml: included file nowhere.yaml does not exist$"
    ):
        load_suites(main)
    write(tmp_path, "lib.yaml", "stages:\n  x: {cmd: echo}\n")
    main = write(tmp_path, "mlops.yaml", "include: [lib.yaml]\n")
    with pytest.raises(
        CheckError, match=r"^lib.yaml:1: key 'stages' is not allowed in an included"
    ):
        load_suites(main)


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    main = write(tmp_path, "mlops.yaml", "checks:\n  s: [unclosed\n")
    with pytest.raises(CheckError, match=r"^mlops.yaml:3: invalid YAML"):
        load_suites(main)


def test_other_top_level_keys_are_ignored_and_missing_file_is_empty(tmp_path: Path) -> None:
    main = write(tmp_path, "mlops.yaml", "stages: {a: {cmd: x}}\nmonitor: {whatever: 1}\n")
    assert load_suites(main) == {}
    assert load_suites(tmp_path / "absent.yaml") == {}


def test_loading_suites_imports_no_heavy_module(tmp_path: Path) -> None:
    """The pipeline loads suites on every run: that must not cost a pandas import."""
    write(tmp_path, "mlops.yaml", ISSUE_YAML)
    code = (
        "import sys; from pathlib import Path; from mlops.checks import load_suites; "
        "load_suites(Path('mlops.yaml')); "
        "print(sorted(m for m in ('pandas', 'numpy', 'sklearn', 'joblib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_suites_of_an_unchanged_file_are_not_parsed_again(tmp_path: Path) -> None:
    """In a set-up project the parsed document and its lines are remembered by content."""
    (tmp_path / ".mlops").mkdir()
    write(tmp_path, "mlops.yaml", ISSUE_YAML)
    code = (
        "import sys\nfrom pathlib import Path\nfrom mlops.checks.spec import load_suites\n"
        "suites = load_suites(Path('mlops.yaml'))\n"
        "print(sorted((n, s.where, [c.where for c in s.checks]) for n, s in suites.items()))\n"
        "print('YAML', 'yaml' in sys.modules)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    first, second = (r.stdout.splitlines() for r in runs)
    assert first[0] == second[0] and "mlops.yaml:" in first[0]
    assert (first[1], second[1]) == ("YAML True", "YAML False")
    # A change is parsed afresh, and a broken file still names its line.
    write(tmp_path, "mlops.yaml", ISSUE_YAML + "  broken: [\n")
    with pytest.raises(CheckError, match=r"^mlops.yaml:\d+: invalid YAML"):
        load_suites(tmp_path / "mlops.yaml")
