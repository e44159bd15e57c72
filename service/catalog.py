"""Browsing the registry: every driftloop model, its environments, versions, aliases and lineage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from service.registry import ALIASES, TAG, VersionRef, version_ref


@dataclass(frozen=True)
class EnvironmentView:
    env: str
    registered_model: str
    aliases: dict[str, str]
    versions: list[dict[str, object]]


@dataclass(frozen=True)
class ModelView:
    name: str
    environments: list[EnvironmentView] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _version_view(version: VersionRef) -> dict[str, object]:
    lineage = {key.removeprefix(TAG): value for key, value in version.tags.items() if key.startswith(TAG)}
    return {
        "version": version.version,
        "aliases": list(version.aliases),
        "run_id": version.run_id,
        "status": lineage.pop("status", ""),
        "tags": lineage,
    }


def list_models(tracking_uri: str, name: str | None = None, env_order: list[str] | None = None) -> list[ModelView]:
    """Read every registered model tagged by driftloop (optionally one model) from the registry."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    grouped: dict[str, list[EnvironmentView]] = {}
    for registered in client.search_registered_models(max_results=1000):
        model = registered.tags.get(f"{TAG}model")
        env = registered.tags.get(f"{TAG}env")
        if model is None or env is None or (name is not None and model != name):
            continue
        versions = sorted(
            (version_ref(v) for v in client.search_model_versions(f"name = '{registered.name}'")),
            key=lambda ref: int(ref.version),
        )
        aliases = {alias: str(version) for alias, version in (registered.aliases or {}).items() if alias in ALIASES}
        grouped.setdefault(model, []).append(
            EnvironmentView(env, registered.name, aliases, [_version_view(v) for v in versions])
        )
    order = env_order or ["dev", "staging", "prod"]
    rank = {env: index for index, env in enumerate(order)}
    return [
        ModelView(model, sorted(envs, key=lambda view: (rank.get(view.env, len(rank)), view.env)))
        for model, envs in sorted(grouped.items())
    ]
