"""A champion's reference profile and report sample, stored with its training run: written by the retrain,
used by every check instead of the training window, and refused loudly when damaged. Real MLflow sqlite
store and local artifacts in tmp_path, driven by ``service/`` alone (no orchestrator)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from service import monitor, stored_reference
from service import reference as references
from service.cli import app
from service.config_file import load_config
from service.contracts import conform
from service.data import read_frame
from service.drift.check import profile_reference
from service.drift.profile_file import write_profile
from service.drift.report import sample_rows
from service.errors import RegistryError
from service.records import read_records
from service.registry import CHAMPION, LINEAGE_PATH, Registry
from service.steps import check_model, retrain_model


@pytest.fixture
def registry(world: Callable[..., Path]) -> Registry:
    """A first champion trained on data/reference.csv (1500 rows), batches 4 and 5 drifted."""
    config = load_config(world(n_batches=5, drift_at=4, config={"drift": {"report_rows": 1001}}))
    retrain_model(config)
    return Registry(config)


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    """Each test downloads and reads as a new monitor process would: nothing cached from another test."""
    for cached in (references._prepared_reference, stored_reference._profile, stored_reference._sample):
        cached.cache_clear()


def champion_files(registry: Registry) -> Path:
    """The local folder of the dev champion's training run artifacts."""
    run = registry.client.get_run(registry.at_alias("dev", CHAMPION).run_id)
    return Path(run.info.artifact_uri.removeprefix("file://"))


def reference_window(registry: Registry) -> Path:
    return Path(registry.config.resolve(registry.config.data.reference))


def window_results(registry: Registry) -> dict[str, dict[str, object]]:
    """Every batch's check against the champion's window read anew, as before profiles were stored."""
    reference = replace(references.current_reference(registry), stored=None)
    return {uri: _result(reference, uri, registry) for uri in _batches(registry)}


def _batches(registry: Registry) -> list[str]:
    return sorted(str(path) for path in Path(registry.config.resolve("data/stream")).glob("*.csv"))


def _result(reference: references.Reference, uri: str, registry: Registry) -> dict[str, object]:
    result, _ = monitor.check_batch(reference, uri, registry.config)
    return result.to_dict()


def test_a_retrain_stores_the_profile_of_the_window_it_learnt_from_with_the_version(registry: Registry) -> None:
    # given a first champion trained on the reference window
    folder = champion_files(registry)
    lineage = json.loads((folder / LINEAGE_PATH).read_text())
    # then its training run holds the profile and the report sample, named with their digests in the lineage
    entry = lineage[stored_reference.LINEAGE_KEY]
    assert (folder / entry["profile"]).is_file() and (folder / entry["sample"]).is_file()
    assert entry["rows"] == 1500 and entry["sample_rows"] == 1001
    # and the stored profile is the window's, profiled as a check profiles it
    reference = references.current_reference(registry)
    window = conform(read_frame(str(reference_window(registry))), reference.contract)
    expected = profile_reference(window, reference.contract.numerical, reference.contract.categorical)
    stored = reference.stored.profile()
    assert list(stored) == list(expected)
    for name, side in expected.items():
        assert (stored[name].size, stored[name].n_distinct) == (side.size, side.n_distinct), name
        if side.numeric:
            assert np.array_equal(stored[name].values, side.values), name
        else:
            assert stored[name].counts.sort_index().to_dict() == side.counts.sort_index().to_dict(), name
    # and its sample is the one the report draws from the window: the same seeded rows
    sample = reference.stored.sample()
    pd.testing.assert_frame_equal(
        sample, sample_rows(window[reference.contract.feature_names], 1001).reset_index(drop=True)
    )


def test_a_check_with_the_stored_profile_reads_no_training_data_and_gives_the_window_verdicts(
    registry: Registry,
) -> None:
    # given the verdicts of every batch against the champion's training window
    expected = window_results(registry)
    assert any(result["dataset_drift"] for result in expected.values())  # the drifted batches are there
    # when the training window is gone (moved away after the retrain) and a fresh process checks every batch
    reference_window(registry).rename(reference_window(registry).with_suffix(".moved"))
    references._prepared_reference.cache_clear()
    reference = references.current_reference(registry)
    checked = {uri: _result(reference, uri, registry) for uri in _batches(registry)}
    # then each verdict, column scores included, equals the one against the window
    assert checked == expected
    # and the monitor's own step checks and records the batches, and draws their reports from the sample
    report = check_model(registry.config)
    assert [verdict.batch_uri for verdict in report.verdicts] == _batches(registry)
    assert [verdict.dataset_drift for verdict in report.verdicts] == [r["dataset_drift"] for r in expected.values()]
    tags = [run.tags for run in read_records(registry).finished({"kind": "drift_check"})]
    assert tags and all(tag["report"] == "drawn" for tag in tags)


def test_a_champion_without_a_stored_profile_is_checked_against_its_window(registry: Registry) -> None:
    # given a champion registered before profiles were stored: its lineage names no profile
    folder = champion_files(registry)
    lineage = json.loads((folder / LINEAGE_PATH).read_text())
    expected = window_results(registry)
    del lineage[stored_reference.LINEAGE_KEY]
    (folder / LINEAGE_PATH).write_text(json.dumps(lineage))
    # when its batches are checked, then the reference is its window, and the verdicts are the window's
    reference = references.current_reference(registry)
    assert reference.stored is None
    assert {uri: _result(reference, uri, registry) for uri in _batches(registry)} == expected
    report = check_model(registry.config)
    assert [verdict.dataset_drift for verdict in report.verdicts] == [r["dataset_drift"] for r in expected.values()]


@pytest.mark.parametrize("damage", ["altered", "unreadable", "missing"])
def test_a_damaged_stored_profile_fails_the_check_loudly_and_records_no_verdict(
    registry: Registry, damage: str
) -> None:
    # given a champion whose stored profile was damaged after it was logged
    path = champion_files(registry) / "reference" / "profile.parquet"
    if damage == "altered":  # still a profile, of other rows: only its digest tells
        contract = references.current_reference(registry).contract
        other = conform(read_frame(str(reference_window(registry))).head(700), contract)
        write_profile(profile_reference(other, contract.numerical, contract.categorical), 1500, path)
    elif damage == "unreadable":
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.unlink()
    # when a pass checks the batches
    with pytest.raises(RegistryError) as raised:
        check_model(registry.config)
    # then it fails naming the file and the fix, checks nothing against other data, and quarantines nothing
    assert "profile.parquet" in str(raised.value) and "driftloop retrain" in str(raised.value)
    assert read_records(registry).finished({}) == []
    # and `driftloop check` says so in one line and exits 2 (a bad artifact: retrying would not help)
    checked = CliRunner().invoke(app, ["check", "weather", "--config", str(registry.config.source)])
    assert checked.exit_code == 2 and "profile.parquet" in checked.output
