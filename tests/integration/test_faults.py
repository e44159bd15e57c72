"""A dependency fails at each step of a monitor pass; once it is restored and the pass runs again, the
registry and the check history are those of an uninterrupted run on the same batches.

Real servers on 127.0.0.1 (tests/integration/conftest.py): PostgreSQL, ``prefect server`` and its worker,
``mlflow server`` (PostgreSQL store, proxied artifacts), and moto's S3 server. Faults come from stopping
a server or from ``integration.faults.FaultProxy``, an HTTP proxy put between driftloop and the server
(the model's ``registry.tracking_uri``, the S3 endpoint, the Prefect API) that fails chosen requests.

Every case runs the same story as the uninterrupted run: a first pass over batches 1-3 (no champion yet:
it trains v1 on the reference, promotes it dev → staging, prod waits for approval; no drift), then the
pass under test once batches 4 and 5 have arrived (drift at 4, confirmed at 5 → retrain → v2). The monitor
flow runs in this process against the stack's Prefect server (the retrain as a subflow), except in the
event case, where the retrain deployment runs on the worker from its trigger. MLflow's own HTTP retries
are off: the flow's task retries (1, 4, 10 s, transient errors only) are what is exercised. A fault that
outlasts them fails the pass; a blip is absorbed by them.

Compared with the uninterrupted run (``outcome``): per environment each version with its driftloop tags
(run ids mapped to what they name, timestamps and flow-run ids left out) and the aliases; every finished
record of the monitoring experiment (batch, kind, drift verdict, retrain decision, reference version);
the monitoring runs left unfinished; the training runs. Every case also asserts that no batch has two
finished checks, and the lookup cases that nothing was trained from a lost lookup.

Cases (U: the outcome then equals the uninterrupted run's; every fault is injected on 127.0.0.1):

| #  | step            | fault                                    | asserted                                           |
|----|-----------------|------------------------------------------|----------------------------------------------------|
| 1  | champion lookup | MLflow down for the whole pass:          | the pass fails naming MLflow; nothing fitted, no   |
|    |                 | connections refused, kept-alive ones cut | run, version or check written; rerun → U           |
|    |                 | (proxy stopped)                          |                                                    |
| 2  | champion lookup | its first request answered 503 (a blip)  | retried, never read as "no champion": no           |
|    |                 |                                          | bootstrap, one fit (batches 4-5); U                |
| 3  | batch read (S3) | every GET of batch 5 answered 503        | the pass fails naming the batch; batch 5 neither   |
|    |                 | ServiceUnavailable (proxy before moto)   | checked nor quarantined; rerun → U                 |
| 4  | check recording | batch 5's check metrics (runs/log-batch) | fails after 4 attempts, batch 5's check run        |
|    |                 | answered 503                             | unfinished; rerun finishes that run → U            |
| 5  | check recording | batch 5's runs/create done by MLflow,    | retried: the run the lost answer made is found and |
|    |                 | its answer lost (once)                   | finished, no second run; U                         |
| 6  | report upload   | PUT of batch 5's drift_report.html       | fails after 4 attempts; batch 5's verdict recorded |
|    |                 | answered 503                             | (finished), its report pending; rerun draws it → U |
| 7  | registration    | model-versions/create in dev answered    | fails; the training run finished, no v2; rerun     |
|    |                 | 503                                      | registers that run as v2 → U                       |
| 8  | registration    | model-versions/create in dev done, its   | retried: v2 found by its training run, no v3; U    |
|    |                 | answer lost (once)                       |                                                    |
| 9  | alias move      | setting dev @champion to v2 answered 503 | fails: v2 registered, v1 still champion; rerun → U |
|    |                 |                                          | (the retrain decision is carried through)          |
| 10 | event emission  | Prefect's /api/events/in refused (503),  | the pass completes, its retrain request never      |
|    |                 | retrain_via="event"                      | arrives, nothing trained; the next pass asks       |
|    |                 |                                          | again, the retrain deployment runs on the worker   |
|    |                 |                                          | from its trigger, once → U                         |

Tests, by row: 1 ``test_mlflow_down_at_the_champion_lookup_trains_nothing_and_a_rerun_catches_up``,
2 ``test_a_champion_lookup_that_fails_once_is_asked_again_not_read_as_absent``,
3 ``test_s3_failing_to_serve_a_batch_fails_the_pass_without_quarantining_it``,
4 ``test_check_recording_that_fails_is_completed_by_the_rerun_not_duplicated``,
5 ``test_a_check_run_created_behind_a_lost_answer_is_reused``,
6 ``test_report_upload_that_fails_is_completed_by_the_rerun_not_duplicated``,
7 ``test_registration_that_fails_registers_the_same_training_run_on_rerun``,
8 ``test_a_version_created_behind_a_lost_answer_is_not_registered_twice``,
9 ``test_alias_move_that_fails_is_settled_by_the_rerun``,
10 ``test_a_retrain_request_lost_with_the_events_is_asked_again_by_the_next_pass``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration.faults import S3_503, Fault, FaultProxy
from integration.helpers import retrain_runs, wait_for_retrains
from service.stack.servers import Stack

pytestmark = [pytest.mark.slow]

N_BATCHES, DRIFT_AT, FIRST = 5, 4, 3  # batches 1-3 arrive first; 4 and 5 drift
ROWS, REFERENCE_ROWS = 400, 1200
DRIFTED = "batch_005.csv"  # its check confirms the drift and asks for the retrain
# A small tree: the default gradient boosting would spend most of each pass fitting, on two busy cores.
ESTIMATOR = {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 6}}
# The flows' own task retries are under test, not MLflow's or botocore's.
FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "AWS_RETRY_MODE": "standard",
    "AWS_MAX_ATTEMPTS": "1",
}
ATTEMPTS = 4  # a task's first try and its three retries
# Different in every run. The code version too: a flow-run process on the worker reads the checkout's HEAD
# when it starts, and the checkout may be committed to while the module runs.
VOLATILE_TAGS = {"flow_run_id", "training_run_id", "promoted_at", "git_sha", "code_version"}


@dataclass
class Model:
    """One case's model: its config, its batch URIs in stream order, and its registry read directly
    from the MLflow server (never through the proxy, which may be failing)."""

    name: str
    config_path: Path
    batches: list[str]
    direct_uri: str

    def registry(self) -> Any:
        from service.config_file import load_config
        from service.registry import Registry

        config = load_config(self.config_path)
        config.registry.tracking_uri = self.direct_uri
        return Registry(config)

    def first_pass(self) -> Any:
        """Batches 1-3: trains the first champion on the reference, no drift."""
        from flows.monitor import monitor

        return monitor(str(self.config_path), batches=self.batches[:FIRST])

    def next_pass(self, **options: Any) -> Any:
        """Every batch the stream holds (4 and 5 have arrived)."""
        from flows.monitor import monitor

        return monitor(str(self.config_path), **options)


def write_model(
    folder: Path, name: str, tracking_uri: str, direct_uri: str, s3: tuple[Any, str] | None = None
) -> Model:
    """The demo stream and a config for it: on local files, or in an S3 bucket (``(client, bucket)``)."""
    from service.demo_data import make_stream, write_stream

    stream = make_stream(n_batches=N_BATCHES, rows=ROWS, reference_rows=REFERENCE_ROWS, drift_at=DRIFT_AT)
    reference, paths = write_stream(stream, folder / "data")
    data = {"reference": "data/reference.csv", "current": "data/stream/*.csv"}
    batches = [str(path.resolve()) for path in paths]
    if s3 is not None:
        client, bucket = s3
        for path in (reference, *paths):
            client.upload_file(str(path), bucket, f"{name}/{path.relative_to(folder / 'data').as_posix()}")
        root = f"s3://{bucket}/{name}"
        data = {"reference": f"{root}/reference.csv", "current": f"{root}/stream/*.csv"}
        batches = [f"{root}/stream/{path.name}" for path in paths]
    document = {
        "model": {"name": name, "task": "classification", "target": "weather", "ignore": ["date"], **ESTIMATOR},
        "data": data,
        "evaluation": {"min_gain": 0.01},
        "promotion": {"staging": "auto", "prod": "approval"},
        "registry": {"tracking_uri": tracking_uri},
    }
    config_path = folder / "driftloop.yaml"
    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    return Model(name, config_path, batches, direct_uri)


# what a user sees ----------------------------------------------------------------------------------------


def monitoring_runs(model: Model) -> list[Any]:
    registry = model.registry()
    return registry.client.search_runs([registry.experiment_id("monitoring")], max_results=1000)


def batch_name(run: Any) -> str:
    return Path(run.data.tags.get("driftloop.batch_uri", "?")).name


def outcome(model: Model) -> dict[str, Any]:
    """The registry and the monitoring records, in terms that compare across models and runs."""
    from service.registry import ALIASES, TAG

    registry = model.registry()
    runs = monitoring_runs(model)
    batch_of = {run.info.run_id: batch_name(run) for run in runs}
    first_env = registry.config.environments[0]
    version_of = {version.run_id: f"v{version.version}" for version in registry.versions(first_env)}

    def plain(key: str, value: str) -> str:
        if key == "drift_run_id" and value:
            return batch_of.get(value, value)  # the check a version answers, by its batch
        return value.replace(model.name, "<model>")

    def version_view(version: Any) -> dict[str, Any]:
        tags = {key.removeprefix(TAG): value for key, value in version.tags.items() if key.startswith(TAG)}
        return {
            "version": version.version,
            "tags": {key: plain(key, value) for key, value in sorted(tags.items()) if key not in VOLATILE_TAGS},
        }

    registry_view = {
        env: {
            "versions": [version_view(version) for version in registry.versions(env)],
            "aliases": {alias: getattr(registry.at_alias(env, alias), "version", None) for alias in ALIASES},
        }
        for env in registry.config.environments
    }
    records = sorted(
        (
            {
                "batch": batch_name(run),
                "kind": run.data.tags.get(f"{TAG}kind"),
                "dataset_drift": run.data.tags.get(f"{TAG}dataset_drift"),
                "retrain": run.data.tags.get(f"{TAG}retrain"),
                "reason": run.data.tags.get(f"{TAG}reason"),
                "reference": version_of.get(run.data.tags.get(f"{TAG}reference_run", ""), "?"),
                "drifted_share": round(run.data.metrics.get("drifted_share", -1.0), 6),
                "report": run.data.tags.get(f"{TAG}report"),
            }
            for run in runs
            if run.info.status == "FINISHED"
        ),
        key=lambda record: (record["batch"], record["kind"] or ""),
    )
    trainings = registry.client.search_runs([registry.experiment_id("training")], max_results=1000)
    return {
        "registry": registry_view,
        "records": records,
        "unfinished monitoring runs": sorted(batch_name(run) for run in runs if run.info.status != "FINISHED"),
        "training runs": sorted(run.info.status for run in trainings),
    }


def finished_checks(model: Model) -> Counter[str]:
    """How many finished drift checks each batch has."""
    return Counter(
        batch_name(run)
        for run in monitoring_runs(model)
        if run.info.status == "FINISHED" and run.data.tags.get("driftloop.kind") == "drift_check"
    )


def check_run_ids(model: Model, batch: str) -> dict[str, str]:
    """Run id → status of every drift-check run of ``batch``."""
    return {
        run.info.run_id: run.info.status
        for run in monitoring_runs(model)
        if batch_name(run) == batch and run.data.tags.get("driftloop.kind") == "drift_check"
    }


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` → ``{"a.b[0]": 1}``: differences read line by line."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{path}.{key}" if path else key).items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{path}[{i}]").items()}
    return {path: value}


def differences(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    got, want = flatten(actual), flatten(expected)
    return [
        f"{key}: {got.get(key, '(absent)')!r}, uninterrupted: {want.get(key, '(absent)')!r}"
        for key in sorted(set(got) | set(want))
        if got.get(key, "(absent)") != want.get(key, "(absent)")
    ]


def assert_caught_up(model: Model, uninterrupted: dict[str, Any]) -> None:
    """The registry and check history equal the uninterrupted run's, and no batch was checked twice."""
    twice = {batch: count for batch, count in finished_checks(model).items() if count != 1}
    assert not twice, f"batches with more than one finished check: {twice}"
    different = differences(outcome(model), uninterrupted)
    shown = different[:25] + ([f"... and {len(different) - 25} more"] if len(different) > 25 else [])
    assert not different, "differs from the uninterrupted run:\n" + "\n".join(shown)


def drain_events() -> None:
    """Prefect's event worker sends (or gives up on) what it holds; the next event starts a new one,
    connected to the API the settings name at that time (a fresh flow-run process does the same)."""
    from prefect.events.worker import EventsWorker

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(EventsWorker.drain_all, 60).result()


# fixtures ------------------------------------------------------------------------------------------------


def _prefect_settings(stack: Stack, home: Path) -> Any:
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    return temporary_settings(
        {PREFECT_API_URL: stack.prefect_url, PREFECT_HOME: home, PREFECT_LOCAL_STORAGE_PATH: home / "storage"}
    )


@pytest.fixture(scope="module")
def uninterrupted(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The outcome of the same two passes over the same batches, with nothing failing, on a fresh model."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as patch, _prefect_settings(stack, folder / "prefect-home"):
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        for key, value in FAIL_FAST.items():
            patch.setenv(key, value)
        model = write_model(folder, "faults-uninterrupted", stack.mlflow_url, stack.mlflow_url)
        model.first_pass()
        summary = model.next_pass()
        assert [retrained.version for retrained in summary.retrains] == ["2"], summary
        expected = outcome(model)
    assert expected["registry"]["dev"]["aliases"] == {"champion": "2", "challenger": None, "previous": "1"}
    assert expected["registry"]["prod"]["aliases"] == {"champion": None, "challenger": "2", "previous": None}
    assert [(r["batch"], r["retrain"]) for r in expected["records"]][-2:] == [
        ("batch_004.csv", "false"),
        (DRIFTED, "true"),
    ]
    return expected


@pytest.fixture(autouse=True)
def _fail_fast(monkeypatch: pytest.MonkeyPatch, prefect_client_settings: str) -> None:
    for key, value in FAIL_FAST.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def mlflow_proxy(stack: Stack) -> Iterator[FaultProxy]:
    """A proxy in front of the stack's MLflow server: the models of these tests reach it through this."""
    with FaultProxy(stack.mlflow_url) as proxy:
        yield proxy


@pytest.fixture
def new_model(stack: Stack, tmp_path: Path, mlflow_proxy: FaultProxy) -> Callable[..., Model]:
    def build(name: str, s3: tuple[Any, str] | None = None, through_proxy: bool = True) -> Model:
        tracking_uri = mlflow_proxy.url if through_proxy else stack.mlflow_url
        return write_model(tmp_path / name, name, tracking_uri, stack.mlflow_url, s3)

    return build


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The batches (file names) of every challenger fitted in this process, in order."""
    import service.retrain

    real = service.retrain.fit_challenger
    seen: list[list[str]] = []

    def recording(config: Any, contract: Any, frame: Any, uris: list[str], dropped: int = 0) -> Any:
        seen.append([Path(uri).name for uri in uris])
        return real(config, contract, frame, uris, dropped)

    monkeypatch.setattr(service.retrain, "fit_challenger", recording)
    return seen


@pytest.fixture
def s3_bucket(s3_endpoint: str, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A bucket on moto's S3 server, and this process's S3 clients sent through a proxy in front of it."""
    import boto3
    import s3fs

    direct = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        region_name=s3_env["AWS_DEFAULT_REGION"],
    )
    bucket = f"faults-{int(time.time() * 1000)}"
    direct.create_bucket(Bucket=bucket)
    with FaultProxy(s3_endpoint) as proxy:
        for key, value in {**s3_env, "AWS_ENDPOINT_URL": proxy.url}.items():
            monkeypatch.setenv(key, value)
        s3fs.S3FileSystem.clear_instance_cache()  # none made earlier with another endpoint is reused
        try:
            yield direct, bucket, proxy
        finally:
            s3fs.S3FileSystem.clear_instance_cache()


# the cases -----------------------------------------------------------------------------------------------


def test_mlflow_down_at_the_champion_lookup_trains_nothing_and_a_rerun_catches_up(
    new_model: Callable[..., Model], mlflow_proxy: FaultProxy, fits: list[list[str]], uninterrupted: dict[str, Any]
) -> None:
    from service.errors import RegistryUnavailable

    # given a champion and three checked batches; batches 4 and 5 have arrived since
    model = new_model("faults-down")
    model.first_pass()
    before, fits[:] = outcome(model), []
    # when the tracking server cannot be reached at all (its port refuses connections) during the next pass
    mlflow_proxy.down()
    lookup = rf"127\.0\.0\.1:{mlflow_proxy.port} did not answer \(read {model.name}-dev@champion\)"
    with pytest.raises(RegistryUnavailable, match=lookup):
        model.next_pass()
    # then the pass failed at the champion lookup: nothing was fitted, trained, registered or checked
    assert fits == []
    assert outcome(model) == before
    # when the server is back and the pass runs again, then it is as if nothing had happened
    mlflow_proxy.up()
    model.next_pass()
    assert fits == [["batch_004.csv", DRIFTED]]
    assert_caught_up(model, uninterrupted)


def test_a_champion_lookup_that_fails_once_is_asked_again_not_read_as_absent(
    new_model: Callable[..., Model], mlflow_proxy: FaultProxy, fits: list[list[str]], uninterrupted: dict[str, Any]
) -> None:
    # given a champion
    model = new_model("faults-lookup-blip")
    model.first_pass()
    fits[:] = []
    # when the next pass's first champion lookup is answered 503 by the proxy in front of MLflow
    lookup = Fault(r"/registered-models/alias\?.*alias=champion", method="GET", times=1)
    with mlflow_proxy.armed(lookup):
        summary = model.next_pass()
    # then the lookup was asked again, not taken for "no champion": no bootstrap, one fit, for the drift
    assert len(lookup.failed) == 1, mlflow_proxy.seen[-5:]
    assert summary.bootstrap is None
    assert fits == [["batch_004.csv", DRIFTED]]
    assert_caught_up(model, uninterrupted)


def test_s3_failing_to_serve_a_batch_fails_the_pass_without_quarantining_it(
    new_model: Callable[..., Model], s3_bucket: Any, uninterrupted: dict[str, Any]
) -> None:
    from service.errors import DataSourceUnavailable

    # given a model whose data is in S3 (moto's server, reached through a proxy), and a champion
    client, bucket, s3_proxy = s3_bucket
    model = new_model("faults-s3", s3=(client, bucket))
    model.first_pass()
    # when S3 answers 503 ServiceUnavailable to every read of batch 5 during the next pass
    read = Fault(r"/batch_005\.csv($|\?)", method="GET", payload=S3_503, content_type="application/xml")
    with s3_proxy.armed(read), pytest.raises(DataSourceUnavailable, match=DRIFTED):
        model.next_pass()
    # then batch 5 was neither checked nor quarantined as bad input: storage failing says nothing about it
    assert read.failed
    assert [record["batch"] for record in outcome(model)["records"]] == [f"batch_00{n}.csv" for n in range(1, 5)]
    # when S3 serves it again and the pass reruns, then it is as if nothing had happened
    model.next_pass()
    assert_caught_up(model, uninterrupted)


def _unfinished_then_completed(model: Model, mlflow_proxy: FaultProxy, fault: Fault) -> None:
    """Run the pass with ``fault`` armed: it fails, leaving batch 5's check run unfinished; the rerun
    completes that very run."""
    from service.errors import RegistryUnavailable

    with mlflow_proxy.armed(fault), pytest.raises(RegistryUnavailable, match=rf"127\.0\.0\.1:{mlflow_proxy.port}"):
        model.next_pass()
    assert len(fault.failed) == ATTEMPTS, fault.failed
    left = check_run_ids(model, DRIFTED)
    assert list(left.values()) == ["RUNNING"], left
    model.next_pass()
    assert check_run_ids(model, DRIFTED) == dict.fromkeys(left, "FINISHED")


def test_check_recording_that_fails_is_completed_by_the_rerun_not_duplicated(
    new_model: Callable[..., Model], mlflow_proxy: FaultProxy, uninterrupted: dict[str, Any]
) -> None:
    # given a champion
    model = new_model("faults-check")
    model.first_pass()
    # when MLflow answers 503 to the metrics of batch 5's check (batch 4's pass) until it is restored,
    # then the pass fails and the rerun completes the check run left unfinished
    metrics = Fault(r"/runs/log-batch$", method="POST", body=("drift_score.",), after=1)
    _unfinished_then_completed(model, mlflow_proxy, metrics)
    assert_caught_up(model, uninterrupted)


def test_a_check_run_created_behind_a_lost_answer_is_reused(
    new_model: Callable[..., Model], mlflow_proxy: FaultProxy, uninterrupted: dict[str, Any]
) -> None:
    # given a champion
    model = new_model("faults-check-lost")
    model.first_pass()
    # when MLflow creates batch 5's check run but the answer never reaches the monitor (once)
    create = Fault(r"/runs/create$", method="POST", body=('"drift_check"',), action="lose_response", after=1, times=1)
    with mlflow_proxy.armed(create):
        model.next_pass()
    # then the retry found the run the lost answer created and completed it: one run, none left over
    assert len(create.failed) == 1
    assert list(check_run_ids(model, DRIFTED).values()) == ["FINISHED"]
    assert_caught_up(model, uninterrupted)


def test_report_upload_that_fails_leaves_the_verdict_recorded_and_the_rerun_draws_the_report(
    new_model: Callable[..., Model], mlflow_proxy: FaultProxy, uninterrupted: dict[str, Any]
) -> None:
    from service.errors import RegistryUnavailable

    # given a champion
    model = new_model("faults-report")
    model.first_pass()
    # when MLflow's artifact proxy answers 503 to batch 5's HTML report until it is restored
    upload = Fault(r"/drift/drift_report\.html$", method="PUT")
    with mlflow_proxy.armed(upload), pytest.raises(RegistryUnavailable, match=rf"127\.0\.0\.1:{mlflow_proxy.port}"):
        model.next_pass()
    # then the pass fails, but batch 5's verdict and decision are recorded, its report left pending
    assert len(upload.failed) == ATTEMPTS, upload.failed
    assert list(check_run_ids(model, DRIFTED).values()) == ["FINISHED"]
    assert report_states(model)[DRIFTED] == "pending"
    # and the rerun draws it: nothing checked twice, and the end is the uninterrupted run's
    model.next_pass()
    assert report_states(model)[DRIFTED] == "drawn"
    assert_caught_up(model, uninterrupted)


def report_states(model: Model) -> dict[str, str | None]:
    """Batch → state of its drift check's report."""
    return {
        batch_name(run): run.data.tags.get("driftloop.report")
        for run in monitoring_runs(model)
        if run.data.tags.get("driftloop.kind") == "drift_check"
    }


def test_registration_that_fails_registers_the_same_training_run_on_rerun(
    new_model: Callable[..., Model], mlflow_proxy: FaultProxy, uninterrupted: dict[str, Any]
) -> None:
    from service.errors import RegistryUnavailable

    # given a champion
    model = new_model("faults-register")
    model.first_pass()
    # when the registry answers 503 to every new version in dev during the pass that retrains
    create = Fault(r"/model-versions/create$", method="POST", body=(f'"{model.name}-dev"',))
    with mlflow_proxy.armed(create), pytest.raises(RegistryUnavailable, match=rf"127\.0\.0\.1:{mlflow_proxy.port}"):
        model.next_pass()
    # then the challenger's training run was logged and finished once, and no version made of it
    assert len(create.failed) == ATTEMPTS
    half = outcome(model)
    assert half["training runs"] == ["FINISHED", "FINISHED"]
    assert [version["version"] for version in half["registry"]["dev"]["versions"]] == ["1"]
    registry = model.registry()
    (trained,) = [
        run.info.run_id
        for run in registry.client.search_runs([registry.experiment_id("training")])
        if run.data.tags.get("driftloop.drift_run_id")
    ]
    # when the registry is back and the pass reruns, then v2 is that training run: none logged twice
    model.next_pass()
    assert registry.version("dev", "2").run_id == trained
    assert_caught_up(model, uninterrupted)


def test_a_version_created_behind_a_lost_answer_is_not_registered_twice(
    new_model: Callable[..., Model], mlflow_proxy: FaultProxy, uninterrupted: dict[str, Any]
) -> None:
    # given a champion
    model = new_model("faults-register-lost")
    model.first_pass()
    # when the registry creates v2 in dev but its answer never reaches the retrain (once)
    create = Fault(
        r"/model-versions/create$", method="POST", body=(f'"{model.name}-dev"',), action="lose_response", times=1
    )
    with mlflow_proxy.armed(create):
        model.next_pass()
    # then the retry found v2 by its training run: no v3
    assert len(create.failed) == 1
    assert_caught_up(model, uninterrupted)


def test_alias_move_that_fails_is_settled_by_the_rerun(
    new_model: Callable[..., Model], mlflow_proxy: FaultProxy, uninterrupted: dict[str, Any]
) -> None:
    from service.errors import RegistryUnavailable

    # given a champion
    model = new_model("faults-alias")
    model.first_pass()
    # when the registry answers 503 to moving dev's @champion during the pass that retrains
    move = Fault(r"/registered-models/alias$", method="POST", body=(f'"{model.name}-dev"', '"champion"'))
    with mlflow_proxy.armed(move), pytest.raises(RegistryUnavailable, match=rf"127\.0\.0\.1:{mlflow_proxy.port}"):
        model.next_pass()
    # then v2 is registered but not champion
    assert len(move.failed) == ATTEMPTS
    half = outcome(model)["registry"]["dev"]
    assert [version["version"] for version in half["versions"]] == ["1", "2"]
    assert half["aliases"]["champion"] == "1"
    # when the registry is back and the pass reruns, then the retrain decision is carried through
    model.next_pass()
    assert_caught_up(model, uninterrupted)


def test_a_retrain_request_lost_with_the_events_is_asked_again_by_the_next_pass(
    stack: Stack, new_model: Callable[..., Model], fits: list[list[str]], uninterrupted: dict[str, Any]
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # given a champion, and a monitor that hands retrains to the retrain deployment by event
    model = new_model("faults-events", through_proxy=False)
    model.first_pass()
    fits[:] = []
    since = datetime.now(UTC)
    # when the Prefect API refuses its event stream during the pass that confirms drift
    refused = Fault(r"^/api/events/in", method="GET")
    with FaultProxy(stack.prefect_ui_url) as prefect_proxy:
        drain_events()
        with temporary_settings({PREFECT_API_URL: f"{prefect_proxy.url}/api"}), prefect_proxy.armed(refused):
            lost = model.next_pass(retrain_via="event")
            drain_events()
    # then the pass completed and asked for a retrain for batch 5's check, but the request never arrived:
    # nothing was trained
    assert refused.failed
    (drift_check,) = check_run_ids(model, DRIFTED)
    assert lost.retrain_requested == drift_check
    assert fits == []
    assert outcome(model)["training runs"] == ["FINISHED"]
    # when the next pass runs with Prefect's events flowing again
    again = model.next_pass(retrain_via="event")
    drain_events()
    # then it asked again for the same check, and the deployment's trigger ran the retrain on the worker,
    # once: the lost request never arrived late
    assert again.retrain_requested == drift_check
    runs = wait_for_retrains(model.config_path, since, 1)
    assert [run.state.type.value for run in runs] == ["COMPLETED"], [run.state.message for run in runs]
    assert fits == []  # trained in the worker's flow-run process, not here
    assert_caught_up(model, uninterrupted)
    # and nothing is pending any more
    assert model.next_pass(retrain_via="event").retrain_requested is None
    assert len(retrain_runs(model.config_path, since)) == 1
