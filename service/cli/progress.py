"""The steps a command's flows announce (``service.progress``), printed as they start.

On a terminal the current step's line also counts its seconds, so a step that takes a while (the
first model's fit on a busy machine, an embedded Prefect server starting) never looks like a hang.
Into a pipe or a file, each step is one plain line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from service.progress import LOGGER, step

TICK_SECONDS = 1.0
SHOW_AFTER_SECONDS = 2.0  # a step that ends sooner is not worth a counter


class StepPrinter(logging.Handler):
    """Prints each announced step as a line ``  · step``; ``live``: the line stays open and counts."""

    def __init__(self, stream: TextIO, live: bool) -> None:
        super().__init__(logging.INFO)
        self.stream, self.live = stream, live
        self.screen = threading.Lock()  # not `lock`: logging.Handler holds that one around emit()
        self.current: str | None = None  # the open line, on a terminal
        self.began = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        text = f"  · {record.getMessage()}"
        with self.screen:
            self._end_line()
            if self.live:
                self.current, self.began = text, time.monotonic()
                self.stream.write(text)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def tick(self) -> None:
        with self.screen:
            elapsed = time.monotonic() - self.began
            if self.current is not None and elapsed >= SHOW_AFTER_SECONDS:
                self.stream.write(f"\r{self.current} … {elapsed:.0f} s")
                self.stream.flush()

    def end_line(self) -> None:
        with self.screen:
            self._end_line()

    def _end_line(self) -> None:
        if self.current is not None:
            self.stream.write("\n")
            self.current = None


@contextmanager
def printed_steps(verbose: bool | None = None) -> Iterator[StepPrinter]:
    """Print the steps announced inside the block. With ``-v`` the libraries' own logs interleave with
    them, so the lines are plain there too."""
    if verbose is None:
        from service.cli.app import is_verbose

        verbose = is_verbose()
    logger = logging.getLogger(LOGGER)
    printer = StepPrinter(sys.stdout, live=sys.stdout.isatty() and not verbose)
    propagate, level = logger.propagate, logger.level
    logger.addHandler(printer)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # printed once, here, not a second time by a library's root handler
    done = threading.Event()
    ticker = threading.Thread(target=_tick, args=(printer, done), daemon=True)
    if printer.live:
        ticker.start()
    try:
        yield printer
    finally:
        done.set()
        if printer.live:
            ticker.join()
        printer.end_line()
        logger.removeHandler(printer)
        logger.propagate, logger.level = propagate, level


def _tick(printer: StepPrinter, done: threading.Event) -> None:
    while not done.wait(TICK_SECONDS):
        printer.tick()


@contextmanager
def embedded_prefect() -> Iterator[None]:
    """Around a command's flow runs: with no Prefect API configured, start Prefect's embedded server
    first and stop it last, each said, rather than in silence inside the first flow run and at exit.
    Flow runs on it send no heartbeat: the server stops with this process, so no one could miss one."""
    from flows.embedded import embedded_server_needed, start_embedded_server, stop_embedded_server
    from flows.heartbeat import without_heartbeat

    embedded = embedded_server_needed()
    if embedded:
        with printed_steps():
            step("starting Prefect's embedded server (PREFECT_API_URL is unset)")
            start_embedded_server()
    try:
        with without_heartbeat(when=embedded):
            yield
    finally:
        if embedded:
            with printed_steps():
                step("stopping Prefect's embedded server")
                stop_embedded_server()
