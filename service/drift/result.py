"""The outcome of a drift check: per-column verdicts and the dataset verdict, shared by both engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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

    @classmethod
    def of_columns(
        cls, columns: tuple[ColumnDrift, ...], drift_share: float, n_reference: int, n_current: int, html: str = ""
    ) -> DriftResult:
        """The dataset verdict of per-column verdicts: drift when at least ``drift_share`` of them drifted."""
        share = sum(column.drifted for column in columns) / len(columns)
        return cls(share >= drift_share, share, drift_share, columns, n_reference, n_current, html)

    def verdict_line(self) -> str:
        """E.g. ``drift (3 of 8 columns)``: what a sampled report quotes as the verdict on every row."""
        verdict = "drift" if self.dataset_drift else "no drift"
        return f"{verdict} ({len(self.drifted_columns())} of {len(self.columns)} columns)"

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
