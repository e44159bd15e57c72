"""`driftloop stack up | down | status`: the local stack's commands, over ``service.stack.Stack``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import yaml

from service.progress import step
from service.stack.postgres import Postgres
from service.stack.processes import POOL, STATE_FILE, StackError, alive, answers, free_port, stop_pid
from service.stack.servers import Stack, StackState, resolve_backend


def demo_config_for(root: Path, mlflow_url: str, batches: int = 8, rows: int = 500, drift_at: int = 5) -> Path:
    """A demo stream with every batch delivered, and its config pointing at the stack's MLflow server."""
    step("preparing the demo's weather stream under %s", root / "demo")  # first: pandas takes seconds to import
    from service.demo import deliver, prepare_workspace

    workspace = prepare_workspace(root / "demo", batches, rows, drift_at)
    for batch in workspace.batches:
        deliver(workspace, batch)
    document = yaml.safe_load(workspace.config_path.read_text())
    document.setdefault("registry", {})["tracking_uri"] = mlflow_url
    workspace.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    return workspace.config_path


def read_state(root: Path) -> dict[str, Any] | None:
    path = Path(root) / STATE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def models_folder_of(root: Path, config_path: Path) -> Path:
    """``<root>/models``, holding one link to ``config_path``: the folder the sweep reads when the stack
    was given a config and no models folder. A link, not a copy: the config's relative paths still
    resolve from its own folder."""
    folder = root / "models"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.is_symlink():
            stale.unlink()
    (folder / f"{config_path.stem}.yaml").symlink_to(config_path)
    return folder


def stack_up(
    root: Path, backend: str = "auto", config_path: Path | None = None, models_dir: Path | None = None
) -> StackState:
    """Start the stack under ``root``. The sweep reads ``models_dir``; without it, a folder holding
    ``config_path`` (or, with neither, the demo's config), which is also the per-model default."""
    root = Path(root).resolve()
    step("checking the %s backend", backend)
    backend = resolve_backend(backend)  # refused before the demo's data or any folder is made
    if models_dir is not None and not Path(models_dir).is_dir():
        raise StackError(f"{models_dir}: models folder not found: expected a folder of *.yaml model files")
    existing = read_state(root)
    if existing and answers(existing["prefect_url"] + "/health"):
        raise StackError(
            f"{root}: a stack is already running there ({existing['prefect_ui_url']}): `driftloop stack down` first"
        )
    prefect_port, mlflow_port = free_port(), free_port()
    if config_path is None and models_dir is None:
        config_path = demo_config_for(root, f"http://127.0.0.1:{mlflow_port}")
    config_path = Path(config_path).resolve() if config_path is not None else None
    if models_dir is None:
        assert config_path is not None
        models_dir = models_folder_of(root, config_path)
    stack = Stack(
        root,
        backend=backend,
        config_path=config_path,
        models_dir=Path(models_dir).resolve(),
        prefect_port=prefect_port,
        mlflow_port=mlflow_port,
    )
    return stack.up()


def stack_down(root: Path) -> list[str]:
    """Stop what ``stack_up`` started under ``root``; returns the names of what was stopped."""
    root = Path(root).resolve()
    stopped = []
    for name in ("worker", "mlflow-server", "prefect-server"):
        pid_file = root / "pids" / f"{name}.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError):
                pid = int(pid_file.read_text())
                if alive(pid):
                    stop_pid(pid)
                    stopped.append(name)
            pid_file.unlink(missing_ok=True)
    state = read_state(root)
    if state and state.get("postgres_folder"):
        postgres = Postgres(Path(state["postgres_folder"]), state["postgres_port"], Path(state["postgres_bin"]))
        if postgres.data.exists() and postgres.running():
            postgres.stop()
            stopped.append("postgresql")
    return stopped


def stack_status(root: Path) -> list[tuple[str, str, bool]]:
    """(component, URL or pid, answering) for each component of the stack under ``root``."""
    state = read_state(Path(root).resolve())
    if state is None:
        raise StackError(
            f"{Path(root).resolve()}: no stack here ({STATE_FILE} not found): `driftloop stack up --dir ...` first"
        )
    rows = [
        ("prefect api", state["prefect_url"], answers(state["prefect_url"] + "/health")),
        ("prefect ui", state["prefect_ui_url"], answers(state["prefect_ui_url"])),
        ("mlflow", state["mlflow_url"], answers(state["mlflow_url"] + "/health")),
    ]
    pid_file = Path(state["root"]) / "pids" / "worker.pid"
    worker_pid = int(pid_file.read_text()) if pid_file.exists() else None
    rows.append(("worker", f"pool {POOL}, pid {worker_pid}", worker_pid is not None and alive(worker_pid)))
    if state.get("postgres_port"):
        postgres = Postgres(Path(state["postgres_folder"]), state["postgres_port"], Path(state["postgres_bin"]))
        rows.append(("postgresql", f"127.0.0.1:{postgres.port}", postgres.running()))
    if state.get("models_dir"):
        rows.append(("models", state["models_dir"], Path(state["models_dir"]).is_dir()))
    if state.get("config_path"):
        rows.append(("config", state["config_path"], Path(state["config_path"]).exists()))
    return rows
