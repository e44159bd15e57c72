"""The loop's commands: ``run`` (a pass over one model or a fleet) and ``batches``; the steps an external
orchestrator calls one by one (``check``, ``retrain``) are in ``service.cli.steps``.

Flows are imported inside the commands, so ``driftloop --help`` stays instant.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from service.cli.app import JsonOption, app, config_path, load, reported_errors

ConfigsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--config", "-c", help="Model config file (repeatable) [default: $DRIFTLOOP_CONFIG or driftloop.yaml]"
    ),
]
ModelsOption = Annotated[
    Path | None,
    typer.Option("--models", help="Folder of model files (*.yaml, *.yml), one per model [env: DRIFTLOOP_MODELS_DIR]"),
]


def _model_paths(configs: list[Path] | None, models: Path | None) -> list[Path]:
    from service.fleet import model_files

    paths = list(configs or [])
    folder = models or (Path(os.environ["DRIFTLOOP_MODELS_DIR"]) if os.environ.get("DRIFTLOOP_MODELS_DIR") else None)
    if folder is not None:
        paths += model_files(folder)
    return paths or [Path(config_path(None))]


@app.command()
def run(
    config: ConfigsOption = None,
    models: ModelsOption = None,
    retrain_via: Annotated[str, typer.Option(help="subflow (in this process) or event (the retrain deployment).")] = (
        "subflow"
    ),
    as_json: JsonOption = False,
) -> None:
    """One monitoring pass per model: validate, check drift, and on debounced drift retrain, register,
    promote. Every model runs even when another fails. Exit 0: all fine; 2: bad input (a config or a
    batch, named); 3: a server or storage failed."""
    from service.cli.console import echo_fleet, echo_monitor_summary
    from service.fleet import ModelReport, load_fleet, report_of, run_fleet, worst_exit_code

    with reported_errors():
        entries = load_fleet(_model_paths(config, models))

    def run_one(entry):  # -> ModelReport
        from service.monitor import work_to_do
        from service.registry import Registry

        if work_to_do(Registry(entry.config)) is None:  # nothing new: no flow, no Prefect server started
            if not as_json:
                typer.echo(f"{entry.name} ({entry.path}): nothing new")
            return ModelReport(entry.name, str(entry.path))
        from flows.heartbeat import without_heartbeat_if_embedded
        from flows.monitor import monitor
        from service.cli.progress import printed_steps

        # A first pass trains the first model: say what it is doing (not into --json's document).
        with nullcontext() if as_json else printed_steps(), without_heartbeat_if_embedded():
            summary = monitor(str(entry.path), retrain_via=retrain_via)
        if not as_json:
            typer.echo(f"{entry.name} ({entry.path})")
            echo_monitor_summary(summary)
        return report_of(entry, summary)

    reports = run_fleet(entries, run_one)
    if as_json:
        typer.echo(json.dumps({"models": [report.to_dict() for report in reports]}, indent=2))
    else:
        echo_fleet(reports)
    raise typer.Exit(worst_exit_code(reports))


@app.command()
def batches(
    name: Annotated[str, typer.Argument(help="Model whose batches to list.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="The model's config file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Batches quarantined as bad input, with their cause; they are skipped until their content changes."""
    from service.checks import quarantined
    from service.registry import Registry

    with reported_errors():
        rows = quarantined(Registry(load(config, name)))
    if as_json:
        typer.echo(json.dumps({"model": name, "quarantined": [row.__dict__ for row in rows]}, indent=2))
        return
    if not rows:
        typer.echo(f"{name}: no quarantined batch")
    for row in rows:
        typer.echo(f"{row.uri}  (check run {row.run_id})\n  {row.cause.replace(chr(10), chr(10) + '  ')}")
