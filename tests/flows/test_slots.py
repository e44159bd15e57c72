"""A model's slot (flows/slots.py) against a real Prefect API on SQLite, the embedded server's database.

Such a server answers 503 "database is locked" when taking a slot races another write. Prefect's client
waits 2 s before asking again, then 4 s: the slot is asked for again within a second instead.
"""

from __future__ import annotations

import contextvars
import threading
import uuid

from prefect import flow

from flows.slots import model_slot, slot_name
from tests.flows.sqlite_lock import api_database_locked, client_backoffs


def active_slots(model: str) -> float:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(slot_name("retrain", model)).active_slots


def test_a_slot_taken_while_the_api_database_is_locked_is_asked_for_again_within_a_second(prefect: str) -> None:
    model = f"locked-{uuid.uuid4().hex[:8]}"

    @flow(name="retrain")
    def take_slot(lock_seconds: float = 0) -> bool:
        with api_database_locked(lock_seconds), model_slot("retrain", model, "locked.yaml") as ours:
            return ours

    # given the model's slot, made by an earlier run
    assert take_slot()
    # when a run takes it while another writer holds the API's database
    with client_backoffs() as waits:
        ours = take_slot(lock_seconds=0.5)
    # then it got the slot, the lock having made the API answer 503
    assert ours
    assert waits, "the locked database never made the API answer 503: this test checked nothing"
    # and it asked again after waits of under a second, not Prefect's back-off of 2 s and more
    assert max(waits) < 1, waits
    # and gave the slot back when it ended
    assert active_slots(model) == 0


def test_a_slot_held_by_a_running_run_is_not_taken_by_a_second_one(prefect: str) -> None:
    model = f"held-{uuid.uuid4().hex[:8]}"
    holding, release = threading.Event(), threading.Event()

    @flow(name="retrain")
    def hold_slot(config_path: str) -> bool:
        with model_slot("retrain", model, config_path) as ours:
            holding.set()
            release.wait(120)
            return ours

    @flow(name="retrain")
    def second(config_path: str) -> bool:
        with model_slot("retrain", model, config_path) as ours:
            return ours

    # given a run of the model holding its slot
    outcome: list[bool] = []
    # In this test's Prefect settings: a new thread would not see them otherwise.
    run = contextvars.copy_context().run
    holder = threading.Thread(target=run, args=(lambda: outcome.append(hold_slot("held.yaml")),))
    holder.start()
    assert holding.wait(60)
    try:
        # when a second run of the same config asks for it, then it is refused at once
        assert second("held.yaml") is False
        assert active_slots(model) == 1
    finally:
        release.set()
        holder.join(60)
    # and the holder had it, and gave it back
    assert outcome == [True]
    assert active_slots(model) == 0
