"""MLflow as the system of record: drift-check and training runs, model versions, aliases and lineage.

Each environment is its own registered model (``weather-dev``, ``weather-staging``...), each with the
aliases ``champion``, ``challenger`` and ``previous``. Registration and copies between environments are
idempotent, keyed by the training run, so a retried task never makes a duplicate version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from service.errors import RegistryError
from service.settings import Config

TAG = "driftloop."
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)
LINEAGE_PATH, CONTRACT_PATH = "lineage.json", "contract.json"


def tag_filter(key: str, value: str) -> str:
    """An MLflow search clause on a dotted tag key (those need backticks)."""
    return f"tags.`{TAG}{key}` = '{value}'"


@dataclass(frozen=True)
class VersionRef:
    """A model version as driftloop talks about it."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def version_ref(model_version: object) -> VersionRef:
    return VersionRef(
        name=model_version.name,  # type: ignore[attr-defined]
        version=str(model_version.version),  # type: ignore[attr-defined]
        run_id=model_version.run_id or "",  # type: ignore[attr-defined]
        tags=dict(model_version.tags or {}),  # type: ignore[attr-defined]
        aliases=tuple(getattr(model_version, "aliases", ()) or ()),
    )


def _default_artifact_root(tracking_uri: str) -> str | None:
    """Beside a local sqlite store, so the demo folder holds everything; servers pick their own."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite" and tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


class Registry:
    """The MLflow tracking server and model registry of one configured model."""

    def __init__(self, config: Config) -> None:
        import mlflow
        from mlflow import MlflowClient

        self.config = config
        self.tracking_uri = config.tracking_uri()
        # The fluent API (log_model, log_input) reads the global URI: keep it on our store. MLflow also
        # exports it to the environment, where the next config loaded in this process would mistake it
        # for the user's MLFLOW_TRACKING_URI: put the user's environment back.
        saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self.client = MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)
        self.artifact_root = config.registry.artifact_root or _default_artifact_root(self.tracking_uri)

    # experiments ---------------------------------------------------------------------------------
    def experiment_id(self, stage: str) -> str:
        name = f"driftloop/{self.config.model.name}/{stage}"
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        location = f"{self.artifact_root}/{self.config.model.name}/{stage}" if self.artifact_root else None
        return self.client.create_experiment(name, artifact_location=location)

    # versions and aliases ------------------------------------------------------------------------
    def name(self, env: str) -> str:
        return self.config.registered_name(env)

    def ensure_model(self, env: str) -> str:
        from mlflow.exceptions import MlflowException

        name = self.name(env)
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(
                name,
                tags={f"{TAG}model": self.config.model.name, f"{TAG}env": env},
                description=f"driftloop model {self.config.model.name!r}, environment {env!r}",
            )
        return name

    def at_alias(self, env: str, alias: str) -> VersionRef | None:
        from mlflow.exceptions import MlflowException

        try:
            return version_ref(self.client.get_model_version_by_alias(self.name(env), alias))
        except MlflowException:
            return None

    def version(self, env: str, version: str) -> VersionRef:
        from mlflow.exceptions import MlflowException

        try:
            return version_ref(self.client.get_model_version(self.name(env), version))
        except MlflowException:
            raise RegistryError(f"{self.name(env)}: no version {version}") from None

    def versions(self, env: str) -> list[VersionRef]:
        found = self.client.search_model_versions(f"name = '{self.name(env)}'")
        return sorted((version_ref(v) for v in found), key=lambda ref: int(ref.version))

    def versions_with_tag(self, env: str, key: str, value: str) -> list[VersionRef]:
        name = self.name(env)
        found = self.client.search_model_versions(f"name = '{name}' and {tag_filter(key, value)}")
        return [version_ref(v) for v in found]

    def set_alias(self, env: str, alias: str, version: VersionRef) -> None:
        self.client.set_registered_model_alias(self.name(env), alias, version.version)

    def delete_alias(self, env: str, alias: str) -> None:
        if self.at_alias(env, alias) is not None:
            self.client.delete_registered_model_alias(self.name(env), alias)

    def tag_version(self, version: VersionRef, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(version.name, version.version, f"{TAG}{key}", value)

    def _version_of_run(self, name: str, run_id: str) -> VersionRef | None:
        found = self.client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        return version_ref(found[0]) if found else None

    def register(self, run_id: str, model_uri: str, env: str, tags: dict[str, str]) -> VersionRef:
        """Register a training run's model in ``env``; registering the same run again returns it."""
        import mlflow

        name = self.ensure_model(env)
        existing = self._version_of_run(name, run_id)
        if existing is not None:
            return existing
        version = mlflow.register_model(model_uri, name, tags={f"{TAG}{k}": v for k, v in tags.items()})
        return self.version(env, str(version.version))

    def copy_to(self, version: VersionRef, env: str) -> VersionRef:
        """Copy a version into another environment's model, with its lineage tags; idempotent."""
        name = self.ensure_model(env)
        existing = self._version_of_run(name, version.run_id)
        if existing is not None:
            return existing
        copied = version_ref(self.client.copy_model_version(version.uri, name))
        for key, value in version.tags.items():
            if key.startswith(TAG) and key != f"{TAG}status":
                self.client.set_model_version_tag(name, copied.version, key, value)
        self.client.set_model_version_tag(name, copied.version, f"{TAG}copied_from", version.uri)
        return self.version(env, copied.version)

    def load_model(self, env: str, alias: str = CHAMPION) -> object:
        import mlflow.sklearn

        if self.at_alias(env, alias) is None:
            raise RegistryError(f"{self.name(env)} has no version with alias @{alias}")
        return mlflow.sklearn.load_model(f"models:/{self.name(env)}@{alias}")

    def load_version(self, version: VersionRef) -> object:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(version.uri)

    def run_dict(self, run_id: str, path: str) -> dict[str, object]:
        """A JSON artifact of a training run (its lineage or data contract)."""
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        try:
            return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")
        except (MlflowException, OSError) as exc:
            raise RegistryError(f"run {run_id}: cannot read {path}: {exc}") from None

    def lineage(self, version: VersionRef) -> dict[str, object]:
        return self.run_dict(version.run_id, LINEAGE_PATH)

    def run_artifact_uri(self, run_id: str, path: str) -> str:
        return f"{self.client.get_run(run_id).info.artifact_uri}/{path}"
