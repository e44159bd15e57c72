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
    more_versions: bool = False  # versions older than those listed exist


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


def _versions(client: object, name: str, limit: int | None) -> tuple[list[VersionRef], bool]:
    """A model's versions, oldest first; with ``limit``, only the newest ``limit`` of them."""
    found = client.search_model_versions(  # type: ignore[attr-defined]
        f"name = '{name}'",
        max_results=(limit + 1) if limit is not None else 100_000,
        order_by=["version_number DESC"],
    )
    refs = [version_ref(v) for v in found]
    more = limit is not None and len(refs) > limit
    return sorted(refs[:limit] if more else refs, key=lambda ref: int(ref.version)), more


def list_models(
    tracking_uri: str, name: str | None = None, env_order: list[str] | None = None, versions_limit: int | None = None
) -> list[ModelView]:
    """Read every registered model tagged by driftloop (optionally one model) from the registry.

    ``versions_limit`` keeps each environment to its newest versions: a listing stays fast however
    long the history (the SQL query is limited, not the result).
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    grouped: dict[str, list[EnvironmentView]] = {}
    for registered in client.search_registered_models(max_results=1000):
        model = registered.tags.get(f"{TAG}model")
        env = registered.tags.get(f"{TAG}env")
        if model is None or env is None or (name is not None and model != name):
            continue
        versions, more = _versions(client, registered.name, versions_limit)
        aliases = {alias: str(version) for alias, version in (registered.aliases or {}).items() if alias in ALIASES}
        grouped.setdefault(model, []).append(
            EnvironmentView(env, registered.name, aliases, [_version_view(v) for v in versions], more)
        )
    order = env_order or ["dev", "staging", "prod"]
    rank = {env: index for index, env in enumerate(order)}
    return [
        ModelView(model, sorted(envs, key=lambda view: (rank.get(view.env, len(rank)), view.env)))
        for model, envs in sorted(grouped.items())
    ]
