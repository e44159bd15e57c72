"""The fast engine against the reference: Evidently's own report, on generated scenarios.

Both engines must give the same dataset verdict and the same per-column test, verdict, score and
threshold, across the cases where Evidently picks different tests (small and large reference, rich and
few-valued numeric columns, binary and multi-valued categories) and with missing values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from service.drift.check import check_drift, profile_reference
from service.settings import DriftSection

NUMERICAL = ["normal", "skewed", "few_values", "with_nans", "integer"]
CATEGORICAL = ["city", "flag", "many"]


def scenario(rows: int, seed: int, drift: float) -> pd.DataFrame:
    """Columns covering every default-test branch; ``drift`` (0..1) shifts them all."""
    rng = np.random.default_rng(seed)
    with_nans = rng.normal(5 + 2 * drift, 1, rows)
    with_nans[rng.random(rows) < 0.1] = np.nan
    many = [f"c{i}" for i in range(30)]
    weights = np.linspace(1, 1 + 3 * drift, 30)
    return pd.DataFrame(
        {
            "normal": rng.normal(drift, 1, rows),
            "skewed": rng.lognormal(0.5 * drift, 0.7, rows),
            "few_values": rng.choice([1.0, 2.0, 3.0, 4.0], rows, p=[0.4 - 0.2 * drift, 0.3, 0.2, 0.1 + 0.2 * drift]),
            "with_nans": with_nans,
            "integer": rng.integers(0, 50 + int(40 * drift), rows).astype(float),
            "city": rng.choice(["paris", "lyon", "nice"], rows, p=[0.5 - 0.3 * drift, 0.3, 0.2 + 0.3 * drift]),
            "flag": rng.choice(["yes", "no"], rows, p=[0.7 - 0.4 * drift, 0.3 + 0.4 * drift]).astype(object),
            "many": rng.choice(many, rows, p=weights / weights.sum()),
        }
    )


def both(reference: pd.DataFrame, current: pd.DataFrame, **drift: object) -> tuple:
    kwargs = {"numerical": NUMERICAL, "categorical": CATEGORICAL}
    fast = check_drift(reference, current, settings=DriftSection(**drift), with_report=False, **kwargs)
    full = check_drift(reference, current, settings=DriftSection(engine="evidently", **drift), **kwargs)
    return fast, full


@pytest.mark.parametrize("reference_rows", [600, 5000], ids=["p-value tests", "distance tests"])
@pytest.mark.parametrize("drift", [0.0, 0.15, 1.0], ids=["no drift", "slight drift", "strong drift"])
def test_fast_engine_agrees_with_evidently_column_by_column(reference_rows: int, drift: float) -> None:
    # given a reference and a batch from a (possibly) shifted distribution
    reference = scenario(reference_rows, seed=1, drift=0.0)
    current = scenario(reference_rows // 2, seed=2, drift=drift)
    # when both engines check it
    fast, full = both(reference, current)
    # then the dataset verdict and every column's test, threshold, score and verdict agree
    assert fast.dataset_drift == full.dataset_drift
    assert fast.drifted_share == pytest.approx(full.drifted_share)
    for ours, theirs in zip(fast.columns, full.columns, strict=True):
        assert (ours.column, ours.stattest, ours.drifted) == (theirs.column, theirs.stattest, theirs.drifted)
        assert ours.threshold == pytest.approx(theirs.threshold)
        assert ours.score == pytest.approx(theirs.score, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(
    ("stattest", "categorical"), [("psi", CATEGORICAL), ("jensenshannon", CATEGORICAL), ("ks", [])]
)  # K-S applies to numerical columns only
def test_fast_engine_agrees_with_evidently_on_a_configured_stattest(stattest: str, categorical: list[str]) -> None:
    reference, current = scenario(3000, seed=3, drift=0.0), scenario(2000, seed=4, drift=0.3)
    kwargs = {"numerical": NUMERICAL, "categorical": categorical}
    fast = check_drift(reference, current, settings=DriftSection(stattest=stattest), with_report=False, **kwargs)
    full = check_drift(reference, current, settings=DriftSection(stattest=stattest, engine="evidently"), **kwargs)
    assert [(c.stattest, c.drifted) for c in fast.columns] == [(c.stattest, c.drifted) for c in full.columns]
    assert [c.score for c in fast.columns] == pytest.approx([c.score for c in full.columns], rel=1e-6)


def test_a_prepared_reference_profile_gives_the_same_result() -> None:
    reference, current = scenario(4000, seed=5, drift=0.0), scenario(1000, seed=6, drift=1.0)
    profile = profile_reference(reference, NUMERICAL, CATEGORICAL)
    settings = DriftSection()
    kwargs = {"numerical": NUMERICAL, "categorical": CATEGORICAL, "settings": settings, "with_report": False}
    assert check_drift(reference, current, profile=profile, **kwargs) == check_drift(reference, current, **kwargs)


def test_report_on_a_sample_says_so_and_keeps_the_full_data_verdict() -> None:
    # given frames larger than the report's sample size
    reference, current = scenario(5000, seed=7, drift=0.0), scenario(4000, seed=8, drift=1.0)
    # when checked with a 2,000-row report sample
    result = check_drift(
        reference,
        current,
        numerical=NUMERICAL,
        categorical=CATEGORICAL,
        settings=DriftSection(report_rows=2000),
        with_report=True,
    )
    # then the report is Evidently's, with a note naming the sample and the full-data verdict
    assert result.n_reference == 5000 and result.n_current == 4000
    assert "random sample of 2,000 of 5,000 reference rows and 2,000 of 4,000 current rows" in result.html
    assert f"verdict uses every row: drift ({len(result.drifted_columns())} of 8 columns)" in result.html
    assert "evidently" in result.html.lower()
