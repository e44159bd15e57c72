"""One model, one run at a time: a Prefect global concurrency limit per model and kind of work.

Deployment concurrency limits are per deployment, so they cannot keep two retrains of the same model
apart while letting different models' retrains run side by side. A limit named after the model does.
A run that finds its model's slot taken does not wait for it — waiting would hold one of the
deployment's fleet-wide places while other models queue behind — it ends at once, having done
nothing: the run holding the slot answers the same drift, or makes the request stale, and a decision
still unanswered afterwards is asked for again by the model's next monitor pass.

The slot is taken and given back here rather than by ``prefect.concurrency.sync.concurrency``, whose
client waits 2 s (then 4, 8...) after a 503. A Prefect server on SQLite (the embedded one of
``driftloop run``, a test API) answers 503 "database is locked" when taking a slot races one of its own
writes, a lock that clears in milliseconds: it hit most passes of ``bench/run_overhead.py``.
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import ConcurrencyLeaseHolder, StateType
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.logging.loggers import get_logger
from prefect.runtime import flow_run

from service.errors import InfrastructureError

ACQUIRE_SECONDS = 3600.0  # only ever waited for in the rare race of two runs seeing the slot free
# A slot whose holder died without releasing it (an OOM-killed Job; an embedded API whose leases nobody
# expires) frees itself within the hour instead of stopping that model for good. A run releases its
# slot as usual when it ends: the decay only matters for orphans.
ORPHAN_DECAY = 1 / 3600
# The holder renews its lease while it runs; a Prefect server revokes a lease nobody renewed for this long.
LEASE_SECONDS = 60.0
# Waits before asking again after a request's first 503s; later ones get the client's back-off (8 s, 16 s).
QUICK_RETRY_SECONDS = (0.05, 0.2, 0.8)


def slot_name(kind: str, model: str) -> str:
    return f"driftloop-{kind}-" + re.sub(r"[^A-Za-z0-9_.-]", "-", model)


@contextmanager
def model_slot(kind: str, model: str, config_path: str) -> Iterator[bool]:
    """Hold the one slot of ``kind`` work for ``model`` (created on first use); yield whether it is ours.

    Yields False at once when another run holds it. Whether it is held is read from the limit's active
    slots, not from an acquisition timing out (a slow API must never look like a busy slot), and checked
    against the runs themselves: a slot held while no other ``kind`` run of this config is running was
    left by a run that died (a killed Job; a Prefect server restart loses its leases) and is taken over."""
    name = slot_name(kind, model)
    with _client() as client:
        if not _free_or_orphaned(client, name, kind, config_path):
            yield False
            return
        lease = _take(client, name)  # free a moment ago: taken, or waited for if another run took it in between
        try:
            with _renewed(lease):
                yield True
        finally:
            _give_back(client, lease)


def _client() -> Any:
    """A Prefect client that asks again within milliseconds after its first 503s (see the module's doc)."""
    return get_client(sync_client=True, httpx_settings={"event_hooks": {"response": [_soon_after_503]}})


_SEEN_503: weakref.WeakKeyDictionary[httpx.Request, int] = weakref.WeakKeyDictionary()


def _soon_after_503(response: httpx.Response) -> None:
    # Prefect's client waits as long as a Retry-After header says: a short one for the first few 503s of
    # a request (the client sends the same request object again), its own back-off for the rest.
    if response.status_code != 503 or "Retry-After" in response.headers:
        return
    seen = _SEEN_503.get(response.request, 0)
    _SEEN_503[response.request] = seen + 1
    if seen < len(QUICK_RETRY_SECONDS):
        response.headers["Retry-After"] = str(QUICK_RETRY_SECONDS[seen])


def _free_or_orphaned(client: Any, name: str, kind: str, config_path: str) -> bool:
    """Whether the slot can be taken: free (created here on first use), or held by a run that died."""
    try:
        held = client.read_global_concurrency_limit_by_name(name).active_slots >= 1
    except ObjectNotFound:
        try:
            limit = GlobalConcurrencyLimitCreate(name=name, limit=1, slot_decay_per_second=ORPHAN_DECAY)
            client.create_global_concurrency_limit(limit)
            return True
        except ObjectAlreadyExists:  # another run created it between our read and our create
            held = client.read_global_concurrency_limit_by_name(name).active_slots >= 1
    if not held:
        return True
    if _another_run(client, kind, config_path):
        return False
    client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    return True


def _take(client: Any, name: str) -> UUID:
    """A lease on the slot; if another run took it since we read it free (423), wait for it to be given back."""
    run_id = flow_run.get_id()
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(run_id)) if run_id else None
    deadline = time.monotonic() + ACQUIRE_SECONDS
    while True:
        try:
            response = client.increment_concurrency_slots_with_lease(
                names=[name], slots=1, mode="concurrency", lease_duration=LEASE_SECONDS, holder=holder
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423 or time.monotonic() > deadline:
                raise
            time.sleep(float(exc.response.headers.get("Retry-After", 1)))
            continue
        lease = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
        if not lease.limits:  # deleted between our read and now: holding nothing would let a second run in
            raise InfrastructureError(f"Prefect's concurrency limit {name!r} disappeared while it was being taken")
        return lease.lease_id


@contextmanager
def _renewed(lease: UUID) -> Iterator[None]:
    # Prefect's own renewal thread (a private module: prefect is pinned to 3.8). A lease it cannot renew
    # ends the run, as prefect.concurrency's strict mode does: once it lapses, a second run could take the slot.
    from prefect.concurrency._leases import maintain_concurrency_lease

    with maintain_concurrency_lease(lease, LEASE_SECONDS, raise_on_lease_renewal_failure=True):
        yield


def _give_back(client: Any, lease: UUID) -> None:
    """Release the slot; if the API cannot be told, the server revokes the unrenewed lease within a minute."""
    try:
        client.release_concurrency_slots_with_lease(lease)
    except (httpx.HTTPError, OSError) as exc:
        get_logger("driftloop.slots").warning(
            "could not give back the slot (lease %s): the server frees it within %.0f s: %s", lease, LEASE_SECONDS, exc
        )


def _another_run(client: Any, kind: str, config_path: str) -> bool:
    """Whether a flow run of ``kind`` (the flow's name) for this config, other than this one, is running."""
    me = flow_run.get_id()
    runs = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[kind])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))),
        limit=200,
    )
    return any(str(run.id) != me and run.parameters.get("config_path") == config_path for run in runs)
