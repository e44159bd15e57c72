"""Commands over the registry: list models, promote, approve or reject, roll back, score a batch."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from service.cli.app import ConfigOption, JsonOption, app, config_path, fail, load, reported_errors
from service.cli.steps import ModelsDirOption, as_json, load_model


@app.command()
def models(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List models, their versions and where each alias points in each environment."""
    from service.catalog import list_models
    from service.cli.console import echo_models
    from service.registry import Registry

    with reported_errors():
        path = Path(config_path(config))
        loaded = load(config) if path.exists() or config else None
        uri = loaded.tracking_uri() if loaded else os.environ.get("MLFLOW_TRACKING_URI")
        if uri is None:
            fail(f"{path}: config file not found and MLFLOW_TRACKING_URI is unset: expected one of them")
        own = {loaded.model.name: Registry(loaded).own_clients()} if loaded and loaded.registry.environments else None
        views = list_models(uri, name, loaded.environments if loaded else None, own=own)
    if name is not None and not views:
        fail(f"no model named {name!r} in the registry at {uri}")
    if as_json:
        typer.echo(json.dumps({"models": [view.to_dict() for view in views]}, indent=2))
    else:
        echo_models(views)


def _move(config: Path | None, name: str, env: str, action: str, note: str = "") -> None:
    from service.cli.console import echo_outcome
    from service.registry import Registry
    from service.steering import Decision, steer  # not the promote flow: a flow run starts a Prefect server first

    with reported_errors():
        steered = steer(Registry(load(config, name)), env, action, decision=Decision(note=note, via="cli"))
    echo_outcome(steered.outcome, steered.failures)


NoteOption = Annotated[str, typer.Option("--note", help="Why: recorded on the version with the decision.")]


@app.command()
def promote(
    name: str,
    to: Annotated[str | None, typer.Option("--to", help="Environment to promote into.")] = None,
    auto: Annotated[
        bool,
        typer.Option(
            "--auto",
            help="Promote a retrain's new version along the environments by their policy (after "
            "`driftloop retrain --no-promote`), then mark its drift check answered.",
        ),
    ] = False,
    drift_run: Annotated[str | None, typer.Option(help="With --auto: the drift check the retrain answered.")] = None,
    config: ConfigOption = None,
    models: ModelsDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Promote the champion of the environment before TO into TO (by its policy); or, with --auto, the
    version a retrain registered along every environment up to the first that needs approval."""
    if auto == (to is not None):
        fail("expected exactly one of --to ENV and --auto")
    if to is not None:
        _move(config, name, to, "promote")
        return
    from service.cli.console import echo_outcome
    from service.steps import promote_auto

    with reported_errors():
        outcomes = promote_auto(load_model(name, config, models), drift_run)
    if json_output:
        typer.echo(as_json({"model": name, "outcomes": [asdict(outcome) for outcome in outcomes]}))
        return
    if not outcomes:
        typer.echo(f"{name}: nothing to promote (no new version awaits promotion)")
    for outcome in outcomes:
        echo_outcome(outcome)


@app.command()
def approve(
    name: str,
    env: Annotated[str, typer.Option(help="Environment whose waiting version to approve.")] = "prod",
    config: ConfigOption = None,
    note: NoteOption = "",
) -> None:
    """Approve the version awaiting approval in ENV: it becomes @champion. Ends its approval run waiting in
    Prefect, if any."""
    _move(config, name, env, "approve", note)


@app.command()
def reject(
    name: str,
    env: Annotated[str, typer.Option(help="Environment whose waiting version to reject.")] = "prod",
    config: ConfigOption = None,
    note: NoteOption = "",
) -> None:
    """Reject the version awaiting approval in ENV: tagged rejected, no longer @challenger; @champion
    stays. Ends its approval run waiting in Prefect, if any."""
    _move(config, name, env, "reject", note)


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
        load(config).registered_name(env)
        from flows.heartbeat import without_heartbeat_if_embedded
        from flows.inference import batch_inference

        with without_heartbeat_if_embedded():
            summary = batch_inference(config_path(config), env, input_uri, output_uri)
    typer.echo(f"scored {summary.rows} rows with {summary.model_uri} → {summary.output_uri}")
