"""One PSI: the ``drift:`` data check and ``mlops monitor`` bin and score alike.

Both use ``mlops.tables.stats``; on the same data they must report the same PSI for a
continuous column, an integer-valued one and a categorical one. ``mlops.tables`` is a
foundation: it imports nothing above ``core``, ``storage`` and ``errors``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.checks import load_suites, run_suites
from mlops.monitor.drift import detect_drift
from mlops.monitor.monitoring import read_frame
from mlops.tables.stats import bin_counts, psi, psi_edges
from tests.helpers.cli import run_cli
from tests.helpers.monitor import build_project, copy_project, set_monitor, write_batch

MAX_PSI = 0.2


def sample(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """Columns of each kind: continuous (with gaps), integers with many ties, integers
    with few values (one rare between two common), and text categories."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.6 if shifted else 3.0, 1.0, rows).round(2)
    amount[rng.random(rows) < 0.02] = np.nan
    levels = [0.1, 0.5, 0.4] if shifted else [0.55, 0.01, 0.44]
    plans = [0.2, 0.3, 0.5] if shifted else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.poisson(4.5 if shifted else 3.0, rows),
            "level": rng.choice([0, 1, 2], rows, p=levels),
            "plan": rng.choice(["free", "pro", "team"], rows, p=plans),
        }
    )


def check_psi(root: Path, data: str, reference: str, columns: list[str]) -> dict[str, Any]:
    """PSI per column from the real ``drift:`` check, run as ``mlops check`` runs it."""
    (root / "mlops.yaml").write_text(
        "checks:\n  s:\n"
        f"    data: {data}\n"
        "    expect:\n"
        f"      - drift: {{reference: {reference}, max_psi: {MAX_PSI}, columns: {columns}}}\n"
    )
    report = run_suites(load_suites(root / "mlops.yaml").values(), root)
    assert {r.status for r in report.results} <= {"pass", "fail"}, report.to_dict()
    return {str(r.column): r for r in report.results}


@pytest.mark.parametrize("shifted", [False, True])
def test_check_and_monitor_give_the_same_psi(tmp_path: Path, shifted: bool) -> None:
    sample(4000, 1, False).to_csv(tmp_path / "ref.csv", index=False)
    sample(3000, 2, shifted).to_csv(tmp_path / "cur.csv", index=False)
    columns = ["amount", "visits", "level", "plan"]
    checked = check_psi(tmp_path, "cur.csv", "ref.csv", columns)
    reference, batch = (read_frame(tmp_path / n, n) for n in ("ref.csv", "cur.csv"))
    monitored = {f.name: f for f in detect_drift(reference, batch).features}
    assert [monitored[c].kind for c in columns] == ["numeric"] * 3 + ["categorical"]
    for column in columns:
        figure = monitored[column].psi
        assert checked[column].observed == pytest.approx(figure, abs=1e-6), column
        assert (checked[column].status == "fail") == ("psi" in monitored[column].reasons)
    if shifted:  # every column moved: the two agree that each drifted
        assert all(checked[c].status == "fail" for c in columns)


def test_integer_codes_scored_as_numbers_equal_them_as_categories(tmp_path: Path) -> None:
    """A few distinct values get one bin each: the same PSI as the values as categories."""
    sample(4000, 1, False).to_csv(tmp_path / "ref.csv", index=False)
    sample(3000, 2, True).to_csv(tmp_path / "cur.csv", index=False)
    reference, batch = (read_frame(tmp_path / n, n)[["level"]] for n in ("ref.csv", "cur.csv"))
    as_numbers = detect_drift(reference, batch)
    as_categories = detect_drift(reference, batch, categorical=["level"])
    checked = check_psi(tmp_path, "cur.csv", "ref.csv", ["level"])["level"]
    assert as_numbers.features[0].psi == pytest.approx(as_categories.features[0].psi, rel=1e-12)
    assert checked.observed == pytest.approx(as_categories.features[0].psi, abs=1e-6)
    # The rare middle value, which took over, has a bin of its own and is named.
    assert checked.examples[0]["bin"] == "(0, 1]"
    assert checked.examples[0]["reference"] < 0.05 < checked.examples[0]["current"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("tables") / "template")


def test_mlops_check_and_mlops_monitor_agree_on_a_registered_model(
    template: Path, tmp_path: Path
) -> None:
    """The CLI end to end: ``mlops monitor`` of a batch against sensor@production (its
    reference is the training data, found through lineage) and ``mlops check`` of a
    ``drift:`` check of that batch against the same file. ``temperature`` and
    ``vibration`` are continuous, ``line`` is an integer code 0-2: the monitor scores it
    as declared (categorical), then as numbers."""
    project = copy_project(template, tmp_path / "project")
    write_batch(project, "hot.csv", seed=3, hot=True)
    text = (project / "mlops.yaml").read_text()
    suite = (
        "\nchecks:\n  batch:\n    data: hot.csv\n    expect:\n"
        "      - drift: {reference: data/train.csv, columns: [temperature, vibration, line]}\n"
    )
    (project / "mlops.yaml").write_text(text.replace("\nchecks:\n", suite, 1))
    result = run_cli(project, "check", "batch", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr  # the hot batch drifted
    [suite_result] = json.loads(result.stdout)["suites"]
    checked = {r["column"]: r["observed"] for r in suite_result["results"]}

    def monitored() -> dict[str, Any]:
        result = run_cli(project, "monitor", "--data", "hot.csv", "--json")
        assert result.exit_code == 1, result.stdout + result.stderr  # an alert
        features = json.loads(result.stdout)["record"]["drift"]["features"]
        return {f["name"]: f for f in features}

    declared = monitored()
    assert declared["line"]["kind"] == "categorical"
    set_monitor(
        project,
        """\
        monitor:
          model: sensor@production
          label: failure
          thresholds: {ks_pvalue: 0.01, chi2_pvalue: 0.01, share: 0.5}
        """,
    )
    as_numbers = monitored()
    assert as_numbers["line"]["kind"] == "numeric"
    for scores in (declared, as_numbers):
        for name in ("temperature", "vibration", "line"):
            assert checked[name] == pytest.approx(scores[name]["psi"], abs=1e-6), name
    assert checked["temperature"] > MAX_PSI and checked["line"] > MAX_PSI


def test_few_values_get_a_bin_each_and_many_get_quantile_bins() -> None:
    # A rare value between two common ones is not merged into a neighbour's bin.
    levels = np.sort(np.repeat([0, 1, 2], [550, 10, 440]))
    assert psi_edges(levels, 10).tolist() == [0, 1]
    assert bin_counts(levels, psi_edges(levels, 10)).tolist() == [550, 10, 440]
    # Exactly ``bins`` distinct values: still one bin each; one more: quantile bins.
    assert psi_edges(np.arange(10), 10).tolist() == list(range(9))
    assert psi_edges(np.arange(11), 10).tolist() == list(range(1, 10))
    many = np.sort(np.random.default_rng(0).normal(size=10_000))
    edges = psi_edges(many, 10)
    assert len(edges) == 9 and np.all(np.diff(edges) > 0)
    assert all(abs(c - 1000) <= 1 for c in bin_counts(many, edges).tolist())
    # Heavy ties among many values: ties merged, a value's copies never in two bins.
    skewed = np.sort(np.concatenate([np.zeros(7000), np.arange(1, 3001)]))
    edges = psi_edges(skewed, 10)
    assert edges[0] == 0 and len(edges) == len(set(edges.tolist())) <= 9
    assert bin_counts(skewed, edges)[0] == 7000
    assert psi_edges(np.array([]), 10).size == 0


def test_psi_of_equal_samples_is_zero_and_of_an_empty_side_infinite() -> None:
    counts = np.array([5, 0, 7], dtype=np.int64)
    assert psi(counts, counts.copy()) == 0.0
    assert psi(counts, np.zeros(3, dtype=np.int64)) == float("inf")


def test_tables_imports_only_foundations() -> None:
    """``mlops.tables`` sits below the features: checks, monitor, registry and serve
    import it, never the other way."""
    allowed = ("mlops.tables", "mlops.core", "mlops.storage", "mlops.errors")
    package = Path(__file__).resolve().parents[1] / "mlops" / "tables"
    found = []
    for source in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            found += [(source.name, n) for n in names if n.split(".")[0] == "mlops"]
    assert found, "no mlops imports seen: the walk is broken"
    assert [f for f in found if not f[1].startswith(allowed)] == []
