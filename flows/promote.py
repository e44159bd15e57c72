"""The promote flow: promote to an environment, approve the version waiting there, or roll it back."""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows import tasks
from flows.notify import publish
from service import notify
from service.promote import Outcome


@flow(name="promote")
def promote(config_path: str, env: str, action: Literal["promote", "approve", "rollback"] = "promote") -> Outcome:
    config, registry = tasks.load(config_path)
    steps = {"approve": tasks.approve, "rollback": tasks.rollback, "promote": tasks.promote_to}
    outcome = steps[action](registry, env)
    publish([notify.for_outcome(config.model.name, outcome)])
    return outcome
