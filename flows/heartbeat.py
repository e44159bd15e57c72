"""Flow runs without a heartbeat, where no one could miss one.

Prefect's heartbeat thread sleeps in whole seconds, so every flow run's end waits up to a second to join
it. Where a heartbeat can tell no one anything, that wait is all it does:
- a subflow: its parent's heartbeat already says the process is alive;
- a flow run on the embedded server: the server stops with this process, so it can never see a run
  outlive it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager


@contextmanager
def without_heartbeat(when: bool = True) -> Iterator[None]:
    """Flow runs started inside (``when`` true) send no heartbeat."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    # Off already (a subflow of a pass on the embedded server): changing settings costs 20 ms each time.
    if not when or PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def without_heartbeat_if_embedded() -> AbstractContextManager[None]:
    """Flow runs started inside send no heartbeat when they will run on Prefect's embedded server."""
    from flows.embedded import embedded_server_needed

    return without_heartbeat(when=embedded_server_needed())
