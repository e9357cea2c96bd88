"""Drift engine: statistics checked against scipy, decisions, bad input, JSON round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from mlops.errors import ConfigError, MonitorError
from mlops.monitor.drift import (
    MISSING_LABEL,
    DriftReport,
    DriftThresholds,
    detect_drift,
    prediction_drift,
)
from mlops.tables.stats import PSI_EPSILON, ks_statistic_sorted, ks_test_sorted

# Our KS statistic is exact: it must equal scipy's to rounding.
STATISTIC_TOLERANCE = 1e-12
# Above 10,000 rows per side p-values come from the corrected limiting distribution.
PVALUE_RELATIVE_TOLERANCE = 1e-2


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colours = np.array(["red", "green", "blue", "grey"])
    weights = np.array([0.4, 0.3, 0.2, 0.1]) if shift == 0 else np.array([0.1, 0.2, 0.3, 0.4])
    return pd.DataFrame(
        {
            "height": rng.normal(170 + 10 * shift, 10, rows),
            "income": rng.lognormal(10, 1, rows),
            "children": rng.poisson(1.5, rows),
            "colour": colours[rng.choice(4, rows, p=weights)],
        }
    )


def psi_by_hand(reference: np.ndarray, batch: np.ndarray) -> float:
    """PSI over (a, b] bins at the reference's deciles, as documented, via pandas.cut."""
    ordered = np.sort(reference)
    edges = np.unique(ordered[(np.arange(1, 10) * ordered.size) // 10])
    bins = [-np.inf, *edges, np.inf]
    p = pd.Series(pd.cut(reference, bins)).value_counts(sort=False).to_numpy() / reference.size
    q = pd.Series(pd.cut(batch, bins)).value_counts(sort=False).to_numpy() / batch.size
    p, q = np.maximum(p, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: (rng.normal(size=3000), rng.normal(0.05, 1, 2500)),
        lambda rng: (rng.normal(size=40_000), rng.normal(0.01, 1, 35_000)),
        lambda rng: (rng.integers(0, 5, 30_000), rng.integers(0, 6, 20_000)),  # many ties
        lambda rng: (
            np.round(rng.exponential(size=50_000), 2),
            np.round(rng.exponential(size=9), 2),
        ),
        lambda rng: (rng.normal(size=1), rng.normal(size=7)),
        lambda rng: (np.arange(100.0), np.arange(100.0) + 1000),  # disjoint
    ],
)
def test_ks_statistic_equals_scipy(make):
    rng = np.random.default_rng(7)
    a, b = (np.sort(x) for x in make(rng))
    expected = ks_2samp(a, b, method="asymp").statistic
    assert abs(ks_statistic_sorted(a, b) - expected) <= STATISTIC_TOLERANCE


def test_ks_statistic_of_identical_samples_is_zero():
    a = np.sort(np.random.default_rng(1).normal(size=50_000))
    assert ks_statistic_sorted(a, a.copy()) == 0.0


def test_ks_pvalue_small_samples_match_scipy_exactly():
    rng = np.random.default_rng(3)
    a, b = np.sort(rng.normal(size=800)), np.sort(rng.normal(0.1, 1, 900))
    expected = ks_2samp(a, b)
    assert ks_test_sorted(a, b) == (expected.statistic, expected.pvalue)


@pytest.mark.parametrize("shift", [0.0, 0.01, 0.02, 0.03, 0.05])
def test_ks_pvalue_large_samples_match_scipy_asymptotic(shift):
    rng = np.random.default_rng(11)
    a, b = np.sort(rng.normal(size=60_000)), np.sort(rng.normal(shift, 1, 50_000))
    expected = ks_2samp(a, b, method="asymp")
    statistic, pvalue = ks_test_sorted(a, b)
    assert abs(statistic - expected.statistic) <= STATISTIC_TOLERANCE
    if expected.pvalue > 1e-14:
        assert pvalue == pytest.approx(expected.pvalue, rel=PVALUE_RELATIVE_TOLERANCE)
    else:
        assert pvalue < 1e-12


def test_numeric_scores_match_scipy_and_psi_definition():
    reference, batch = frame(20_000, 1), frame(15_000, 2, shift=0.3)
    report = detect_drift(reference, batch, categorical=["children"])
    height = next(f for f in report.features if f.name == "height")
    expected = ks_2samp(reference["height"], batch["height"], method="asymp")
    assert height.kind == "numeric" and height.test == "ks"
    assert abs(height.statistic - expected.statistic) <= STATISTIC_TOLERANCE
    assert height.pvalue == pytest.approx(expected.pvalue, rel=PVALUE_RELATIVE_TOLERANCE, abs=1e-14)
    assert height.psi == pytest.approx(
        psi_by_hand(reference["height"].to_numpy(), batch["height"].to_numpy()), rel=1e-9
    )
    assert height.drifted and "ks_pvalue" in height.reasons


def test_categorical_scores_match_chi2_contingency():
    reference, batch = frame(5_000, 1), frame(4_000, 2, shift=0.3)
    report = detect_drift(reference, batch, categorical=["children"])
    table = pd.crosstab(
        np.r_[np.zeros(len(reference)), np.ones(len(batch))],
        np.r_[reference["colour"], batch["colour"]],
    ).to_numpy()
    expected = chi2_contingency(table)
    colour = next(f for f in report.features if f.name == "colour")
    assert colour.kind == "categorical" and colour.test == "chi2"
    assert colour.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert colour.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    p = np.bincount(
        pd.Categorical(reference["colour"], categories=sorted(set(reference["colour"]))).codes
    ) / len(reference)
    q = np.bincount(
        pd.Categorical(batch["colour"], categories=sorted(set(reference["colour"]))).codes
    ) / len(batch)
    assert colour.psi == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-9)
    assert colour.drifted and set(colour.reasons) == {"psi", "chi2_pvalue"}
    # Integer columns declared categorical use the same test over their values.
    children = next(f for f in report.features if f.name == "children")
    assert children.kind == "categorical"
    assert sum(children.histogram.reference) == len(reference)


def test_unseen_category_and_missing_values_count_as_drift():
    reference = pd.DataFrame({"city": ["a", "b"] * 500})
    batch = pd.DataFrame({"city": ["a", "b", "c", None] * 250})
    feature = detect_drift(reference, batch).features[0]
    assert feature.batch_missing == 0.25 and feature.reference_missing == 0.0
    assert {"c", MISSING_LABEL} <= set(feature.histogram.labels)
    assert feature.drifted


def test_missing_numbers_are_left_out_of_ks_and_counted_in_psi():
    rng = np.random.default_rng(5)
    values = rng.normal(size=4000)
    holes = values.copy()
    holes[::4] = np.nan
    report = detect_drift(pd.DataFrame({"x": values}), pd.DataFrame({"x": holes}))
    feature = report.features[0]
    assert feature.batch_missing == 0.25
    assert feature.statistic == ks_2samp(values, holes[~np.isnan(holes)]).statistic
    assert "psi" in feature.reasons  # a quarter of the rows moved to the missing bin


def test_identical_batch_is_healthy_and_share_threshold_decides_dataset_drift():
    reference = frame(3000, 1)
    same = detect_drift(reference, reference.iloc[::-1])
    assert same.drifted_features == () and not same.dataset_drift and same.alerts == ()
    assert all(f.pvalue == 1.0 and f.psi == 0.0 for f in same.features)

    batch = reference.copy()
    batch["height"] = batch["height"] + 50
    strict = detect_drift(reference, batch, thresholds=DriftThresholds(share=0.25))
    lenient = detect_drift(reference, batch, thresholds=DriftThresholds(share=0.5))
    assert strict.drifted_features == ("height",) and strict.drifted_share == 0.25
    assert strict.dataset_drift and "height" in strict.alerts[0]
    assert not lenient.dataset_drift


def test_disabled_tests_do_not_flag():
    reference = frame(3000, 1)
    batch = frame(3000, 2, shift=1.0)
    report = detect_drift(
        reference,
        batch,
        thresholds=DriftThresholds(psi=None, ks_pvalue=None, chi2_pvalue=None),
    )
    assert report.drifted_features == ()
    only_psi = detect_drift(reference, batch, thresholds=DriftThresholds(ks_pvalue=None))
    height = next(f for f in only_psi.features if f.name == "height")
    assert height.reasons == ("psi",)


def test_thresholds_from_mapping_and_their_errors():
    parsed = DriftThresholds.from_mapping({"psi": 0.1, "ks_pvalue": None, "share": 0.3})
    assert parsed == DriftThresholds(psi=0.1, ks_pvalue=None, share=0.3)
    cases = {
        "monitor.drift.psy": {"psy": 0.2},
        "monitor.drift.psi": {"psi": "high"},
        "monitor.drift.ks_pvalue": {"ks_pvalue": 5},
        "monitor.drift.share": {"share": 0},
        "monitor.drift.psi_bins": {"psi_bins": 1},
    }
    for key, data in cases.items():
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            DriftThresholds.from_mapping(data, where="monitor.drift")


def test_columns_not_matching_the_features_are_named():
    reference = frame(100, 1)
    batch = frame(100, 2).drop(columns=["income"]).assign(extra=1, other=2)
    with pytest.raises(MonitorError) as info:
        detect_drift(reference, batch, source="data/new.csv")
    message = str(info.value)
    assert message.startswith("data/new.csv:")
    assert "missing income" in message and "unexpected extra, other" in message
    assert "\n" not in message


def test_ignored_columns_may_be_present():
    reference = frame(200, 1).assign(label=1)
    batch = frame(200, 2).assign(label=0, row_id=range(200))
    report = detect_drift(reference, batch, ignore=["label", "row_id"])
    assert [f.name for f in report.features] == ["height", "income", "children", "colour"]
    # Explicit features: every other batch column must be ignored by name.
    with pytest.raises(MonitorError, match=r"unexpected income, children, colour$"):
        detect_drift(reference, batch, features=["height"], ignore=["label", "row_id"])
    ignored = ["label", "row_id", "income", "children", "colour"]
    chosen = detect_drift(reference, batch, features=["height"], ignore=ignored)
    assert [f.name for f in chosen.features] == ["height"]


@pytest.mark.parametrize(
    ("reference", "batch", "message"),
    [
        (frame(50, 1), frame(50, 2).iloc[:0], "batch: the batch has no rows"),
        (frame(50, 1).iloc[:0], frame(50, 2), "reference: the data has no rows"),
        (
            frame(50, 1),
            frame(50, 2).assign(height="tall"),
            "column 'height' holds categorical values",
        ),
        (
            frame(50, 1).assign(when=pd.Timestamp("2024-01-01")),
            frame(50, 2).assign(when=pd.Timestamp("2024-01-02")),
            "column 'when' has unsupported type",
        ),
    ],
)
def test_bad_batches_raise_one_clear_line(reference, batch, message):
    with pytest.raises(MonitorError, match=message) as info:
        detect_drift(reference, batch)
    assert "\n" not in str(info.value)


def test_other_bad_arguments():
    reference = frame(50, 1)
    with pytest.raises(MonitorError, match="categorical columns are not features: nope"):
        detect_drift(reference, reference, categorical=["nope"])
    with pytest.raises(MonitorError, match="reference: missing feature columns ghost"):
        detect_drift(reference, reference, features=["height", "ghost"])
    with pytest.raises(MonitorError, match="needs both"):
        detect_drift(reference, reference, reference_predictions=[1.0])
    twice = pd.concat([reference, reference[["height"]]], axis=1)
    with pytest.raises(MonitorError, match="duplicate columns height"):
        detect_drift(reference, twice)


def test_prediction_drift():
    rng = np.random.default_rng(2)
    scores = prediction_drift(rng.random(3000), rng.random(3000) ** 2)
    assert scores.kind == "numeric" and scores.drifted and scores.name == "prediction"
    labels = prediction_drift(rng.integers(0, 2, 3000), np.ones(3000, dtype=int))
    assert labels.kind == "categorical" and labels.drifted
    counts = prediction_drift([1, 2, 2, 3], pd.Series([3, 2, 2, 1]), categorical=False)
    assert counts.kind == "numeric" and counts.statistic == 0.0
    with pytest.raises(MonitorError, match="batch predictions are empty"):
        prediction_drift([0.1], [])
    with pytest.raises(MonitorError, match="one-dimensional"):
        prediction_drift(np.zeros((3, 2)), np.zeros(3))
    reference = frame(500, 1)
    report = detect_drift(
        reference,
        frame(500, 2),
        reference_predictions=rng.random(500),
        batch_predictions=rng.random(500) + 1,
    )
    assert report.prediction is not None and report.prediction.drifted
    assert any("prediction drift" in line for line in report.alerts)


def test_dtypes_nullable_mixed_and_float32():
    rng = np.random.default_rng(4)
    values = rng.integers(0, 100, 2000)
    reference = pd.DataFrame(
        {
            "n": pd.array(values, dtype="Int64"),
            "f": values.astype(np.float32),
            "c": pd.Categorical(rng.choice(["x", "y"], 2000)),
            "b": rng.random(2000) < 0.5,
        }
    )
    batch = pd.DataFrame(
        {
            "n": values.astype(np.float64) + 0.5,  # ints against floats: compared as floats
            "f": values.astype(np.float32),
            "c": rng.choice(["x", "y", "z"], 2000),  # plain strings against categories
            "b": rng.random(2000) < 0.5,
        }
    )
    batch.loc[0, "n"] = np.nan
    report = {f.name: f for f in detect_drift(reference, batch).features}
    assert report["n"].kind == "numeric" and report["n"].batch_missing == 1 / 2000
    assert report["f"].statistic == 0.0
    assert report["c"].kind == "categorical" and "z" in report["c"].histogram.labels
    assert report["b"].kind == "categorical"


def test_histograms_cover_every_value():
    reference, batch = frame(5000, 1), frame(4000, 2, shift=0.5)
    batch.loc[0, "income"] = np.inf
    for feature in detect_drift(reference, batch).features:
        hist = feature.histogram
        assert sum(hist.reference) == 5000 and sum(hist.batch) == 4000, feature.name
        if feature.kind == "numeric":
            assert len(hist.edges) == len(hist.reference) + 1
            assert all(math.isfinite(e) for e in hist.edges)
    children = detect_drift(reference, batch).features[2].histogram
    # Whole numbers: bins centred on integers, all of the same width.
    assert children.edges[0] % 1 == 0.5 and len(set(np.diff(children.edges))) == 1


def test_report_json_round_trip_and_thread_count_does_not_matter():
    reference, batch = frame(3000, 1), frame(3000, 2, shift=0.2)
    rng = np.random.default_rng(9)
    report = detect_drift(
        reference, batch, reference_predictions=rng.random(300), batch_predictions=rng.random(300)
    )
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert DriftReport.from_dict(json.loads(text)) == report
    summary = report.to_dict(histograms=False)
    assert "histogram" not in summary["features"][0]
    assert summary["drifted_features"] == list(report.drifted_features)
    assert detect_drift(reference, batch, workers=1).features == report.features
    with pytest.raises(MonitorError, match="invalid drift record"):
        DriftReport.from_dict({"features": []})
