"""Serving and trying driftloop: the API, the demo, and the local stack."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from service.cli.app import ConfigOption, app, fail, reported_errors


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the driftloop API (models, versions, aliases; probes at /healthz and /readyz)."""
    import uvicorn

    from service.api.app import create_app

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
    from service.cli.demo_loop import run_demo

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
    models: Annotated[Path | None, typer.Option("--models", help="Folder of model files the sweep reads.")] = None,
) -> None:
    """Start the servers, the process work pool `driftloop` with a worker, and register the deployments."""
    from service.cli.progress import printed_steps
    from service.stack.commands import stack_status, stack_up

    with reported_errors():
        with printed_steps():  # each server said as it starts: a stack takes a while to come up
            stack_up(folder, backend, config, models)
        for name, where, ok in stack_status(folder):
            typer.echo(f"{name:<12} {where}{'' if ok else '  (not answering)'}")


@stack_app.command("down")
def stack_down(folder: StackDir = Path("driftloop-stack")) -> None:
    """Stop what `driftloop stack up` started in FOLDER."""
    from service.stack.commands import stack_down

    typer.echo(f"stopped: {', '.join(stack_down(folder)) or 'nothing was running'}")


@stack_app.command("status")
def stack_status(folder: StackDir = Path("driftloop-stack")) -> None:
    """Print the stack's URLs and whether each answers (exit 1 if one does not)."""
    from service.stack.commands import stack_status

    with reported_errors():
        rows = stack_status(folder)
    for name, where, ok in rows:
        typer.echo(f"{name:<12} {where}  {'up' if ok else 'DOWN'}")
    raise typer.Exit(0 if all(ok for *_, ok in rows) else 1)
