"""A fleet of models from one install: one file per model in the models ConfigMap, which the sweep
loads as it is, and the `fleet` values carried by the register Job into the deployments it registers.

The register script runs whole here, as the Job's container would, with two stand-ins: a stub
`prefect` first on PATH that records its arguments and keeps a copy of the file `prefect deploy` is
given (no Prefect server is involved; tests/k8s/test_register_hook.py registers against a real one),
and a local HTTP server answering the script's wait for the Prefect API's /health.
"""

from __future__ import annotations

import http.server
import os
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, NO_CLUSTER_VALUES, ROOT, TELEMETRY_OFF, Objects, find, run, tool

BUNDLED = "bundled-database-values.yaml"  # two models, fleet 900 s / 8 monitors / 3 retrains
PREFECT_YAML = ROOT / "flows" / "prefect.yaml"

# Stands in for the Prefect CLI: one line per call (working directory, then the arguments), a copy of
# the --prefect-file it is given, and no work pool yet (so the script takes the "create" path).
STUB_PREFECT = """#!/bin/sh
echo "$(pwd) $*" >> "$STUB_LOG"
previous=""
for argument in "$@"; do
    if [ "$previous" = "--prefect-file" ]; then
        echo "$argument" > "$STUB_DIR/deployed-from"
        cp "$argument" "$STUB_DIR/deployed-prefect.yaml"
    fi
    previous=$argument
done
if [ "$1 $2" = "work-pool inspect" ]; then
    exit 1
fi
"""


def models_configmaps(objects: Objects) -> dict[str, dict[str, str]]:
    """Namespace → data of each ConfigMap driftloop-models."""
    return {
        obj["metadata"]["namespace"]: obj["data"]
        for obj in objects
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "driftloop-models"
    }


def register_env(objects: Objects) -> dict[str, str]:
    container = find(objects, "Job", "driftloop-register")["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}  # not secretKeyRefs


# the models ConfigMap ------------------------------------------------------------------------------


def test_every_model_of_the_values_becomes_one_file_the_sweep_loads(
    rendered: dict[str, Objects], tmp_path: Path
) -> None:
    from service.fleet import load_fleet, model_files

    # given two models in the values
    values = yaml.safe_load((CHART / "ci" / BUNDLED).read_text())["models"]
    # when the chart renders them
    (data,) = models_configmaps(rendered[BUNDLED]).values()
    # then there is one file per model, the YAML of its config
    assert set(data) == {"weather.yaml", "energy.yaml"}
    for name, config in values.items():
        assert yaml.safe_load(data[f"{name}.yaml"]) == config
    # and the folder the sweep reads (the ConfigMap mounted at /etc/driftloop/models) loads as a fleet
    for file_name, content in data.items():
        (tmp_path / file_name).write_text(content)
    entries = load_fleet(model_files(tmp_path))
    assert [(entry.path.name, entry.name, entry.error) for entry in entries] == [
        ("energy.yaml", "energy", None),
        ("weather.yaml", "weather", None),
    ]


def test_flow_runs_in_another_namespace_get_every_model_too(render_with) -> None:
    models = yaml.safe_load((CHART / "ci" / BUNDLED).read_text())["models"]
    result = render_with("worker.jobsNamespace=driftloop-jobs", values={"models": models})
    assert result.returncode == 0, result.stderr
    configmaps = models_configmaps([doc for doc in yaml.safe_load_all(result.stdout) if doc])
    assert set(configmaps) == {"driftloop", "driftloop-jobs"}
    assert configmaps["driftloop"] == configmaps["driftloop-jobs"]
    assert set(configmaps["driftloop-jobs"]) == {"weather.yaml", "energy.yaml"}


# the fleet values, carried by the register Job ---------------------------------------------------------


@pytest.mark.parametrize(
    ("values_file", "expected"),
    [("default", ("3600", "4", "2")), (BUNDLED, ("900", "8", "3"))],
)
def test_the_register_job_passes_the_fleet_values(
    values_file: str, expected: tuple[str, str, str], rendered: dict[str, Objects]
) -> None:
    env = register_env(rendered[values_file])
    assert env["MODELS_DIR"] == "/etc/driftloop/models"
    assert (env["SWEEP_INTERVAL_SECONDS"], env["MONITOR_CONCURRENCY"], env["RETRAIN_CONCURRENCY"]) == expected


def test_install_notes_state_the_sweep_and_the_fleet_numbers() -> None:
    result = run(
        tool("helm"), "install", "driftloop", str(CHART), "--namespace", "driftloop", "--dry-run=client",
        "--values", str(NO_CLUSTER_VALUES), "--values", str(CHART / "ci" / BUNDLED),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    notes = " ".join(result.stdout.split("NOTES:", 1)[1].split())
    assert "Every 900 s the `sweep` deployment reads /etc/driftloop/models" in notes
    assert "up to 8 models side by side, and up to 3 retrains side by side" in notes


# the register script, whole, with a stubbed `prefect` ---------------------------------------------------


@pytest.fixture(scope="module")
def prefect_health() -> Iterator[str]:
    """A Prefect API URL whose /health answers 200 and that holds no deployment: all the script asks of
    the API itself (the rest goes through the stubbed `prefect`)."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # /health, else 404: the deployment the script looks up by name does not exist yet.
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()
            self.wfile.write(b"true")

        def do_POST(self) -> None:
            # The script lists the deployments it registered before, to delete those no longer declared.
            self.send_response(200 if self.path == "/api/deployments/filter" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    thread.join()


def run_register_with_stub_prefect(
    objects: Objects, api_url: str, folder: Path, **env_overrides: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The rendered register.sh, with the rendered Job's environment and a stub `prefect` on PATH."""
    stub = folder / "bin"
    stub.mkdir(parents=True)
    (stub / "prefect").write_text(STUB_PREFECT)
    (stub / "prefect").chmod(0o755)
    data = find(objects, "ConfigMap", "driftloop-work-pool")["data"]
    (folder / "register.sh").write_text(data["register.sh"])
    (folder / "base-job-template.json").write_text(data["base-job-template.json"])
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(TELEMETRY_OFF)
    env.update({key: value for key, value in register_env(objects).items() if key not in {"HOME", "PREFECT_HOME"}})
    env.update(
        PATH=f"{stub}{os.pathsep}{os.environ['PATH']}",
        STUB_LOG=str(folder / "calls.log"),
        STUB_DIR=str(folder),
        PREFECT_API_URL=api_url,
        BASE_JOB_TEMPLATE=str(folder / "base-job-template.json"),
        DRIFTLOOP_HOME=str(ROOT),  # /opt/driftloop in the image
        WAIT_SECONDS="10",
        **env_overrides,
    )
    result = subprocess.run(
        ["sh", str(folder / "register.sh")], env=env, cwd=folder, capture_output=True, text=True, timeout=120
    )
    log = folder / "calls.log"
    return result, log.read_text().splitlines() if log.exists() else []


def test_register_deploys_prefect_yaml_with_the_fleet_values(
    rendered: dict[str, Objects], prefect_health: str, tmp_path: Path
) -> None:
    # when the register script of an install with fleet 900 s / 8 / 3 runs
    result, calls = run_register_with_stub_prefect(rendered[BUNDLED], prefect_health, tmp_path)
    # then it creates the work pool and deploys every deployment from the code's folder
    assert result.returncode == 0, result.stdout + result.stderr
    assert [shlex.split(call)[1:3] for call in calls] == [
        ["work-pool", "inspect"],
        ["work-pool", "create"],
        ["--no-prompt", "deploy"],
    ]
    deploy = shlex.split(calls[-1])
    assert deploy[0] == str(ROOT) and "--all" in deploy
    # and what it deploys is flows/prefect.yaml with the sweep over /etc/driftloop/models every 900 s,
    # 8 monitor runs and 3 retrains side by side; nothing else changed
    deployed = yaml.safe_load((tmp_path / "deployed-prefect.yaml").read_text())
    expected = yaml.safe_load(PREFECT_YAML.read_text())
    by_name = {deployment["name"]: deployment for deployment in expected["deployments"]}
    by_name["sweep"]["parameters"]["models_dir"] = "/etc/driftloop/models"
    by_name["sweep"]["schedules"][0]["interval"] = 900
    by_name["monitor"]["concurrency_limit"]["limit"] = 8
    by_name["retrain"]["concurrency_limit"]["limit"] = 3
    for deployment in expected["deployments"]:
        # What every registration adds: the tag of the chart's deployments, a slug naming each schedule.
        deployment["tags"].append("driftloop-chart")
        for index, schedule in enumerate(deployment.get("schedules") or []):
            schedule["slug"] = f"{deployment['name']}-{index}"
    assert deployed == expected
    assert "register: sweep of /etc/driftloop/models every 900 s" in result.stdout
    # and the adjusted copy went to a folder of its own, removed when the script ends
    copy = Path((tmp_path / "deployed-from").read_text().strip())
    assert copy != PREFECT_YAML and not copy.parent.exists()


@pytest.mark.parametrize("bad", ["0", "two", "-1", "1.5"])
def test_register_refuses_a_fleet_number_below_one_and_deploys_nothing(
    bad: str, default_objects: Objects, prefect_health: str, tmp_path: Path
) -> None:
    result, calls = run_register_with_stub_prefect(default_objects, prefect_health, tmp_path, MONITOR_CONCURRENCY=bad)
    assert result.returncode != 0
    assert f"register: MONITOR_CONCURRENCY={bad!r}: expected a whole number of 1 or more" in result.stderr
    assert not [call for call in calls if " deploy " in f" {call} "]
