"""The monitor flow on a model with ``drift.engine: dask``: a real Prefect test API, a real MLflow sqlite
store, and a real Dask cluster (tests/dask_support.py) whose address comes from the environment, as the
chart gives it to flow runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flows.monitor import monitor
from service import monitor as domain
from service.config_file import load_config
from service.reference import current_reference
from service.registry import Registry
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
    reference = current_reference(registry)
    for verdict in summary.verdicts:
        expected, _ = domain.check_batch(reference, verdict.batch_uri, fast)
        assert (verdict.drifted_share, verdict.drifted_columns) == (
            expected.drifted_share,
            tuple(expected.drifted_columns()),
        )


def check_attempts(flow_run_id: object) -> list[int]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="examine")),
        )
    return [run.run_count for run in runs]


def test_an_unreachable_scheduler_fails_the_pass_after_retries_and_records_no_verdict(
    prefect: str, world: Callable[..., Path], dask_scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from service.errors import ComputeUnavailable

    # given a model checked on a Dask scheduler where nothing listens
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("DRIFTLOOP_DASK_SCHEDULER", address)
    monkeypatch.setenv("DRIFTLOOP_DASK_CONNECT_TIMEOUT", "1")
    config_path = world(n_batches=2, drift_at=3, config={"drift": {"engine": "dask"}})
    # when a pass runs, then it fails naming the address, after the task that checks the batch was tried 4 times
    state = monitor(str(config_path), return_state=True)
    assert state.is_failed()
    with pytest.raises(ComputeUnavailable, match=f"Dask scheduler at {address} did not answer"):
        state.result()
    assert check_attempts(state.state_details.flow_run_id) == [4]
    # and no verdict was recorded: the outage is not an answer
    registry = Registry(load_config(config_path))
    runs = registry.client.search_runs([registry.experiment_id("monitoring")], "tags.`driftloop.kind` = 'drift_check'")
    assert runs == []
    # when the scheduler answers again, the next pass checks each batch once
    monkeypatch.setenv("DRIFTLOOP_DASK_SCHEDULER", dask_scheduler)
    summary = monitor(str(config_path))
    assert sorted(Path(v.batch_uri).name for v in summary.verdicts) == ["batch_001.csv", "batch_002.csv"]
    assert not any(v.already_checked for v in summary.verdicts)
