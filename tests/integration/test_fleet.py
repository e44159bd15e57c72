"""A fleet of models on the real stack: the sweep deployment starts one monitor run per model file, a
new file is picked up by the next sweep, and retrains of different models run side by side while
one model's never overlap.

The stack is the one of ``conftest.py``: PostgreSQL, ``prefect server``, ``mlflow server`` and a process
worker (standing in for the Kubernetes one) holding the deployments of ``flows/prefect.yaml``.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from integration.conftest import World
from integration.helpers import (
    deployment_runs,
    emit,
    read_flow_run,
    start_deployment,
    task_of,
    task_runs,
    wait_for_flow_run,
    wait_for_retrains,
    wait_for_task,
)
from service.stack.servers import Stack

SWEEP, MONITOR = "sweep/sweep", "monitor/monitor"


def model_file(world: World, folder: Path) -> Path:
    """The world's config in a models folder, its data paths made absolute."""
    document = yaml.safe_load(world.config_path.read_text())
    data = world.config_path.parent / "data"
    document["data"].update(reference=str(data / "reference.csv"), current=str(data / "stream" / "*.csv"))
    path = folder / f"{world.name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def sweep(folder: Path, since: datetime) -> dict[str, Any]:
    """Run the sweep deployment over ``folder``; return the finished monitor run of each model, by model.
    (The sweep ends after them: it waits for its monitor runs to draw their drift reports.)"""
    run = wait_for_flow_run(start_deployment(SWEEP, {"models_dir": str(folder), "retrain_via": "event"}), 900)
    assert run.state.type.value == "COMPLETED", run.state.message
    monitors = {}
    for monitor in deployment_runs(MONITOR, since):
        model = next(tag.removeprefix("model:") for tag in monitor.tags if tag.startswith("model:"))
        monitors[model] = wait_for_flow_run(monitor.id, 400)
    return monitors


def test_the_sweep_runs_every_model_in_its_own_run_names_the_bad_file_and_picks_up_a_new_one(
    stack: Stack, make_world: Callable[..., World], prefect_client_settings: str, tmp_path: Path
) -> None:
    # given a models folder: a classifier, a regressor and a file with a typo
    folder = tmp_path / "models"
    folder.mkdir()
    model_file(make_world("fleet-a", n_batches=3, drift_at=9), folder)
    # (the regressor asks for a pass once a day: the second sweep leaves it alone)
    regressor = make_world(
        "fleet-b",
        n_batches=3,
        drift_at=9,
        config={"model": {"task": "regression", "target": "humidity"}, "data": {"check_every": 86400}},
    )
    regressor.hold(3)
    model_file(regressor, folder)
    (folder / "fleet-broken.yaml").write_text("model: {name: fleet-broken, task: classification}\n")
    since = datetime.now(UTC)
    # when the sweep runs
    monitors = sweep(folder, since)
    # then each good model had its own monitor run, named and tagged by model, that checked its batches
    assert set(monitors) == {"fleet-a", "fleet-b"}
    for model, run in monitors.items():
        assert run.state.type.value == "COMPLETED", (model, run.state.message)
        assert run.name == f"monitor-{model}"
    a_checks = _checks(folder / "fleet-a.yaml")
    assert len(a_checks) == 3 and len(_checks(folder / "fleet-b.yaml")) == 2
    # and the monitor runs left their drift reports to the sweep, which drew every one of them
    assert all(run.parameters.get("draw_reports") is False for run in monitors.values())
    assert _report_states(folder / "fleet-a.yaml") == ["drawn"] * 3
    assert _report_states(folder / "fleet-b.yaml") == ["drawn"] * 2
    # when a model file is added, a batch arrives for the regressor, and the sweep runs again, with
    # nothing restarted
    model_file(make_world("fleet-c", n_batches=2, drift_at=9), folder)
    regressor.deliver(3)
    again = sweep(folder, datetime.now(UTC))
    # then only the new model gets a pass: the classifier has nothing new (no run is started for it), and
    # the regressor's new batch waits for its daily pass
    assert set(again) == {"fleet-c"}
    assert again["fleet-c"].state.type.value == "COMPLETED"
    assert len(_checks(folder / "fleet-c.yaml")) == 2
    assert _checks(folder / "fleet-a.yaml") == a_checks and len(_checks(folder / "fleet-b.yaml")) == 2


def _monitor_runs_started(since: datetime, count: int, timeout: float) -> dict[str, Any]:
    """The monitor runs started since ``since``, by model tag, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        runs = {next(t for t in run.tags if t.startswith("model:")): run for run in deployment_runs(MONITOR, since)}
        if len(runs) >= count:
            return runs
        assert time.monotonic() < deadline, f"{len(runs)} monitor runs started in {timeout:.0f} s, expected {count}"
        time.sleep(1)


def _checks(config_path: Path) -> list[str]:
    return sorted(run.info.run_id for run in _check_runs(config_path))


def _report_states(config_path: Path) -> list[str | None]:
    return [run.data.tags.get("driftloop.report") for run in _check_runs(config_path)]


def _check_runs(config_path: Path) -> list[Any]:
    from service.config_file import load_config
    from service.registry import Registry

    registry = Registry(load_config(config_path))
    return registry.client.search_runs(
        [registry.experiment_id("monitoring")],
        "tags.`driftloop.kind` = 'drift_check' and attributes.status = 'FINISHED'",
        max_results=1000,
    )


def test_one_models_retrains_never_overlap_while_another_models_retrain_runs_side_by_side(
    stack: Stack, make_world: Callable[..., World], prefect_client_settings: str
) -> None:
    from prefect.events import Event

    from service.notify import retrain_requested

    # given two models with a champion, their drifted batches not yet arrived
    worlds = {name: make_world(name, n_batches=5, drift_at=4) for name in ("pair-a", "pair-b")}
    for world in worlds.values():
        world.hold(4, 5)
        _monitor(world)
    since = datetime.now(UTC)
    a, b = worlds["pair-a"], worlds["pair-b"]
    # when a long retrain of pair-a holds its slot (a retrain flow run of this process, held open), the
    # drift arrives for both, and pair-a gets a burst of two more requests for the same drift check
    with long_retrain_holding_the_slot("pair-a", str(a.config_path)):
        for world in worlds.values():
            world.deliver(4, 5)
            _monitor(world)
        (check,) = [r for r in a.runs("monitoring") if r.data.tags["driftloop.batch_uri"].endswith("batch_005.csv")]
        request = retrain_requested("pair-a", str(a.config_path), check.info.run_id)
        emit([Event(event=request.event, resource=request.resource, payload=request.body()) for _ in range(2)])
        # then pair-b's retrain runs and trains meanwhile: another model's slot does not hold it back
        (b_run,) = wait_for_retrains(b.config_path, since, 1, timeout=600)
        assert b_run.state.type.value == "COMPLETED", b_run.state.message
        assert len(b.runs("training")) == 2
        # and pair-a's three retrain runs end at once without training, beside the one holding its slot
        a_runs = wait_for_retrains(a.config_path, since, 3, timeout=600)
        assert {run.state.type.value for run in a_runs} == {"COMPLETED"}
        assert len(a.runs("training")) == 1
    # when the slot is free and pair-a's next pass runs, its decision, still pending, is asked for again
    _monitor(a)
    # then exactly one more retrain trains for it
    wait_for_retrains(a.config_path, since, 4, timeout=600)
    assert len(a.runs("training")) == 2
    assert a.registry().version("dev", "2").tags["driftloop.drift_run_id"] == check.info.run_id


@contextmanager
def long_retrain_holding_the_slot(model: str, config_path: str) -> Iterator[None]:
    """A flow run named ``retrain`` for this config, running in a thread, holding the model's slot."""
    from prefect import flow

    from flows.slots import model_slot

    holding, release = threading.Event(), threading.Event()

    @flow(name="retrain")
    def long_retrain(config_path: str) -> None:
        with model_slot("retrain", model, config_path) as ours:
            assert ours
            holding.set()
            release.wait(900)

    # In this test's Prefect settings (the stack's API): a new thread would not see them otherwise.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(long_retrain, config_path))
    thread.start()
    assert holding.wait(120), "the holding retrain never took the slot"
    try:
        yield
    finally:
        release.set()
        thread.join(60)


def _monitor(world: World) -> None:
    run = wait_for_flow_run(
        start_deployment(MONITOR, {"config_path": str(world.config_path), "retrain_via": "event"}), 400
    )
    assert run.state.type.value == "COMPLETED", run.state.message


def test_a_backlog_ends_on_the_same_champion_and_history_by_subflow_and_by_event(
    stack: Stack, make_world: Callable[..., World], prefect_client_settings: str
) -> None:
    from flows.monitor import monitor
    from service.monitor import work_to_do

    # given the same backlog of eight batches, drifting from batch 4, for two models with no champion
    subflow, event = (
        make_world("backlog-sub", n_batches=8, drift_at=4),
        make_world("backlog-evt", n_batches=8, drift_at=4),
    )
    # when one catches up in one process (retrains as subflows), the other on the stack, pass after pass,
    # each retrain its own run started by the monitor's event, until a pass finds nothing to do
    monitor(str(subflow.config_path), retrain_via="subflow")
    since = datetime.now(UTC)
    for _ in range(8):
        _monitor(event)
        time.sleep(5)  # the trigger starts a requested retrain within seconds; a missed one is asked again
        wait_for_retrains(event.config_path, since, 0, timeout=600)
        if work_to_do(event.registry()) is None:
            break
    # then both end on the same champion, trained on the same window, and checked every batch against
    # the same champion with the same verdict
    assert _champion_window(event) == _champion_window(subflow) == ["batch_004.csv", "batch_005.csv"]
    assert _history(event) == _history(subflow)


def _champion_window(world: World) -> list[str]:
    registry = world.registry()
    champion = registry.at_alias("dev", "champion")
    return [Path(uri).name for uri in registry.lineage(champion)["training_data"]]


def _history(world: World) -> dict[str, tuple[str, bool]]:
    """Each batch: the version it was checked against, and whether it drifted."""
    registry = world.registry()
    version_of = {v.run_id: v.version for v in registry.versions("dev")}
    return {
        Path(run.data.tags["driftloop.batch_uri"]).name: (
            version_of.get(run.data.tags["driftloop.reference_run"], "?"),
            run.data.tags["driftloop.dataset_drift"] == "true",
        )
        for run in world.runs("monitoring")
        if run.data.tags.get("driftloop.kind") == "drift_check" and run.info.status == "FINISHED"
    }


def test_a_killed_pass_of_one_model_leaves_the_others_complete_and_the_next_sweep_finishes_it(
    stack: Stack, make_world: Callable[..., World], prefect_client_settings: str, tmp_path: Path
) -> None:
    import os
    import signal

    # given a models folder with two models, the first with a larger stream
    folder = tmp_path / "models"
    folder.mkdir()
    doomed, healthy = make_world("kill-a", n_batches=6, drift_at=9), make_world("kill-b", n_batches=3, drift_at=9)
    for world in (doomed, healthy):
        model_file(world, folder)
    since = datetime.now(UTC)
    # when the sweep starts both passes, and the first one's process is killed (an OOM kill, a node lost)
    sweep_run = start_deployment(SWEEP, {"models_dir": str(folder), "retrain_via": "event"})
    runs = _monitor_runs_started(since, 2, timeout=300)
    victim = runs["model:kill-a"].id
    wait_for_task(victim, "examine", timeout=400)
    os.kill(int(str(read_flow_run(victim).infrastructure_pid).rsplit(":", 1)[-1]), signal.SIGKILL)
    # then that pass ends crashed, and the other model's pass completes with every batch checked
    assert wait_for_flow_run(victim, 120).state.type.value == "CRASHED"
    assert wait_for_flow_run(runs["model:kill-b"].id, 400).state.type.value == "COMPLETED"
    assert len(_checks(folder / "kill-b.yaml")) == 3
    # and the sweep, which waited for both passes to end, completes having drawn the reports it could
    assert wait_for_flow_run(sweep_run, 600).state.type.value == "COMPLETED"
    assert _report_states(folder / "kill-b.yaml") == ["drawn"] * 3
    # and a later sweep, once the server has revoked the dead pass's lease on the model's slot (not
    # renewed for 60 s), gives the killed model its pass again: every batch checked exactly once
    deadline = time.monotonic() + 400
    while len(_checks(folder / "kill-a.yaml")) < 6:
        assert time.monotonic() < deadline, _checks(folder / "kill-a.yaml")
        again = sweep(folder, datetime.now(UTC))
        assert set(again) == {"kill-a"}, again  # kill-b has nothing new
        time.sleep(10)
    assert len(_checks(folder / "kill-a.yaml")) == 6


@contextmanager
def monitor_cap(limit: int) -> Iterator[None]:
    """The monitor deployment's concurrency limit set to ``limit`` for a while (the stack's is 4)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(MONITOR)
        before = deployment.global_concurrency_limit.limit if deployment.global_concurrency_limit else None
        client.update_deployment(deployment.id, DeploymentUpdate(concurrency_limit=limit))
        try:
            yield
        finally:
            client.update_deployment(deployment.id, DeploymentUpdate(concurrency_limit=before))


def test_the_sweep_starts_passes_as_slots_free_and_draws_reports_while_later_passes_run(
    stack: Stack, make_world: Callable[..., World], prefect_client_settings: str, tmp_path: Path
) -> None:
    # given three models with new batches, and room for one monitor run at a time
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("paced-a", "paced-b", "paced-c"):
        model_file(make_world(name, n_batches=1, drift_at=9), folder)
    since = datetime.now(UTC)
    # when the sweep runs
    with monitor_cap(1):
        monitors = sweep(folder, since)
    # then every model was checked, one pass after the other
    assert set(monitors) == {"paced-a", "paced-b", "paced-c"}
    assert all(run.state.type.value == "COMPLETED" for run in monitors.values())
    spans = sorted((run.start_time, run.end_time) for run in monitors.values())
    assert all(ended <= began for (_, ended), (began, _) in itertools.pairwise(spans))
    # and none was refused a slot (refused, it would have waited 30 s for the server to let it retry)
    refused = [name for name, run in monitors.items() if "AwaitingConcurrencySlot" in _state_names(run.id)]
    assert refused == []
    # and the sweep drew the first model's drift report while the last pass still ran, not after every pass
    (sweep_run,) = deployment_runs(SWEEP, since)
    drawings = [run.start_time for run in task_runs(sweep_run.id) if task_of(run) == "draw_reports"]
    assert drawings and all(drawings), "the sweep drew the models' reports"
    first_drawing = min(drawings)
    assert first_drawing < max(run.end_time for run in monitors.values())


def _state_names(flow_run_id: Any) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [state.name for state in client.read_flow_run_states(flow_run_id)]
