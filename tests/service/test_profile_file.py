"""The reference profile's file: written and read back exactly, and refused with a reason when damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.drift.check import profile_reference
from service.drift.profile_file import read_profile, write_profile


def test_a_profile_reads_back_as_written_column_by_column(tmp_path: Path) -> None:
    # given a reference with NaN and inf, a numeric column with no finite value, and categoricals with nulls
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "color": pd.Series(rng.choice(["red", "green", None], 500), dtype=object),
            "x": np.where(rng.random(500) < 0.1, np.nan, rng.normal(size=500)),
            "empty": np.full(500, np.nan),
            "y": np.r_[np.inf, -np.inf, rng.integers(0, 4, 498).astype(float)],
            "size": pd.Categorical(rng.choice(["s", "m"], 500)),
        }
    )
    profile = profile_reference(frame, ["x", "empty", "y"], ["color", "size"])
    # when it is written and read back
    write_profile(profile, len(frame), tmp_path / "profile.parquet")
    back, rows = read_profile(tmp_path / "profile.parquet")
    # then every column's side is the same, in the same order, and so is the row count
    assert rows == 500 and list(back) == list(profile)
    for name, side in profile.items():
        read, written = back[name], side
        assert (read.size, read.numeric, read.n_distinct) == (written.size, written.numeric, written.n_distinct)
        assert back[name].counts.sort_index().to_dict() == side.counts.sort_index().to_dict(), name
        if side.numeric:
            assert np.array_equal(back[name].sorted_values, side.sorted_values), name


@pytest.mark.parametrize("damage", ["truncated", "foreign parquet"])
def test_a_damaged_profile_file_is_refused_with_the_reason(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "profile.parquet"
    write_profile(profile_reference(pd.DataFrame({"x": [1.0, 2.0]}), ["x"], []), 2, path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-20])
    else:
        pd.DataFrame({"value": [1.0], "category": ["a"], "count": [1]}).to_parquet(path)
    with pytest.raises(ValueError, match="not a reference profile"):
        read_profile(path)
