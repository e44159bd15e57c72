"""A Prefect test API's SQLite database locked by another writer, and the waits Prefect's client
announces before asking again after the 503s that follow."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

WAIT = re.compile(r"retryable status code 503\. Another attempt will be made in ([0-9.]+)s")


@contextmanager
def api_database_locked(seconds: float) -> Iterator[None]:
    """Another writer holds the Prefect API's SQLite database for ``seconds`` from the moment this enters."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    path = str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).split(":///", 1)[1]
    locked = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30), "the API database could not be locked"
        yield
    finally:
        holder.join(30)


@contextmanager
def client_backoffs() -> Iterator[list[float]]:
    """The waits Prefect's client announced before asking again after a 503, while inside."""
    waits: list[float] = []

    class Announced(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            waits.extend(float(found) for found in WAIT.findall(record.getMessage()))

    handler, log = Announced(logging.DEBUG), logging.getLogger("prefect.client")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield waits
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
