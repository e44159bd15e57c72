"""Commands that move an alias (promote, approve, rollback) and `models` run no flow: on a laptop with no
Prefect API configured they start no Prefect server and do not even import Prefect, nor the training or
drift libraries, and they keep their exit codes: 0 done, 2 bad input, 3 a server that did not answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import enter_dev

# The console script, run in a process that reports afterwards which libraries it imported.
RUN_AND_LIST_IMPORTS = """
import sys
from service.cli import main
try:
    main()
finally:
    heavy = ("prefect", "sklearn", "evidently", "scipy.stats", "flows")
    print("IMPORTED " + json.dumps([name for name in heavy if name in sys.modules]))
"""


def driftloop(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    code = "import json\n" + RUN_AND_LIST_IMPORTS
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)
    marker = [line for line in result.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert marker, result.stderr
    return result, json.loads(marker[-1].removeprefix("IMPORTED "))


@pytest.fixture
def laptop_env(tmp_path: Path) -> dict[str, str]:
    """No Prefect API and no tracking URI in the environment: the config's local store is the registry."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "MLFLOW_DISABLE_TELEMETRY": "true"})
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    return env


def dev_champion(config: Path) -> None:
    from service.config_file import load_config
    from service.registry import Registry

    enter_dev(Registry(load_config(config)))


def test_moves_and_listing_import_no_prefect_and_start_no_server(
    laptop_env: dict[str, str], world: Callable[..., Path], tmp_path: Path
) -> None:
    # given a local store with a dev champion, and no Prefect API configured
    config = world(n_batches=1, drift_at=2)
    dev_champion(config)
    where = ["--config", str(config)]
    commands = [
        ["promote", "weather", "--to", "staging", *where],
        ["promote", "weather", "--to", "prod", *where],
        ["approve", "weather", "--env", "prod", *where],
        ["models", *where, "--json"],
    ]
    for command in commands:
        # when each runs as the console script does
        result, imported = driftloop(laptop_env, *command)
        # then it succeeds without Prefect (so without its temporary server) or any training library
        assert result.returncode == 0, (command, result.stderr)
        assert imported == [], command
    # and the moves were made: the MLflow aliases are the record
    listing = json.loads(driftloop(laptop_env, "models", *where, "--json")[0].stdout.split("IMPORTED")[0])
    prod = next(e for e in listing["models"][0]["environments"] if e["env"] == "prod")
    assert prod["aliases"] == {"champion": "1"}
    # and no Prefect state was made anywhere (a temporary server would have made its database)
    assert not (tmp_path / "prefect-home").exists()


def test_moves_exit_2_for_bad_input_without_importing_prefect(
    laptop_env: dict[str, str], world: Callable[..., Path]
) -> None:
    config = world(n_batches=1, drift_at=2)
    dev_champion(config)
    bad = {
        "unknown environment 'qa'": ["rollback", "weather", "--env", "qa"],
        "no @previous version": ["rollback", "weather", "--env", "dev"],
        "configures model 'weather', not 'rain'": ["approve", "rain", "--env", "prod"],
    }
    for expected, command in bad.items():
        result, imported = driftloop(laptop_env, *command, "--config", str(config))
        assert result.returncode == 2 and expected in result.stderr, (command, result.stderr)
        assert imported == []


def test_moves_exit_3_naming_the_server_when_mlflow_does_not_answer(
    laptop_env: dict[str, str], world: Callable[..., Path]
) -> None:
    # given a config whose MLflow server is down (nothing listens on its port)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = world(n_batches=1, drift_at=2, config={"registry": {"tracking_uri": f"http://127.0.0.1:{port}"}})
    env = {**laptop_env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    for command in (["approve", "weather", "--env", "prod"], ["models"]):
        # when a move or the listing runs
        result, imported = driftloop(env, *command, "--config", str(config))
        # then it exits 3 naming the server, without falling back on anything
        assert result.returncode == 3, (command, result.stderr)
        assert f"127.0.0.1:{port}" in result.stderr
        assert imported == []
