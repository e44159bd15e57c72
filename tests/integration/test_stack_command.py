"""`driftloop stack up|status|down`: the local stack for trying driftloop without a cluster, run as a user runs it.

The PostgreSQL flavour is what tests/integration/conftest.py starts (same code, ``service.stack.Stack``);
here the stack runs on its sqlite fallback, the flavour a machine without PostgreSQL gets.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from service.processes import answers, base_env

pytestmark = pytest.mark.slow


def driftloop(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    script = shutil.which("driftloop") or pytest.fail("driftloop is not installed (pip install -e .)")
    return subprocess.run([script, *args], cwd=cwd, env=base_env(), capture_output=True, text=True, timeout=timeout)


def test_stack_up_status_down(tmp_path: Path) -> None:
    folder = tmp_path / "my-stack"
    try:
        # when the stack is started
        up = driftloop("stack", "up", "--dir", str(folder), "--backend", "sqlite", cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        # then status lists each component up, with URLs that answer
        status = driftloop("stack", "status", "--dir", str(folder), cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        urls = dict(
            re.findall(r"^(prefect api|prefect ui|mlflow)\s+(http://127\.0\.0\.1:\d+\S*)\s+up$", status.stdout, re.M)
        )
        assert set(urls) == {"prefect api", "prefect ui", "mlflow"}, status.stdout
        assert answers(urls["prefect api"] + "/health") and answers(urls["mlflow"] + "/health")
        assert re.search(r"^worker\s+pool driftloop, pid \d+\s+up$", status.stdout, re.M), status.stdout
        # and the deployments are registered in the process pool, with the stack's demo config as default
        with urllib.request.urlopen(
            urllib.request.Request(
                urls["prefect api"] + "/deployments/filter", data=b"{}", headers={"Content-Type": "application/json"}
            ),
            timeout=10,
        ) as response:
            deployments = json.load(response)
        assert {d["name"] for d in deployments} == {"monitor", "retrain", "promote", "batch-inference"}
        assert {d["work_pool_name"] for d in deployments} == {"driftloop"}
        config = str(folder.resolve() / "demo" / "driftloop.yaml")
        assert {d["parameters"]["config_path"] for d in deployments} == {config}
        # and everything lives under the one folder
        assert {"logs", "pids", "stack.json", "prefect.yaml", "demo"} <= {p.name for p in folder.iterdir()}
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
