"""Copying a version into an environment with a registry of its own (a separate MLflow server).

MLflow's ``copy_model_version`` works inside one registry only. Across two, the copy is made of what
the version carries: its training run is copied into the target (params, metrics, tags, datasets and
every artifact: the model with its signature and input example, ``lineage.json``, ``contract.json``,
the gate and the drift report), then a version of that run is created with the source version's
driftloop tags and a record of where it came from (``source.*``).

Idempotent and atomic to the reader: run and version are keyed by the source (its registry URI, model
and version, tag ``copy.source``), found by a search in the target, so a rerun completes the copy it
finds instead of making a second one. The run is marked FINISHED only once its artifacts are all up;
the version is created only from a finished run, tagged ``copy.complete`` last, and only a complete
copy is returned: the caller moves an alias only after that, so a half-copied version never carries
@champion or @challenger.
"""

from __future__ import annotations

import tempfile
from typing import Any

from service.mlflow_store import Store
from service.registry import MODEL_PATH, TAG, Registry, VersionRef, carried_tags, tag_filter
from service.tracking import TRAINING

COPY_SOURCE, COPY_COMPLETE = "copy.source", "copy.complete"
FINISHED = "FINISHED"


def source_key(store: Store, version: VersionRef) -> str:
    """What identifies a copy's source in any registry: the source registry's URI, model and version."""
    return f"{store.tracking_uri}#{version.name}/{version.version}"


def copy_across(registry: Registry, version: VersionRef, env: str) -> VersionRef:
    """The complete copy of ``version`` in ``env``'s own registry, made or finished now if need be."""
    source, target = registry.store(version.env), registry.store(env)
    key = source_key(source, version)
    name = registry.ensure_model(env)
    found = sorted(registry.versions_with_tag(env, COPY_SOURCE, key), key=lambda ref: int(ref.version))
    if found and found[0].tags.get(f"{TAG}{COPY_COMPLETE}") == "true":
        return found[0]
    if found:
        copy = found[0]  # created from a finished run; only its last tag is missing
    else:
        run_id = _copied_run(registry, source, target, version, key)
        tags = {**carried_tags(version), **_source_tags(source, version, key)}
        created = target.ask(
            f"create the copy of {version.uri} in {name}",
            lambda: target.client.create_model_version(
                name,
                f"{_artifact_root(target, run_id)}/{MODEL_PATH}",
                run_id=run_id,
                tags={f"{TAG}{k}": v for k, v in tags.items()},
                description=f"copied from {key}",
            ),
        )
        copy = registry.version(env, str(created.version))
    registry.tag_version(copy, {COPY_COMPLETE: "true"})  # last: from here on the copy may carry an alias
    return registry.version(env, copy.version)


def _source_tags(source: Store, version: VersionRef, key: str) -> dict[str, str]:
    return {
        COPY_SOURCE: key,
        "copied_from": key,
        "source.registry": source.tracking_uri,
        "source.model": version.name,
        "source.version": version.version,
        "source.run_id": version.run_id,
    }


def _copied_run(registry: Registry, source: Store, target: Store, version: VersionRef, key: str) -> str:
    """The finished copy of the version's run in the target: found, completed, or made now."""
    experiment = _experiment(target, registry.config.experiment_name(TRAINING))
    found = target.ask(
        f"search the copy of run {version.run_id}",
        lambda: target.client.search_runs([experiment], filter_string=tag_filter(COPY_SOURCE, key), max_results=1),
    )
    if found and found[0].info.status == FINISHED:
        return found[0].info.run_id
    original = source.ask(f"read run {version.run_id}", lambda: source.client.get_run(version.run_id))
    run_id = found[0].info.run_id if found else _new_run(target, experiment, original, version, key, source)
    _copy_content(source, target, original, run_id)
    target.ask(f"finish the copy of run {version.run_id}", lambda: target.client.set_terminated(run_id))
    return run_id


def _new_run(target: Store, experiment: str, original: Any, version: VersionRef, key: str, source: Store) -> str:
    tags = {k: v for k, v in original.data.tags.items() if k.startswith(TAG)}
    tags.update({f"{TAG}{k}": v for k, v in _source_tags(source, version, key).items()})
    run = target.ask(
        f"create the copy of run {version.run_id}",
        lambda: target.client.create_run(experiment, run_name=f"copy of {original.info.run_name}", tags=tags),
    )
    return run.info.run_id


def _copy_content(source: Store, target: Store, original: Any, run_id: str) -> None:
    """Params, metrics, datasets and every artifact of ``original`` into run ``run_id`` (safe to repeat)."""
    from mlflow.entities import Metric, Param

    data = original.data
    params = [Param(k, v) for k, v in data.params.items()]
    metrics = [Metric(k, v, original.info.start_time or 0, 0) for k, v in data.metrics.items()]
    target.ask("copy params and metrics", lambda: target.client.log_batch(run_id, metrics=metrics, params=params))
    datasets = list(original.inputs.dataset_inputs) if original.inputs else []
    if datasets:
        target.ask("copy datasets", lambda: target.client.log_inputs(run_id, datasets=datasets))
    from_repo = source.artifacts(original.info.artifact_uri)
    to_repo = target.artifacts(_artifact_root(target, run_id))
    with tempfile.TemporaryDirectory(prefix="driftloop-copy-") as folder:
        for entry in source.ask(f"list artifacts of run {original.info.run_id}", lambda: from_repo.list_artifacts()):
            source.ask(f"download {entry.path}", lambda p=entry.path: from_repo.download_artifacts(p, folder))
        target.ask(f"upload the artifacts of run {run_id}", lambda: to_repo.log_artifacts(folder))


def _artifact_root(store: Store, run_id: str) -> str:
    return store.ask(f"read run {run_id}", lambda: store.client.get_run(run_id)).info.artifact_uri


def _experiment(store: Store, name: str) -> str:
    found = store.ask(f"read experiment {name}", lambda: store.client.get_experiment_by_name(name))
    if found is not None:
        return found.experiment_id
    return store.ask(f"create experiment {name}", lambda: store.client.create_experiment(name))
