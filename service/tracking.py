"""MLflow runs: every drift check and every training is a run, so history is browsable in the MLflow UI.

Drift checks go to the experiment ``driftloop/<model>/monitoring`` and trainings to
``driftloop/<model>/training``. Runs carry ``driftloop.*`` tags that the monitor reads back for
debouncing and for skipping batches it has already checked against the same reference.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pandas as pd

from service import schemas
from service.contracts import DataContract, contract_to_dict
from service.drift import DriftResult
from service.evaluate import GateDecision
from service.registry import CONTRACT_PATH, LINEAGE_PATH, TAG, Registry, tag_filter

MONITORING, TRAINING = "monitoring", "training"
REPORT_PATH = "drift/drift_report.html"


@cache
def code_version() -> str:
    """driftloop's version and, from a git checkout, its commit: recorded on every trained model."""
    from service.settings import Settings

    version = metadata.version("driftloop")
    sha = Settings().git_sha
    if sha is None:
        try:
            sha = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                check=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            sha = "unknown"
    return f"{version}+{sha}"


def git_sha() -> str:
    return code_version().split("+", 1)[1]


@dataclass(frozen=True)
class DriftCheckRecord:
    run_id: str
    batch_uri: str
    dataset_drift: bool
    report_uri: str


def _record(run: object) -> DriftCheckRecord:
    tags = run.data.tags  # type: ignore[attr-defined]
    return DriftCheckRecord(
        run_id=run.info.run_id,  # type: ignore[attr-defined]
        batch_uri=tags.get(f"{TAG}batch_uri", ""),
        dataset_drift=tags.get(f"{TAG}dataset_drift") == "true",
        report_uri=f"{run.info.artifact_uri}/{REPORT_PATH}",  # type: ignore[attr-defined]
    )


def _search(registry: Registry, stage: str, filters: list[str], limit: int) -> list[object]:
    return list(
        registry.client.search_runs(
            [registry.experiment_id(stage)],
            filter_string=" and ".join(filters),
            order_by=["attributes.start_time DESC"],
            max_results=limit,
        )
    )


def find_check(registry: Registry, batch_hash: str) -> DriftCheckRecord | None:
    """The check of this very batch content, if one was made: a batch is checked once, whatever the
    champion since, so a new champion never re-reads old batches as fresh drift."""
    found = _search(registry, MONITORING, [tag_filter("batch_hash", batch_hash)], 1)
    return _record(found[0]) if found else None


def recent_checks(registry: Registry, reference_run_id: str, limit: int) -> list[DriftCheckRecord]:
    """The latest checks against this reference, newest first; a new champion starts a new history."""
    runs = _search(registry, MONITORING, [tag_filter("reference_run", reference_run_id)], limit)
    return [_record(run) for run in runs]


def log_drift_check(
    registry: Registry,
    result: DriftResult,
    *,
    batch_uri: str,
    batch_hash: str,
    reference_run_id: str,
    flow_run_id: str | None,
) -> DriftCheckRecord:
    tags = {
        "kind": "drift_check",
        "batch_uri": batch_uri,
        "batch_hash": batch_hash,
        "reference_run": reference_run_id,
        "dataset_drift": str(result.dataset_drift).lower(),
        "flow_run_id": flow_run_id or "",
    }
    client = registry.client
    run = client.create_run(
        registry.experiment_id(MONITORING),
        run_name=f"drift {Path(batch_uri).name}",
        tags={f"{TAG}{key}": value for key, value in tags.items()},
    )
    run_id = run.info.run_id
    metrics = {
        "drifted_share": result.drifted_share,
        "drifted_columns": float(len(result.drifted_columns())),
        "n_current": float(result.n_current),
        "n_reference": float(result.n_reference),
        **{f"drift_score.{column.column}": column.score for column in result.columns},
    }
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    client.log_dict(run_id, result.to_dict(), "drift/result.json")
    client.log_text(run_id, result.html, REPORT_PATH)
    client.set_terminated(run_id)
    return _record(client.get_run(run_id))


@dataclass(frozen=True)
class TrainingRecord:
    run_id: str
    model_uri: str


def _pip_requirements() -> list[str]:
    # Listing them skips MLflow's requirement inference, which reloads the model in a subprocess.
    return [f"{name}=={metadata.version(name)}" for name in ("scikit-learn", "skops", "pandas", "numpy")]


def log_training_run(
    registry: Registry,
    *,
    model: object,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    features: list[str],
    decision: GateDecision,
    contract: DataContract,
    lineage: dict[str, object],
    tags: dict[str, str],
    drift_report_html: str | None,
) -> TrainingRecord:
    """Log a fitted pipeline with its signature, input example, datasets, metrics and lineage."""
    import mlflow
    import mlflow.sklearn
    import skops.io

    config = registry.config
    with mlflow.start_run(experiment_id=registry.experiment_id(TRAINING), run_name=f"train {config.model.name}") as run:
        mlflow.set_tags({f"{TAG}{key}": value for key, value in {"kind": "training", **tags}.items()})
        mlflow.log_params(
            {
                "estimator": config.model.estimator_path,
                **{f"param.{key}": value for key, value in config.model.params.items()},
                "training.window": config.training.window,
                "evaluation.metric": decision.metric,
                "rows.train": len(train),
                "rows.holdout": len(holdout),
            }
        )
        metrics = {f"holdout.challenger.{decision.metric}": decision.challenger_score}
        if decision.champion_score is not None:
            metrics[f"holdout.champion.{decision.metric}"] = decision.champion_score
            metrics["holdout.gain"] = decision.challenger_score - decision.champion_score
        mlflow.log_metrics(metrics)
        mlflow.log_input(schemas.dataset(train, "train", contract), context="training")
        mlflow.log_input(schemas.dataset(holdout, "holdout", contract), context="holdout")
        predictions = pd.Series(model.predict(holdout[features].head(100)))  # type: ignore[attr-defined]
        signature = schemas.model_signature(contract, predictions)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=holdout[features].head(5),
            serialization_format="skops",
            # Only the types of the pipeline we just built: loading stays safe against foreign files.
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            pip_requirements=_pip_requirements(),
        )
        mlflow.log_dict(lineage, LINEAGE_PATH)
        mlflow.log_dict(contract_to_dict(contract), CONTRACT_PATH)
        mlflow.log_dict(decision.to_dict(), "evaluation/gate.json")
        if drift_report_html is not None:
            mlflow.log_text(drift_report_html, REPORT_PATH)
    return TrainingRecord(run_id=run.info.run_id, model_uri=info.model_uri)


def read_report(registry: Registry, run_id: str) -> str:
    import mlflow.artifacts

    return mlflow.artifacts.load_text(f"runs:/{run_id}/{REPORT_PATH}")
