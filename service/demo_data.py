"""Built-in demo data: a weather classification problem delivered as a stream of daily batches.

Numeric sensors and categorical context predict tomorrow's weather (sunny, cloudy or rainy). From
``drift_at`` on, the climate shifts (warmer, more humid, lower pressure, more coastal stations) and so
does the relation between the sensors and the label, so the champion degrades and a model retrained on
the new data wins on a fresh holdout. Everything is seeded: the same arguments give the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REGIONS = ["north", "south", "east", "west", "coast"]
SEASONS = ["winter", "spring", "summer", "autumn"]


@dataclass(frozen=True)
class DemoStream:
    reference: pd.DataFrame
    batches: list[pd.DataFrame]
    drift_at: int  # 1-based number of the first drifted batch


def _day_frame(rng: np.random.Generator, rows: int, start: pd.Timestamp, drifted: bool) -> pd.DataFrame:
    region_weights = [0.1, 0.1, 0.1, 0.1, 0.6] if drifted else [0.22, 0.22, 0.2, 0.2, 0.16]
    region = rng.choice(REGIONS, size=rows, p=region_weights)
    season = rng.choice(SEASONS, size=rows)
    coastal = (region == "coast").astype(float)
    temperature = rng.normal(18.0 if drifted else 12.0, 6.0, rows)
    humidity = np.clip(rng.normal(78.0 if drifted else 62.0, 12.0, rows) + 8 * coastal, 5, 100)
    pressure = rng.normal(1003.0 if drifted else 1013.0, 7.0, rows)
    wind_speed = np.abs(rng.normal(14.0, 6.0, rows)) + 4 * coastal
    cloud_cover = np.clip(rng.normal(70.0 if drifted else 50.0, 20.0, rows), 0, 100)
    # After the shift, storms are driven by heat and wind rather than by low pressure: a model fitted
    # before it mislabels the new regime, which is what makes retraining worth its cost.
    if drifted:
        wetness = 0.06 * (temperature - 18) + 0.08 * (wind_speed - 14) + 0.03 * (humidity - 78)
    else:
        wetness = -0.12 * (pressure - 1013) + 0.04 * (humidity - 62) + 0.03 * (cloud_cover - 50)
    wetness = wetness + 0.4 * (season == "autumn") + rng.normal(0.0, 0.45, rows)
    weather = np.where(wetness > 0.6, "rainy", np.where(wetness > -0.4, "cloudy", "sunny"))
    dates = start + pd.to_timedelta(rng.integers(0, 24 * 60, rows), unit="min")
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d %H:%M"),
            "temperature": temperature.round(2),
            "humidity": humidity.round(1),
            "pressure": pressure.round(1),
            "wind_speed": wind_speed.round(2),
            "cloud_cover": cloud_cover.round(1),
            "region": region,
            "season": season,
            "weather": weather,
        }
    )


def make_stream(
    n_batches: int = 8, rows: int = 1000, reference_rows: int = 3000, drift_at: int = 5, seed: int = 7
) -> DemoStream:
    """A reference window and ``n_batches`` batches; batches ``drift_at`` and later are drifted."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01")
    reference = _day_frame(rng, reference_rows, start, drifted=False)
    batches = [
        _day_frame(rng, rows, start + pd.Timedelta(days=day), drifted=day >= drift_at)
        for day in range(1, n_batches + 1)
    ]
    return DemoStream(reference=reference, batches=batches, drift_at=drift_at)


def batch_file_name(number: int) -> str:
    return f"batch_{number:03d}.csv"


def write_stream(stream: DemoStream, folder: Path) -> tuple[Path, list[Path]]:
    """Write the reference and the batches as csv files; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    reference_path = folder / "reference.csv"
    stream.reference.to_csv(reference_path, index=False)
    batch_dir = folder / "stream"
    batch_dir.mkdir(exist_ok=True)
    paths = []
    for number, frame in enumerate(stream.batches, start=1):
        path = batch_dir / batch_file_name(number)
        frame.to_csv(path, index=False)
        paths.append(path)
    return reference_path, paths
