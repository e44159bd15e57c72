"""MLflow as the system of record: drift-check and training runs, model versions, aliases and lineage.

Each environment is its own registered model (``weather-dev``, ``weather-staging``...) with the aliases
``champion``, ``challenger`` and ``previous``. Registration and copies between environments are
idempotent, keyed by the training run, so a retried task never makes a duplicate version.

A ``Registry`` talks to its stores through their own clients, never MLflow's process-wide tracking URI,
so models with different stores share a process. The default store holds the runs and every environment
without a registry of its own (``registry.environments``: its own ``Store`` and credentials; versions
reach it by ``service.crossing``). Only a definite "not found" from MLflow means absent.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from service.errors import RegistryError
from service.mlflow_errors import forbidden
from service.mlflow_store import Store
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
    env: str = ""  # the environment whose registry holds it ("": the default registry)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def version_ref(model_version: object, env: str = "") -> VersionRef:
    return VersionRef(
        name=model_version.name,  # type: ignore[attr-defined]
        version=str(model_version.version),  # type: ignore[attr-defined]
        run_id=model_version.run_id or "",  # type: ignore[attr-defined]
        tags=dict(model_version.tags or {}),  # type: ignore[attr-defined]
        aliases=tuple(getattr(model_version, "aliases", ()) or ()),
        env=env,
    )


def _default_artifact_root(tracking_uri: str) -> str | None:
    """Beside a local sqlite store, so the demo folder holds everything; servers pick their own."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


class Registry:
    """The MLflow tracking server and model registry of one configured model."""

    def __init__(self, config: Config) -> None:
        # MLflow reads each finished run back to print its URL: a round trip per record nobody reads.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        self.config = config
        self.tracking_uri = config.tracking_uri()
        self.default = Store(self.tracking_uri)
        self.client = self.default.client
        self.artifact_root = config.registry.artifact_root or _default_artifact_root(self.tracking_uri)
        self._stores: dict[str, Store] = {}
        # Neither an experiment's id nor a run's artifact location ever changes: each is read once.
        self._experiment_ids: dict[str, str] = {}
        self._artifact_roots: dict[str, str] = {}

    def store(self, env: str | None = None) -> Store:
        """The store holding ``env``'s registered model: its own registry when configured, else the default."""
        if not env or env not in self.config.registry.environments:
            return self.default
        if env not in self._stores:
            credentials = self.config.registry.credentials(env)
            self._stores[env] = Store(self.config.tracking_uri(env), env, credentials)
        return self._stores[env]

    def client_for(self, env: str) -> Any:
        return self.store(env).client

    def own_clients(self) -> dict[str, Any]:
        """The client of each environment with a registry of its own."""
        return {env: self.client_for(env) for env in self.config.registry.environments}

    def ask(self, what: str, call: Callable[[], T]) -> T:
        """Run one call to the default store; a failure becomes RegistryUnavailable or RegistryError."""
        return self.default.ask(what, call)

    def lookup(self, what: str, call: Callable[[], T]) -> T | None:
        """Like ``ask``, but a definite "not found" is None: the one answer that means absent."""
        return self.default.lookup(what, call)

    # experiments ---------------------------------------------------------------------------------
    def experiment_id(self, stage: str) -> str:
        if stage not in self._experiment_ids:
            self._experiment_ids[stage] = self._find_or_create_experiment(stage)
        return self._experiment_ids[stage]

    def _find_or_create_experiment(self, stage: str) -> str:
        name = self.config.experiment_name(stage)
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
        name, store = self.name(env), self.store(env)
        if store.lookup(f"read model {name}", lambda: store.client.get_registered_model(name)) is None:
            store.ask(
                f"create model {name}",
                lambda: store.client.create_registered_model(
                    name,
                    tags={f"{TAG}model": self.config.model.name, f"{TAG}env": env},
                    description=f"driftloop model {self.config.model.name!r}, environment {env!r}",
                ),
            )
        return name

    def at_alias(self, env: str, alias: str) -> VersionRef | None:
        """The version ``@alias`` points to; None only when MLflow says there is none."""
        name, store = self.name(env), self.store(env)
        try:
            found = store.lookup(f"read {name}@{alias}", lambda: store.client.get_model_version_by_alias(name, alias))
        except RegistryError as exc:
            # MLflow's auth app answers a non-admin 403, not 404, for an alias of a model that does not
            # exist; the model's own lookup still gives the definite "not found".
            if not forbidden(exc) or store.lookup(
                f"read model {name}", lambda: store.client.get_registered_model(name)
            ):
                raise
            return None
        return None if found is None else _with_alias(version_ref(found, env), alias)

    def version(self, env: str, version: str) -> VersionRef:
        name, store = self.name(env), self.store(env)
        found = store.lookup(f"read {name} v{version}", lambda: store.client.get_model_version(name, version))
        if found is None:
            raise RegistryError(f"{name}: no version {version}")
        return version_ref(found, env)

    def versions(self, env: str) -> list[VersionRef]:
        name, store = self.name(env), self.store(env)
        found = store.ask(f"list {name}", lambda: store.client.search_model_versions(f"name = '{name}'"))
        return sorted((version_ref(v, env) for v in found), key=lambda ref: int(ref.version))

    def versions_with_tag(self, env: str, key: str, value: str) -> list[VersionRef]:
        name, store = self.name(env), self.store(env)
        query = f"name = '{name}' and {tag_filter(key, value)}"
        found = store.ask(f"search {name}", lambda: store.client.search_model_versions(query))
        return [version_ref(v, env) for v in found]

    def aliases(self, env: str) -> dict[str, str]:
        """Each alias of ``env``'s model and the version it points to, in one read; {} when there is no model."""
        name, store = self.name(env), self.store(env)
        model = store.lookup(f"read model {name}", lambda: store.client.get_registered_model(name))
        return {} if model is None else {alias: str(number) for alias, number in (model.aliases or {}).items()}

    def set_alias(self, env: str, alias: str, version: str) -> None:
        name, store = self.name(env), self.store(env)
        store.ask(f"set {name}@{alias}", lambda: store.client.set_registered_model_alias(name, alias, version))

    def delete_alias(self, env: str, alias: str) -> None:
        if self.at_alias(env, alias) is not None:
            name, store = self.name(env), self.store(env)
            store.ask(f"delete {name}@{alias}", lambda: store.client.delete_registered_model_alias(name, alias))

    def tag_version(self, version: VersionRef, tags: dict[str, str]) -> None:
        store = self.store(version.env)
        for key, value in tags.items():
            tag = (version.name, version.version, f"{TAG}{key}", value)
            store.ask(f"tag {version.uri}", lambda tag=tag: store.client.set_model_version_tag(*tag))

    def _version_of_run(self, env: str, run_id: str) -> VersionRef | None:
        name, store = self.name(env), self.store(env)
        query = f"name = '{name}' and run_id = '{run_id}'"
        found = store.ask(f"search {name}", lambda: store.client.search_model_versions(query))
        return version_ref(found[0], env) if found else None

    def register(self, run_id: str, env: str, tags: dict[str, str]) -> VersionRef:
        """Register a training run's model in ``env``; registering the same run again returns it."""
        name = self.ensure_model(env)
        existing = self._version_of_run(env, run_id)
        if existing is not None:
            return existing
        source = self.run_artifact_uri(run_id, MODEL_PATH)
        created = self.ask(
            f"register run {run_id} in {name}",
            lambda: self.client.create_model_version(
                name, source, run_id=run_id, tags={f"{TAG}{k}": v for k, v in tags.items()}
            ),
        )
        return version_ref(created, env)  # MLflow answers with the version, its tags included

    def copy_to(self, version: VersionRef, env: str) -> VersionRef:
        """Copy a version into another environment's model with its lineage tags; idempotent. Across registries
        ``service.crossing`` copies all it carries; within one, a version of the same source is made in one call
        (MLflow's copy_model_version would carry where it stood, promoted_at included, and tag call by call)."""
        if self.store(env) is not self.store(version.env):
            from service.crossing import copy_across

            return copy_across(self, version, env)
        name = self.ensure_model(env)
        if (existing := self._version_of_run(env, version.run_id)) is not None:
            return existing
        tags = {f"{TAG}{key}": value for key, value in {**carried_tags(version), "copied_from": version.uri}.items()}

        def create() -> object:
            return self.client.create_model_version(name, version.uri, run_id=version.run_id, tags=tags)

        return version_ref(self.ask(f"copy {version.uri} to {name}", create), env)

    def load_version(self, version: VersionRef) -> object:
        """Download a version's model from the store that holds it and load it."""
        import mlflow.sklearn

        # The version's own storage location (a copy's resolves to its source's files), fetched through
        # that store's client: a models:/ URI would be resolved against the process-wide registry.
        store = self.store(version.env)
        location = store.ask(
            f"locate {version.uri}", lambda: store.client.get_model_version_download_uri(version.name, version.version)
        )
        parent, leaf = location.rstrip("/").rsplit("/", 1)
        with tempfile.TemporaryDirectory(prefix="driftloop-model-") as folder:
            local = store.ask(
                f"download {version.uri}", lambda: store.artifacts(parent).download_artifacts(leaf, folder)
            )
            return mlflow.sklearn.load_model(local)

    def run_dict(self, run_id: str, path: str, env: str = "") -> dict[str, object]:
        """A JSON artifact of a training run (its lineage or data contract), in ``env``'s store."""
        return json.loads(self.run_text(run_id, path, env))

    def run_text(self, run_id: str, path: str, env: str = "") -> str:
        """A text artifact of a run, fetched as the file it is (``_download_file``, the one-file step of every
        artifact repository) from the run's own location: one round trip, where ``download_artifacts``
        first lists the path to learn whether it is a folder and ``runs:/`` makes five."""
        store = self.store(env)
        repository = store.artifacts(self._artifact_root(run_id, env))
        with tempfile.TemporaryDirectory(prefix="driftloop-artifact-") as folder:
            local = Path(folder) / Path(path).name
            store.ask(f"download {path} of run {run_id}", lambda: repository._download_file(path, str(local)))
            return local.read_text()

    def remember_artifact_root(self, run_id: str, artifact_uri: str) -> None:  # of a run made here: not read back
        self._artifact_roots[run_id] = artifact_uri

    def _artifact_root(self, run_id: str, env: str = "") -> str:
        if run_id not in self._artifact_roots:
            store = self.store(env)
            run = store.ask(f"read run {run_id}", lambda: store.client.get_run(run_id))
            self._artifact_roots[run_id] = run.info.artifact_uri
        return self._artifact_roots[run_id]

    def lineage(self, version: VersionRef) -> dict[str, object]:
        return self.run_dict(version.run_id, LINEAGE_PATH, version.env)

    def run_artifact_uri(self, run_id: str, path: str, env: str = "") -> str:
        return f"{self._artifact_root(run_id, env)}/{path}"


def carried_tags(version: VersionRef) -> dict[str, str]:
    """A version's driftloop tags that travel with a copy (unprefixed): lineage, metrics, hashes, gate.
    Where it stands in its old environment (status, approval, when it was promoted there) stays behind."""
    local = {f"{TAG}{key}" for key in ("status", "approved", "promoted_at")}
    return {
        key.removeprefix(TAG): value for key, value in version.tags.items() if key.startswith(TAG) and key not in local
    }


def _with_alias(ref: VersionRef, alias: str) -> VersionRef:
    return ref if alias in ref.aliases else replace(ref, aliases=(*ref.aliases, alias))
