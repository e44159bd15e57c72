"""Data drift check of a batch against the reference: per-column tests, a dataset verdict, a report.

Two engines give the same verdicts. ``fast`` (the default) computes Evidently's own tests with
numpy on every row (``service.drift_stats``) and has Evidently draw the HTML report on a sample when
the data is large — the report then says so. ``evidently`` runs Evidently's full report on every row;
it is the reference the fast engine is tested against, and the fallback for a stattest the fast engine
does not implement.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from service import drift_stats
from service.errors import ConfigError
from service.settings import DriftSection


@dataclass(frozen=True)
class ColumnDrift:
    """Drift verdict of one column."""

    column: str
    stattest: str  # Evidently's display name of the test, e.g. "K-S p_value", "PSI"
    score: float  # p-value or distance, as Evidently reports it
    threshold: float
    drifted: bool  # status of Evidently's per-column drift test: FAIL => drifted


@dataclass(frozen=True)
class DriftResult:
    """Outcome of one drift check of a batch against the reference."""

    dataset_drift: bool
    drifted_share: float
    drift_share_threshold: float
    columns: tuple[ColumnDrift, ...]
    n_reference: int
    n_current: int
    html: str = field(repr=False, compare=False)

    def drifted_columns(self) -> list[str]:
        """Names of the columns whose drift test failed, in check order."""
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (everything but the HTML report)."""
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_share": self.drifted_share,
            "drift_share_threshold": self.drift_share_threshold,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "columns": [
                {
                    "column": c.column,
                    "stattest": c.stattest,
                    "score": c.score,
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                }
                for c in self.columns
            ],
        }


ReferenceProfile = dict[str, drift_stats.ColumnSide]


def profile_reference(reference: pd.DataFrame, numerical: list[str], categorical: list[str]) -> ReferenceProfile:
    """The reference side of every column's test, prepared once and reused for every batch."""
    columns = [*numerical, *categorical]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        sides = pool.map(lambda name: drift_stats.prepare(reference[name], numeric=name in numerical), columns)
        return dict(zip(columns, sides, strict=True))


def check_stattest_fits(stattest: str | None, numerical: list[str], categorical: list[str]) -> None:
    """Raise ``ConfigError`` naming the columns a configured stattest cannot test, before any computing:
    Evidently rejects e.g. ``ks`` on a categorical column, and the fast engine would fail halfway."""
    if stattest is None:
        return
    kinds = DriftSection.STATTEST_KINDS.get(stattest, frozenset())
    misfits = [(name, "numerical") for name in numerical if "num" not in kinds]
    misfits += [(name, "categorical") for name in categorical if "cat" not in kinds]
    if misfits:
        both = sorted(name for name, fits in DriftSection.STATTEST_KINDS.items() if {"num", "cat"} <= fits)
        columns = ", ".join(f"{kind} column {name!r}" for name, kind in misfits)
        raise ConfigError(
            f"drift.stattest {stattest!r} cannot test {columns}: choose a stattest for both kinds "
            f"({', '.join(both)}) or leave drift.stattest unset for Evidently's choice per column"
        )


def _sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=0)


def sampled_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    settings: DriftSection,
    verdict: str,
) -> str:
    """Evidently's HTML report of ``current`` against ``reference``, on at most ``settings.report_rows``
    rows per side; a sampled report says so and quotes ``verdict``, which was decided on every row."""
    from service.drift_evidently import evidently_check

    ref_sample, cur_sample = _sample(reference, settings.report_rows), _sample(current, settings.report_rows)
    html = evidently_check(ref_sample, cur_sample, numerical=numerical, categorical=categorical, settings=settings).html
    if len(ref_sample) == len(reference) and len(cur_sample) == len(current):
        return html
    note = (
        '<div style="padding:12px;margin:8px;border:2px solid #c60;font-family:sans-serif">'
        f"<b>driftloop:</b> Evidently drew this report on a random sample of {len(ref_sample):,} of "
        f"{len(reference):,} reference rows and {len(cur_sample):,} of {len(current):,} current rows. "
        f"driftloop's verdict uses every row: {verdict}.</div>"
    )
    head, body_tag, rest = html.partition("<body>")
    return head + body_tag + note + rest if body_tag else note + html


def check_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: list[str],
    categorical: list[str],
    settings: DriftSection,
    profile: ReferenceProfile | None = None,
    with_report: bool = True,
) -> DriftResult:
    """Check ``current`` against ``reference`` on the given numerical and categorical columns only.

    ``profile`` (from :func:`profile_reference`) saves re-preparing the reference for every batch.
    """
    columns = [*numerical, *categorical]
    if not columns or len(set(columns)) != len(columns):
        raise ValueError(f"need distinct columns to check: numerical={numerical}, categorical={categorical}")
    check_stattest_fits(settings.stattest, numerical, categorical)
    if settings.engine == "evidently" or not drift_stats.supports(settings.stattest):
        from service.drift_evidently import evidently_check

        return evidently_check(reference, current, numerical=numerical, categorical=categorical, settings=settings)

    def check_column(name: str) -> ColumnDrift:
        numeric = name in numerical
        # Without a profile, the reference side is prepared here and dropped with the column.
        reference_side = profile[name] if profile else drift_stats.prepare(reference[name], numeric)
        side = drift_stats.prepare(current[name], numeric)
        try:
            test, score, threshold, drifted = drift_stats.column_test(
                reference_side, side, settings.stattest, settings.stattest_threshold
            )
        except ValueError as exc:
            raise ValueError(f"column {name!r}: {exc}") from None
        return ColumnDrift(name, test.display_name, score, threshold, drifted)

    # numpy's sorts and merges release the GIL: columns are checked side by side on every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        checked = list(pool.map(check_column, columns))
    share = sum(column.drifted for column in checked) / len(checked)
    dataset_drift = share >= settings.drift_share
    verdict = (
        f"{'drift' if dataset_drift else 'no drift'} ({sum(c.drifted for c in checked)} of {len(checked)} columns)"
    )
    html = sampled_report(reference, current, numerical, categorical, settings, verdict) if with_report else ""
    return DriftResult(
        dataset_drift=dataset_drift,
        drifted_share=share,
        drift_share_threshold=settings.drift_share,
        columns=tuple(checked),
        n_reference=len(reference),
        n_current=len(current),
        html=html,
    )
