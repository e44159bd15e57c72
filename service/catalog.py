"""Browsing the registry: every driftloop model, its environments, versions, aliases and lineage.

A version's ``status`` is where it stands now. The aliases decide first — moving an alias is the
promotion, while the ``status`` tag records the last step that touched the version and goes stale when
a later move passes it by:

- ``champion``: @champion points to it; it serves.
- ``awaiting_approval``: @challenger points to it; approving makes it champion.
- ``previous``: @previous points to it; a rollback returns to it.
- ``rejected``: no alias; it failed the gate.
- ``rolled_back``: no alias; it was champion and was rolled back.
- ``retired``: no alias; it was champion or awaiting approval once, and later moves passed it by.
- ``registered``: no alias and no status tag: registered, never settled (a run stopped in between).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from service.errors import RegistryUnavailable
from service.mlflow_errors import classify
from service.registry import ALIASES, CHALLENGER, CHAMPION, PREVIOUS, TAG, VersionRef, version_ref

ALIAS_STATUS = {CHAMPION: "champion", CHALLENGER: "awaiting_approval", PREVIOUS: "previous"}
KEPT_STATUSES = ("rejected", "rolled_back")  # still true once no alias points to the version


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


def version_status(aliases: Iterable[str], status_tag: str) -> str:
    held = set(aliases)
    for alias, status in ALIAS_STATUS.items():
        if alias in held:
            return status
    if status_tag in KEPT_STATUSES:
        return status_tag
    return "retired" if status_tag else "registered"


def aliases_by_version(alias_map: dict[str, object]) -> dict[str, list[str]]:
    """Invert a registered model's ``{alias: version}``: MLflow's version search leaves aliases out."""
    held: dict[str, list[str]] = {}
    for alias, version in sorted(alias_map.items()):
        held.setdefault(str(version), []).append(alias)
    return held


def _version_view(version: VersionRef, aliases: list[str]) -> dict[str, object]:
    lineage = {key.removeprefix(TAG): value for key, value in version.tags.items() if key.startswith(TAG)}
    return {
        "version": version.version,
        "aliases": aliases,
        "run_id": version.run_id,
        "status": version_status(aliases, lineage.pop("status", "")),
        "tags": lineage,
    }


def describe_version(client: object, version: VersionRef) -> dict[str, object]:
    """One version as the listing shows it, its aliases read from its registered model."""
    registered = client.get_registered_model(version.name)  # type: ignore[attr-defined]
    return _version_view(version, aliases_by_version(registered.aliases or {}).get(version.version, []))


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
    tracking_uri: str,
    name: str | None = None,
    env_order: list[str] | None = None,
    versions_limit: int | None = None,
    own: dict[str, dict[str, object]] | None = None,
) -> list[ModelView]:
    """Read every registered model tagged by driftloop (optionally one model) from the registry.

    ``versions_limit`` keeps each environment to its newest versions: a listing stays fast however
    long the history (the SQL query is limited, not the result). ``own`` maps a model to the clients of
    its environments with a registry of their own: those environments are read from there alone.
    """
    from mlflow.exceptions import MlflowException

    try:
        grouped = _read_models(tracking_uri, name, own or {}, versions_limit)
    except MlflowException as exc:  # a server down is exit 3 (retry later), not a bad input
        raise classify(tracking_uri, "list the registered models", exc) from exc
    except OSError as exc:
        raise RegistryUnavailable(f"MLflow at {tracking_uri} did not answer (list the models): {exc}") from exc
    order = env_order or ["dev", "staging", "prod"]
    rank = {env: index for index, env in enumerate(order)}
    return [
        ModelView(model, sorted(envs, key=lambda view: (rank.get(view.env, len(rank)), view.env)))
        for model, envs in sorted(grouped.items())
    ]


def _read_models(
    tracking_uri: str, name: str | None, own: dict[str, dict[str, object]], versions_limit: int | None
) -> dict[str, list[EnvironmentView]]:
    from mlflow import MlflowClient

    grouped: dict[str, list[EnvironmentView]] = {}
    sources = [(MlflowClient(tracking_uri, registry_uri=tracking_uri), None)]
    sources += [(client, (model, env)) for model, clients in own.items() for env, client in clients.items()]
    for client, only in sources:
        for model, env, registered in _driftloop_models(client, name):
            if (only is None and env in own.get(model, {})) or (only is not None and only != (model, env)):
                continue  # an environment is read from the registry that holds it
            grouped.setdefault(model, []).append(_environment_view(client, env, registered, versions_limit))
    return grouped


def _driftloop_models(client: object, name: str | None) -> Iterable[tuple[str, str, object]]:
    for registered in client.search_registered_models(max_results=1000):  # type: ignore[attr-defined]
        model = registered.tags.get(f"{TAG}model")
        env = registered.tags.get(f"{TAG}env")
        if model is not None and env is not None and (name is None or model == name):
            yield model, env, registered


def _environment_view(client: object, env: str, registered: object, limit: int | None) -> EnvironmentView:
    versions, more = _versions(client, registered.name, limit)  # type: ignore[attr-defined]
    alias_map = registered.aliases or {}  # type: ignore[attr-defined]
    aliases = {alias: str(version) for alias, version in alias_map.items() if alias in ALIASES}
    held = aliases_by_version(alias_map)
    views = [_version_view(v, held.get(v.version, [])) for v in versions]
    return EnvironmentView(env, registered.name, aliases, views, more)  # type: ignore[attr-defined]
