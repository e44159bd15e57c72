"""The README is the front door: its config example must load and its commands must exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from service.cli import app
from service.settings import Config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_config_example_is_valid_and_shows_the_defaults() -> None:
    block = re.search(r"```yaml\n(model:.*?)```", README, re.S)
    assert block, "README has a yaml block starting with `model:`"
    example = Config.model_validate(yaml.safe_load(block.group(1)))
    defaults = Config.model_validate({"model": example.model.model_dump(), "data": example.data.model_dump()})
    # every value shown for the optional sections is the real default
    assert example.model_dump(exclude={"model", "data"}) == defaults.model_dump(exclude={"model", "data"})


def test_every_command_in_the_readme_table_exists() -> None:
    commands = set(re.findall(r"^\| `driftloop (\w+)", README, re.M))
    assert commands == {
        "demo",
        "run",
        "check",
        "retrain",
        "batches",
        "drift",
        "models",
        "promote",
        "approve",
        "reject",
        "rollback",
        "predict",
        "serve",
    }
    for command in commands:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)
