"""Training runs in MLflow (experiment ``driftloop/<model>/training``) and the code version they record.

Drift checks and quarantined batches are the monitor's records: see ``service.checks``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pandas as pd

from service import schemas
from service.contracts import DataContract, contract_to_dict
from service.evaluate import GateDecision
from service.registry import CONTRACT_PATH, LINEAGE_PATH, MODEL_PATH, TAG, Registry, tag_filter
from service.skops_types import check_saves_by_audit, exact_types, refused_for_its_types, types_in
from service.stored_reference import LINEAGE_KEY, ReferenceSnapshot, write_snapshot

TRAINING = "training"
REPORT_PATH = "drift/drift_report.html"  # the triggering check's report, kept with the model
DIGEST_CHARS = 16  # MLflow keeps at most 36 characters of a dataset's digest


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
class TrainingRecord:
    run_id: str


def _pip_requirements() -> list[str]:
    # Listing them skips MLflow's requirement inference, which reloads the model in a subprocess.
    return [f"{name}=={metadata.version(name)}" for name in ("scikit-learn", "skops", "pandas", "numpy")]


def finished_training(registry: Registry, key: str) -> str | None:
    """The finished training run of this request, if a previous attempt got that far."""
    experiment = registry.experiment_id(TRAINING)
    found = registry.ask(
        "search training runs",
        lambda: registry.client.search_runs(
            [experiment],
            filter_string=f"{tag_filter('training_key', key)} and attributes.status = 'FINISHED'",
            max_results=1,
        ),
    )
    return found[0].info.run_id if found else None


def _save_model(
    model: object, folder: Path, contract: DataContract, holdout: pd.DataFrame, features: list[str]
) -> None:
    """MLflow's sklearn flavour in skops format, trusting only the types of the pipeline we just built:
    loading stays safe against foreign files. The save audits what it wrote against that list, so a type
    the quick walk missed fails it, and it is done again with skops' own list."""
    import mlflow.sklearn

    check_saves_by_audit()
    predictions = pd.Series(model.predict(holdout[features].head(100)))  # type: ignore[attr-defined]

    def save(trusted: list[str]) -> None:
        mlflow.sklearn.save_model(
            model,
            str(folder),
            signature=schemas.model_signature(contract, predictions),
            input_example=holdout[features].head(5),
            serialization_format="skops",
            skops_trusted_types=trusted,
            pip_requirements=_pip_requirements(),
        )

    try:
        save(types_in(model))
    except Exception as exc:
        if not refused_for_its_types(exc):
            raise
        shutil.rmtree(folder)
        save(exact_types(model))


def _params(
    registry: Registry, decision: GateDecision, train: pd.DataFrame, holdout: pd.DataFrame
) -> dict[str, object]:
    config = registry.config
    return {
        "estimator": config.model.estimator_path,
        **{f"param.{key}": value for key, value in config.model.params.items()},
        "training.window": config.training.window,
        "training.max_rows": config.training.max_rows,
        "evaluation.metric": decision.metric,
        "rows.train": len(train),
        "rows.holdout": len(holdout),
    }


def _metrics(decision: GateDecision) -> dict[str, float]:
    metrics = {f"holdout.challenger.{decision.metric}": decision.challenger_score}
    if decision.champion_score is not None:
        metrics[f"holdout.champion.{decision.metric}"] = decision.champion_score
        metrics["holdout.gain"] = decision.challenger_score - decision.champion_score
    return metrics


def _log_datasets(
    registry: Registry, run_id: str, frames: dict[str, tuple[pd.DataFrame, str]], contract: DataContract
) -> None:
    """Each frame with its content hash (``service.data.frame_hash``) as the dataset's digest: MLflow would
    hash every value again, and the lineage's ``train_hash`` and ``holdout_hash`` then start with it."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = [
        DatasetInput(
            schemas.dataset(frame, name, contract, digest=content_hash[:DIGEST_CHARS])._to_mlflow_entity(),  # type: ignore[attr-defined]
            [InputTag(MLFLOW_DATASET_CONTEXT, name)],
        )
        for name, (frame, content_hash) in frames.items()
    ]
    registry.ask("log datasets", lambda: registry.client.log_inputs(run_id, datasets=inputs))


def log_training_run(
    registry: Registry,
    *,
    model: object,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    train_hash: str,
    holdout_hash: str,
    features: list[str],
    decision: GateDecision,
    contract: DataContract,
    lineage: dict[str, object],
    tags: dict[str, str],
    drift_report_html: str | None,
    reference: ReferenceSnapshot | None = None,
) -> TrainingRecord:
    """Log a fitted pipeline with its signature, input example, datasets, metrics and lineage, and the
    reference profile and report sample its drift checks will use (``service.stored_reference``).

    Written through the registry's own client (no process-wide MLflow state), content first and the
    FINISHED mark last; ``tags["training_key"]`` lets a retry find a run that already finished."""
    from mlflow.entities import Metric, Param

    client = registry.client
    run = registry.ask(
        "create a training run",
        lambda: client.create_run(
            registry.experiment_id(TRAINING),
            run_name=f"train {registry.config.model.name}",
            tags={f"{TAG}{key}": value for key, value in {"kind": "training", **tags}.items()},
        ),
    )
    run_id, stamp = run.info.run_id, int(time.time() * 1000)
    registry.remember_artifact_root(run_id, run.info.artifact_uri)  # its registration names the model's files
    params = [Param(key, str(value)) for key, value in _params(registry, decision, train, holdout).items()]
    metrics = [Metric(key, value, stamp, 0) for key, value in _metrics(decision).items()]
    registry.ask("log params and metrics", lambda: client.log_batch(run_id, metrics=metrics, params=params))
    _log_datasets(registry, run_id, {"training": (train, train_hash), "holdout": (holdout, holdout_hash)}, contract)
    with tempfile.TemporaryDirectory(prefix="driftloop-training-") as folder:
        # Every artifact is written here first and uploaded by one call, not seven: a copy on a local store,
        # a request per file (with no per-call set-up) on a server.
        root = Path(folder)
        _save_model(model, root / MODEL_PATH, contract, holdout, features)
        if reference is not None:
            lineage = {**lineage, LINEAGE_KEY: write_snapshot(reference, root)}
        documents = {
            LINEAGE_PATH: lineage,
            CONTRACT_PATH: contract_to_dict(contract),
            "evaluation/gate.json": decision.to_dict(),
        }
        for path, payload in documents.items():
            _write(root / path, json.dumps(payload, indent=2))
        if drift_report_html is not None:
            _write(root / REPORT_PATH, drift_report_html)
        registry.ask("upload the model, its reference and lineage", lambda: client.log_artifacts(run_id, folder))
    registry.ask("finish the training run", lambda: client.set_terminated(run_id))
    return TrainingRecord(run_id=run_id)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
