"""The ``driftloop`` command line: the application in ``app``, its commands by concern in the modules
beside it (each registers its commands on ``app`` when imported)."""

from service.cli import check, loop, registry, serve  # noqa: F401  (registers the commands)
from service.cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
