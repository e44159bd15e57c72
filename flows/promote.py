"""The promote flow: promote to an environment, approve or reject the version waiting there, or roll it back."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL

from flows import tasks
from service import steering
from service.config_file import load_config
from service.promote import Outcome
from service.registry import Registry


@task(**tasks.IO)
def steer(registry: Registry, env: str, move: steering.Move, prefect_api: str | None) -> steering.Steered:
    decision = steering.Decision(via=f"prefect flow run {flow_run.get_id()}")
    return steering.steer(registry, env, move, prefect_api=prefect_api, decision=decision)


@flow(name="promote")
def promote(config_path: str, env: str, action: steering.Move = "promote") -> Outcome:
    """The same path as the API's and the CLI's, so the move is announced the same way."""
    registry = Registry(load_config(config_path))
    # The API this run reports to, whether it came from the environment or a Prefect profile.
    steered = steer(registry, env, action, PREFECT_API_URL.value())
    for failure in steered.failures:
        get_run_logger().warning(failure)
    return steered.outcome
