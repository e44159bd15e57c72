"""Evidently's column drift tests, computed with numpy/scipy on whole columns.

Evidently stays the reference implementation: each function here reproduces one of its stattests
(``evidently.legacy.calculations.stattests``) — same choice of test per column kind, number of distinct
values and reference size, same statistic, same threshold and the same comparison — without its
per-column pandas overhead and plots, and without computing each column twice. The reference side of
every statistic (sorted values, category counts) is prepared once per champion and reused for every
batch. Tests compare these verdicts with Evidently's on generated scenarios.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from service.categorical import value_counts

# Evidently switches from p-value tests to distances above this many reference rows.
SMALL_REFERENCE_ROWS = 1000


@dataclass(frozen=True)
class Test:
    name: str
    display_name: str
    default_threshold: float
    drifted: Callable[[float, float], bool]


TESTS = {
    test.name: test
    for test in (
        Test("ks", "K-S p_value", 0.05, lambda score, t: score <= t),
        Test("chisquare", "chi-square p_value", 0.05, lambda score, t: score < t),
        Test("z", "Z-test p_value", 0.05, lambda score, t: score < t),
        Test("wasserstein", "Wasserstein distance (normed)", 0.1, lambda score, t: score >= t),
        Test("jensenshannon", "Jensen-Shannon distance", 0.1, lambda score, t: score >= t),
        Test("psi", "PSI", 0.1, lambda score, t: score >= t),
    )
}


@dataclass(frozen=True)
class ColumnSide:
    """One side of a column, cleaned as Evidently cleans it (no NaN, no ±inf), prepared once."""

    size: int
    numeric: bool
    n_distinct: int
    values: np.ndarray | None = None  # numeric only: every value, sorted (categorical needs counts only)
    category_counts: pd.Series | None = None  # categorical only: distinct value -> count

    @cached_property
    def counts(self) -> pd.Series:
        """Distinct value -> count. Of a numeric column only when a test asks for it (few distinct values,
        or a count-based stattest): on a continuous column it is as long as the column itself."""
        if self.values is None:
            return self.category_counts  # type: ignore[return-value]
        values = self.values
        # From the runs of the sorted array: no hashing of a million floats.
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if values.size else np.array([], int)
        return pd.Series(np.diff(np.r_[starts, values.size]), index=values[starts])

    @property
    def sorted_values(self) -> np.ndarray:
        if self.values is None:
            raise ValueError("this test needs a numerical column")
        return self.values


def prepare(series: pd.Series, numeric: bool, *, owned: bool = False) -> ColumnSide:
    """``owned``: the caller is done with ``series`` (a column read for this check alone), so a column of
    finite floats is sorted where it is rather than copied first: a long column is not held twice."""
    if not numeric:
        # Object strings or a Categorical's codes: either way only the counts of the values that occur.
        counts = value_counts(series)
        return ColumnSide(int(counts.sum()), numeric, len(counts), category_counts=counts)
    # A view of a float64 column (no copy); the mask below makes the one copy, sorted in place.
    if series.dtype == np.float64:
        values = series.to_numpy()
    else:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(values)
    if owned and values.flags.writeable and finite.all():
        del finite
    else:
        values = values[finite]
    values.sort()
    n_distinct = int(np.count_nonzero(values[1:] != values[:-1])) + 1 if values.size else 0
    return ColumnSide(int(values.size), numeric, n_distinct, values)


def _n_values_up_to(reference: ColumnSide, current: ColumnSide, limit: int) -> int:
    """Distinct values over both sides, exactly up to ``limit`` (beyond it, any number above)."""
    if reference.n_distinct > limit or current.n_distinct > limit:
        return limit + 1
    return len(reference.counts.index.union(current.counts.index))


def default_test(reference: ColumnSide, current: ColumnSide) -> str:
    """Evidently's choice (``_get_default_stattest``) for a numerical or categorical column."""
    n_values = _n_values_up_to(reference, current, limit=5)
    if reference.size <= SMALL_REFERENCE_ROWS:
        if not reference.numeric or n_values <= 5:
            return "chisquare" if n_values > 2 else "z"
        return "ks"
    if reference.numeric and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def _aligned_counts(reference: ColumnSide, current: ColumnSide) -> tuple[np.ndarray, np.ndarray]:
    keys = reference.counts.index.union(current.counts.index)
    ref = reference.counts.reindex(keys, fill_value=0).to_numpy(dtype="float64")
    cur = current.counts.reindex(keys, fill_value=0).to_numpy(dtype="float64")
    return ref, cur


_CHUNK = 1 << 16


def _wasserstein_normed(reference: ColumnSide, current: ColumnSide) -> float:
    # W1 = integral of |F_ref - F_cur| over the merged support (scipy's formula). At the i-th support
    # point the reference's empirical CDF counts its values <= that point (a binary search over sorted
    # points), and the current's counts the rest of the first i + 1 points. That holds at the last of tied
    # values; before it the gap to the next value is 0, so those terms vanish, as in scipy. The support
    # (both sorted sides merged) is never built whole: it would be as long as both columns together.
    # Each chunk of it is merged from the two sides where the chunk starts (_merged_chunk), so the sums
    # run over the same chunks in the same order as over a concatenated support: the same score to the bit.
    ref, cur = reference.sorted_values, current.sorted_values
    size = ref.size + cur.size
    total = 0.0
    for start in range(0, size - 1, _CHUNK):
        stop = min(start + _CHUNK, size - 1)
        support = _merged_chunk(ref, cur, start, stop + 1 - start)
        points = support[:-1]
        ref_seen = np.searchsorted(ref, points, side="right")
        cur_seen = np.arange(start + 1, stop + 1) - ref_seen
        gaps = support[1:] - points
        total += float(np.sum(np.abs(ref_seen / ref.size - cur_seen / cur.size) * gaps))
    return total / max(float(np.std(ref)), 0.001)


def _merged_chunk(ref: np.ndarray, cur: np.ndarray, start: int, length: int) -> np.ndarray:
    """Points ``start`` to ``start + length`` of the merge of two sorted arrays, without merging the rest.

    In the merge (reference first among equal values) ``ref[i]`` lands at ``i`` plus the number of current
    values below it; the first ``start`` points hold the reference values that land before ``start`` and
    the current values before them. A binary search over ``i`` finds that split."""
    taken = bisect.bisect_left(range(ref.size), start, key=lambda i: i + int(np.searchsorted(cur, ref[i])))
    rest = start - taken
    piece = np.concatenate([ref[taken : taken + length], cur[rest : rest + length]])
    piece.sort(kind="stable")
    return piece[:length]


def _sturges_edges(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """``np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")`` without the
    concatenation (two sorted columns): Sturges' bins depend only on the extremes and the count, and
    numpy's equal-width edges for that many bins over that range are the same array."""
    lowest = min(reference[0], current[0])
    highest = max(reference[-1], current[-1])
    width = (highest - lowest) / (np.log2(reference.size + current.size) + 1.0)
    bins = int(np.ceil((highest - lowest) / width)) if width else 1
    return np.histogram_bin_edges(np.array([lowest, highest]), bins=bins, range=(lowest, highest))


def _binned_percents(reference: ColumnSide, current: ColumnSide, fill_zeroes: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data``: Sturges bins over both sides for a rich numeric column, else the
    share of each distinct value; zeroes replaced by a tiny share where a log needs it."""
    if reference.numeric and reference.n_distinct > 20:
        ref_values, cur_values = reference.sorted_values, current.sorted_values
        bins = _sturges_edges(ref_values, cur_values)
        ref = np.histogram(ref_values, bins)[0] / reference.size
        cur = np.histogram(cur_values, bins)[0] / current.size
    else:
        ref_counts, cur_counts = _aligned_counts(reference, current)
        ref, cur = ref_counts / reference.size, cur_counts / current.size
    if fill_zeroes:
        for percents in (ref, cur):
            smallest = percents[percents != 0].min()
            percents[percents == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return ref, cur


# scipy (which Evidently calls) takes longer to import than these tests take to run on a million rows,
# and tens of MB. The formulas of its chisquare, norm.cdf and jensenshannon are written out below; the
# p-value tests import the scipy.special function they need (they run on small references, where
# Evidently picks them), and the distances most columns get need none.


def _chisquare(reference: ColumnSide, current: ColumnSide) -> float:
    # scipy.stats.chisquare(observed, expected): Pearson's statistic, p = chi2(k - 1).sf(statistic).
    from scipy import special

    ref, cur = _aligned_counts(reference, current)
    expected = ref * (current.size / reference.size)
    with np.errstate(divide="ignore"):  # a value the reference lacks: infinite statistic, p = 0, as scipy
        statistic = np.sum((cur - expected) ** 2 / expected)
    return float(special.chdtrc(cur.size - 1, statistic))


def _z(reference: ColumnSide, current: ColumnSide) -> float:
    from scipy import special

    keys = sorted(reference.counts.index.union(current.counts.index))
    if len(keys) == 1:
        return 1.0
    # Share of rows that are not the first value, on each side: a two-proportion z-test.
    p1 = 1 - reference.counts.get(keys[0], 0) / reference.size
    p2 = 1 - current.counts.get(keys[0], 0) / current.size
    pooled = (p1 * reference.size + p2 * current.size) / (reference.size + current.size)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / reference.size + 1.0 / current.size))
    return float(2 * (1 - special.ndtr(np.abs(z))))  # ndtr is scipy.stats.norm.cdf


def _psi(reference: ColumnSide, current: ColumnSide) -> float:
    ref, cur = _binned_percents(reference, current, fill_zeroes=True)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def _jensenshannon(reference: ColumnSide, current: ColumnSide) -> float:
    # scipy.spatial.distance.jensenshannon(ref, cur), natural log
    ref, cur = _binned_percents(reference, current, fill_zeroes=False)
    ref, cur = ref / np.sum(ref), cur / np.sum(cur)
    middle = (ref + cur) / 2.0
    return float(np.sqrt((_relative_entropy(ref, middle) + _relative_entropy(cur, middle)) / 2.0))


def _relative_entropy(shares: np.ndarray, middle: np.ndarray) -> float:
    # The sum of scipy.special.rel_entr(shares, middle): x * log(x / y), and 0 where x is 0. The middle
    # of two share vectors is positive wherever either is, so rel_entr's infinite case cannot occur.
    terms = np.zeros_like(shares)
    present = shares > 0
    terms[present] = shares[present] * np.log(shares[present] / middle[present])
    return float(np.sum(terms))


def _ks(reference: ColumnSide, current: ColumnSide) -> float:
    from scipy import stats

    return float(stats.ks_2samp(reference.sorted_values, current.sorted_values)[1])


STATISTICS: dict[str, Callable[[ColumnSide, ColumnSide], float]] = {
    "ks": _ks,
    "chisquare": _chisquare,
    "z": _z,
    "wasserstein": _wasserstein_normed,
    "jensenshannon": _jensenshannon,
    "psi": _psi,
}


def supports(stattest: str | None) -> bool:
    return stattest is None or stattest in STATISTICS


def column_test(
    reference: ColumnSide, current: ColumnSide, stattest: str | None, threshold: float | None
) -> tuple[Test, float, float, bool]:
    """(test, score, threshold, drifted) for one column, as Evidently would decide it."""
    if reference.size == 0 or current.size == 0:
        raise ValueError("a column with no values cannot be checked for drift")
    test = TESTS[stattest or default_test(reference, current)]
    limit = test.default_threshold if threshold is None else threshold
    score = STATISTICS[test.name](reference, current)
    return test, score, limit, bool(test.drifted(score, limit))
