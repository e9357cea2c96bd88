"""Data checks on pyarrow Tables: no pandas import, arrow semantics, chunked and sliced data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops.checks import CheckResult, check_frame, load_suites, run_suites
from mlops.checks.files import DataStore
from mlops.tables import columns as col
from tests.helpers.checks import data_project, only
from tests.helpers.cli import run_cli
from tests.helpers.files import write

EVERY_DATA_CHECK = """\
checks:
  everything:
    data: data/people.csv
    expect:
      - schema: {id: int, age: int, city: str, score: float}
      - not_null: [id, age, city]
      - unique: [id, city, [id, city]]
      - between: {age: [0, 120], score: [0, 1]}
      - allowed: {city: [paris, lyon], label: [0, 1]}
      - regex: {city: '[a-z]+'}
      - class_balance: {label: {min: 0.1}}
      - rows: {min: 2}
      - no_duplicate_rows: true
      - drift: {reference: data/people.csv, max_psi: 0.2}
"""
PEOPLE = """\
id,age,city,score,label
1,34,paris,0.5,0
2,,lyon,0.25,1
3,150,rome,,1
3,40,Paris!,0.75,2
3,150,rome,,1
"""


def suite_results(root: Path, expect: str, data: str = "data/t.csv") -> list[CheckResult]:
    body = "".join(f"      {line.strip()}\n" for line in expect.strip().splitlines())
    write(root, "mlops.yaml", f"checks:\n  s:\n    data: {data}\n    expect:\n{body}")
    return list(run_suites(load_suites(root / "mlops.yaml").values(), root).results)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = data_project(tmp_path / "p", EVERY_DATA_CHECK, package=f"pkg_{tmp_path.name}")
    write(root, "data/people.csv", PEOPLE)
    return root


def test_data_checks_never_import_pandas(project: Path) -> None:
    """Passing and failing data checks alike: ``mlops check`` as a real process."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlops", "check", "everything"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "23 checks: 14 ok, 9 failed, 0 could not run" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "pyarrow" in imported
    # pyarrow.compute builds a wrapper per function at import: its core module is enough.
    assert not {"pandas", "pyarrow.dataset", "sklearn", "pyarrow.compute"} & imported
    assert "mlops: error" not in proc.stderr, proc.stderr


def test_int_column_with_empty_cells(project: Path) -> None:
    results = run_suites(load_suites(project / "mlops.yaml").values(), project).results
    got = {(r.check, r.column): r for r in results}
    assert got["schema", "age"].observed == "int64" and got["schema", "age"].status == "pass"
    assert got["not_null", "age"].examples == ({"row": 1},)
    between = got["between", "age"]
    # Values stay integers: 150, not 150.0 as pandas would give for a column with a null.
    assert between.examples == ({"row": 2, "value": 150}, {"row": 4, "value": 150})
    assert between.observed == {"min": 34, "max": 150}
    assert got["unique", "id"].examples == ({"value": 3, "rows": [2, 3, 4], "count": 3},)
    assert got["unique", "city"].examples == ({"value": "rome", "rows": [2, 4], "count": 2},)
    assert got["unique", "id+city"].examples == (
        {"value": [3, "rome"], "rows": [2, 4], "count": 2},
    )
    city = got["allowed", "city"]
    assert city.examples == (
        {"value": "rome", "count": 2, "rows": [2, 4]},
        {"value": "Paris!", "count": 1, "rows": [3]},
    )
    assert got["allowed", "label"].message == "1 value of 'label' not allowed: 2 (1x, row 3)"
    assert got["regex", "city"].examples == ({"row": 3, "value": "Paris!"},)
    assert got["class_balance", "label"].observed == {"1": 0.6, "0": 0.2, "2": 0.2}
    assert got["no_duplicate_rows", None].examples == ({"rows": [2, 4]},)
    assert {r.status for r in results if r.check == "drift"} == {"pass"}


def _chunked(table: Any) -> Any:
    """``table`` cut into chunks of 3 rows: slices of its buffers at offsets 0, 3, 6, 9."""
    import pyarrow as pa

    return pa.Table.from_batches(table.to_batches(max_chunksize=3))


def test_chunked_and_sliced_tables(tmp_path: Path) -> None:
    """Arrow data in many chunks, starting at offsets: the numbers read from the buffers
    match pyarrow's own conversion."""
    import numpy as np
    import pyarrow as pa

    ages = [5, None, 7, 200, None, 9, 9, 11, 12, None]
    table = pa.table(
        {
            "age": pa.array(ages, type=pa.int32()),
            "score": pa.array([0.5, None, float("nan"), 1.0, 2.0, None, 0.1, 0.2, 0.3, 0.4]),
            "ok": pa.array([True, False, None, True, True, False, True, None, True, True]),
            "city": pa.array(["a", "b", None, "a", "c", "c", "a", "b", "a", None]),
        }
    )
    chunked = _chunked(table)
    assert [c.offset for c in chunked.column("age").chunks] == [0, 3, 6, 9]
    for name in ("age", "score"):
        expected = table.column(name).to_numpy()  # pyarrow's conversion (imports pandas)
        np.testing.assert_array_equal(col.to_numpy(chunked.column(name)), expected)
    assert col.to_numpy(chunked.column("ok")).tolist() == [
        bool(v) for v in table.column("ok").to_pylist()
    ]
    assert col.missing(chunked.column("score")).tolist() == [
        v is None or v != v for v in table.column("score").to_pylist()
    ]
    assert col.value_counts(chunked.column("city"), dropna=False) == (
        ["a", "b", "c", None],
        pytest.approx([4, 2, 2, 2]),
    )
    write(
        tmp_path,
        "mlops.yaml",
        """\
        checks:
          s:
            data: batch.csv
            expect:
              - not_null: [age, score]
              - between: {age: [0, 100]}
              - unique: [age]
              - allowed: {city: [a, b, c]}
        """,
    )
    suite = load_suites(tmp_path / "mlops.yaml")["s"]
    results = {(r.check, r.column): r for r in check_frame(suite, chunked, tmp_path).results}
    assert results["not_null", "age"].examples == ({"row": 1}, {"row": 4}, {"row": 9})
    assert results["not_null", "score"].failing == 3  # NaN counts as missing, as in pandas
    assert results["between", "age"].examples == ({"row": 3, "value": 200},)
    assert results["unique", "age"].examples == ({"value": 9, "rows": [5, 6], "count": 2},)
    assert results["allowed", "city"].status == "pass"


def test_check_frame_takes_pandas_with_mixed_objects(tmp_path: Path) -> None:
    """A column of mixed Python objects (arrow cannot type it) is checked as text."""
    import pandas as pd

    write(
        tmp_path,
        "mlops.yaml",
        """\
        checks:
          s:
            data: batch.csv
            expect:
              - not_null: [code]
              - allowed: {code: ['1', x]}
              - custom: checks_mixed:first_is_int
        """,
    )
    write(tmp_path, "checks_mixed.py", "def first_is_int(df):\n    return df['code'][0] == 1\n")
    frame = pd.DataFrame({"code": [1, "x", None, 2.5]})
    suite = load_suites(tmp_path / "mlops.yaml")["s"]
    not_null, allowed, custom = check_frame(suite, frame, tmp_path).results
    assert not_null.examples == ({"row": 2},)
    assert allowed.examples == ({"value": "2.5", "count": 1, "rows": [3]},)
    assert custom.status == "pass"  # the custom function got the frame itself, unconverted


def test_regex_beyond_re2_uses_python(tmp_path: Path) -> None:
    data_project(tmp_path / "p", "checks: {}\n", package=f"pkg_{tmp_path.name}")
    root = tmp_path / "p"
    write(root, "data/t.csv", "word\naaa\nbb\nabab\n")
    # A backreference: RE2 (arrow's engine) refuses it, Python's re evaluates it.
    result = only(suite_results(root, r"- regex: {word: '(\w)\1+'}"))
    assert (result.status, result.examples) == ("fail", ({"row": 2, "value": "abab"},))


def test_parquet_nan_category_and_index(tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_project(tmp_path / "p", "checks: {}\n", package=f"pkg_{tmp_path.name}")
    root = tmp_path / "p"
    frame = pd.DataFrame(
        {"kind": pd.Categorical(["a", "b", "a", "c"]), "x": [1.0, 2.0, 3.0, 4.0]},
        index=[10, 11, 12, 13],
    )
    frame.to_parquet(root / "data/t.parquet")
    results = suite_results(
        root,
        "- schema: {kind: category, x: float}\n- allowed: {kind: [a, b]}\n- unique: [kind]",
        data="data/t.parquet",
    )
    assert [(r.status, r.observed) for r in results[:2]] == [
        ("pass", "category"),
        ("pass", "float64"),
    ]
    assert results[2].examples == ({"value": "c", "count": 1, "rows": [3]},)
    assert results[3].examples == ({"value": "a", "rows": [0, 2], "count": 2},)
    store = DataStore(root)
    # The stored pandas index is not a column.
    assert store.table("data/t.parquet", "data").columns == ("kind", "x")
    # A NaN stored as a number (not as a null) is missing too.
    pq.write_table(pa.table({"x": pa.array([1.0, float("nan"), 3.0])}), root / "data/n.parquet")
    result = only(suite_results(root, "- not_null: [x]", data="data/n.parquet"))
    assert (result.status, result.examples) == ("fail", ({"row": 1},))


def test_json_lines_pyarrow_cannot_type_read_by_pandas(tmp_path: Path) -> None:
    data_project(tmp_path / "p", "checks: {}\n", package=f"pkg_{tmp_path.name}")
    root = tmp_path / "p"
    write(root, "data/t.jsonl", '{"v": 1}\n{"v": "one"}\n{"v": null}\n')
    results = suite_results(root, "- not_null: [v]\n- rows: {min: 3}", data="data/t.jsonl")
    assert [(r.status, r.failing) for r in results] == [("fail", 1), ("pass", 0)]


def _numbers(rows: int) -> str:
    return "".join(f"{i},{i % 7},c{i % 3}\n" for i in range(rows))


def _gaps(rows: int) -> str:
    """Integers, floats and text, each with empty fields here and there."""
    lines = (
        (i, "" if i % 7 == 3 else i % 5, "" if i % 13 == 5 else i / 4, "" if i % 11 else "c")
        for i in range(rows)
    )
    return "".join(",".join(map(str, line)) + "\n" for line in lines)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("plain", "id,k,city\n" + _numbers(3000)),
        # Later lines change what a column is: pyarrow promotes it in a whole read.
        ("int then float", "id,k,city\n" + _numbers(3000) + "1.5,2,x\n"),
        ("empty then text", "id,k,city\n" + "1,,a\n" * 3000 + "2,word,b\n"),
        ("empty then numbers", "id,k,city\n" + "1,,a\n" * 3000 + _numbers(3000)),
        ("quoted", "id,k,city\n" + _numbers(3000) + '7,8,"a,\nb"\n'),
        ("crlf, no final newline", "id,k,city\r\n" + _numbers(3000).replace("\n", "\r\n")[:-2]),
        ("blank lines", "id,k,city\n" + _numbers(1500) + "\n\n" + _numbers(1500)),
        ("tab separated", "id\tk\tcity\n" + _numbers(3000).replace(",", "\t")),
        ("numbers with nulls", "id,k,x,city\n" + _gaps(3000)),
        # More rows than the first range's long lines suggest: the arrays grow.
        (
            "long lines, then short",
            "id,k,city\n" + "1,2,%s\n" % ("y" * 500) * 10 + "3,4,z\n" * 9000,
        ),
    ],
)
def test_csv_read_in_ranges_is_the_whole_read(tmp_path: Path, name: str, body: str) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from mlops.tables.read import read_csv_ranges

    path = tmp_path / "t.csv"
    path.write_bytes(body.encode())
    sep = "\t" if "\t" in body else ","
    header = tuple(body.splitlines()[0].split(sep))
    parse = pcsv.ParseOptions(delimiter=sep, newlines_in_values="quoted" in name)
    for columns in (None, ["k", "city"], ["id", "x"] if "x" in header else ["id"]):
        convert = pcsv.ConvertOptions(include_columns=columns or [])
        whole = pcsv.read_csv(path, parse_options=parse, convert_options=convert)
        # 4 KiB ranges: about ten pieces of this file.
        ranged = read_csv_ranges(path, header, parse, convert, 4096)
        assert ranged.schema == whole.schema, name
        assert ranged.combine_chunks().equals(whole.combine_chunks()), name
        if "k" in ranged.schema.names:
            assert pa.types.is_null(ranged.schema.field("k").type) is False


def test_tables_come_with_one_chunk_per_column(tmp_path: Path) -> None:
    """Files read in several pieces (row groups, CSV blocks) give one chunk per column,
    with the same values, the planned columns only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops.tables.read import read_table

    rows = 100_000
    expected = pa.table(
        {"id": pa.array(range(rows)), "city": pa.array([f"c{i % 3}" for i in range(rows)])}
    )
    pq.write_table(expected, tmp_path / "t.parquet", row_group_size=rows // 4)
    # About 1.5 MiB: more than one of pyarrow's 1 MiB blocks.
    body = "".join(f"{i},c{i % 3},{'x' * 5}\n" for i in range(rows))
    (tmp_path / "t.csv").write_text("id,city,pad\n" + body)
    assert pq.read_table(tmp_path / "t.parquet").column("id").num_chunks == 4
    for name in ("t.parquet", "t.csv"):
        for columns in (None, frozenset({"id", "city"})):
            data = read_table(tmp_path / name, name, "data", columns)
            table = data.table.select(["id", "city"])
            assert [c.num_chunks for c in data.table.columns] == [1] * data.table.num_columns
            assert data.table.num_columns == (3 if columns is None and name == "t.csv" else 2)
            assert table.equals(expected), name


def test_big_csv_checks_read_in_ranges(project: Path) -> None:
    """A file past the range size goes through the ranged read, end to end."""
    from mlops.tables.read import CSV_RANGE_BYTES

    pad = "x" * 40
    rows = 2 * CSV_RANGE_BYTES // 50 + 1000
    lines = (f"{i},{i % 100},{'ab'[i % 2]},{pad}\n" for i in range(rows))
    (project / "data").mkdir(exist_ok=True)
    with (project / "data/big.csv").open("w") as out:
        out.write("id,age,city,pad\n")
        out.writelines(lines)
    assert (project / "data/big.csv").stat().st_size > 2 * CSV_RANGE_BYTES
    results = suite_results(
        project,
        f"""
        - unique: [id]
        - between: {{age: [0, 99]}}
        - allowed: {{city: [a, b]}}
        - rows: {{min: {rows}, max: {rows}}}
        """,
        "data/big.csv",
    )
    assert [r.status for r in results] == ["pass"] * 4, results


def test_regex_unicode_classes_match_as_pandas(git_repo: Path) -> None:
    import pandas as pd

    # RE2's \w, \d and \b know ASCII only; Python's re, which pandas uses, knows Unicode.
    write(git_repo, "data/t.csv", "name,code\nJosé,١٢٣\n日本,42\nx y,7a\nünï cödé,9\n")
    write(
        git_repo,
        "mlops.yaml",
        r"""
        checks:
          s:
            data: data/t.csv
            expect:
              - regex: {name: '\w+(\b \w+)?', code: '\d+'}
        """,
    )
    result = run_cli(git_repo, "check", "s", "--json")
    assert result.exit_code == 1  # '7a' is no number
    frame = pd.read_csv(git_repo / "data/t.csv", dtype=str)
    patterns = {"name": r"\w+(\b \w+)?", "code": r"\d+"}
    for check in json.loads(result.stdout)["suites"][0]["results"]:
        wrong = frame.index[~frame[check["column"]].str.fullmatch(patterns[check["column"]])]
        assert [e["row"] for e in check["examples"]] == list(wrong), check


@pytest.mark.parametrize("second", ["c d", "c\x0bd", "c\x1fd", "c\xa0d"])
def test_regex_space_class_matches_as_pandas(git_repo: Path, second: str) -> None:
    """RE2's \\s leaves out \\v, \\x1c-\\x1f and Unicode spaces, Python's re does not:
    the same verdicts as pandas whichever of them the text holds."""
    import pandas as pd

    (git_repo / "t.csv").write_text(f"v\na b\n{second}\nab\n", encoding="utf-8")
    write(
        git_repo,
        "mlops.yaml",
        r"""
        checks:
          s: {data: t.csv, expect: [{regex: {v: '\w\s\w'}}]}
        """,
    )
    result = run_cli(git_repo, "check", "s", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr  # 'ab' has no space
    frame = pd.read_csv(git_repo / "t.csv", dtype=str)
    wrong = frame.index[~frame["v"].str.fullmatch(r"\w\s\w")]
    [check] = json.loads(result.stdout)["suites"][0]["results"]
    assert [e["row"] for e in check["examples"]] == list(wrong) == [2]


def test_narrow_integer_columns_count_as_pandas(git_repo: Path) -> None:
    """int8 and int16 columns (Parquet keeps them narrow) whose values span more than the
    type holds: class shares, allowed values and duplicate rows as pandas finds them."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "i8": np.array([-128, 127, -128, 5, 127, -128], dtype=np.int8),
            "i16": np.array([-32768, 32767, 0, 32767, 1, -32768], dtype=np.int16),
        }
    )
    frame.to_parquet(git_repo / "data.parquet")
    write(
        git_repo,
        "mlops.yaml",
        """\
        checks:
          s:
            data: data.parquet
            expect:
              - class_balance: {i8: {max: 1}, i16: {max: 1}}
              - allowed: {i8: [-128, 127], i16: [-32768, 32767]}
              - no_duplicate_rows: true
        """,
    )
    result = run_cli(git_repo, "check", "s", "--json")
    got = {(r["check"], r["column"]): r for r in json.loads(result.stdout)["suites"][0]["results"]}
    for name in ("i8", "i16"):
        shares = frame[name].value_counts(normalize=True)
        assert got["class_balance", name]["observed"] == {
            str(k): round(v, 4) for k, v in shares.items()
        }
        bad = frame.index[~frame[name].isin([-128, 127, -32768, 32767])]
        assert got["allowed", name]["failing"] == len(bad)
    assert got["no_duplicate_rows", None]["failing"] == frame.duplicated(keep=False).sum()


NESTED_JSONL = """\
{"id": 1, "tags": [1, 2], "meta": {"a": 1, "b": "x"}, "label": "p"}
{"id": 2, "tags": [1, 2], "meta": {"a": 1, "b": "x"}, "label": "p"}
{"id": 3, "tags": [2, 1], "meta": {"a": 2, "b": "x"}, "label": "q"}
{"id": 4, "tags": [], "meta": null, "label": "q"}
{"id": 5, "tags": null, "meta": {"a": 1, "b": null}, "label": "q"}
{"id": 6, "tags": [1, null], "meta": {"a": 1, "b": null}, "label": "q"}
{"id": 7, "tags": [1, 2], "meta": {"a": 1, "b": "x"}, "label": "p"}
"""
NESTED_SUITE = """\
checks:
  s:
    data: t.jsonl
    expect:
      - unique: [tags, meta, [id, tags]]
      - allowed: {tags: [[1, 2], [2, 1], []], meta: [{a: 1, b: x}]}
      - class_balance: {tags: {max: 0.4}, meta: {max: 0.4}}
      - no_duplicate_rows: [tags, meta, label]
      - drift: {reference: t.jsonl, columns: [tags, meta]}
"""


def _hashable(value: Any) -> Any:
    """A list or dict as a tuple, so that pandas can hash it."""
    if isinstance(value, list):
        return tuple(map(_hashable, value))
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


def test_nested_json_values_compare_as_pandas_compares_them(tmp_path: Path) -> None:
    """Lists and objects in JSON lines are compared by value, as pandas compares the
    Python lists and dicts it reads (duplicated, isin, value_counts); nulls are missing.
    The same on a table cut into slices at offsets (chunked), read from its buffers."""
    import pandas as pd

    write(tmp_path, "t.jsonl", NESTED_JSONL)
    write(tmp_path, "mlops.yaml", NESTED_SUITE)
    frame = pd.read_json(tmp_path / "t.jsonl", lines=True)
    suite = load_suites(tmp_path / "mlops.yaml")["s"]
    table = DataStore(tmp_path).table("t.jsonl", "data").table
    from_file = run_suites([suite], tmp_path).results
    for results in (from_file, check_frame(suite, _chunked(table), tmp_path).results):
        got = {(r.check, r.column): r for r in results}
        assert {r.status for r in results} <= {"pass", "fail"}, [r.message for r in results]
        for name in ("tags", "meta"):
            series = frame[name]
            dup = series.duplicated(keep=False) & series.notna()
            assert got["unique", name].failing == dup.sum(), name
            first = got["unique", name].examples[0]
            assert first["rows"] == list(
                series.index[series.map(_hashable) == _hashable(first["value"])]
            )
            shares = series.value_counts(normalize=True)
            assert got["class_balance", name].observed == {
                str(k): round(v, 4) for k, v in shares.items()
            }
            allowed = next(c.args for c in suite.checks if c.kind == "allowed")
            bad = ~series.isin(dict(allowed)[name]) & series.notna()
            assert got["allowed", name].failing == bad.sum(), name
            assert got["drift", name].status == "pass"
        assert got["unique", "id+tags"].status == "pass"
        # pandas' DataFrame.duplicated cannot hash lists: the same rows with tuples for them.
        hashable = frame[["tags", "meta", "label"]].map(_hashable)
        assert (
            got["no_duplicate_rows", "tags+meta+label"].failing
            == hashable.duplicated(keep=False).sum()
        )
        assert got["unique", "tags"].examples[0] == {"value": [1, 2], "rows": [0, 1, 6], "count": 3}
    report = [r.to_dict() for r in from_file]
    assert json.loads(json.dumps(report)) == report  # lists and dicts as JSON, not text


def test_nested_codes_on_sliced_arrays() -> None:
    """Codes of lists, maps, fixed-size lists and structs, nested in each other and sliced
    (arrow arrays that start at an offset into their buffers): equal where the Python
    values are equal, numbered as they first occur, -1 where missing."""
    import pyarrow as pa

    arrays = [
        pa.array([[{"x": [1, 2]}], [{"x": [1, 2]}], [{"x": [2]}], None, [{"x": [2]}], []]),
        pa.array([[("k", 1)], [("j", 2)], [("k", 1)], None], pa.map_(pa.string(), pa.int64())),
        pa.array([[1, 2], [3, 4], None, [1, 2], [3, None]], pa.list_(pa.int64(), 2)),
        pa.array([{"a": 1, "b": "x"}, None, {"a": 1, "b": None}, {"a": 1, "b": "x"}]),
        pa.array([["a"], ["b", None], [], ["b", None], None], pa.large_list(pa.string())),
    ]
    for array in arrays:
        for part in (array, array.slice(1), array.slice(1, len(array) - 2)):
            values = part.to_pylist()
            numbers: dict[Any, int] = {}
            for v in values:
                if v is not None:
                    numbers.setdefault(_hashable(v), len(numbers))
            found, distinct = col.codes(part)
            assert found.tolist() == [-1 if v is None else numbers[_hashable(v)] for v in values], (
                array.type,
                values,
            )
            assert list(map(_hashable, distinct.to_pylist())) == list(numbers)


def test_values_arrow_cannot_compare_are_a_clear_error(tmp_path: Path) -> None:
    """A union column (arrow cannot hash its values): the checks that compare values say
    so in one line naming the suite, check and column; the others still run."""
    import pyarrow as pa

    union = pa.UnionArray.from_sparse(
        pa.array([0, 1, 0], type=pa.int8()),
        [pa.array([1, 2, 3]), pa.array(["a", "b", "c"])],
    )
    table = pa.table({"u": union, "n": [1, 2, 3]})
    write(
        tmp_path,
        "mlops.yaml",
        """\
        checks:
          s:
            data: batch.csv
            expect:
              - unique: [u]
              - allowed: {u: [1]}
              - class_balance: {u: {max: 1}}
              - no_duplicate_rows: true
              - not_null: [u]
        """,
    )
    suite = load_suites(tmp_path / "mlops.yaml")["s"]
    results = check_frame(suite, table, tmp_path).results
    assert [r.status for r in results] == ["error"] * 4 + ["pass"]
    for result, (line, kind) in zip(
        results[:4],
        [(5, "unique"), (6, "allowed"), (7, "class_balance"), (8, "no_duplicate_rows")],
        strict=True,
    ):
        assert result.message == (
            f"mlops.yaml:{line}: suite 's', check {line - 4} ({kind}), key 'u': column 'u' "
            f"holds nested values ({union.type}) that {kind} cannot compare"
        )


def test_uuid_parquet_column_compares_by_value(tmp_path: Path) -> None:
    """A Parquet UUID column (an arrow extension type) is compared by its stored bytes."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not hasattr(pa, "uuid"):
        pytest.skip("pyarrow has no UUID type before version 18")
    ids = [bytes([i]) * 16 for i in (1, 2, 1)]
    storage = pa.array(ids, pa.binary(16))
    pq.write_table(
        pa.table({"u": pa.ExtensionArray.from_storage(pa.uuid(), storage)}), tmp_path / "t.parquet"
    )
    expected = pd.read_parquet(tmp_path / "t.parquet").u.duplicated(keep=False)
    result = only(suite_results(tmp_path, "- unique: [u]", data="t.parquet"))
    assert (result.status, result.failing) == ("fail", expected.sum())
    assert result.examples[0]["rows"] == list(expected.index[expected])
