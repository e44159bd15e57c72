"""The steps an external orchestrator (Airflow, cron) calls one by one: ``check``, ``retrain``, and
``promote --auto`` (in ``service.cli.registry``). Each runs ``service.steps`` in this process, without
Prefect, is idempotent, and prints JSON with ``--json``. Exit codes: 0 done (a retrain asked for, a
version rejected by the gate and a request already answered are all answers); 2 bad input (a config, a
batch: never worth a retry); 3 a server or storage did not answer (retry).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli.app import JsonOption, app, load, reported_errors

ModelConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="The model's config file (else it is looked up in --models).")
]
ModelsDirOption = Annotated[
    Path | None,
    typer.Option("--models", help="Folder of model files where NAME is looked up [env: DRIFTLOOP_MODELS_DIR]"),
]
EXIT_BAD_INPUT = 2


def load_model(name: str, config: Path | None, models: Path | None):  # -> Config (imported lazily)
    """NAME's config: ``--config``; else the file of ``--models`` (or $DRIFTLOOP_MODELS_DIR) that configures
    NAME; else $DRIFTLOOP_CONFIG or ./driftloop.yaml."""
    folder = models or (Path(os.environ["DRIFTLOOP_MODELS_DIR"]) if os.environ.get("DRIFTLOOP_MODELS_DIR") else None)
    if config is not None or folder is None:
        return load(config, name)
    from service.errors import ConfigError
    from service.fleet import load_fleet, model_files

    entries = load_fleet(model_files(folder))
    for entry in entries:
        if entry.name == name and entry.error is not None:
            raise ConfigError(entry.error)
        if entry.name == name:
            return entry.config
    broken = [f"{entry.path}: {entry.error}" for entry in entries if entry.error is not None]
    known = sorted(entry.name for entry in entries if entry.error is None)
    hint = f"; files that did not load: {'; '.join(broken)}" if broken else ""
    raise ConfigError(f"{folder}: no model file configures model {name!r}: expected one of {known}{hint}")


def as_json(document: Any) -> str:
    """JSON that any parser reads: a verdict of a batch checked earlier has no drift share (NaN → null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(document), indent=2)


@app.command()
def check(
    name: Annotated[str, typer.Argument(help="Model to check.")],
    config: ModelConfigOption = None,
    models: ModelsDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check NAME's new batches for drift and record the verdicts; never trains. Says whether a retrain
    is requested, and for which drift check (its MLflow run id; none when there is no champion yet).
    Exit 0: checked; 2: bad input (a batch quarantined by this check, or the config); 3: a server failed."""
    from service.steps import check_model

    with reported_errors():
        report = check_model(load_model(name, config, models))
    if json_output:
        typer.echo(as_json(report.to_dict()))
    else:
        _echo_check(report)
    if report.quarantined:  # quarantined and skipped until it changes; the batches after it were checked
        for verdict in report.quarantined:
            typer.secho(f"error: quarantined {verdict.batch_uri}: {verdict.reason}", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_BAD_INPUT)


def _echo_check(report: Any) -> None:
    from service.cli.console import verdict_line

    for change in report.config_changes:
        typer.echo(f"  config changed: {change}; takes effect at the next retrain (driftloop retrain)")
    for verdict in report.verdicts:
        typer.echo(verdict_line(verdict))
    if report.retrain_requested:
        asking = f"drift check {report.drift_run}" if report.drift_run else "no drift check"
        typer.echo(f"{report.model}: retrain requested ({asking}): {report.reason}")
    else:
        typer.echo(f"{report.model}: no retrain requested ({report.reason})")


@app.command()
def retrain(
    name: Annotated[str, typer.Argument(help="Model to retrain.")],
    config: ModelConfigOption = None,
    models: ModelsDirOption = None,
    drift_run: Annotated[str | None, typer.Option(help="Answer this drift check (its MLflow run id).")] = None,
    promote: Annotated[
        bool,
        typer.Option(
            help="Promote by the policy now; --no-promote leaves it to `driftloop promote NAME --auto`, and the "
            "drift check pending until then."
        ),
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Retrain NAME now, with the config as it is (an edited config takes effect here): on the batches up to
    the drift check's with --drift-run, else on the latest `training.window` batches (on data.reference
    with no champion yet); evaluate, register and promote by the policy. Idempotent: a drift check
    already answered, or made stale by a newer champion, trains nothing. Exit 0: done (a version the
    gate rejected included); 2: bad input; 3: a server failed."""
    from service.cli.console import echo_outcome
    from service.cli.progress import printed_steps
    from service.steps import retrain_model

    with reported_errors(), printed_steps() if not json_output else contextlib.nullcontext():
        report = retrain_model(load_model(name, config, models), drift_run, promote_now=promote)
    if json_output:
        typer.echo(as_json(report.to_dict()))
    elif report.skipped:
        typer.echo(f"{name}: nothing to retrain ({report.skipped})")
    else:
        typer.echo(f"retrained: {report.model} v{report.version} — gate: {report.gate}")
        for outcome in report.outcomes:
            echo_outcome(outcome)
        if not report.settled:
            typer.echo(f"  promotion left to `driftloop promote {name} --auto --drift-run {drift_run or ''}`")
