"""The monitor flow on a model with ``drift.engine: dask``: a real Prefect test API, a real MLflow sqlite
store, and a real Dask cluster (tests/dask_support.py) whose address comes from the environment, as the
chart gives it to flow runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flows.monitor import monitor
from service import monitor as domain
from service.registry import Registry
from service.settings import load_config
from tests.dask_support import killing_first


def test_a_pass_on_dask_records_one_check_per_batch_with_the_fast_engines_verdicts_despite_a_killed_worker(
    prefect: str, world: Callable[..., Path], dask_scheduler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a model checked on the Dask cluster, over a stream drifting from batch 4 (one drift: no retrain)
    monkeypatch.setenv("DRIFTLOOP_DASK_SCHEDULER", dask_scheduler)
    config_path = world(n_batches=4, drift_at=4, config={"drift": {"engine": "dask"}})
    marker = tmp_path / "killed"
    # when a monitor pass runs while a worker dies as it starts deciding a column
    with killing_first(dask_scheduler, "driftloop-decide-", marker):
        summary = monitor(str(config_path))
    # then a worker was killed during a check
    assert marker.read_text().split(" ", 1)[1].startswith("driftloop-decide-")
    # and every batch has exactly one check run, drift seen at batch 4 alone
    registry = Registry(load_config(config_path))
    runs = registry.client.search_runs([registry.experiment_id("monitoring")])
    batches = sorted(run.data.tags.get("driftloop.batch_uri", "") for run in runs)
    assert [Path(uri).name for uri in batches] == [f"batch_00{i}.csv" for i in range(1, 5)]
    verdicts = {Path(v.batch_uri).name: v for v in summary.verdicts}
    assert [name for name, v in verdicts.items() if v.dataset_drift] == ["batch_004.csv"]
    # and each verdict is the one the fast engine gives on the same batch against the same champion
    config = load_config(config_path)
    fast = config.model_copy(update={"drift": config.drift.model_copy(update={"engine": "fast"})})
    reference = domain.current_reference(registry)
    for verdict in summary.verdicts:
        frame, _ = domain.read_batch(verdict.batch_uri, reference.contract)
        expected = domain.run_drift_check(reference, frame, fast)
        assert (verdict.drifted_share, verdict.drifted_columns) == (
            expected.drifted_share,
            tuple(expected.drifted_columns()),
        )
