"""The demo's workspace: a folder with generated data, a model config and a local MLflow store.

Only a folder that the demo made itself (it holds a marker file) is reused, so pointing ``--workdir``
at a folder of one's own fails instead of touching it. Even then, a rerun removes only the entries the
demo makes (``DEMO_ENTRIES``): anything a user added beside them is kept, and the demo says so.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import typer
import yaml

from service.demo_data import make_stream, write_stream
from service.errors import ConfigError

MARKER = ".driftloop-demo"
MODEL_NAME = "weather"
# Everything the demo writes at the top of its folder: its data, config and summary, the local MLflow
# store and its artifacts (beside the sqlite file), and Prefect's home.
DEMO_ENTRIES = (MARKER, "data", "incoming", "driftloop.yaml", "summary.json", "mlflow.db", "mlartifacts", "prefect")


@dataclass(frozen=True)
class DemoWorkspace:
    root: Path
    config_path: Path
    batches: list[Path]  # the stream, not yet delivered
    incoming: Path  # where batches arrive, one at a time
    drift_at: int


def demo_config(drift_at_window: int = 2) -> dict[str, object]:
    return {
        "model": {"name": MODEL_NAME, "task": "classification", "target": "weather", "ignore": ["date"]},
        "data": {"reference": "data/reference.csv", "current": "incoming/*.csv"},
        "drift": {"drift_share": 0.5, "debounce": {"window": 3, "min_drifted": 2}},
        "training": {"window": drift_at_window},
        "evaluation": {"metric": "f1_macro", "holdout": 0.25, "min_gain": 0.01},
        "environments": ["dev", "staging", "prod"],
        "promotion": {"staging": "auto", "prod": "approval"},
    }


def prepare_workspace(root: Path, n_batches: int, rows: int, drift_at: int) -> DemoWorkspace:
    """Empty (if it is a demo folder) and fill ``root`` with a fresh stream and config."""
    root = root.resolve()
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).exists():
            raise ConfigError(
                f"{root}: folder exists and is not a driftloop demo folder (no {MARKER}): choose another --workdir"
            )
        kept = clear_demo_entries(root)
        if kept:
            typer.echo(f"{root}: kept {len(kept)} entries the demo did not make: {', '.join(kept)}")
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("made by `driftloop demo`; a rerun replaces the demo's own files and keeps the rest\n")
    stream = make_stream(n_batches=n_batches, rows=rows, drift_at=drift_at)
    _, batches = write_stream(stream, root / "data")
    incoming = root / "incoming"
    incoming.mkdir()
    config_path = root / "driftloop.yaml"
    config_path.write_text(yaml.safe_dump(demo_config(), sort_keys=False))
    return DemoWorkspace(root, config_path, batches, incoming, drift_at)


def clear_demo_entries(root: Path) -> list[str]:
    """Remove what an earlier demo made in ``root``; return the names of the other entries, kept."""
    for name in DEMO_ENTRIES:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    return sorted(entry.name for entry in root.iterdir())


def deliver(workspace: DemoWorkspace, batch: Path) -> Path:
    """A batch arrives: copy it where the config's ``data.current`` glob looks."""
    target = workspace.incoming / batch.name
    shutil.copyfile(batch, target)
    return target


def _local_path(uri: str) -> str:
    return uri.removeprefix("file://") if uri.startswith("file://") else uri


def finish_demo(workspace: DemoWorkspace, verdicts: list[Any], retrains: list[Any]) -> dict[str, Any]:
    """Print the demo's summary and write it as ``summary.json`` in the workspace."""
    from service.catalog import list_models
    from service.config_file import load_config

    config = load_config(workspace.config_path)
    uri = config.tracking_uri()
    views = list_models(uri, MODEL_NAME, config.environments)
    summary = {
        "workdir": str(workspace.root),
        "drift_injected_at_batch": workspace.drift_at,
        "batches": [
            {
                "batch": Path(v.batch_uri).name,
                "drift": v.dataset_drift,
                "drifted_share": v.drifted_share,
                "retrain": v.retrain,
                "report": _local_path(v.report_uri),
            }
            for v in verdicts
        ],
        "retrains": [
            {"version": r.version, "gate": r.gate, "outcomes": [asdict(outcome) for outcome in r.outcomes]}
            for r in retrains
        ],
        "environments": {
            env.env: {
                "registered_model": env.registered_model,
                "aliases": env.aliases,
                "versions": [v["version"] for v in env.versions],
            }
            for view in views
            for env in view.environments
        },
        "mlflow_ui": f"mlflow ui --backend-store-uri {uri} --port 5000",
        "config": str(workspace.config_path),
    }
    (workspace.root / "summary.json").write_text(json.dumps(summary, indent=2))
    _echo_summary(summary)
    return summary


def _echo_summary(summary: dict[str, Any]) -> None:
    echo = typer.echo
    batches = summary["batches"]
    drifted = [item["batch"] for item in batches if item["drift"]]
    echo("\nsummary")
    echo(f"  batches checked: {len(batches)}; drifted: {', '.join(drifted) or 'none'}")
    echo(f"  trainings: {len(summary['retrains'])} (first champion + retrains)")
    for env, state in summary["environments"].items():
        aliases = ", ".join(f"@{alias} v{version}" for alias, version in sorted(state["aliases"].items()))
        echo(f"  {env:<8} {state['registered_model']:<16} versions {state['versions']}  {aliases}")
    echo("  drift reports:")
    for item in batches:
        echo(f"    {item['batch']}: {item['report']}")
    config = summary["config"]
    echo("\nnext:")
    echo(f"  browse the registry:  {summary['mlflow_ui']}")
    echo(f"  list models:          driftloop models --config {config}")
    echo(f"  approve for prod:     driftloop approve {MODEL_NAME} --env prod --config {config}")
    echo(f"  roll prod back:       driftloop rollback {MODEL_NAME} --env prod --config {config}")
