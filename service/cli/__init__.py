"""The ``driftloop`` command line: the application in ``app``, its commands by concern in the modules
beside it (each registers its commands on ``app`` when imported)."""

import gc
import sys

from service.cli import app as _application
from service.cli import check, loop, registry, serve, steps  # noqa: F401  (registers the commands)

app = _application.app
VERBOSE_FLAGS = ("-v", "--verbose")


def main() -> None:
    """The console script. ``-v`` is an option of ``driftloop`` itself, but people type it after the
    command too (``driftloop demo -v``): it is moved in front, where click reads it."""
    args = sys.argv[1:]
    flags = [arg for arg in args if arg in VERBOSE_FLAGS]
    try:
        app(args=[*flags[:1], *(arg for arg in args if arg not in VERBOSE_FLAGS)], prog_name="driftloop")
    finally:
        # Everything is printed: what is left is the interpreter's exit, whose garbage collections walk
        # every object a long command made (a demo's: 20 s on a busy machine, silent). Frozen objects are
        # not walked; exit handlers still run and the operating system takes the memory back.
        gc.freeze()


__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
