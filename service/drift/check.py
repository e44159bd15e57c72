"""Data drift check of a batch against the reference: per-column tests, a dataset verdict, a report.

Two engines give the same verdicts. ``fast`` (the default) computes Evidently's own tests with
numpy on every row (``service.drift.stats``) and has Evidently draw the HTML report on a sample when
the data is large — the report then says so. ``evidently`` runs Evidently's full report on every row;
it is the reference the fast engine is tested against, and the fallback for a stattest the fast engine
does not implement. ``dask`` (``service.drift.dask_engine``) computes the fast engine's tests on a Dask
cluster whose workers read the files themselves; frames already in memory are checked here, as ``fast``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pandas as pd

from service.drift import stats as drift_stats
from service.drift.report import sampled_report
from service.drift.result import ColumnDrift, DriftResult, check_stattest_fits
from service.settings import DriftSection

ReferenceProfile = dict[str, drift_stats.ColumnSide]


def profile_reference(reference: pd.DataFrame, numerical: list[str], categorical: list[str]) -> ReferenceProfile:
    """The reference side of every column's test, prepared once and reused for every batch."""
    columns = [*numerical, *categorical]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        sides = pool.map(lambda name: drift_stats.prepare(reference[name], numeric=name in numerical), columns)
        return dict(zip(columns, sides, strict=True))


def check_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: list[str],
    categorical: list[str],
    settings: DriftSection,
    profile: ReferenceProfile | None = None,
    with_report: bool = False,
) -> DriftResult:
    """Check ``current`` against ``reference`` on the given numerical and categorical columns only.

    ``profile`` (from :func:`profile_reference`) saves re-preparing the reference for every batch.
    ``with_report`` draws Evidently's HTML report too (importing Evidently takes seconds, and drawing it
    longer than the check): without it, ``html`` is empty.
    """
    columns = [*numerical, *categorical]
    if not columns or len(set(columns)) != len(columns):
        raise ValueError(f"need distinct columns to check: numerical={numerical}, categorical={categorical}")
    check_stattest_fits(settings.stattest, numerical, categorical)
    if not checks_by_column(settings):
        from service.drift.evidently_engine import evidently_check

        return evidently_check(reference, current, numerical=numerical, categorical=categorical, settings=settings)

    def check_column(name: str) -> ColumnDrift:
        numeric = name in numerical
        # Without a profile, the reference side is prepared here and dropped with the column.
        reference_side = profile[name] if profile else drift_stats.prepare(reference[name], numeric)
        return column_verdict(name, reference_side, drift_stats.prepare(current[name], numeric), settings)

    # numpy's sorts and merges release the GIL: columns are checked side by side on every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        checked = list(pool.map(check_column, columns))
    result = DriftResult.of_columns(tuple(checked), settings.drift_share, len(reference), len(current))
    if not with_report:
        return result
    html = sampled_report(reference, current, numerical, categorical, settings, result.verdict_line())
    return replace(result, html=html)


def column_verdict(
    name: str, reference: drift_stats.ColumnSide, current: drift_stats.ColumnSide, settings: DriftSection
) -> ColumnDrift:
    """One column's verdict from its two prepared sides: what a check of whole frames and a check reading a
    column at a time (``service.column_check``) both compute."""
    try:
        test, score, threshold, drifted = drift_stats.column_test(
            reference, current, settings.stattest, settings.stattest_threshold
        )
    except ValueError as exc:
        raise ValueError(f"column {name!r}: {exc}") from None
    return ColumnDrift(name, test.display_name, score, threshold, drifted)


def checks_by_column(settings: DriftSection) -> bool:
    """Whether a check can read its data a column at a time: the fast engine's own statistics need one
    column's prepared sides; Evidently's engine (and a stattest only it has) takes whole frames."""
    return settings.engine != "evidently" and drift_stats.supports(settings.stattest)
