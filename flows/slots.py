"""One model, one run at a time: a Prefect global concurrency limit per model and kind of work.

Deployment concurrency limits are per deployment, so they cannot keep two retrains of the same model
apart while letting different models' retrains run side by side. A limit named after the model does.
A run that finds its model's slot taken does not wait for it — waiting would hold one of the
deployment's fleet-wide places while other models queue behind — it ends at once, having done
nothing: the run holding the slot answers the same drift, or makes the request stale, and a decision
still unanswered afterwards is asked for again by the model's next monitor pass.

The slot is taken and given back here rather than by ``prefect.concurrency.sync.concurrency``: through one
client kept for the process (a new one costs an SSL context and a version check: 42 ms a slot before,
11-17 ms after), asking again soon after a 503 (``flows.quick_retries``), where Prefect's concurrency client
waited 2 s each time a SQLite server's lock raced the slot, most passes of ``bench/run_overhead.py``.
"""

from __future__ import annotations

import re
import threading
import time
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

from flows.quick_retries import soon_after_503
from service.errors import InfrastructureError

ACQUIRE_SECONDS = 3600.0  # only ever waited for in the rare race of two runs seeing the slot free
# A slot whose holder died without releasing it (an OOM-killed Job; an embedded API whose leases nobody
# expires) frees itself within the hour instead of stopping that model for good. A run releases its
# slot as usual when it ends: the decay only matters for orphans.
ORPHAN_DECAY = 1 / 3600
# The holder renews its lease while it runs; a Prefect server revokes a lease nobody renewed for this long.
LEASE_SECONDS = 60.0


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
    client = _client()
    lease = _take_unless_held(client, name, kind, config_path)
    if lease is None:
        yield False
        return
    try:
        with _renewed(lease):
            yield True
    finally:
        _give_back(client, lease)


_CLIENTS: dict[tuple[str, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client() -> Any:
    """The process's client of this API for slots, kept open: a new Prefect client costs an SSL context
    and a version check, tens of milliseconds a slot. It asks again soon after a 503 (the module's doc)."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

    from flows.embedded import start_embedded_server

    key = (
        str(PREFECT_API_URL.value() or start_embedded_server()),  # as get_client does with no API configured
        str(PREFECT_API_KEY.value()),
        str(PREFECT_API_AUTH_STRING.value()),
    )
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            # Settings of its own make it a client of its own, not the flow run's, which closes with the run.
            client = get_client(sync_client=True, httpx_settings={"event_hooks": {"response": [soon_after_503]}})
            _CLIENTS[key] = client.__enter__()  # never left: each `with` elsewhere only nests in it
        return _CLIENTS[key]


def _take_unless_held(client: Any, name: str, kind: str, config_path: str) -> UUID | None:
    """A lease on the slot, taken if it is free (created on first use) or held by a run that died; None
    when a running run holds it. Read before it is taken: a slot taken at once after the run's first task
    met the server still recording that task, a 503 nearly every time."""
    try:
        held = client.read_global_concurrency_limit_by_name(name).active_slots >= 1
    except ObjectNotFound:
        try:
            limit = GlobalConcurrencyLimitCreate(name=name, limit=1, slot_decay_per_second=ORPHAN_DECAY)
            client.create_global_concurrency_limit(limit)
            held = False
        except ObjectAlreadyExists:  # another run created it between our read and our create
            held = client.read_global_concurrency_limit_by_name(name).active_slots >= 1
    if held:
        if _another_run(client, kind, config_path):
            return None
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    return _take(client, name)  # free a moment ago: taken, or waited for if another run took it in between


def _take(client: Any, name: str) -> UUID:
    """The slot's lease, waiting while another run holds it (423), for up to ACQUIRE_SECONDS."""
    deadline = time.monotonic() + ACQUIRE_SECONDS
    while True:
        try:
            response = client.increment_concurrency_slots_with_lease(
                names=[name], slots=1, mode="concurrency", lease_duration=LEASE_SECONDS, holder=_holder()
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


def _holder() -> ConcurrencyLeaseHolder | None:
    run_id = flow_run.get_id()
    return ConcurrencyLeaseHolder(type="flow_run", id=UUID(run_id)) if run_id else None


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
