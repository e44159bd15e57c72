"""s3:// in the image: data sources of flow runs, and the MLflow server's artifact store.

There is no AWS account here: S3 is moto's server on the host's 127.0.0.1 (tests/conftest.py), spoken to
by the image's real clients (s3fs for data, boto3 for MLflow artifacts). Containers share the host's
network, as pods reach an S3 endpoint. Endpoint and credentials are environment variables, the way the
chart gives them: `data.s3.existingSecret` to flow-run pods, `mlflow.artifacts.s3` to the MLflow server.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from .conftest import POD_REGISTRY, POD_STORE, background, drift_checks, pod_store, read_pod_registry
from .test_image import free_port, wait_for_http

CONFIG = "/etc/driftloop/models/driftloop.yaml"


def s3_client(s3_env: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT_URL"],
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        region_name=s3_env["AWS_DEFAULT_REGION"],
    )


def _upload_stream(client: Any, bucket: str, root: Path) -> list[str]:
    """The demo stream's reference and batches as objects under s3://bucket/weather/; their keys."""
    from service.demo_data import make_stream, write_stream

    write_stream(make_stream(n_batches=3, rows=300, reference_rows=600, drift_at=2), root)
    client.create_bucket(Bucket=bucket)
    keys = []
    for path in sorted(root.rglob("*.csv")):
        key = f"weather/{path.relative_to(root).as_posix()}"
        client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


@pytest.fixture(scope="module")
def s3_loop(s3_env: dict[str, str], prefect_api: str, container, tmp_path_factory) -> dict[str, Any]:
    """`driftloop run` then `driftloop predict` in the image, on a model config whose data is all s3://."""
    root = tmp_path_factory.mktemp("image-s3")
    client = s3_client(s3_env)
    keys = _upload_stream(client, "driftloop-data", root / "data")
    document = {
        "model": {"name": "weather", "task": "classification", "target": "weather", "ignore": ["date"]},
        "data": {
            "reference": "s3://driftloop-data/weather/reference.csv",
            "current": "s3://driftloop-data/weather/stream/*.csv",
        },
        "registry": POD_REGISTRY,
    }
    (root / "config").mkdir()
    (root / "config" / "driftloop.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    store = pod_store(root / "store")
    volumes = {root / "config": f"{Path(CONFIG).parent}:ro", store: POD_STORE}
    env = {**s3_env, "PREFECT_API_URL": prefect_api}
    run = container("driftloop", "run", "-c", CONFIG, env=env, volumes=volumes, timeout=600)
    predict = container(
        "driftloop", "predict", "-c", CONFIG, "--env", "dev",
        "--input", "s3://driftloop-data/weather/stream/batch_003.csv",
        "--output", "s3://driftloop-data/scored/batch_003.parquet",
        env=env, volumes=volumes, timeout=300,
    )  # fmt: skip
    return {"client": client, "keys": keys, "run": run, "predict": predict, "store": store}


def test_monitoring_pass_reads_every_batch_from_s3(s3_loop: dict[str, Any]) -> None:
    run = s3_loop["run"]
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "Read-only file system" not in output and "Permission denied" not in output, output[-6000:]
    mlflow = read_pod_registry(s3_loop["store"])
    checks = drift_checks(mlflow, "weather")
    batches = sorted(f"s3://driftloop-data/{key}" for key in s3_loop["keys"] if "/stream/" in key)
    assert sorted(check.data.tags["driftloop.batch_uri"] for check in checks) == batches
    # every model learnt from s3 objects, the first one from the reference, and its lineage names them
    trained_on = []
    for version in sorted(mlflow.search_model_versions("name = 'weather-dev'"), key=lambda v: int(v.version)):
        [lineage] = (s3_loop["store"] / "artifacts").rglob(f"{version.run_id}/artifacts/lineage.json")
        trained_on.append(json.loads(lineage.read_text())["training_data"])
    assert trained_on[0] == ["s3://driftloop-data/weather/reference.csv"]
    uploaded = {f"s3://driftloop-data/{key}" for key in s3_loop["keys"]}
    assert {uri for uris in trained_on for uri in uris} <= uploaded, trained_on


def test_batch_scored_from_s3_is_written_back_to_s3(s3_loop: dict[str, Any]) -> None:
    predict = s3_loop["predict"]
    assert predict.returncode == 0, (predict.stdout + predict.stderr)[-6000:]
    body = s3_loop["client"].get_object(Bucket="driftloop-data", Key="scored/batch_003.parquet")["Body"].read()
    scored = pd.read_parquet(io.BytesIO(body))
    assert len(scored) == 300
    assert scored["prediction"].notna().all()


def test_mlflow_server_keeps_artifacts_in_an_s3_bucket(s3_env: dict[str, str], docker: str, container) -> None:
    """The chart's `mlflow.artifacts.s3` option: `--artifacts-destination s3://...`, MLFLOW_S3_ENDPOINT_URL."""
    from mlflow import MlflowClient

    client = s3_client(s3_env)
    client.create_bucket(Bucket="driftloop-mlflow")
    port = free_port()
    name = f"driftloop-test-mlflow-s3-{port}"
    env = {key: value for key, value in s3_env.items() if key != "AWS_ENDPOINT_URL"}
    env["MLFLOW_S3_ENDPOINT_URL"] = s3_env["AWS_ENDPOINT_URL"]
    command = ["mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", "sqlite:////tmp/mlflow.db", "--serve-artifacts"]
    command += ["--artifacts-destination", "s3://driftloop-mlflow/artifacts"]
    started = container(*command, env=env, detach=True, name=name)
    assert started.returncode == 0, started.stderr
    with background(docker, name):
        wait_for_http(f"http://127.0.0.1:{port}/health")
        tracking = MlflowClient(f"http://127.0.0.1:{port}")
        run = tracking.create_run(tracking.create_experiment("s3-artifacts"))
        tracking.log_text(run.info.run_id, "held in s3", "notes/hello.txt")
        # the bytes are in the bucket, and come back through the server
        objects = client.list_objects_v2(Bucket="driftloop-mlflow", Prefix="artifacts/")
        keys = [item["Key"] for item in objects.get("Contents", [])]
        assert any(key.endswith(f"{run.info.run_id}/artifacts/notes/hello.txt") for key in keys), keys
        downloaded = Path(tracking.download_artifacts(run.info.run_id, "notes/hello.txt"))
        assert downloaded.read_text() == "held in s3"
