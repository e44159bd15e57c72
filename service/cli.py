"""The ``driftloop`` command line.

Heavy libraries (Evidently, MLflow, Prefect) are imported inside the commands that need them, so
``driftloop --help`` answers at once. Every ``DriftloopError`` ends the command with exit code 2 and its
message; ``driftloop drift`` exits 0 for no drift and 1 for drift, as ``diff`` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from service.errors import DriftloopError

app = typer.Typer(
    name="driftloop",
    help="Drift-triggered retraining of scikit-learn models with Prefect, Evidently and MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rendering it with rich would import ~0.2 s of modules for every --help.
    rich_markup_mode=None,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Model config file [default: $DRIFTLOOP_CONFIG or driftloop.yaml]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EXIT_ERROR = 2


@app.callback()
def _quiet_libraries(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and MLflow's logs.")] = False,
) -> None:
    """driftloop prints its own progress and errors: keep the libraries' logs out of the terminal
    unless asked. Flow and task logs still reach the Prefect API, where the UI shows them."""
    if verbose:
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def fail(message: object) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(EXIT_ERROR)


@contextmanager
def reported_errors() -> Iterator[None]:
    try:
        yield
    except DriftloopError as exc:
        fail(exc)


def _config_path(config: Path | None) -> str:
    from service.settings import Settings  # pydantic models cost ~0.2 s to build: not for --help

    return str(config or Settings().config)


def _load(config: Path | None, name: str | None = None):  # -> Config (imported lazily)
    from service.settings import load_config

    loaded = load_config(_config_path(config))
    if name is not None and name != loaded.model.name:
        fail(f"{loaded.source}: configures model {loaded.model.name!r}, not {name!r}")
    return loaded


@app.command()
def drift(
    reference: Annotated[str, typer.Option(help="Reference data: csv or parquet, any fsspec URI.")],
    current: Annotated[str, typer.Option(help="Current batch (a file, or a glob read as one batch).")],
    report: Annotated[Path | None, typer.Option(help="Write the Evidently HTML report here.")] = None,
    ignore: Annotated[list[str] | None, typer.Option(help="Column to leave out (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check CURRENT for drift against REFERENCE. Exit 0: no drift, 1: drift, 2: error."""
    try:
        from service.adhoc import check_files
        from service.settings import DriftSection

        result = check_files(reference, current, ignore or [], DriftSection())
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(result.html)
    except (DriftloopError, OSError) as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "report": str(report) if report else None}, indent=2))
    else:
        verdict = "DRIFT" if result.dataset_drift else "no drift"
        typer.echo(
            f"{verdict}: {len(result.drifted_columns())} of {len(result.columns)} columns drifted "
            f"({result.drifted_share:.0%}, dataset threshold {result.drift_share_threshold:.0%})"
        )
        for column in result.columns:
            mark = "drift" if column.drifted else "ok"
            typer.echo(
                f"  {column.column:<24} {mark:<6} {column.stattest} = {column.score:.4g} "
                f"(threshold {column.threshold:.4g})"
            )
        if report is not None:
            typer.echo(f"report: {report}")
    raise typer.Exit(1 if result.dataset_drift else 0)


@app.command()
def run(config: ConfigOption = None) -> None:
    """One monitoring pass: validate, check drift and, on debounced drift, retrain, register, promote."""
    from service.console import echo_monitor_summary

    with reported_errors():
        _load(config)
        from flows.monitor import monitor

        summary = monitor(_config_path(config))
    echo_monitor_summary(summary)


@app.command()
def models(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List models, their versions and where each alias points in each environment."""
    from service.catalog import list_models
    from service.console import echo_models

    with reported_errors():
        path = Path(_config_path(config))
        loaded = _load(config) if path.exists() or config else None
        uri = loaded.tracking_uri() if loaded else os.environ.get("MLFLOW_TRACKING_URI")
        if uri is None:
            fail(f"{path}: config file not found and MLFLOW_TRACKING_URI is unset: expected one of them")
        views = list_models(uri, name, loaded.environments if loaded else None)
    if name is not None and not views:
        fail(f"no model named {name!r} in the registry at {uri}")
    if as_json:
        typer.echo(json.dumps({"models": [view.to_dict() for view in views]}, indent=2))
    else:
        echo_models(views)


def _move(config: Path | None, name: str, env: str, action: str) -> None:
    from service.console import echo_outcome

    with reported_errors():
        loaded = _load(config, name)
        loaded.registered_name(env)  # an unknown environment fails here, before any flow starts
        from flows.promote import promote as promote_flow

        outcome = promote_flow(_config_path(config), env, action)
    echo_outcome(outcome)


@app.command()
def promote(
    name: str,
    to: Annotated[str, typer.Option("--to", help="Environment to promote into.")],
    config: ConfigOption = None,
) -> None:
    """Promote the champion of the environment before TO into TO (by its policy)."""
    _move(config, name, to, "promote")


@app.command()
def approve(
    name: str,
    env: Annotated[str, typer.Option(help="Environment whose waiting version to approve.")] = "prod",
    config: ConfigOption = None,
) -> None:
    """Approve the version awaiting approval in ENV: it becomes @champion."""
    _move(config, name, env, "approve")


@app.command()
def rollback(
    name: str,
    env: Annotated[str, typer.Option(help="Environment to roll back.")],
    config: ConfigOption = None,
) -> None:
    """Move ENV's @champion back to its @previous version."""
    _move(config, name, env, "rollback")


@app.command()
def predict(
    env: Annotated[str, typer.Option(help="Environment whose champion scores.")],
    input_uri: Annotated[str, typer.Option("--input", help="Batch to score (csv/parquet, any fsspec URI).")],
    output_uri: Annotated[str, typer.Option("--output", help="Where to write the batch with predictions.")],
    config: ConfigOption = None,
) -> None:
    """Score a batch with ENV's @champion."""
    with reported_errors():
        _load(config).registered_name(env)
        from flows.inference import batch_inference

        summary = batch_inference(_config_path(config), env, input_uri, output_uri)
    typer.echo(f"scored {summary.rows} rows with {summary.model_uri} → {summary.output_uri}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the driftloop API (models, versions, aliases; probes at /healthz and /readyz)."""
    import uvicorn

    from service.api import create_app

    with reported_errors():
        api = create_app()
    uvicorn.run(api, host=host, port=port, log_level="warning")


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's data and stores.")] = Path("driftloop-demo"),
    batches: Annotated[int, typer.Option(min=2, help="Batches in the stream.")] = 8,
    drift_at: Annotated[int, typer.Option(min=1, help="First drifted batch.")] = 5,
    rows: Annotated[int, typer.Option(min=100, help="Rows per batch.")] = 1000,
) -> None:
    """Run the whole loop on built-in demo data: local MLflow store, ephemeral Prefect, no server."""
    from service.demo import prepare_workspace

    if drift_at > batches:
        fail(f"--drift-at {drift_at}: expected at most --batches ({batches})")
    with reported_errors():
        workspace = prepare_workspace(workdir, batches, rows, drift_at)
    # Keep Prefect's state with the demo's, unless the user points Prefect elsewhere on purpose.
    if "PREFECT_API_URL" not in os.environ:
        os.environ.setdefault("PREFECT_HOME", str(workspace.root / "prefect"))
    # The embedded server is ours, not the user's: it phones nowhere.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.demo import run_demo

    with reported_errors():
        run_demo(workspace)


stack_app = typer.Typer(help="A local stack: PostgreSQL (or sqlite), Prefect and MLflow servers, a worker.")
app.add_typer(stack_app, name="stack")
StackDir = Annotated[Path, typer.Option("--dir", help="Folder for the stack's data, logs and pids.")]


@stack_app.command("up")
def stack_up(
    folder: StackDir = Path("driftloop-stack"),
    backend: Annotated[str, typer.Option(help="auto (PostgreSQL if installed), postgresql or sqlite.")] = "auto",
    config: ConfigOption = None,
) -> None:
    """Start the servers, the process work pool `driftloop` with a worker, and register the deployments."""
    from service.stack_commands import stack_status, stack_up

    with reported_errors():
        stack_up(folder, backend, config)
        for name, where, ok in stack_status(folder):
            typer.echo(f"{name:<12} {where}{'' if ok else '  (not answering)'}")


@stack_app.command("down")
def stack_down(folder: StackDir = Path("driftloop-stack")) -> None:
    """Stop what `driftloop stack up` started in FOLDER."""
    from service.stack_commands import stack_down

    typer.echo(f"stopped: {', '.join(stack_down(folder)) or 'nothing was running'}")


@stack_app.command("status")
def stack_status(folder: StackDir = Path("driftloop-stack")) -> None:
    """Print the stack's URLs and whether each answers (exit 1 if one does not)."""
    from service.stack_commands import stack_status

    with reported_errors():
        rows = stack_status(folder)
    for name, where, ok in rows:
        typer.echo(f"{name:<12} {where}  {'up' if ok else 'DOWN'}")
    raise typer.Exit(0 if all(ok for *_, ok in rows) else 1)


if __name__ == "__main__":
    app()
