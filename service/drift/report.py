"""Evidently's HTML report of a check, drawn on a sample when the data is large (the verdict is not)."""

from __future__ import annotations

import pandas as pd

from service.settings import DriftSection


def sample_rows(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn with a fixed seed: the same frame gives the same sample."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=0)


def sampled_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    settings: DriftSection,
    verdict: str,
    reference_rows: int | None = None,
) -> str:
    """Evidently's HTML report of ``current`` against ``reference``, on at most ``settings.report_rows``
    rows per side; a sampled report says so and quotes ``verdict``, which was decided on every row.

    ``reference_rows``: how many rows the reference has when ``reference`` is already a sample of it (the
    one a champion stores, drawn by :func:`sample_rows` when it was trained)."""
    from service.drift.evidently_engine import evidently_check

    total = len(reference) if reference_rows is None else reference_rows
    ref_sample, cur_sample = sample_rows(reference, settings.report_rows), sample_rows(current, settings.report_rows)
    html = evidently_check(ref_sample, cur_sample, numerical=numerical, categorical=categorical, settings=settings).html
    if len(ref_sample) == total and len(cur_sample) == len(current):
        return html
    note = (
        '<div style="padding:12px;margin:8px;border:2px solid #c60;font-family:sans-serif">'
        f"<b>driftloop:</b> Evidently drew this report on a random sample of {len(ref_sample):,} of "
        f"{total:,} reference rows and {len(cur_sample):,} of {len(current):,} current rows. "
        f"driftloop's verdict uses every row: {verdict}.</div>"
    )
    head, body_tag, rest = html.partition("<body>")
    return head + body_tag + note + rest if body_tag else note + html
