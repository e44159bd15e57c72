"""Prefect's embedded server, started and stopped on purpose rather than by the first flow run.

With no PREFECT_API_URL, Prefect starts a temporary server the first time a flow runs, and stops it
when the process exits. Both take seconds (tens on a busy machine) with nothing to show for it: the CLI
starts it here first, where it can say so, and stops it before its last lines. The server is Prefect's
own (one per process), so the flows find it running and use it.
"""

from __future__ import annotations


def embedded_server_needed() -> bool:
    """True when a flow run would start Prefect's temporary server: no API configured, embedding allowed."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    return not PREFECT_API_URL.value() and bool(PREFECT_SERVER_EPHEMERAL_ENABLED.value())


def start_embedded_server() -> str:
    """Start the temporary server (once per process); return its API URL."""
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    return server.api_url


def stop_embedded_server(drain_seconds: float = 30.0) -> None:
    """Send the logs and events still queued for the server, then stop it. Stopped first, Prefect's
    exit would wait on them with no time limit, retrying a server that is gone."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer

    for service in (APILogWorker, EventsWorker):
        service.drain_all(timeout=drain_seconds)
    SubprocessASGIServer().stop()
