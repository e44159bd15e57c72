"""One model, one run at a time: a Prefect global concurrency limit per model and kind of work.

Deployment concurrency limits are per deployment, so they cannot keep two retrains of the same model
apart while letting different models' retrains run side by side. A limit named after the model does:
a burst of retrain requests for one model queues on it, and each queued run then finds its request
answered or stale and trains nothing; another model's retrain takes its own slot at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists


def slot_name(kind: str, model: str) -> str:
    return f"driftloop-{kind}-" + re.sub(r"[^A-Za-z0-9_.-]", "-", model)


@contextmanager
def model_slot(kind: str, model: str) -> Iterator[None]:
    """Hold the one slot of ``kind`` work for ``model`` (created on first use) while the block runs."""
    name = slot_name(kind, model)
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        except ObjectAlreadyExists:  # another run created it between our read and our create
            pass
    with concurrency(name, occupy=1, strict=True):
        yield
