"""A real Dask cluster for the tests of ``drift.engine: dask``, and a way to kill one of its workers mid-check.

The cluster is ``distributed.LocalCluster`` with two worker processes (each under a nanny that restarts it
when it dies), started once per session: it takes seconds. Workers import this module by name when a
plugin of it is registered, so it lives in the importable ``tests`` package rather than in a conftest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin


def start_cluster(env: dict[str, str] | None = None) -> LocalCluster:
    """Two worker processes of one thread each, no dashboard (no port to share with other test runs);
    ``env``: extra environment of the worker processes (an S3 endpoint, say)."""
    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        env=env or {},
    )


class KillFirstAttempt(WorkerPlugin):
    """Kills the worker process that starts the first task whose key begins with ``prefix``, once: the
    marker file records the pid it killed, so the task's retry (on whichever worker) runs untouched."""

    def __init__(self, prefix: str, marker: str) -> None:
        self.prefix = prefix
        self.marker = marker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or not str(key).startswith(self.prefix):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # one worker wins, once
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} {key}".encode())
        os.close(fd)
        os._exit(1)  # as the OOM killer does: no cleanup, no goodbye to the scheduler


@contextmanager
def killing_first(scheduler: str, prefix: str, marker: Path) -> Iterator[None]:
    """While inside, the first task of ``prefix`` kills its worker (see ``KillFirstAttempt``)."""
    with Client(scheduler, set_as_default=False) as client:
        client.register_plugin(KillFirstAttempt(prefix, str(marker)), name="kill-first-attempt")
        try:
            yield
        finally:
            client.unregister_worker_plugin("kill-first-attempt")


def worker_pids(scheduler: str) -> set[int]:
    with Client(scheduler, set_as_default=False) as client:
        return set(client.run(os.getpid).values())
