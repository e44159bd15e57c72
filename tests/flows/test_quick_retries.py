"""Prefect's clients, in a process that imports driftloop's flows, ask again within a second after a
SQLite server's 503 (flows.quick_retries), where Prefect's own back-off waits 2 s, then 4 s."""

from __future__ import annotations

from prefect import flow

from tests.flows.sqlite_lock import api_database_locked, client_backoffs


@flow
def child() -> int:
    return 1


@flow
def parent(lock_seconds: float) -> int:
    with api_database_locked(lock_seconds):
        return child()


def test_a_subflow_started_while_the_api_database_is_locked_is_asked_for_again_within_a_second(prefect: str) -> None:
    # when a flow starts a subflow while another writer holds the API's database for half a second
    with client_backoffs() as waits:
        outcome = parent(0.5)
    # then the subflow ran, the lock having made the API answer 503
    assert outcome == 1
    assert waits, "the locked database never made the API answer 503: this test checked nothing"
    # and each request was asked for again after under a second, not Prefect's back-off of 2 s and more
    assert max(waits) < 1, waits
