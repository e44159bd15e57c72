"""Evidently's HTML report of a check, drawn on a sample when the data is large (the verdict is not)."""

from __future__ import annotations

import pandas as pd

from service.settings import DriftSection


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
    from service.drift.evidently_engine import evidently_check

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
