"""Steps worth telling a person who waits: each long step (reading data, fitting, logging to MLflow,
drawing reports) says what it starts, on the ``driftloop.progress`` logger.

The domain only announces; whoever runs it decides where the lines go: the CLI prints them as they
come (a first demo otherwise sits silent for a minute), a flow's logs can carry them to the Prefect UI
(``PREFECT_LOGGING_EXTRA_LOGGERS=driftloop``), and with no handler they go nowhere.
"""

from __future__ import annotations

import logging

LOGGER = "driftloop.progress"
_log = logging.getLogger(LOGGER)


def step(message: str, *args: object) -> None:
    """Announce the start of a step; ``args`` are formatted into ``message`` only if someone listens."""
    _log.info(message, *args)
