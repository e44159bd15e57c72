"""`driftloop stack up|status|down`: the local stack for trying driftloop without a cluster, run as a user runs it.

The PostgreSQL flavour is what tests/integration/conftest.py starts (same code, ``service.stack.Stack``);
here the stack runs on its sqlite fallback, the flavour a machine without PostgreSQL gets.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.stack.processes import answers, base_env, executable
from service.stack.servers import Stack

pytestmark = pytest.mark.slow


def driftloop(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    script = shutil.which("driftloop") or pytest.fail("driftloop is not installed (pip install -e .)")
    return subprocess.run([script, *args], cwd=cwd, env=base_env(), capture_output=True, text=True, timeout=timeout)


def api_post(api_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        api_url + path, data=json.dumps(body or {}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def status_urls(status: str) -> dict[str, str]:
    return dict(re.findall(r"^(prefect api|prefect ui|mlflow)\s+(http://127\.0\.0\.1:\d+\S*)\s+up$", status, re.M))


def write_models(folder: Path, *names: str) -> Path:
    """A models folder with one (valid, data-less) model file per name."""
    folder.mkdir(parents=True)
    for name in names:
        config = {
            "model": {"name": name, "task": "classification", "target": "y"},
            "data": {"reference": f"{name}/reference.csv", "current": f"{name}/incoming/*.csv"},
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def test_stack_up_status_down(tmp_path: Path) -> None:
    folder = tmp_path / "my-stack"
    try:
        # when the stack is started
        up = driftloop("stack", "up", "--dir", str(folder), "--backend", "sqlite", cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        # then it said which server it was starting and waiting for, as it went
        for server in ("prefect-server", "mlflow-server"):
            assert f"  · starting {server} (log: {folder / 'logs' / server}.log)" in up.stdout, up.stdout
            assert f"  · waiting for {server} to answer at http://127.0.0.1:" in up.stdout, up.stdout
        assert "  · registering the deployments of flows/prefect.yaml" in up.stdout
        # and status lists each component up, with URLs that answer
        status = driftloop("stack", "status", "--dir", str(folder), cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        urls = status_urls(status.stdout)
        assert set(urls) == {"prefect api", "prefect ui", "mlflow"}, status.stdout
        assert answers(urls["prefect api"] + "/health") and answers(urls["mlflow"] + "/health")
        assert re.search(r"^worker\s+pool driftloop, pid \d+\s+up$", status.stdout, re.M), status.stdout
        # and the deployments are registered in the process pool, with the stack's demo config as default
        deployments = {d["name"]: d for d in api_post(urls["prefect api"], "/deployments/filter")}
        assert set(deployments) == {"sweep", "monitor", "retrain", "promote", "approval", "batch-inference"}
        assert {d["work_pool_name"] for d in deployments.values()} == {"driftloop"}
        config = folder.resolve() / "demo" / "driftloop.yaml"
        per_model = [d for name, d in deployments.items() if name != "sweep"]
        assert {d["parameters"]["config_path"] for d in per_model} == {str(config)}
        # and the sweep reads a models folder holding that one config
        models = Path(deployments["sweep"]["parameters"]["models_dir"])
        assert models == folder.resolve() / "models"
        assert [(p.name, p.resolve()) for p in models.iterdir()] == [("driftloop.yaml", config)]
        assert re.search(rf"^models\s+{re.escape(str(models))}\s+up$", status.stdout, re.M), status.stdout
        # and everything lives under the one folder
        assert {"logs", "pids", "stack.json", "prefect.yaml", "demo", "models"} <= {p.name for p in folder.iterdir()}
        # when it is stopped
        down = driftloop("stack", "down", "--dir", str(folder), cwd=tmp_path)
        assert down.returncode == 0, down.stderr
        assert {"worker", "mlflow-server", "prefect-server"} <= set(re.findall(r"[\w-]+", down.stdout))
        # then nothing answers any more, and status says so
        assert not answers(urls["prefect api"] + "/health") and not answers(urls["mlflow"] + "/health")
        after = driftloop("stack", "status", "--dir", str(folder), cwd=tmp_path)
        assert after.returncode == 1 and "DOWN" in after.stdout
    finally:
        driftloop("stack", "down", "--dir", str(folder), cwd=tmp_path)


def test_stack_status_without_a_stack_names_the_folder(tmp_path: Path) -> None:
    result = driftloop("stack", "status", "--dir", str(tmp_path / "none"), cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "none" in result.stderr and "stack up" in result.stderr


def test_stack_up_with_models_sweeps_that_folder_one_monitor_run_per_model(tmp_path: Path) -> None:
    folder = tmp_path / "my-stack"
    models = write_models(tmp_path / "models", "alpha", "beta")
    try:
        # given a stack started on a folder of two model files
        up = driftloop(
            "stack", "up", "--dir", str(folder), "--backend", "sqlite", "--models", str(models), cwd=tmp_path
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        api = status_urls(driftloop("stack", "status", "--dir", str(folder), cwd=tmp_path).stdout)["prefect api"]
        deployments = {d["name"]: d for d in api_post(api, "/deployments/filter")}
        # then the sweep reads that folder, and the per-model deployments default to its driftloop.yaml,
        # as on the cluster (/etc/driftloop/models/driftloop.yaml); no demo is prepared
        assert deployments["sweep"]["parameters"]["models_dir"] == str(models.resolve())
        assert deployments["monitor"]["parameters"]["config_path"] == str(models.resolve() / "driftloop.yaml")
        assert not (folder / "demo").exists()
        # when the user sweeps, as the README says
        env = base_env(PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "prefect-home"))
        run = subprocess.run(
            [executable("prefect"), "deployment", "run", "sweep/sweep"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        # then the worker runs the sweep, which starts one monitor run per model file, named and tagged by model
        monitor_id = deployments["monitor"]["id"]
        deadline, started = time.monotonic() + 240, {}
        while time.monotonic() < deadline and len(started) < 2:
            runs = api_post(api, "/flow_runs/filter", {"deployments": {"id": {"any_": [monitor_id]}}})
            started = {r["name"]: r for r in runs}
            time.sleep(2)
        assert set(started) == {"monitor-alpha", "monitor-beta"}, started
        assert "model:alpha" in started["monitor-alpha"]["tags"] and "model:beta" in started["monitor-beta"]["tags"]
        assert {r["parameters"]["config_path"] for r in started.values()} == {
            str(models.resolve() / "alpha.yaml"),
            str(models.resolve() / "beta.yaml"),
        }
    finally:
        driftloop("stack", "down", "--dir", str(folder), cwd=tmp_path)


def test_stack_up_refuses_a_models_folder_that_does_not_exist(tmp_path: Path) -> None:
    result = driftloop("stack", "up", "--dir", str(tmp_path / "s"), "--models", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope: models folder not found" in result.stderr
    assert not (tmp_path / "s").exists()  # nothing started


def test_stack_up_on_postgresql_without_its_driver_says_what_to_install_and_starts_nothing(tmp_path: Path) -> None:
    # given a Python where psycopg2, the driver of MLflow's postgresql store, cannot be imported
    shadow = tmp_path / "shadow" / "psycopg2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('psycopg2 hidden by the test')\n")
    env = {**base_env(), "PYTHONPATH": str(shadow.parent)}
    script = shutil.which("driftloop") or pytest.fail("driftloop is not installed (pip install -e .)")
    # when the stack is asked to run on PostgreSQL
    command = [script, "stack", "up", "--dir", str(tmp_path / "s"), "--backend", "postgresql"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    # then it names the missing driver and how to install it, in one line, and nothing was started
    assert result.returncode == 2, result.stderr
    assert "psycopg2" in result.stderr and "pip install psycopg2-binary" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


def registered(stack: Stack) -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(stack.local_prefect_yaml().read_text())
    return {deployment["name"]: deployment for deployment in document["deployments"]}


def test_the_stacks_prefect_yaml_puts_models_and_config_where_the_stack_has_them(tmp_path: Path) -> None:
    """What `stack up` registers, read from the prefect.yaml it writes (no server needed)."""
    models = write_models(tmp_path / "models", "alpha")
    config = models / "alpha.yaml"
    # --models alone: the sweep reads it; per-model deployments default to its driftloop.yaml
    only_models = registered(Stack(tmp_path / "a", backend="sqlite", models_dir=models))
    assert only_models["sweep"]["parameters"] == {"models_dir": str(models), "retrain_via": "event"}
    assert only_models["promote"]["parameters"]["config_path"] == str(models / "driftloop.yaml")
    # --config too: it is every per-model deployment's default, as before; the sweep still reads the folder
    both = registered(Stack(tmp_path / "b", backend="sqlite", models_dir=models, config_path=config))
    assert both["sweep"]["parameters"]["models_dir"] == str(models)
    assert "config_path" not in both["sweep"]["parameters"]  # the sweep flow takes none
    assert {d["parameters"]["config_path"] for name, d in both.items() if name != "sweep"} == {str(config)}
    # schedules stay paused: the user sweeps when they want
    assert [schedule["active"] for schedule in both["sweep"]["schedules"]] == [False]


def test_every_deployment_of_the_stack_starts_prefects_engine_itself_with_this_python(tmp_path: Path) -> None:
    """Without a command, Prefect 3.8's process worker starts a workspace supervisor that imports Prefect
    and then execs the engine, which imports it again: the stack's deployments name the engine itself."""
    deployments = registered(Stack(tmp_path / "s", backend="sqlite", models_dir=write_models(tmp_path / "m", "a")))
    commands = {name: shlex.split(d["work_pool"]["job_variables"]["command"]) for name, d in deployments.items()}
    assert set(commands) == {"sweep", "monitor", "retrain", "promote", "approval", "batch-inference"}
    assert all(command == [sys.executable, "-m", "prefect.engine"] for command in commands.values()), commands
