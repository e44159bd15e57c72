"""One model, one run at a time: a Prefect global concurrency limit per model and kind of work.

Deployment concurrency limits are per deployment, so they cannot keep two retrains of the same model
apart while letting different models' retrains run side by side. A limit named after the model does.
A run that finds its model's slot taken does not wait for it — waiting would hold one of the
deployment's fleet-wide places while other models queue behind — it ends at once, having done
nothing: the run holding the slot answers the same drift, or makes the request stale, and a decision
still unanswered afterwards is asked for again by the model's next monitor pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.runtime import flow_run

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
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, 1, slot_decay_per_second=ORPHAN_DECAY)
        except ObjectAlreadyExists:  # another run created it between our read and our create
            pass
        if client.read_global_concurrency_limit_by_name(name).active_slots >= 1:
            if _another_run(client, kind, config_path):
                yield False
                return
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    # Free a moment ago: take it, waiting if another run took it in between (rare; both then re-plan).
    with concurrency(name, occupy=1, strict=True, timeout_seconds=ACQUIRE_SECONDS, lease_duration=LEASE_SECONDS):
        yield True


def _another_run(client: Any, kind: str, config_path: str) -> bool:
    """Whether a flow run of ``kind`` (the flow's name) for this config, other than this one, is running."""
    me = flow_run.get_id()
    runs = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[kind])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))),
        limit=200,
    )
    return any(str(run.id) != me and run.parameters.get("config_path") == config_path for run in runs)
