"""Every data check passing and failing on real files, and every run-time problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.checks import CheckResult, load_suites, run_suites
from mlops.checks.files import DataStore, plan_reads
from mlops.errors import CheckError
from tests.helpers.checks import data_project, only, train_frame
from tests.helpers.cli import run_cli
from tests.helpers.files import write


def run(root: Path, expect: str, data: str = "data/train.csv") -> list[CheckResult]:
    """Run a one-suite project whose expect: list is ``expect`` (YAML lines)."""
    body = "".join(f"      {line.strip()}\n" for line in expect.strip().splitlines())
    write(root, "mlops.yaml", f"checks:\n  s:\n    data: {data}\n    expect:\n{body}")
    return list(run_suites(load_suites(root / "mlops.yaml").values(), root).results)


def corrupt(root: Path, **cells: Any) -> None:
    """Set cells of data/train.csv: ``corrupt(root, age={3: 150})``."""
    import pandas as pd

    frame = pd.read_csv(root / "data/train.csv")
    for column, changes in cells.items():
        for row, value in changes.items():
            frame.loc[row, column] = value
    frame.to_csv(root / "data/train.csv", index=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return data_project(tmp_path / "p", "checks: {}\n", package=f"pkg_{tmp_path.name}")


def test_schema(project: Path) -> None:
    results = run(project, "- schema: {age: int, income: float, label: number, city: str}")
    assert [(r.column, r.status, r.observed) for r in results] == [
        ("age", "pass", "int64"),
        ("income", "pass", "float64"),
        ("label", "pass", "int64"),
        ("city", "pass", str(train_frame()["city"].dtype)),
    ]
    frame = train_frame()
    frame["age"] = frame["age"].astype("Int64")
    frame.loc[4, "age"] = None
    frame.to_csv(project / "data/train.csv", index=False)
    results = run(project, "- schema: {age: int, city: float, nope: bool, income: int}")
    # An integer column with an empty cell is still an integer column (not_null catches
    # the missing value); pandas would have read it as float64.
    assert [(r.column, r.status, r.observed) for r in results] == [
        ("age", "pass", "int64"),
        ("city", "fail", "str"),
        ("nope", "fail", "missing"),
        ("income", "fail", "float64"),
    ]
    assert results[1].message == "column 'city' has dtype str, expected float"
    assert results[2].message == "column 'nope' is missing from data/train.csv"


def test_not_null(project: Path) -> None:
    assert only(run(project, "- not_null: [age]")).status == "pass"
    corrupt(project, age={3: None, 17: None})
    result = only(run(project, "- not_null: [age]"))
    assert (result.status, result.failing, result.observed) == ("fail", 2, 2)
    assert result.examples == ({"row": 3}, {"row": 17})
    assert result.message == "2 null values in 'age' (rows 3, 17)"


def test_unique_single_and_combined(project: Path) -> None:
    assert only(run(project, "- unique: [id]")).status == "pass"
    corrupt(project, id={10: 5, 11: 5}, email={0: None, 1: None})
    # Several nulls are not duplicates of each other.
    assert only(run(project, "- unique: [email]")).status == "pass"
    result = only(run(project, "- unique: [id]"))
    assert (result.status, result.failing) == ("fail", 3)
    assert result.examples == ({"value": 5, "rows": [5, 10, 11], "count": 3},)
    assert result.message == "3 rows share duplicated values of 'id': 5 in rows 5, 10, 11"
    combined = only(run(project, "- unique: [[id, email]]"))
    assert combined.status == "pass" and combined.column == "id+email"
    corrupt(project, email={10: "user5@example.com", 11: "other"})
    combined = only(run(project, "- unique: [[id, email]]"))
    assert (combined.status, combined.failing) == ("fail", 2)
    assert combined.examples[0] == {"value": [5, "user5@example.com"], "rows": [5, 10], "count": 2}


def test_unique_unsorted_integers(project: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"id": [5, 3, 9, 1, 7]})
    frame.to_csv(project / "data/ids.csv", index=False)
    assert only(run(project, "- unique: [id]", data="data/ids.csv")).status == "pass"
    pd.DataFrame({"id": [5, 3, 9, 3, 7]}).to_csv(project / "data/ids.csv", index=False)
    result = only(run(project, "- unique: [id]", data="data/ids.csv"))
    assert result.examples == ({"value": 3, "rows": [1, 3], "count": 2},)


def test_between(project: Path) -> None:
    result = only(run(project, "- between: {age: [0, 120]}"))
    assert result.status == "pass"
    frame = train_frame()
    assert result.observed == {"min": int(frame.age.min()), "max": int(frame.age.max())}
    corrupt(project, age={3: 150, 7: -2, 8: None})
    result = only(run(project, "- between: {age: {min: 0, max: 120}}"))
    assert (result.status, result.failing) == ("fail", 2)
    assert result.examples == ({"row": 3, "value": 150.0}, {"row": 7, "value": -2.0})
    assert result.message == "2 values of 'age' outside [0, 120] (rows 3: 150, 7: -2)"
    open_ended = only(run(project, "- between: {income: [0, null]}"))
    assert (open_ended.status, open_ended.expected) == ("pass", ">= 0")


def test_between_integers_past_2_53_compare_exactly(project: Path) -> None:
    """Whole-number bounds on an integer column compare as integers, as pandas compares
    an int64 column with Python ints; as floats, 2**53 + 1 would round to 2**53."""
    import pandas as pd

    big = 2**53
    # y has an empty cell: pandas would make it float64, but it stays int64 here.
    write(project, "data/big.csv", f"x,y,f\n5,{big + 1},0.5\n{big + 1},,1.5\n7,3,2.5\n")
    frame = pd.read_csv(project / "data/big.csv")
    x = only(run(project, f"- between: {{x: [0, {big}]}}", data="data/big.csv"))
    assert int(frame.x.between(0, big).sum()) == 2  # pandas' verdict on the same file
    assert (x.status, x.failing) == ("fail", 1)
    assert x.observed == {"min": 5, "max": big + 1}
    assert x.expected == f"[0, {big}]"
    assert x.examples == ({"row": 1, "value": big + 1},)
    assert x.message == f"1 value of 'x' outside [0, {big}] (row 1: {big + 1})"
    y = only(run(project, f"- between: {{y: {{max: {big}}}}}", data="data/big.csv"))
    assert (y.status, y.failing, y.observed) == ("fail", 1, {"min": 3, "max": big + 1})
    assert y.examples == ({"row": 0, "value": big + 1},)
    assert only(run(project, f"- between: {{y: [3, {big + 1}]}}", data="data/big.csv")).status == (
        "pass"
    )
    low = only(run(project, f"- between: {{x: [{big + 1}, null]}}", data="data/big.csv"))
    assert (low.failing, low.expected) == (2, f">= {big + 1}")
    # Bounds beyond what int64 holds.
    huge = only(run(project, f"- between: {{x: [{-(2**70)}, {2**70}]}}", data="data/big.csv"))
    assert huge.status == "pass"
    above = only(run(project, f"- between: {{x: [{2**64}, null]}}", data="data/big.csv"))
    assert (above.status, above.failing) == ("fail", 3)
    # A float bound on an integer column compares as pandas does (as floats), and a float
    # column with a huge whole-number bound compares as floats: both as before.
    loose = only(run(project, f"- between: {{x: [0, {float(big)}]}}", data="data/big.csv"))
    assert loose.failing == int((~frame.x.between(0, float(big))).sum())
    f = only(run(project, f"- between: {{f: [1, {2**70}]}}", data="data/big.csv"))
    assert (f.status, f.failing, f.examples) == ("fail", 1, ({"row": 0, "value": 0.5},))


def test_between_on_text_is_an_error(project: Path) -> None:
    result = only(run(project, "- between: {city: [0, 1]}"))
    assert result.status == "error"
    assert result.message.startswith(
        "mlops.yaml:5: suite 's', check 1 (between), key 'city': column 'city' is not numeric"
    )


def test_allowed(project: Path) -> None:
    results = run(project, "- allowed: {label: [0, 1], city: [paris, lyon, nice]}")
    assert [r.status for r in results] == ["pass", "pass"]
    corrupt(project, label={9: 2, 12: 2, 30: 7}, city={4: "rome"})
    label, city = run(project, "- allowed: {label: [0, 1], city: [paris, lyon, nice]}")
    assert (label.status, label.failing) == ("fail", 3)
    assert label.examples == (
        {"value": 2, "count": 2, "rows": [9, 12]},
        {"value": 7, "count": 1, "rows": [30]},
    )
    assert label.message == "3 values of 'label' not allowed: 2 (2x, rows 9, 12), 7 (1x, row 30)"
    assert (city.status, city.examples) == ("fail", ({"value": "rome", "count": 1, "rows": [4]},))


def test_rows_and_no_duplicate_rows(project: Path) -> None:
    assert only(run(project, "- rows: {min: 100, max: 400}")).status == "pass"
    result = only(run(project, "- rows: {min: 1000}"))
    assert (result.status, result.observed) == ("fail", 400)
    assert result.message == "data/train.csv has 400 rows, expected >= 1000"
    assert only(run(project, "- no_duplicate_rows: true")).status == "pass"
    frame = train_frame()
    frame.loc[7] = frame.loc[2]
    frame.loc[9] = frame.loc[2]
    frame.to_csv(project / "data/train.csv", index=False)
    result = only(run(project, "- no_duplicate_rows: true"))
    assert (result.status, result.failing, result.examples) == ("fail", 3, ({"rows": [2, 7, 9]},))
    subset = only(run(project, "- no_duplicate_rows: [city]"))
    assert subset.status == "fail" and subset.column == "city"


def test_drift(project: Path) -> None:
    spec = "- drift: {reference: data/reference.csv, max_psi: 0.2, columns: [age, income, city]}"
    assert [r.status for r in run(project, spec)] == ["pass", "pass", "pass"]
    shifted = train_frame()
    shifted["income"] = shifted["income"] * 1.5
    shifted.loc[:200, "city"] = "paris"
    shifted.to_csv(project / "data/train.csv", index=False)
    age, income, city = run(project, spec)
    assert age.status == "pass"
    assert income.status == "fail" and income.observed > 1
    assert income.failing >= 1 and income.examples[0]["current"] > income.examples[0]["reference"]
    assert income.message.startswith("'income' drifted from data/reference.csv: psi ")
    assert city.status == "fail"
    assert city.examples[0]["bin"] == "paris"


def test_regex(project: Path) -> None:
    assert only(run(project, r"- regex: {email: 'user\d+@example\.com'}")).status == "pass"
    corrupt(project, email={6: "not-an-email", 8: None})
    result = only(run(project, r"- regex: {email: 'user\d+@example\.com'}"))
    assert (result.status, result.failing) == ("fail", 1)
    assert result.examples == ({"row": 6, "value": "not-an-email"},)
    # Numbers are matched by their text.
    assert only(run(project, r"- regex: {id: '\d+'}")).status == "pass"


def test_class_balance(project: Path) -> None:
    result = only(run(project, "- class_balance: {label: {min: 0.3, max: 0.7}}"))
    assert result.status == "pass"
    assert set(result.observed) == {"0", "1"}
    frame = train_frame()
    frame.loc[:360, "label"] = 0
    frame.to_csv(project / "data/train.csv", index=False)
    result = only(run(project, "- class_balance: {label: [0.2, 0.8]}"))
    assert (result.status, result.failing) == ("fail", 2)
    assert {e["class"] for e in result.examples} == {0, 1}


def test_custom(project: Path) -> None:
    pkg = f"pkg_{project.parent.name}"
    result = only(run(project, f"- custom: {pkg}.checks:income_is_plausible"))
    assert (result.status, result.message) == ("pass", "0 negative incomes")
    corrupt(project, income={1: -5.0})
    result = only(run(project, f"- custom: {pkg}.checks:income_is_plausible"))
    assert (result.status, result.message) == ("fail", "1 negative incomes")
    result = only(run(project, f"- custom: {pkg}.checks:always_false"))
    assert (result.status, result.message) == ("fail", f"{pkg}.checks:always_false returned False")


@pytest.mark.parametrize(
    ("target", "detail"),
    [
        (
            "nosuchpkg.checks:f",
            "cannot import nosuchpkg.checks: ModuleNotFoundError: No module named 'nosuchpkg'",
        ),
        ("PKG.checks:missing", "module PKG.checks has no function 'missing'"),
        ("PKG.checks:explodes", "custom function raised RuntimeError: boom"),
        (
            "PKG.checks:returns_text",
            "custom function returned str; expected bool or (bool, message)",
        ),
    ],
)
def test_custom_errors(project: Path, target: str, detail: str) -> None:
    target = target.replace("PKG", f"pkg_{project.parent.name}")
    detail = detail.replace("PKG", f"pkg_{project.parent.name}")
    result = only(run(project, f"- custom: {target}"))
    assert result.status == "error"
    assert result.message == f"mlops.yaml:5: suite 's', check 1 (custom), key '{target}': {detail}"


def test_command(project: Path) -> None:
    assert only(run(project, "- command: test -f data/train.csv")).status == "pass"
    result = only(run(project, "- command: \"echo checking; echo 'too few rows' >&2; exit 3\""))
    assert (result.status, result.observed) == ("fail", 3)
    assert result.message.endswith('exit 3" exited with 3: checking | too few rows')
    slow = only(run(project, "- command: {cmd: sleep 5, timeout: 0.2}"))
    assert slow.status == "error" and "did not finish within 0.2 s" in slow.message


def test_column_not_in_data(project: Path) -> None:
    results = run(project, "- not_null: [age, agee]")
    assert [r.status for r in results] == ["pass", "error"]
    assert results[1].message == (
        "mlops.yaml:5: suite 's', check 1 (not_null), key 'agee': column 'agee' is not in "
        "data/train.csv (columns: id, age, income, label, city, email)"
    )


def test_missing_data_and_reference_files(project: Path) -> None:
    result = only(run(project, "- not_null: [age]", data="data/nope.csv"))
    assert (result.status, result.check) == ("error", "data")
    assert (
        result.message
        == "mlops.yaml:2: suite 's', key 'data': data file data/nope.csv does not exist"
    )
    result = only(run(project, "- drift: {reference: data/old.csv}"))
    assert result.message == (
        "mlops.yaml:5: suite 's', check 1 (drift), key 'reference': "
        "data file data/old.csv does not exist"
    )


def test_formats_parquet_and_json_lines(project: Path) -> None:
    frame = train_frame()
    frame.to_parquet(project / "data/train.parquet")
    frame.to_json(project / "data/train.jsonl", orient="records", lines=True)
    for name in ("data/train.parquet", "data/train.jsonl"):
        corrupt_free = run(
            project, "- not_null: [age]\n- unique: [id]\n- rows: {min: 400}", data=name
        )
        assert [r.status for r in corrupt_free] == ["pass", "pass", "pass"], name
    frame.loc[3, "age"] = None
    frame.to_parquet(project / "data/train.parquet")
    assert only(run(project, "- not_null: [age]", data="data/train.parquet")).examples == (
        {"row": 3},
    )
    (project / "data/train.xlsx").write_text("x")
    result = only(run(project, "- rows: {min: 1}", data="data/train.xlsx"))
    assert result.status == "error" and "unknown format" in result.message


def test_each_file_read_once_with_only_needed_columns(project: Path) -> None:
    write(
        project,
        "mlops.yaml",
        """\
        checks:
          a: {data: data/train.csv, expect: [{not_null: [age]}]}
          b:
            data: data/train.csv
            expect:
              - unique: [id]
              - drift: {reference: data/reference.csv, columns: [income]}
        """,
    )
    suites = list(load_suites(project / "mlops.yaml").values())
    needs = plan_reads(suites, project)
    assert needs == {
        project / "data/train.csv": {"age", "id", "income"},
        project / "data/reference.csv": {"income"},
    }
    store = DataStore(project, needs)
    first = store.table("data/train.csv", "data")
    assert store.table("./data/../data/train.csv", "data") is first
    assert list(first.frame.columns) == ["id", "age", "income"]
    assert first.columns == ("id", "age", "income", "label", "city", "email")
    report = run_suites(suites, project)
    assert report.passed, [r.message for r in report.results]


def test_report_is_json_able(project: Path) -> None:
    corrupt(project, age={3: 150})
    results = run(project, "- between: {age: [0, 120]}\n- class_balance: {label: [0, 1]}")
    text = json.dumps([r.to_dict() for r in results])
    assert json.loads(text)[0]["examples"] == [{"row": 3, "value": 150}]


TRICKY_CSV = (
    "i,f,s,b,d,e,n,ts\n"
    "1,1.5,a,True,2024-01-01,,NA,2024-01-01 10:00:00\n"
    ",2.5,,False,2024-01-02,,None,2024-01-02 11:00:00\n"
    "3,,<NA>,True,2024-01-03,,x,\n"
)


def test_csv_read_matches_pandas(tmp_path: Path) -> None:
    """Our pyarrow read (prefetched or not) gives the frame pandas' own read gives."""
    import pandas as pd
    from pandas.testing import assert_frame_equal

    path = tmp_path / "t.csv"
    path.write_text(TRICKY_CSV)
    expected = pd.read_csv(path, engine="pyarrow")
    direct = DataStore(tmp_path, {path: None}).table("t.csv", "data")
    assert_frame_equal(direct.frame, expected)
    store = DataStore(tmp_path, {path: frozenset({"s", "i"})})
    store.prefetch()
    assert_frame_equal(store.table("t.csv", "data").frame, expected[["i", "s"]])
    assert store.table("t.csv", "data").columns == ("i", "f", "s", "b", "d", "e", "n", "ts")


def test_csv_pyarrow_cannot_parse_falls_back_to_pandas(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("a,a,b\n1,2,3\n")  # pandas renames the second a
    frame = DataStore(tmp_path).table("dup.csv", "data").frame
    assert list(frame.columns) == ["a", "a.1", "b"]
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    store = DataStore(tmp_path, {tmp_path / "ragged.csv": None})
    store.prefetch()
    with pytest.raises(CheckError) as info:
        store.table("ragged.csv", "data")
    assert str(info.value).startswith("cannot read ragged.csv: ParserError: Error tokenizing data")


def test_json_file_holding_an_array_of_records(project: Path) -> None:
    """A .json file as ``DataFrame.to_json(orient="records")`` writes it (one array, not
    JSON lines) is read as pandas.read_json reads it: its records are the rows."""
    import pandas as pd

    frame = train_frame()
    frame.loc[3, "age"] = None
    frame.to_json(project / "data/train.json", orient="records")
    write(
        project,
        "mlops.yaml",
        """\
        checks:
          s:
            data: data/train.json
            expect:
              - not_null: [age]
              - rows: {min: 1}
        """,
    )
    result = run_cli(project, "check", "s", "--json")
    not_null, rows = json.loads(result.stdout)["suites"][0]["results"]
    expected = pd.read_json(project / "data/train.json")
    assert rows["observed"] == len(expected)
    assert [e["row"] for e in not_null["examples"]] == list(expected.index[expected.age.isna()])


def test_a_column_name_the_file_repeats_is_an_error(git_repo: Path) -> None:
    """With two columns named 'x', a check on 'x' must not quietly look at one of them."""
    write(git_repo, "data/t.csv", "id,x,x\n1,2,\n2,2,3\n")
    write(git_repo, "mlops.yaml", "checks:\n  s: {data: data/t.csv, expect: [{not_null: [x]}]}\n")
    result = run_cli(git_repo, "check", "s")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "mlops: error: mlops.yaml:2: suite 's', check 1 (not_null), key 'x': "
        "column 'x' appears 2 times in data/t.csv; give the columns distinct names"
    ]


def test_custom_function_cannot_change_what_later_checks_see(git_repo: Path) -> None:
    """A custom function that edits its DataFrame in place edits its own copy: the next
    custom function (and the model checks) still see the file as it is."""

    write(git_repo, "data/t.csv", "x,y\n1,2\n3,4\n")
    write(
        git_repo,
        "edits/checks.py",
        """\
        def edit(df):
            df.loc[0, "x"] = 100
            df["x"] = df["x"] * 0
            del df["y"]
            return True


        def same_as_file(df):
            import pandas as pd

            return df.equals(pd.read_csv("data/t.csv")), repr(df.to_dict("list"))
        """,
    )
    write(
        git_repo,
        "mlops.yaml",
        """\
        checks:
          a: {data: data/t.csv, expect: [{custom: edits.checks:edit}]}
          b: {data: data/t.csv, expect: [{custom: edits.checks:same_as_file}]}
        """,
    )
    result = run_cli(git_repo, "check", "a", "b")
    assert result.exit_code == 0, result.stdout + result.stderr


def test_json_lines_column_of_nulls_reads_as_pandas(git_repo: Path) -> None:
    """A JSON-lines column that is null on every row is float NaN to pandas, as an empty
    CSV column is: numeric checks pass over it instead of failing on dtype null."""
    import pandas as pd

    write(git_repo, "data/t.jsonl", '{"a": null, "b": 1}\n{"a": null, "b": 2}\n')
    write(
        git_repo,
        "mlops.yaml",
        """\
        checks:
          s:
            data: data/t.jsonl
            expect:
              - schema: {a: float}
              - between: {a: [0, 1]}
        """,
    )
    result = run_cli(git_repo, "check", "s", "--json")
    schema, between = json.loads(result.stdout)["suites"][0]["results"]
    assert schema["observed"] == str(pd.read_json(git_repo / "data/t.jsonl", lines=True).a.dtype)
    assert (result.exit_code, between["status"]) == (0, "pass"), result.stdout


HEADER_ONLY_SUITE = """\
checks:
  s:
    data: DATA
    expect:
      - schema: {age: int, name: str}
      - schema: {age: float}
      - rows: {min: 1}
      - not_null: [age, name]
      - between: {age: [0, 120]}
      - unique: [age]
      - allowed: {name: [a]}
      - regex: {name: 'a+'}
      - class_balance: {name: {min: 0.1}}
      - no_duplicate_rows: true
"""


def test_header_only_csv_reads_as_pandas(git_repo: Path) -> None:
    """A CSV with a header and no rows: pandas reads its columns as dtype object (not
    float64, as a column of empty cells with rows is). int and float do not match
    object; str does, as pandas.api.types.is_string_dtype says of an empty object
    column. rows: fails; the checks of values pass (there are none)."""
    import pandas as pd
    from pandas.testing import assert_frame_equal

    write(git_repo, "data/t.csv", "age,name\n")
    write(git_repo, "mlops.yaml", HEADER_ONLY_SUITE.replace("DATA", "data/t.csv"))
    result = run_cli(git_repo, "check", "s", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    results = json.loads(result.stdout)["suites"][0]["results"]
    expected = pd.read_csv(git_repo / "data/t.csv")
    age, name, age_float = (r for r in results if r["check"] == "schema")
    assert {r["observed"] for r in (age, name, age_float)} == {str(expected.age.dtype)}
    assert str(expected.name.dtype) == "object"
    assert [r["status"] for r in (age, name, age_float)] == ["fail", "pass", "fail"]
    assert age["message"] == "column 'age' has dtype object, expected int"
    assert age_float["message"] == "column 'age' has dtype object, expected float"
    assert pd.api.types.is_string_dtype(expected.name)
    rows = next(r for r in results if r["check"] == "rows")
    assert (rows["status"], rows["observed"]) == ("fail", 0)
    others = [r for r in results if r["check"] not in ("schema", "rows")]
    assert len(others) == 8 and {r["status"] for r in others} == {"pass"}, others
    # A custom check's frame is pandas' own read.
    assert_frame_equal(DataStore(git_repo).table("data/t.csv", "data").frame, expected)
    # With rows, a column of empty cells is float64 still, as pandas reads it.
    write(git_repo, "data/t.csv", "age,name\n,a\n,a\n")
    result = run_cli(git_repo, "check", "s", "--json")
    got = {(r["check"], r["column"]): r for r in json.loads(result.stdout)["suites"][0]["results"]}
    expected = pd.read_csv(git_repo / "data/t.csv")
    assert got["schema", "age"]["observed"] == str(expected.age.dtype) == "float64"
    assert got["between", "age"]["status"] == "pass"


def test_zero_rows_parquet_and_json_lines_read_as_pandas(git_repo: Path) -> None:
    """Parquet keeps its column types with no rows (a column of None only is object to
    pandas, rows or not); an empty JSON-lines file has no columns, to pandas as here."""
    import pandas as pd

    frame = pd.DataFrame(
        {"age": [3], "name": ["a"], "score": [0.5], "none": pd.Series([None], dtype=object)}
    )
    for rows in (0, 1):
        frame.iloc[:rows].to_parquet(git_repo / "t.parquet")
        expected = pd.read_parquet(git_repo / "t.parquet")
        data = DataStore(git_repo).table("t.parquet", "data")
        assert data.rows == rows
        write(
            git_repo,
            "mlops.yaml",
            "checks:\n  s:\n    data: t.parquet\n    expect:\n"
            "      - schema: {age: int, name: str, score: float, none: int}\n",
        )
        result = run_cli(git_repo, "check", "s", "--json")
        schema = json.loads(result.stdout)["suites"][0]["results"]
        assert [r["observed"] for r in schema] == [str(t) for t in expected.dtypes], rows
        assert [r["status"] for r in schema] == ["pass", "pass", "pass", "fail"]
    (git_repo / "t.jsonl").write_text("")
    assert len(pd.read_json(git_repo / "t.jsonl", lines=True).columns) == 0
    data = DataStore(git_repo).table("t.jsonl", "data")
    assert (data.rows, data.columns) == (0, ())
