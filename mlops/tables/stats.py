"""The statistics behind drift, on plain numpy arrays: PSI and its bins, KS, chi-square.

The ``drift:`` data check and ``mlops monitor`` both score with these, so that on the
same data they give the same figures. Numbers are sorted once per column (numpy's
vectorised sort is the fastest primitive here); everything else (the Kolmogorov-Smirnov
statistic, PSI bins, plot histograms) is then a few binary searches into the sorted arrays.

PSI bins (see :func:`psi_edges`): a number column whose reference holds at most ``bins``
distinct values gets one bin per value; any other gets ``bins`` equal-frequency bins cut
at values of the reference, ties merged. Categories get one bin per value. Missing values
have a bin of their own, last, when either side has any.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# About this many points of the merged samples are evaluated first; see ks_statistic_sorted.
_KS_GRID = 16_384
# Below this many rows scipy's exact two-sample distribution is used, as scipy's "auto" does.
_KS_EXACT_MAX_N = 10_000
# Up to this effective size the finite-n Kolmogorov distribution is fast enough (< 15 ms).
_KS_FINITE_MAX_EN = 10_000
# Shares of zero are replaced by this in PSI, as most PSI implementations (Evidently too) do.
PSI_EPSILON = 1e-4


def ks_statistic_sorted(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """The exact two-sample KS statistic sup|F_a - F_b| of two sorted, NaN-free arrays.

    The empirical CDFs are evaluated on a coarse grid of sample points (every k-th point of
    each sample). Between two grid points g0 < g1 neither CDF can move by more than the
    sample's mass inside (g0, g1), which bounds |F_a - F_b| in that cell. Only cells whose
    bound exceeds the best grid value are then evaluated at every sample point inside them.
    The result equals scipy.stats.ks_2samp's statistic; the cost is two sorts plus
    O(grid * log n) instead of O(n log n) binary searches.
    """
    import numpy as np

    n1, n2 = a.size, b.size
    if n1 == n2 and np.array_equal(a, b):
        return 0.0  # every cell would need refining: the worst case, and a common one in tests
    step = max(1, (n1 + n2) // _KS_GRID)
    grid = np.unique(np.concatenate((a[step - 1 :: step], b[step - 1 :: step], a[-1:], b[-1:])))
    a_right = np.searchsorted(a, grid, "right")
    b_right = np.searchsorted(b, grid, "right")
    a_left = np.searchsorted(a, grid, "left")
    b_left = np.searchsorted(b, grid, "left")
    fa, fb = a_right / n1, b_right / n2
    best = float(np.max(np.abs(fa - fb)))
    # CDF values just after the previous grid point and just before this one bound the cell.
    fa_prev = np.concatenate(([0.0], fa[:-1]))
    fb_prev = np.concatenate(([0.0], fb[:-1]))
    bound = np.maximum(a_left / n1 - fb_prev, b_left / n2 - fa_prev)
    cells = np.flatnonzero(bound > best)
    if cells.size == 0:
        return best
    a_start = np.concatenate(([0], a_right[:-1]))[cells]
    b_start = np.concatenate(([0], b_right[:-1]))[cells]
    points = np.concatenate(
        (a[_ranges(a_start, a_left[cells])], b[_ranges(b_start, b_left[cells])])
    )
    points.sort()
    inside = np.abs(
        np.searchsorted(a, points, "right") / n1 - np.searchsorted(b, points, "right") / n2
    )
    return max(best, float(inside.max(initial=0.0)))


def _ranges(starts: NDArray[np.intp], stops: NDArray[np.intp]) -> NDArray[np.intp]:
    """The concatenation of ``range(start, stop)`` for each pair, vectorised."""
    import numpy as np

    lengths = stops - starts
    total = int(lengths.sum())
    before = np.cumsum(lengths) - lengths
    return np.repeat(starts - before, lengths) + np.arange(total)


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Two-sided p-value of the two-sample KS statistic for large samples.

    As scipy's ``ks_2samp(method="asymp")`` this uses the Kolmogorov distribution of size
    en = n1*n2/(n1+n2). scipy evaluates the finite-n distribution, which takes up to a second
    for large en; beyond en = 10,000 the limiting distribution with Vrbik's (2018) finite-n
    correction is used instead: its relative error against scipy is below 1 % for p >= 1e-14.
    """
    from scipy.stats import kstwo, kstwobign

    if statistic <= 0.0:
        return 1.0
    en = round(n1 * n2 / (n1 + n2))
    if en <= _KS_FINITE_MAX_EN:
        return float(min(1.0, max(0.0, kstwo.sf(statistic, en))))
    root = math.sqrt(en)
    z = statistic * root
    corrected = z + 1.0 / (6.0 * root) + (z - 1.0) / (4.0 * en)
    return float(min(1.0, max(0.0, kstwobign.sf(corrected))))


def ks_test_sorted(a: NDArray[np.generic], b: NDArray[np.generic]) -> tuple[float, float]:
    """(statistic, p-value) of the two-sided two-sample KS test on sorted, NaN-free arrays."""
    if max(a.size, b.size) <= _KS_EXACT_MAX_N:
        # Small samples: scipy is fast here and has the exact distribution.
        from scipy.stats import ks_2samp

        result = ks_2samp(a, b)
        return float(result.statistic), float(result.pvalue)
    statistic = ks_statistic_sorted(a, b)
    return statistic, ks_pvalue(statistic, a.size, b.size)


def present_sorted(values: NDArray[Any]) -> tuple[NDArray[Any], int]:
    """The values sorted with NaN (which numpy sorts last) cut off, and the NaN count."""
    import numpy as np

    if values.dtype.kind != "f":
        return np.sort(values), 0
    missing = int(np.count_nonzero(np.isnan(values)))
    return np.sort(values)[: values.size - missing], missing


def psi_edges(sorted_values: NDArray[Any], bins: int) -> NDArray[Any]:
    """Interior edges of the PSI bins of a number column, from its sorted, NaN-free reference.

    The bins are (-inf, e1], (e1, e2], ..., (ek, inf): at most ``bins`` of them. A reference
    with at most ``bins`` distinct values (counts, ratings, codes) gets one bin per value, so
    that no value shares a bin with a rarer neighbour (the edges are every value but the
    largest). Any other gets equal-frequency bins (:func:`quantile_edges`). Either way the
    edges are values of the reference, so equal values are never split between two bins
    and every bin holds some of the reference.
    """
    few = distinct_values(sorted_values, bins)
    if few is not None:
        return few[:-1]
    return quantile_edges(sorted_values, bins)


def distinct_values(sorted_values: NDArray[Any], most: int) -> NDArray[Any] | None:
    """The distinct values of a sorted, NaN-free array if there are at most ``most``, else
    None: one binary search per value, so that a column of many values costs ``most`` of
    them, not a pass over the column."""
    import numpy as np

    found: list[Any] = []
    start, size = 0, sorted_values.size
    while start < size:
        if len(found) == most:
            return None
        found.append(sorted_values[start])
        start = int(np.searchsorted(sorted_values, sorted_values[start], "right"))
    return np.array(found, dtype=sorted_values.dtype)


def quantile_edges(sorted_values: NDArray[np.generic], bins: int) -> NDArray[np.generic]:
    """Interior edges of ``bins`` equal-frequency bins of a sorted sample (ties merged)."""
    import numpy as np

    n = sorted_values.size
    if n == 0:
        return sorted_values[:0]
    positions = (np.arange(1, bins) * n) // bins
    return np.unique(sorted_values[positions])


def bin_counts(sorted_values: NDArray[np.generic], edges: NDArray[np.generic]) -> NDArray[np.int64]:
    """Counts in the bins (-inf, e1], (e1, e2], ..., (ek, inf) of a sorted sample."""
    import numpy as np

    cumulative = np.searchsorted(sorted_values, edges, "right")
    return np.diff(cumulative, prepend=0, append=sorted_values.size).astype(np.int64)


def numeric_psi_counts(
    reference: NDArray[Any],
    reference_missing: int,
    batch: NDArray[Any],
    batch_missing: int,
    bins: int,
) -> tuple[NDArray[Any], NDArray[np.int64], NDArray[np.int64]]:
    """(interior edges, reference counts, batch counts) of the PSI bins of a number column.

    ``reference`` and ``batch`` are sorted and NaN-free (:func:`present_sorted`); the
    missing values get a last bin when either side has any.
    """
    import numpy as np

    edges = psi_edges(reference, bins)
    ref_counts, batch_counts = bin_counts(reference, edges), bin_counts(batch, edges)
    if reference_missing or batch_missing:
        ref_counts = np.append(ref_counts, reference_missing)
        batch_counts = np.append(batch_counts, batch_missing)
    return edges, ref_counts, batch_counts


def psi_terms(
    reference: NDArray[np.int64], batch: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(reference shares, batch shares, each bin's part of the PSI) of two count vectors.

    Shares below ``PSI_EPSILON`` count as that in the PSI (an empty bin would make the
    logarithm infinite); the shares returned are the true ones.
    """
    import numpy as np

    p = reference / max(int(reference.sum()), 1)
    q = batch / max(int(batch.sum()), 1)
    p_floor, q_floor = np.maximum(p, PSI_EPSILON), np.maximum(q, PSI_EPSILON)
    return p, q, (q_floor - p_floor) * np.log(q_floor / p_floor)


def psi(reference: NDArray[np.int64], batch: NDArray[np.int64]) -> float:
    """Population stability index of two count vectors over the same bins."""
    ref_total, batch_total = int(reference.sum()), int(batch.sum())
    if ref_total == 0 or batch_total == 0:
        return 0.0 if ref_total == batch_total else math.inf
    return float(psi_terms(reference, batch)[2].sum())


def chi2_test(reference: NDArray[np.int64], batch: NDArray[np.int64]) -> tuple[float, float]:
    """(statistic, p-value) of the chi-square test of homogeneity of two count vectors.

    This is ``scipy.stats.chi2_contingency`` on the 2 x k table (with its Yates correction when
    there are two categories); categories absent from both samples are dropped first.
    """
    import numpy as np
    from scipy.stats import chi2_contingency

    table = np.vstack((reference, batch))
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 0.0, 1.0
    result = chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)
