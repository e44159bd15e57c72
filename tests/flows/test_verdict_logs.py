"""The monitor's Prefect log carries one line per batch with its verdict, under the batch's full name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from flows.monitor import monitor


def test_a_pass_logs_one_verdict_line_per_batch_with_its_decision(
    prefect: str, world: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    # given a champion and three batches, the last two drifted
    config_path = world(n_batches=3, drift_at=2)
    caplog.set_level(logging.INFO, logger="prefect.flow_runs")
    # when a pass checks them
    summary = monitor(str(config_path))
    # then the flow run's log has a line per batch, naming the whole batch URI, its verdict and decision
    lines = [record.getMessage() for record in caplog.records if record.name == "prefect.flow_runs"]
    for verdict in summary.verdicts:
        (line,) = [line for line in lines if line.startswith(f"{verdict.batch_uri}: ")]
        assert line.startswith(f"{verdict.batch_uri}: {'drift' if verdict.dataset_drift else 'no drift'} (")
        assert f"decision: {'retrain' if verdict.retrain else 'no retrain'} ({verdict.reason})" in line
    assert [verdict.dataset_drift for verdict in summary.verdicts] == [False, True, True]
