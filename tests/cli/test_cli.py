"""The installed ``driftloop`` console script, run as a user runs it: exit codes, messages, files, registry."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support import enter_dev as add_dev_champion

DRIFTLOOP = shutil.which("driftloop") or pytest.fail("the driftloop console script is not installed")


def driftloop(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DRIFTLOOP, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def models_json(env: dict[str, str], config: Path) -> dict[str, object]:
    result = driftloop(env, "models", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def files(world: Callable[..., Path], tmp_path: Path) -> Path:
    world(n_batches=5, drift_at=4)
    return tmp_path / "data"


# --- driftloop drift: exit codes as diff's -------------------------------------------------------------


def test_drift_exits_0_for_a_batch_like_the_reference(cli_env: dict[str, str], files: Path) -> None:
    result = driftloop(
        cli_env,
        "drift",
        "--reference",
        str(files / "reference.csv"),
        "--current",
        str(files / "stream" / "batch_001.csv"),
        "--ignore",
        "date",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no drift: 0 of 8 columns drifted")


def test_drift_exits_1_with_per_column_json_and_writes_the_report(
    cli_env: dict[str, str], files: Path, tmp_path: Path
) -> None:
    report = tmp_path / "out" / "report.html"
    result = driftloop(
        cli_env,
        "drift",
        "--reference",
        str(files / "reference.csv"),
        "--current",
        str(files / "stream" / "batch_004.csv"),
        "--ignore",
        "date",
        "--json",
        "--report",
        str(report),
    )
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["dataset_drift"] is True
    drifted = {c["column"] for c in verdict["columns"] if c["drifted"]}
    assert {"temperature", "humidity", "pressure", "cloud_cover", "region"} <= drifted
    assert "date" not in {c["column"] for c in verdict["columns"]}
    assert report.read_text().lstrip().lower().startswith("<!doctype html")


def test_drift_exits_2_naming_a_missing_file(cli_env: dict[str, str], files: Path) -> None:
    result = driftloop(
        cli_env, "drift", "--reference", str(files / "reference.csv"), "--current", str(files / "nope.csv")
    )
    assert result.returncode == 2
    assert f"{files / 'nope.csv'}: file not found" in result.stderr


def test_drift_exits_2_naming_a_column_the_batch_lacks(cli_env: dict[str, str], files: Path, tmp_path: Path) -> None:
    current = tmp_path / "no_pressure.csv"
    pd.read_csv(files / "stream" / "batch_001.csv").drop(columns=["pressure"]).to_csv(current, index=False)
    result = driftloop(cli_env, "drift", "--reference", str(files / "reference.csv"), "--current", str(current))
    assert result.returncode == 2
    assert str(current) in result.stderr and "column 'pressure' is missing" in result.stderr


# --- driftloop run and the registry -------------------------------------------------------------------


def test_run_then_models_show_the_loop_in_the_registry(
    cli_env: dict[str, str], world: Callable[..., Path], tmp_path: Path
) -> None:
    # given a stream drifting from batch 4 of 5
    config = world(n_batches=5, drift_at=4)
    # when one monitoring pass runs from the command line
    result = driftloop(cli_env, "run", "--config", str(config))
    # then it reports each batch and the retrain on the confirmed drift
    assert result.returncode == 0, result.stderr
    # and says what it does while it trains the first model, step by step
    assert "· no champion yet: the first one learns from data/reference.csv" in result.stdout
    assert "· fitting HistGradientBoostingClassifier on " in result.stdout
    # and keeps the libraries quiet: no MLflow prints, Prefect banner or warnings
    for noise in ("Registered model", "Copied version", "Starting temporary server", "Warning"):
        assert noise not in result.stdout + result.stderr, noise
    assert "batch_004.csv      DRIFT" in result.stdout
    assert "batch_005.csv      DRIFT" in result.stdout and "→ retrain" in result.stdout
    # and `models --json` shows where every alias points
    environments = {e["env"]: e for e in models_json(cli_env, config)["models"][0]["environments"]}
    assert environments["dev"]["aliases"] == {"champion": "2", "previous": "1"}
    assert environments["staging"]["aliases"] == {"champion": "2", "previous": "1"}
    assert environments["prod"]["aliases"] == {"challenger": "2"}
    # and predict scores with an environment's champion
    out = tmp_path / "scored.csv"
    scored = driftloop(
        cli_env,
        "predict",
        "--config",
        str(config),
        "--env",
        "staging",
        "--input",
        str(tmp_path / "data" / "stream" / "batch_005.csv"),
        "--output",
        str(out),
    )
    assert scored.returncode == 0, scored.stderr
    assert "scored 600 rows with models:/weather-staging/2" in scored.stdout
    assert pd.read_csv(out)["prediction"].notna().all()
    # and prod, which has no champion yet, refuses to score
    refused = driftloop(
        cli_env,
        "predict",
        "--config",
        str(config),
        "--env",
        "prod",
        "--input",
        str(tmp_path / "data" / "stream" / "batch_005.csv"),
        "--output",
        str(tmp_path / "prod.csv"),
    )
    assert refused.returncode == 2 and "weather-prod has no @champion" in refused.stderr
    assert not (tmp_path / "prod.csv").exists()


def _mutate(batch: Path, how: str) -> None:
    frame = pd.read_csv(batch)
    if how == "extra column":
        frame["visibility"] = 1.0
    elif how == "wrong dtype":
        frame["humidity"] = "high"
    elif how == "all-null column":
        frame["wind_speed"] = None
    elif how == "unseen categories":
        frame["region"] = "atlantis"
    elif how == "no rows":
        frame = frame.iloc[0:0]
    frame.to_csv(batch, index=False)


BAD_BATCHES = [
    ("extra column", "column 'visibility' is not in the contract"),
    ("wrong dtype", "column 'humidity' has dtype object: expected numeric values"),
    ("all-null column", "column 'wind_speed' is entirely null"),
    ("unseen categories", "column 'region' has 100.0% values not seen in the reference"),
    ("no rows", "has 0 rows: expected at least 10"),
]


def test_run_on_a_bad_batch_exits_2_naming_file_and_column_and_changes_nothing(
    cli_env: dict[str, str], world: Callable[..., Path], tmp_path: Path, subtests: pytest.Subtests
) -> None:
    # given a monitored stream with a champion
    config = world(n_batches=2, drift_at=3)
    assert driftloop(cli_env, "run", "--config", str(config)).returncode == 0
    before = models_json(cli_env, config)
    bad = tmp_path / "data" / "stream" / "batch_003.csv"
    for how, expected in BAD_BATCHES:
        with subtests.test(how):
            # when a new batch breaks the contract
            shutil.copyfile(tmp_path / "data" / "stream" / "batch_002.csv", bad)
            _mutate(bad, how)
            result = driftloop(cli_env, "run", "--config", str(config))
            # then the run fails with the file and the problem named
            assert result.returncode == 2
            assert str(bad) in result.stderr and expected in result.stderr
    # and after all of them the registry is exactly as it was
    assert models_json(cli_env, config) == before


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"drift": {"thresold": 0.1}}, "drift.thresold: unknown key"),
        ({"training": {"window": "two"}}, "training.window: Input should be a valid integer"),
        ({"model": {"name": "weather", "task": "classification"}}, "model.target: required key is missing"),
        (
            {"data": {"reference": "data/reference.csv", "current": "/no/such/dir/*.csv"}},
            "/no/such/dir/*.csv: no file matches this pattern",
        ),
    ],
)
def test_run_with_a_bad_config_or_path_exits_2_naming_the_key_and_registers_nothing(
    cli_env: dict[str, str], world: Callable[..., Path], tmp_path: Path, change: dict[str, object], expected: str
) -> None:
    # given a config with one mistake
    config = world(n_batches=1, drift_at=2)
    document = yaml.safe_load(config.read_text())
    for section, values in change.items():
        document[section] = {**document.get(section, {}), **values} if section == "drift" else values
    if "model" in change:
        document["model"] = change["model"]
    config.write_text(yaml.safe_dump(document))
    (tmp_path / "mlflow.db").unlink()
    # when the monitor runs
    result = driftloop(cli_env, "run", "--config", str(config))
    # then it fails naming the key or path, before any model is trained or registered
    assert result.returncode == 2, result.stdout
    assert expected in result.stderr
    assert not (tmp_path / "mlartifacts").exists()


def test_commands_on_an_unknown_model_or_environment_exit_2(
    cli_env: dict[str, str], world: Callable[..., Path]
) -> None:
    config = world(n_batches=1, drift_at=2)
    wrong_model = driftloop(cli_env, "approve", "rain", "--env", "prod", "--config", str(config))
    assert wrong_model.returncode == 2 and "configures model 'weather', not 'rain'" in wrong_model.stderr
    wrong_env = driftloop(cli_env, "rollback", "weather", "--env", "qa", "--config", str(config))
    assert wrong_env.returncode == 2 and "unknown environment 'qa'" in wrong_env.stderr


def enter_dev(config: Path) -> None:
    from service.config_file import load_config
    from service.registry import Registry

    add_dev_champion(Registry(load_config(config)))


def test_promote_approve_and_rollback_move_aliases_at_once_and_models_shows_where_each_version_stands(
    cli_env: dict[str, str], world: Callable[..., Path]
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    # given a model whose webhook nobody listens on
    config = world(n_batches=1, drift_at=2)
    env = {**cli_env, "DRIFTLOOP_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
    moves = [("promote", "--to", "staging"), ("promote", "--to", "prod"), ("approve", "--env", "prod")]
    # when two versions in turn are promoted to prod and approved there, and prod is rolled back
    results = []
    for _ in range(2):
        enter_dev(config)
        results += [driftloop(env, command, "weather", *where, "--config", str(config)) for command, *where in moves]
    results.append(driftloop(env, "rollback", "weather", "--env", "prod", "--config", str(config)))
    # then every move succeeded, warning that the webhook was not told
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "warning: webhook to http://127.0.0.1:9/hook not delivered" in result.stderr
    assert "weather-prod/1 is @champion again (v2 rolled back)" in results[-1].stdout
    # and the listing gives each version its aliases and a status that agrees with them
    listed = {
        e["env"]: {v["version"]: (v["status"], v["aliases"]) for v in e["versions"]}
        for e in models_json(env, config)["models"][0]["environments"]
    }
    assert listed["staging"] == {"1": ("previous", ["previous"]), "2": ("champion", ["champion"])}
    assert listed["prod"] == {"1": ("champion", ["champion"]), "2": ("rolled_back", [])}
    # and no move started a flow run (each would have started a Prefect server first)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["promote"])))
    assert [run for run in runs if run.parameters.get("config_path") == str(config)] == []
    # and a move with nothing to do still exits 2 with the reason
    again = driftloop(env, "rollback", "weather", "--env", "prod", "--config", str(config))
    assert again.returncode == 2 and "no @previous version" in again.stderr


def test_reject_turns_down_the_waiting_version_with_its_note_and_exits_2_when_none_waits(
    cli_env: dict[str, str], world: Callable[..., Path]
) -> None:
    # given v1 approved in prod and v2 waiting there
    config = world(n_batches=1, drift_at=2)
    moves = [("promote", "--to", "staging"), ("promote", "--to", "prod")]
    for approve in (True, False):
        enter_dev(config)
        for command, *where in moves:
            assert driftloop(cli_env, command, "weather", *where, "--config", str(config)).returncode == 0
        if approve:
            assert driftloop(cli_env, "approve", "weather", "--env", "prod", "--config", str(config)).returncode == 0
    # when an operator rejects it, saying why
    rejected = driftloop(cli_env, "reject", "weather", "--env", "prod", "--note", "too slow", "--config", str(config))
    # then it is rejected and v1 stays prod's champion
    assert rejected.returncode == 0, rejected.stderr
    assert "weather-prod/2 rejected for prod; @champion unchanged" in rejected.stdout
    prod = next(e for e in models_json(cli_env, config)["models"][0]["environments"] if e["env"] == "prod")
    assert prod["aliases"] == {"champion": "1"}
    v2 = next(v for v in prod["versions"] if v["version"] == "2")
    assert v2["status"] == "rejected" and v2["tags"]["rejected_reason"] == "too slow"
    # and rejecting again, with nothing waiting, exits 2 saying so
    again = driftloop(cli_env, "reject", "weather", "--env", "prod", "--config", str(config))
    assert again.returncode == 2 and "no version awaits approval" in again.stderr


def test_help_answers_without_importing_the_heavy_libraries() -> None:
    # `driftloop --help` imports service.cli; Evidently, MLflow and Prefect must wait for a command
    code = (
        "import sys, service.cli; "
        "heavy = [m for m in ('evidently', 'mlflow', 'prefect', 'sklearn', 'pandas', 'pydantic') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
    assert subprocess.run([DRIFTLOOP, "--help"], capture_output=True, text=True).returncode == 0


def test_an_unexpected_error_exits_2_with_one_line_and_no_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import service.adhoc
    from service.cli import app

    # given a drift check that fails in a way nobody planned for
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the unexpected")

    monkeypatch.setattr(service.adhoc, "check_files", broken)
    # when it runs, then it exits 2 (not 1, which means drift) with one line naming the error
    result = CliRunner().invoke(app, ["drift", "--reference", "r.csv", "--current", "c.csv"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: RuntimeError: the unexpected"
    # and with -v the traceback is shown, with the same exit code
    verbose = CliRunner().invoke(app, ["-v", "drift", "--reference", "r.csv", "--current", "c.csv"])
    assert verbose.exit_code == 2 and "Traceback" in verbose.output


def test_verbose_after_the_command_shows_the_traceback_like_before_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import service.adhoc
    from service.cli import main

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the unexpected")

    monkeypatch.setattr(service.adhoc, "check_files", broken)
    outputs = {}
    for where, args in {"quiet": [], "after": ["-v"]}.items():
        # when the console script runs `driftloop drift ... [-v]`
        monkeypatch.setattr(sys, "argv", ["driftloop", "drift", "--reference", "r.csv", "--current", "c.csv", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 2
        outputs[where] = capsys.readouterr().err
    # then `-v` after the command shows the traceback, as it does before it
    assert "Traceback" not in outputs["quiet"] and "the unexpected" in outputs["quiet"]
    assert "Traceback" in outputs["after"]


def test_version_and_short_help_answer_at_once() -> None:
    from importlib.metadata import version

    shown = subprocess.run([DRIFTLOOP, "--version"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.strip() == f"driftloop {version('driftloop')}"
    short = subprocess.run([DRIFTLOOP, "promote", "-h"], capture_output=True, text=True)
    assert short.returncode == 0 and "Usage: driftloop promote" in short.stdout
    top = subprocess.run([DRIFTLOOP, "-h"], capture_output=True, text=True)
    assert top.returncode == 0 and "Usage: driftloop [OPTIONS] COMMAND" in top.stdout and "--version" in top.stdout
    verbose_after = subprocess.run([DRIFTLOOP, "demo", "-h", "-v"], capture_output=True, text=True)
    assert verbose_after.returncode == 0 and "Usage: driftloop demo" in verbose_after.stdout
