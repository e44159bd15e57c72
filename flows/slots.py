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
from contextlib import ExitStack, contextmanager

from prefect.client.orchestration import get_client
from prefect.concurrency._asyncio import AcquireConcurrencySlotTimeoutError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

ACQUIRE_SECONDS = 2.0  # long enough for one round trip to a busy API, short enough not to queue


def slot_name(kind: str, model: str) -> str:
    return f"driftloop-{kind}-" + re.sub(r"[^A-Za-z0-9_.-]", "-", model)


@contextmanager
def model_slot(kind: str, model: str, wait: bool = False) -> Iterator[bool]:
    """Hold the one slot of ``kind`` work for ``model`` (created on first use); yield whether it is ours.

    ``wait=False`` gives up after a moment and yields False when another run holds it."""
    name = slot_name(kind, model)
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        except ObjectAlreadyExists:  # another run created it between our read and our create
            pass
    held = ExitStack()
    try:  # only the acquisition may time out: what the block raises is not caught here
        held.enter_context(concurrency(name, occupy=1, strict=True, timeout_seconds=None if wait else ACQUIRE_SECONDS))
    except AcquireConcurrencySlotTimeoutError:
        yield False
        return
    with held:
        yield True
