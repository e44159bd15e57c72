"""MLflow as the system of record: drift-check and training runs, model versions, aliases and lineage.

Each environment is its own registered model (``weather-dev``, ``weather-staging``...), each with the
aliases ``champion``, ``challenger`` and ``previous``. Registration and copies between environments are
idempotent, keyed by the training run, so a retried task never makes a duplicate version.

Each ``Registry`` talks to its own store through its own client: nothing here sets MLflow's
process-wide tracking URI, so models with different stores can share one process. Only a definite
"not found" from MLflow means absent; any other failure to ask is a ``RegistryUnavailable``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from service.errors import RegistryError, RegistryUnavailable
from service.mlflow_errors import classify, forbidden, is_not_found
from service.settings import Config

TAG = "driftloop."
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)
LINEAGE_PATH, CONTRACT_PATH = "lineage.json", "contract.json"
MODEL_PATH = "model"
T = TypeVar("T")


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
        from mlflow import MlflowClient

        # MLflow reads each finished run back to print its URL: a round trip per record nobody reads.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        self.config = config
        self.tracking_uri = config.tracking_uri()
        self.client = MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)
        self.artifact_root = config.registry.artifact_root or _default_artifact_root(self.tracking_uri)
        # Neither an experiment's id nor a run's artifact location ever changes: each is read once.
        self._experiment_ids: dict[str, str] = {}
        self._artifact_roots: dict[str, str] = {}

    def ask(self, what: str, call: Callable[[], T]) -> T:
        """Run one MLflow call; a failure becomes RegistryUnavailable or RegistryError, naming the server."""
        from mlflow.exceptions import MlflowException

        try:
            return call()
        except MlflowException as exc:
            raise classify(self.tracking_uri, what, exc) from exc
        except FileNotFoundError as exc:  # a local store's artifact that is not there: a definite answer
            raise RegistryError(f"MLflow at {self.tracking_uri}: cannot {what}: {exc}") from exc
        except OSError as exc:  # requests' connection errors and timeouts are OSErrors
            raise RegistryUnavailable(f"MLflow at {self.tracking_uri} did not answer ({what}): {exc}") from exc

    def lookup(self, what: str, call: Callable[[], T]) -> T | None:
        """Like ``ask``, but a definite "not found" is None: the one answer that means absent."""
        from mlflow.exceptions import MlflowException

        try:
            return self.ask(what, call)
        except (RegistryError, RegistryUnavailable) as exc:
            cause = exc.__cause__
            if isinstance(cause, MlflowException) and is_not_found(cause):
                return None
            raise

    # experiments ---------------------------------------------------------------------------------
    def experiment_id(self, stage: str) -> str:
        if stage not in self._experiment_ids:
            self._experiment_ids[stage] = self._find_or_create_experiment(stage)
        return self._experiment_ids[stage]

    def _find_or_create_experiment(self, stage: str) -> str:
        name = f"driftloop/{self.config.model.name}/{stage}"
        existing = self.ask(f"read experiment {name}", lambda: self.client.get_experiment_by_name(name))
        if existing is not None:
            return existing.experiment_id
        location = f"{self.artifact_root}/{self.config.model.name}/{stage}" if self.artifact_root else None
        return self.ask(
            f"create experiment {name}", lambda: self.client.create_experiment(name, artifact_location=location)
        )

    # versions and aliases ------------------------------------------------------------------------
    def name(self, env: str) -> str:
        return self.config.registered_name(env)

    def ensure_model(self, env: str) -> str:
        name = self.name(env)
        if self.lookup(f"read model {name}", lambda: self.client.get_registered_model(name)) is None:
            self.ask(
                f"create model {name}",
                lambda: self.client.create_registered_model(
                    name,
                    tags={f"{TAG}model": self.config.model.name, f"{TAG}env": env},
                    description=f"driftloop model {self.config.model.name!r}, environment {env!r}",
                ),
            )
        return name

    def at_alias(self, env: str, alias: str) -> VersionRef | None:
        """The version ``@alias`` points to; None only when MLflow says there is none."""
        name = self.name(env)
        try:
            found = self.lookup(f"read {name}@{alias}", lambda: self.client.get_model_version_by_alias(name, alias))
        except RegistryError as exc:
            # MLflow's auth app answers a non-admin 403, not 404, for an alias of a model that does not
            # exist; the model's own lookup still gives the definite "not found".
            if not forbidden(exc) or self.lookup(f"read model {name}", lambda: self.client.get_registered_model(name)):
                raise
            return None
        return None if found is None else _with_alias(version_ref(found), alias)

    def version(self, env: str, version: str) -> VersionRef:
        name = self.name(env)
        found = self.lookup(f"read {name} v{version}", lambda: self.client.get_model_version(name, version))
        if found is None:
            raise RegistryError(f"{name}: no version {version}")
        return version_ref(found)

    def versions(self, env: str) -> list[VersionRef]:
        name = self.name(env)
        found = self.ask(f"list {name}", lambda: self.client.search_model_versions(f"name = '{name}'"))
        return sorted((version_ref(v) for v in found), key=lambda ref: int(ref.version))

    def versions_with_tag(self, env: str, key: str, value: str) -> list[VersionRef]:
        name = self.name(env)
        query = f"name = '{name}' and {tag_filter(key, value)}"
        return [version_ref(v) for v in self.ask(f"search {name}", lambda: self.client.search_model_versions(query))]

    def set_alias(self, env: str, alias: str, version: VersionRef) -> None:
        name = self.name(env)
        self.ask(f"set {name}@{alias}", lambda: self.client.set_registered_model_alias(name, alias, version.version))

    def delete_alias(self, env: str, alias: str) -> None:
        if self.at_alias(env, alias) is not None:
            name = self.name(env)
            self.ask(f"delete {name}@{alias}", lambda: self.client.delete_registered_model_alias(name, alias))

    def tag_version(self, version: VersionRef, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.ask(
                f"tag {version.uri}",
                lambda k=key, v=value: self.client.set_model_version_tag(version.name, version.version, f"{TAG}{k}", v),
            )

    def _version_of_run(self, name: str, run_id: str) -> VersionRef | None:
        query = f"name = '{name}' and run_id = '{run_id}'"
        found = self.ask(f"search {name}", lambda: self.client.search_model_versions(query))
        return version_ref(found[0]) if found else None

    def register(self, run_id: str, env: str, tags: dict[str, str]) -> VersionRef:
        """Register a training run's model in ``env``; registering the same run again returns it."""
        name = self.ensure_model(env)
        existing = self._version_of_run(name, run_id)
        if existing is not None:
            return existing
        source = self.run_artifact_uri(run_id, MODEL_PATH)
        created = self.ask(
            f"register run {run_id} in {name}",
            lambda: self.client.create_model_version(
                name, source, run_id=run_id, tags={f"{TAG}{k}": v for k, v in tags.items()}
            ),
        )
        return self.version(env, str(created.version))

    def copy_to(self, version: VersionRef, env: str) -> VersionRef:
        """Copy a version into another environment's model, with its lineage tags; idempotent."""
        name = self.ensure_model(env)
        existing = self._version_of_run(name, version.run_id)
        if existing is not None:
            return existing
        copied = version_ref(
            self.ask(f"copy {version.uri} to {name}", lambda: self.client.copy_model_version(version.uri, name))
        )
        lineage = {key: value for key, value in version.tags.items() if key.startswith(TAG) and key != f"{TAG}status"}
        self.tag_version(copied, {key.removeprefix(TAG): value for key, value in lineage.items()})
        self.tag_version(copied, {"copied_from": version.uri})
        return self.version(env, copied.version)

    def load_model(self, env: str, alias: str = CHAMPION) -> object:
        found = self.at_alias(env, alias)
        if found is None:
            raise RegistryError(f"{self.name(env)} has no version with alias @{alias}")
        return self.load_version(found)

    def load_version(self, version: VersionRef) -> object:
        """Download a version's model from this registry's store and load it."""
        import mlflow.artifacts
        import mlflow.sklearn

        # The version's own storage location (a copy's resolves to its source's files), fetched through
        # this registry's URIs: a models:/ URI would be resolved against the process-wide registry.
        location = self.ask(
            f"locate {version.uri}", lambda: self.client.get_model_version_download_uri(version.name, version.version)
        )
        with tempfile.TemporaryDirectory(prefix="driftloop-model-") as folder:
            local = self.ask(
                f"download {version.uri}",
                lambda: mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=folder, tracking_uri=self.tracking_uri
                ),
            )
            return mlflow.sklearn.load_model(local)

    def run_dict(self, run_id: str, path: str) -> dict[str, object]:
        """A JSON artifact of a training run (its lineage or data contract)."""
        return json.loads(self.run_text(run_id, path))

    def run_text(self, run_id: str, path: str) -> str:
        """A text artifact of a run, fetched as the file it is from the run's own location: one round trip
        (``download_artifacts`` first lists the path to learn whether it is a folder; ``runs:/`` makes five)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        root = self._artifact_root(run_id)
        with tempfile.TemporaryDirectory(prefix="driftloop-artifact-") as folder:
            local = Path(folder) / Path(path).name
            repository = get_artifact_repository(root, tracking_uri=self.tracking_uri)
            # ``_download_file`` is the one-file step every artifact repository implements under
            # ``download_artifacts``; a missing file raises as that would.
            self.ask(f"download {path} of run {run_id}", lambda: repository._download_file(path, str(local)))
            return local.read_text()

    def _artifact_root(self, run_id: str) -> str:
        if run_id not in self._artifact_roots:
            run = self.ask(f"read run {run_id}", lambda: self.client.get_run(run_id))
            self._artifact_roots[run_id] = run.info.artifact_uri
        return self._artifact_roots[run_id]

    def lineage(self, version: VersionRef) -> dict[str, object]:
        return self.run_dict(version.run_id, LINEAGE_PATH)

    def run_artifact_uri(self, run_id: str, path: str) -> str:
        return f"{self._artifact_root(run_id)}/{path}"


def _with_alias(ref: VersionRef, alias: str) -> VersionRef:
    aliases = ref.aliases if alias in ref.aliases else (*ref.aliases, alias)
    return VersionRef(ref.name, ref.version, ref.run_id, ref.tags, aliases)
