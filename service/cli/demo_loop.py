"""The demo: batches arrive one at a time and the monitor flow runs after each, as a schedule would.

The flows return data; this prints it (a flow imports no Typer and no console)."""

from __future__ import annotations

import typer

from service.cli.console import echo_monitor_summary, echo_outcome
from service.demo import MODEL_NAME, DemoWorkspace, deliver, finish_demo


def run_demo(workspace: DemoWorkspace) -> None:
    from flows.monitor import monitor
    from flows.promote import promote

    config_path = str(workspace.config_path)
    typer.echo(f"driftloop demo in {workspace.root}")
    typer.echo(
        f"  {len(workspace.batches)} batches of weather data; drift is injected from batch {workspace.drift_at} on\n"
    )
    verdicts, retrains = [], []
    for number, batch in enumerate(workspace.batches, start=1):
        typer.echo(f"batch {number} arrives: {batch.name}")
        deliver(workspace, batch)
        summary = monitor(config_path)
        echo_monitor_summary(summary, show_old=False)
        verdicts += [verdict for verdict in summary.verdicts if not verdict.already_checked]
        retrains += [*([summary.bootstrap] if summary.bootstrap else []), *summary.retrains]
        if summary.bootstrap is not None:
            typer.echo(
                f"approving the first model for prod, as an operator would (driftloop approve {MODEL_NAME} --env prod):"
            )
            echo_outcome(promote(config_path, "prod", "approve"))
    finish_demo(workspace, verdicts, retrains)
