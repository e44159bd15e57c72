"""The ``driftloop`` application, and what every command shares: options, loading a config, and turning
every failure into one line and an exit code (2 bad input, 3 a dependency failed).

Heavy libraries (Evidently, MLflow, Prefect) are imported inside the commands that need them, so
``driftloop --help`` answers at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from service.cli.quiet import quiet_libraries
from service.errors import DriftloopError

app = typer.Typer(
    name="driftloop",
    help="Drift-triggered retraining of scikit-learn models with Prefect, Evidently and MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rendering it with rich would import ~0.2 s of modules for every --help.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Model config file [default: $DRIFTLOOP_CONFIG or driftloop.yaml]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EXIT_ERROR = 2
VERBOSE = False  # -v: show tracebacks and the libraries' logs


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"driftloop {version('driftloop')}")
        raise typer.Exit()


@app.callback()
def _quiet_libraries(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and MLflow's logs.")] = False,
    _version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    """driftloop prints its own progress and errors: keep the libraries' logs out of the terminal
    unless asked. Flow and task logs still reach the Prefect API, where the UI shows them."""
    global VERBOSE
    VERBOSE = verbose
    # A busy machine (load 5-6 on 2 cores) starts the embedded Prefect server slowly: wait for it longer
    # than Prefect's default, and give its API calls room, instead of failing the pass.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_API_REQUEST_TIMEOUT", "120")
    if not verbose:
        quiet_libraries()


def is_verbose() -> bool:
    return VERBOSE


def fail(message: object) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(EXIT_ERROR)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Every failure ends in one line and an exit code: 2 for bad input, 3 when a dependency failed
    (a server down, a timeout). ``-v`` shows the traceback of an unexpected one."""
    from service.fleet import exit_code_of, one_line

    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        show_traceback(exc)
        typer.secho(f"error: {one_line(exc)}", err=True, fg=typer.colors.RED)
        raise typer.Exit(exit_code_of(exc)) from None


def show_traceback(exc: Exception) -> None:
    # Still exit with our code afterwards: Python's own exit 1 would read as "drift" to a script.
    if VERBOSE and not isinstance(exc, DriftloopError):
        import traceback

        traceback.print_exception(exc)


def config_path(config: Path | None) -> str:
    from service.settings import Settings  # pydantic models cost ~0.2 s to build: not for --help

    return str(config or Settings().config)


def load(config: Path | None, name: str | None = None):  # -> Config (imported lazily)
    from service.config_file import load_config

    loaded = load_config(config_path(config))
    if name is not None and name != loaded.model.name:
        fail(f"{loaded.source}: configures model {loaded.model.name!r}, not {name!r}")
    return loaded
