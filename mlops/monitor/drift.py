"""Drift between a reference sample and a new batch: per feature, over the batch, predictions.

Numbers are compared with PSI (bins: see ``mlops.tables.stats.psi_edges``) and the two-sample
Kolmogorov-Smirnov test; categories with PSI and the chi-square test of homogeneity. Columns
are scored in a thread pool (numpy and pandas release the GIL for most of the work).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.errors import ConfigError, MonitorError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

NUMERIC = "numeric"
CATEGORICAL = "categorical"
MISSING_LABEL = "(missing)"
OTHER_LABEL = "(other)"
_PLOT_BINS = 30
_PLOT_CATEGORIES = 20
# Plots of numbers span these quantiles of both samples; the tails fold into the end bins.
_PLOT_QUANTILES = (0.001, 0.999)


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature, the batch and the predictions count as drifted.

    A feature drifts when any enabled test fires: PSI >= ``psi``, or a p-value below
    ``ks_pvalue`` (numbers) or ``chi2_pvalue`` (categories); ``None`` disables a test. The
    batch drifts when the share of drifted features is at least ``share``. PSI uses at most
    ``psi_bins`` bins of the reference (see ``mlops.tables.stats.psi_edges``).
    """

    psi: float | None = 0.2
    ks_pvalue: float | None = 0.05
    chi2_pvalue: float | None = 0.05
    share: float = 0.5
    psi_bins: int = 10

    def __post_init__(self) -> None:
        _validate_thresholds(self.to_dict(), "thresholds")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "thresholds") -> DriftThresholds:
        """Thresholds from a mapping such as ``mlops.yaml``'s; ``where`` prefixes error keys."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping of threshold names to numbers")
        known = {"psi", "ks_pvalue", "chi2_pvalue", "share", "psi_bins"}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"{where}.{key}: unknown drift threshold (known: {', '.join(sorted(known))})"
                )
        _validate_thresholds(data, where)
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi": self.psi,
            "ks_pvalue": self.ks_pvalue,
            "chi2_pvalue": self.chi2_pvalue,
            "share": self.share,
            "psi_bins": self.psi_bins,
        }


def _validate_thresholds(data: Mapping[str, Any], where: str) -> None:
    def number(key: str) -> float | None:
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
        return None if value is None else float(value)

    psi = number("psi")
    if psi is not None and psi <= 0:
        raise ConfigError(f"{where}.psi: must be positive, got {psi}")
    for key in ("ks_pvalue", "chi2_pvalue"):
        value = number(key)
        if value is not None and not 0 < value < 1:
            raise ConfigError(f"{where}.{key}: must be between 0 and 1, got {value}")
    share = number("share")
    if "share" in data and (share is None or not 0 < share <= 1):
        raise ConfigError(f"{where}.share: must be in (0, 1], got {data['share']!r}")
    bins = data.get("psi_bins", 10)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ConfigError(f"{where}.psi_bins: must be an integer >= 2, got {bins!r}")


@dataclass(frozen=True)
class Histogram:
    """Reference and batch counts in common bins, for plots.

    Numbers have ``edges`` (one more than bins; values beyond the ends are counted in the end
    bins) and no labels; categories have one label per bin and no edges.
    """

    edges: tuple[float, ...]
    labels: tuple[str, ...]
    reference: tuple[int, ...]
    batch: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "labels": list(self.labels),
            "reference": list(self.reference),
            "batch": list(self.batch),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        return cls(
            edges=tuple(float(x) for x in data["edges"]),
            labels=tuple(str(x) for x in data["labels"]),
            reference=tuple(int(x) for x in data["reference"]),
            batch=tuple(int(x) for x in data["batch"]),
        )


@dataclass(frozen=True)
class FeatureDrift:
    """Drift scores of one column (or of the predictions).

    ``test`` is ``ks`` for numbers and ``chi2`` for categories; its statistic and p-value are
    ``None`` when one side has no non-missing value. ``reasons`` names the thresholds that
    fired (``psi``, ``ks_pvalue``, ``chi2_pvalue``). Missing values are shares of rows.
    """

    name: str
    kind: str
    test: str
    statistic: float | None
    pvalue: float | None
    psi: float
    drifted: bool
    reasons: tuple[str, ...]
    reference_missing: float
    batch_missing: float
    histogram: Histogram

    def to_dict(self, histogram: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "test": self.test,
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "psi": self.psi,
            "drifted": self.drifted,
            "reasons": list(self.reasons),
            "reference_missing": self.reference_missing,
            "batch_missing": self.batch_missing,
        }
        if histogram:
            data["histogram"] = self.histogram.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDrift:
        def optional(key: str) -> float | None:
            return None if data[key] is None else float(data[key])

        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            test=str(data["test"]),
            statistic=optional("statistic"),
            pvalue=optional("pvalue"),
            psi=float(data["psi"]),
            drifted=bool(data["drifted"]),
            reasons=tuple(str(r) for r in data["reasons"]),
            reference_missing=float(data["reference_missing"]),
            batch_missing=float(data["batch_missing"]),
            histogram=Histogram.from_dict(data["histogram"]),
        )


@dataclass(frozen=True)
class DriftReport:
    """Drift of a batch against the reference: every feature, the batch, the predictions."""

    features: tuple[FeatureDrift, ...]
    reference_rows: int
    batch_rows: int
    thresholds: DriftThresholds
    prediction: FeatureDrift | None = None

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Whether the share of drifted features reaches the ``share`` threshold."""
        return bool(self.features) and self.drifted_share >= self.thresholds.share

    @property
    def alerts(self) -> tuple[str, ...]:
        """One line per reason to alert: dataset drift, prediction drift; empty when healthy."""
        lines = []
        if self.dataset_drift:
            drifted = self.drifted_features
            lines.append(
                f"{len(drifted)} of {len(self.features)} features drifted "
                f"({self.drifted_share:.0%} >= {self.thresholds.share:.0%}): {', '.join(drifted)}"
            )
        if self.prediction is not None and self.prediction.drifted:
            lines.append(f"prediction drift ({', '.join(self.prediction.reasons)})")
        return tuple(lines)

    def to_dict(self, histograms: bool = True) -> dict[str, Any]:
        """A JSON-able dict; ``histograms=False`` leaves out the plot data (a summary)."""
        return {
            "reference_rows": self.reference_rows,
            "batch_rows": self.batch_rows,
            "thresholds": self.thresholds.to_dict(),
            "drifted_share": self.drifted_share,
            "dataset_drift": self.dataset_drift,
            "drifted_features": list(self.drifted_features),
            "alerts": list(self.alerts),
            "features": [f.to_dict(histograms) for f in self.features],
            "prediction": None if self.prediction is None else self.prediction.to_dict(histograms),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """Rebuild a report from ``to_dict()`` output (with histograms)."""
        try:
            prediction = data.get("prediction")
            return cls(
                features=tuple(FeatureDrift.from_dict(f) for f in data["features"]),
                reference_rows=int(data["reference_rows"]),
                batch_rows=int(data["batch_rows"]),
                thresholds=DriftThresholds.from_mapping(data["thresholds"]),
                prediction=None if prediction is None else FeatureDrift.from_dict(prediction),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitorError(f"invalid drift record: missing or bad field {exc}") from exc


def detect_drift(
    reference: pd.DataFrame,
    batch: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    ignore: Iterable[str] = (),
    thresholds: DriftThresholds | None = None,
    reference_predictions: Any = None,
    batch_predictions: Any = None,
    source: str = "batch",
    workers: int | None = None,
) -> DriftReport:
    """Score ``batch`` against ``reference``, feature by feature.

    ``features`` defaults to the reference's columns minus ``ignore``; the batch must have
    exactly these columns plus any in ``ignore`` (a label column, ids). Columns of numbers are
    numeric unless listed in ``categorical``; strings, booleans and pandas categories are
    categorical. Give both prediction arrays to score prediction drift too. ``source`` names
    the batch in error messages; ``workers`` bounds the thread pool (default: CPU count).
    """
    from concurrent.futures import ThreadPoolExecutor

    thresholds = thresholds or DriftThresholds()
    ignored = set(ignore)
    names = (
        list(features)
        if features is not None
        else [c for c in reference.columns if c not in ignored]
    )
    _check_columns(reference, batch, names, ignored, source)
    forced = set(categorical)
    unknown = sorted(str(c) for c in forced - set(names))
    if unknown:
        raise MonitorError(f"categorical columns are not features: {', '.join(unknown)}")
    if (reference_predictions is None) != (batch_predictions is None):
        raise MonitorError("prediction drift needs both reference and batch predictions")

    def score(name: Any) -> FeatureDrift:
        ref, cur = reference[name], batch[name]
        kind = CATEGORICAL if name in forced else _column_kind(str(name), ref, cur, source)
        return _feature_drift(str(name), ref, cur, kind, thresholds)

    pool_size = max(1, min(workers or os.cpu_count() or 1, len(names)))
    with ThreadPoolExecutor(max_workers=pool_size) as pool:
        scored = tuple(pool.map(score, names))
    prediction = None
    if reference_predictions is not None:
        prediction = prediction_drift(
            reference_predictions, batch_predictions, thresholds=thresholds
        )
    return DriftReport(
        features=scored,
        reference_rows=len(reference),
        batch_rows=len(batch),
        thresholds=thresholds,
        prediction=prediction,
    )


def prediction_drift(
    reference: Any,
    batch: Any,
    *,
    categorical: bool | None = None,
    thresholds: DriftThresholds | None = None,
    name: str = "prediction",
) -> FeatureDrift:
    """Drift between two one-dimensional prediction arrays (lists, numpy arrays, Series).

    Floats are scored as numbers, anything else (class labels) as categories, unless
    ``categorical`` says otherwise.
    """
    import numpy as np
    import pandas as pd

    series = []
    for side, values in (("reference", reference), ("batch", batch)):
        array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
        if array.ndim != 1:
            raise MonitorError(f"{side} predictions must be one-dimensional, got {array.shape}")
        if array.size == 0:
            raise MonitorError(f"{side} predictions are empty")
        series.append(pd.Series(array))
    ref, cur = series
    if categorical is None:
        categorical = not (ref.dtype.kind == "f" and cur.dtype.kind == "f")
    kind = CATEGORICAL if categorical else _column_kind(name, ref, cur, "predictions")
    return _feature_drift(name, ref, cur, kind, thresholds or DriftThresholds())


def _check_columns(
    reference: pd.DataFrame, batch: pd.DataFrame, names: list[Any], ignored: set[Any], source: str
) -> None:
    if not names:
        raise MonitorError("no features to compare")
    for label, frame in (("reference", reference), (source, batch)):
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise MonitorError(f"{label}: duplicate columns {', '.join(duplicated)}")
    absent = [str(c) for c in names if c not in reference.columns]
    if absent:
        raise MonitorError(f"reference: missing feature columns {', '.join(absent)}")
    wanted = set(names)
    missing = [str(c) for c in names if c not in batch.columns]
    extra = [str(c) for c in batch.columns if c not in wanted and c not in ignored]
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        raise MonitorError(
            f"{source}: columns do not match the model's features: {'; '.join(parts)}"
        )
    if len(reference) == 0:
        raise MonitorError("reference: the data has no rows")
    if len(batch) == 0:
        raise MonitorError(f"{source}: the batch has no rows")


def _column_kind(name: str, ref: pd.Series, cur: pd.Series, source: str) -> str:
    kinds = (_dtype_kind(ref.dtype), _dtype_kind(cur.dtype))
    for kind, series, side in ((kinds[0], ref, "reference"), (kinds[1], cur, source)):
        if kind is None:
            raise MonitorError(
                f"{side}: column {name!r} has unsupported type {series.dtype}; "
                "declare it categorical or leave it out of the features"
            )
    if kinds[0] != kinds[1]:
        raise MonitorError(
            f"{source}: column {name!r} holds {kinds[1]} values ({cur.dtype}) "
            f"but {kinds[0]} values ({ref.dtype}) in the reference"
        )
    return str(kinds[0])


def _dtype_kind(dtype: Any) -> str | None:
    import pandas as pd
    from pandas.api import types

    if types.is_bool_dtype(dtype):
        return CATEGORICAL
    if types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype):
        return NUMERIC
    if (
        types.is_object_dtype(dtype)
        or types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    ):
        return CATEGORICAL
    return None


def _feature_drift(
    name: str, ref: pd.Series, cur: pd.Series, kind: str, thresholds: DriftThresholds
) -> FeatureDrift:
    if kind == NUMERIC:
        return _numeric_drift(name, ref, cur, thresholds)
    return _categorical_drift(name, ref, cur, thresholds)


def _numeric_drift(
    name: str, ref: pd.Series, cur: pd.Series, thresholds: DriftThresholds
) -> FeatureDrift:
    import numpy as np

    from mlops.tables.stats import ks_test_sorted, numeric_psi_counts, present_sorted, psi

    ref_values, cur_values = ref.to_numpy(), cur.to_numpy()
    if ref_values.dtype != cur_values.dtype or ref_values.dtype.kind not in "iuf":
        ref_values = ref.to_numpy(dtype=np.float64, na_value=np.nan)
        cur_values = cur.to_numpy(dtype=np.float64, na_value=np.nan)
    a, a_missing = present_sorted(ref_values)
    b, b_missing = present_sorted(cur_values)
    statistic = pvalue = None
    if a.size and b.size:
        statistic, pvalue = ks_test_sorted(a, b)
    _, ref_counts, cur_counts = numeric_psi_counts(a, a_missing, b, b_missing, thresholds.psi_bins)
    psi_value = psi(ref_counts, cur_counts)
    reasons = _reasons(psi_value, "ks_pvalue", thresholds.ks_pvalue, pvalue, thresholds)
    return FeatureDrift(
        name=name,
        kind=NUMERIC,
        test="ks",
        statistic=statistic,
        pvalue=pvalue,
        psi=psi_value,
        drifted=bool(reasons),
        reasons=reasons,
        reference_missing=a_missing / len(ref_values),
        batch_missing=b_missing / len(cur_values),
        histogram=_numeric_histogram(a, b),
    )


def _numeric_histogram(a: NDArray[Any], b: NDArray[Any]) -> Histogram:
    import numpy as np

    from mlops.tables.stats import bin_counts

    bounds = [q for x in (a, b) for q in _finite_quantiles(x)]
    if not bounds:
        return Histogram((), (), (), ())
    low, high = min(bounds), max(bounds)
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        # Whole numbers get bins of whole widths centred on them, so no bin holds an extra value.
        width = max(1, math.ceil((high - low + 1) / _PLOT_BINS))
        bins = math.ceil((high - low + 1) / width)
        edges = low - 0.5 + width * np.arange(bins + 1)
    else:
        if low == high:
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, _PLOT_BINS + 1)
    inner = edges[1:-1]
    counts = []
    for x in (a, b):
        # Integers are compared with integer edges: x <= e exactly when x <= floor(e).
        cut = np.floor(inner).astype(x.dtype) if x.dtype.kind in "iu" else inner.astype(x.dtype)
        counts.append(tuple(int(c) for c in bin_counts(x, cut)))
    return Histogram(tuple(float(e) for e in edges), (), counts[0], counts[1])


def _finite_quantiles(x: NDArray[Any]) -> list[float]:
    """The plotting quantiles of a sorted array, ignoring infinities (which sort to the ends)."""
    import numpy as np

    if x.dtype.kind == "f":
        start, stop = int(np.searchsorted(x, -np.inf, "right")), int(np.searchsorted(x, np.inf))
    else:
        start, stop = 0, x.size
    if stop <= start:
        return []
    return [float(x[start + int(q * (stop - start - 1))]) for q in _PLOT_QUANTILES]


def _categorical_drift(
    name: str, ref: pd.Series, cur: pd.Series, thresholds: DriftThresholds
) -> FeatureDrift:
    import numpy as np
    import pandas as pd

    from mlops.tables.stats import chi2_test, psi

    ref_counts, cur_counts = _value_counts(ref), _value_counts(cur)
    table = pd.concat([ref_counts, cur_counts], axis=1, keys=["reference", "batch"]).fillna(0)
    table = table.astype(np.int64).sort_values(["reference", "batch"], ascending=False)
    labels = [str(v) for v in table.index]
    ref_array, cur_array = table["reference"].to_numpy(), table["batch"].to_numpy()
    a_missing, b_missing = len(ref) - int(ref_array.sum()), len(cur) - int(cur_array.sum())
    if a_missing or b_missing:
        labels.append(MISSING_LABEL)
        ref_array = np.append(ref_array, a_missing)
        cur_array = np.append(cur_array, b_missing)
    statistic, pvalue = chi2_test(ref_array, cur_array)
    psi_value = psi(ref_array, cur_array)
    reasons = _reasons(psi_value, "chi2_pvalue", thresholds.chi2_pvalue, pvalue, thresholds)
    return FeatureDrift(
        name=name,
        kind=CATEGORICAL,
        test="chi2",
        statistic=statistic,
        pvalue=pvalue,
        psi=psi_value,
        drifted=bool(reasons),
        reasons=reasons,
        reference_missing=a_missing / len(ref),
        batch_missing=b_missing / len(cur),
        histogram=_category_histogram(labels, ref_array, cur_array),
    )


def _value_counts(series: pd.Series) -> pd.Series:
    counts = series.value_counts(dropna=True, sort=False)
    # One index type on both sides, so that concat aligns categories with plain strings.
    counts.index = counts.index.astype(object)
    return counts


def _category_histogram(
    labels: list[str], ref: NDArray[np.int64], cur: NDArray[np.int64]
) -> Histogram:
    """The most frequent categories (by share over both samples) and one bin for the rest."""
    import numpy as np

    weight = ref / max(1, int(ref.sum())) + cur / max(1, int(cur.sum()))
    order = np.argsort(-weight, kind="stable")
    keep, rest = order[:_PLOT_CATEGORIES], order[_PLOT_CATEGORIES:]
    names = [labels[i] for i in keep]
    ref_bins = [int(ref[i]) for i in keep]
    cur_bins = [int(cur[i]) for i in keep]
    if rest.size:
        names.append(OTHER_LABEL)
        ref_bins.append(int(ref[rest].sum()))
        cur_bins.append(int(cur[rest].sum()))
    return Histogram((), tuple(names), tuple(ref_bins), tuple(cur_bins))


def _reasons(
    psi_value: float,
    test_key: str,
    test_threshold: float | None,
    pvalue: float | None,
    thresholds: DriftThresholds,
) -> tuple[str, ...]:
    reasons = []
    if thresholds.psi is not None and psi_value >= thresholds.psi:
        reasons.append("psi")
    if test_threshold is not None and pvalue is not None and pvalue < test_threshold:
        reasons.append(test_key)
    return tuple(reasons)
