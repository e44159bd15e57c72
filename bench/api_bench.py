"""Latency of the API's model listing with 1,000 registered versions, against its liveness probe.

A sqlite MLflow store is filled with one model in three environments and 1,000 versions in all, with
driftloop's tags and aliases; the API answers in process (FastAPI's test client), so the figures are
the application's and the registry's, not the network's.

    python bench/api_bench.py [--versions 1000] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"})


def fill_registry(uri: str, versions: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    envs = ["dev", "staging", "prod"]
    for env in envs:
        client.create_registered_model(f"bench-{env}", tags={"driftloop.model": "bench", "driftloop.env": env})
    for number in range(versions):
        env = envs[number % 3]
        tags = {
            "driftloop.status": "champion",
            "driftloop.metric": "f1_macro",
            "driftloop.challenger_score": "0.9",
            "driftloop.git_sha": "0" * 40,
        }
        client.create_model_version(f"bench-{env}", source=f"file:///models/{number}", tags=tags)
    for env in envs:
        client.set_registered_model_alias(f"bench-{env}", "champion", "1")


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1000, ordered[int(0.99 * (len(ordered) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        fill_registry(uri, args.versions)
        client = TestClient(create_app(Settings(tracking_uri=uri, models_dir=Path(tmp) / "none")))
        results = {}
        for path in ("/healthz", "/models"):
            client.get(path).raise_for_status()  # warm-up
            seconds = []
            for _ in range(args.requests):
                began = time.perf_counter()
                response = client.get(path)
                seconds.append(time.perf_counter() - began)
                response.raise_for_status()
            results[path] = percentiles(seconds)
    listed = sum(len(env["versions"]) for env in response.json()["models"][0]["environments"])
    print(f"API with {args.versions} registered versions ({listed} newest listed), {args.requests} requests each:")
    for path, (p50, p99) in results.items():
        print(f"  GET {path:<9} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms")
    print(f"  listing vs liveness: p99 {results['/models'][1] / results['/healthz'][1]:.0f}x")


if __name__ == "__main__":
    main()
