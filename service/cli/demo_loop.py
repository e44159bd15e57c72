"""The demo: batches arrive one at a time and the monitor flow runs after each, as a schedule would.

The flows return data; this prints it (a flow imports no Typer and no console). Every step the flows
take is said as it starts (``printed_steps``): the first pass trains the first model, which takes a
while, and a newcomer should see what it is doing."""

from __future__ import annotations

import typer

from service.cli.console import echo_monitor_summary, echo_outcome
from service.cli.progress import embedded_prefect, printed_steps
from service.demo import MODEL_NAME, DemoWorkspace, deliver, finish_demo
from service.progress import step


def run_demo(workspace: DemoWorkspace) -> None:
    typer.echo(f"driftloop demo in {workspace.root}")
    typer.echo(
        f"  {len(workspace.batches)} batches of weather data; drift is injected from batch {workspace.drift_at} on\n"
    )
    with printed_steps():
        step("loading Prefect and the demo's flows")
        from flows.monitor import monitor
        from flows.promote import promote
        from service.config_file import load_config
        from service.registry import Registry

        config = load_config(workspace.config_path)
        step("creating the MLflow store %s", config.tracking_uri())
        Registry(config).experiment_id("monitoring")
    config_path = str(workspace.config_path)
    verdicts, retrains = [], []
    with embedded_prefect():
        for number, batch in enumerate(workspace.batches, start=1):
            typer.echo(f"batch {number} arrives: {batch.name}")
            deliver(workspace, batch)
            with printed_steps():
                step("starting a monitor flow run: one pass over the new batches")
                summary = monitor(config_path)
            echo_monitor_summary(summary, show_old=False)
            verdicts += [verdict for verdict in summary.verdicts if not verdict.already_checked]
            retrains += [*([summary.bootstrap] if summary.bootstrap else []), *summary.retrains]
            if summary.bootstrap is not None:
                typer.echo(
                    "approving the first model for prod, as an operator would "
                    f"(driftloop approve {MODEL_NAME} --env prod):"
                )
                echo_outcome(promote(config_path, "prod", "approve"))
    finish_demo(workspace, verdicts, retrains)
