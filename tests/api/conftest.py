"""An API over a real MLflow sqlite store holding one trained, promoted model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config_file import load_config
from service.promote import accept_candidate, promote_through
from service.registration import register_challenger
from service.registry import Registry
from service.retrain import evaluate_challenger, fit_challenger, load_window
from service.settings import Settings
from tests.support import Hooks, webhook_receiver

TOKEN = "s3cret-token"


@pytest.fixture
def trained(world: Callable[..., Path]) -> Path:
    """A config whose store has v1 champion in dev and staging, waiting for approval in prod."""
    config_path = world(n_batches=1, drift_at=2)
    registry = Registry(load_config(config_path))
    uris = [registry.config.resolve("data/reference.csv")]
    frame, contract, dropped = load_window(uris, registry.config)
    challenger = fit_challenger(registry.config, contract, frame, uris, dropped)
    decision = evaluate_challenger(registry, challenger, contract)
    version = register_challenger(registry, challenger, contract, decision, drift_run_id=None, flow_run_id=None)
    accept_candidate(registry, version, decision)
    promote_through(registry)
    return config_path


@pytest.fixture
def api(trained: Path) -> TestClient:
    settings = Settings(models_dir=trained.parent, api_token=TOKEN)
    return TestClient(create_app(settings))


def aliases(api: TestClient, env: str) -> dict[str, str]:
    listing = api.get("/models/weather").json()
    return next(e["aliases"] for e in listing["environments"] if e["env"] == env)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    with webhook_receiver() as server:
        yield server
