"""The promote flow: promote to an environment, approve the version waiting there, or roll it back."""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows import tasks
from service.promote import Outcome


@flow(name="promote")
def promote(config_path: str, env: str, action: Literal["promote", "approve", "rollback"] = "promote") -> Outcome:
    _, registry = tasks.load(config_path)
    if action == "approve":
        return tasks.approve(registry, env)
    if action == "rollback":
        return tasks.rollback(registry, env)
    return tasks.promote_to(registry, env)
