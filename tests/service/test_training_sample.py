"""``training.max_rows``: a retrain on a window larger than it learns from a seeded sample, the same one for
the same config and data, read chunk by chunk, and recorded on the version (real MLflow sqlite store)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from service import window_sample
from service.cli import app
from service.config_file import load_config
from service.data import frame_hash, read_window
from service.evaluate import split_holdout
from service.registry import CHAMPION, LINEAGE_PATH, Registry
from service.retrain import load_window
from service.steps import retrain_model
from service.window_sample import read_training_window


@pytest.fixture
def window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """1000 numbered rows in two files: parquet row groups of 300 rows, then csv read in chunks of 300."""
    monkeypatch.setattr(window_sample, "CSV_CHUNK_ROWS", 300)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"row": np.arange(1000), "x": rng.normal(size=1000), "kind": rng.choice(["a", "b"], 1000)})
    frame.iloc[:600].to_parquet(tmp_path / "a.parquet", index=False, row_group_size=300)
    frame.iloc[600:].to_csv(tmp_path / "b.csv", index=False)
    return [str(tmp_path / "a.parquet"), str(tmp_path / "b.csv")]


def test_a_window_larger_than_max_rows_gives_the_same_seeded_sample_every_time(window: list[str]) -> None:
    # when the window of 1000 rows is read with max_rows 400, twice with one seed and once with another
    first, total = read_training_window(window, 400, seed=3)
    again, _ = read_training_window(window, 400, seed=3)
    other, _ = read_training_window(window, 400, seed=4)
    # then the sample has 400 distinct rows of the window, from both files, each as the window holds it
    assert total == 1000 and len(first) == 400 and first["row"].is_unique
    assert first["row"].lt(600).any() and first["row"].ge(600).any()
    whole = read_window(window)
    pd.testing.assert_frame_equal(first, whole.iloc[first["row"]].reset_index(drop=True))
    # and the same seed draws the same rows, another seed others
    pd.testing.assert_frame_equal(first, again)
    assert set(other["row"]) != set(first["row"])


def test_a_window_within_max_rows_is_read_whole(window: list[str]) -> None:
    frame, total = read_training_window(window, 1000, seed=3)
    assert total == 1000
    pd.testing.assert_frame_equal(frame, read_window(window))


def test_a_retrain_with_max_rows_learns_from_a_reproducible_sample_recorded_on_the_version(
    world: Callable[..., Path],
) -> None:
    # given a reference window of 1500 rows and training.max_rows 900
    config = load_config(world(n_batches=1, config={"training": {"max_rows": 900, "random_state": 5}}))
    # when the first champion is trained
    retrain_model(config)
    registry = Registry(config)
    version = registry.at_alias("dev", CHAMPION)
    run = registry.client.get_run(version.run_id)
    lineage = json.loads(Path(run.info.artifact_uri.removeprefix("file://"), LINEAGE_PATH).read_text())
    # then the version records the sample and the window it was drawn from
    assert version.tags["driftloop.window_rows"] == "1500" and version.tags["driftloop.sampled_rows"] == "900"
    assert (lineage["window_rows"], lineage["sampled_rows"]) == (1500, 900)
    assert run.data.params["training.max_rows"] == "900"
    assert int(run.data.params["rows.train"]) + int(run.data.params["rows.holdout"]) == 900
    # and the sample is the same when drawn again: the lineage's hashes are of the rows the model learnt from
    frame, _contract, rows = load_window([config.resolve(config.data.reference)], config)
    train, holdout = split_holdout(frame, config)
    assert (rows.window, rows.read) == (1500, 900)
    assert (lineage["train_hash"], lineage["holdout_hash"]) == (frame_hash(train), frame_hash(holdout))
    # and its stored reference is the sample's profile
    assert lineage["reference"]["rows"] == 900
    # and `driftloop models` says it was trained on a sample
    listing = CliRunner().invoke(app, ["models", "weather", "--config", str(config.source)])
    assert listing.exit_code == 0, listing.output
    assert "trained on a sample of 900 of 1,500 rows" in listing.output
