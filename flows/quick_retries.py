"""Prefect's clients ask again within a second after a 503, the first few times, instead of after 2 s.

A Prefect server on SQLite (the embedded one of ``driftloop run`` and ``demo``, a test API) answers 503
"database is locked" when a request's transaction races one of the server's own writes, such as the task
runs it records from events: a lock that clears in milliseconds. Prefect's client then waits 2 s (4 s, 8 s
after that) unless the response says how long in a Retry-After header, which this server never sends
(prefect#8950 chose the client's back-off). Creating a subflow's run or its task run in the parent, taking
a model's slot: each could cost a pass 2 s, a pass of ``bench/run_overhead.py`` one time in two.

A response hook gives a request's first three 503s a short Retry-After, and later ones none: a server that
stays unavailable still gets Prefect's back-off after them (16 s, 32 s, 64 s), 112.6 s of waits in all
where Prefect's own are 126 s (2, 4, 8, 16 and 32 s, then 64 s after its last attempt before it gives up).
"""

from __future__ import annotations

import weakref
from typing import Any

import httpx

# Waits before asking again after a request's first 503s; later ones get the client's back-off (16 s, 32 s...).
QUICK_RETRY_SECONDS = (0.01, 0.1, 0.5)

_SEEN_503: weakref.WeakKeyDictionary[httpx.Request, int] = weakref.WeakKeyDictionary()


def soon_after_503(response: httpx.Response) -> None:
    """An httpx response hook: a short Retry-After on a request's first 503s (the client sends the same
    request object again). A response that already says how long to wait is left as it is."""
    if response.status_code != 503 or "Retry-After" in response.headers:
        return
    seen = _SEEN_503.get(response.request, 0)
    _SEEN_503[response.request] = seen + 1
    if seen < len(QUICK_RETRY_SECONDS):
        response.headers["Retry-After"] = str(QUICK_RETRY_SECONDS[seen])


async def soon_after_503_async(response: httpx.Response) -> None:
    soon_after_503(response)


def install() -> None:
    """Give every Prefect API client made in this process the hook (Prefect's engines make their own
    clients, and take no hooks from settings). Idempotent."""
    from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

    hooks = ((PrefectHttpxSyncClient, soon_after_503), (PrefectHttpxAsyncClient, soon_after_503_async))
    for client_class, hook in hooks:
        if getattr(client_class, "_driftloop_quick_retries", False):
            continue
        made = client_class.__init__

        def __init__(self: Any, *args: Any, _made: Any = made, _hook: Any = hook, **kwargs: Any) -> None:
            _made(self, *args, **kwargs)
            self.event_hooks["response"].append(_hook)

        client_class.__init__ = __init__  # type: ignore[method-assign]
        client_class._driftloop_quick_retries = True  # type: ignore[attr-defined]
