"""The chart's README is enough to install: its values example renders, and every model config the
README and the examples show is a valid driftloop config, keyed by its model's name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, helm_template

README = (CHART / "README.md").read_text()


def readme_values_blocks() -> list[dict[str, Any]]:
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", README, re.S)]
    return [block for block in blocks if isinstance(block, dict)]


def test_the_readme_install_values_render(tmp_path: Path) -> None:
    install = next(block for block in readme_values_blocks() if "models" in block and "image" in block)
    values = tmp_path / "my-values.yaml"
    values.write_text(yaml.safe_dump(install))
    result = helm_template("--values", str(values))
    assert result.returncode == 0, result.stderr
    assert "registry.example.com/driftloop:0.1.0" in result.stdout
    assert '"claimName": "driftloop-data"' in result.stdout  # mounted in flow runs, through the base job template


def test_every_readme_values_snippet_is_valid_for_the_chart(tmp_path: Path) -> None:
    for index, block in enumerate(readme_values_blocks()):
        values = tmp_path / f"snippet-{index}.yaml"
        values.write_text(yaml.safe_dump(block))
        result = helm_template("--values", str(values))
        assert result.returncode == 0, f"README snippet {block}: {result.stderr}"


def model_configs() -> list[tuple[str, str, dict[str, Any]]]:
    """(where, key, config) of every model config of the README and the ci/ examples."""
    found = []
    for block in readme_values_blocks():
        found += [(f"README models.{key}", key, config) for key, config in (block.get("models") or {}).items()]
    for path in sorted((CHART / "ci").glob("*.yaml")):
        models = (yaml.safe_load(path.read_text()) or {}).get("models") or {}
        found += [(f"ci/{path.name} models.{key}", key, config) for key, config in models.items()]
    return found


@pytest.mark.parametrize(("where", "key", "config"), model_configs(), ids=[where for where, *_ in model_configs()])
def test_every_model_config_shown_is_a_valid_driftloop_config(where: str, key: str, config: dict[str, Any]) -> None:
    from service.settings import Config

    # The file /etc/driftloop/models/<key>.yaml is named after its model, as the README asks.
    assert Config.model_validate(config).model.name == key, where


def test_the_readme_shows_a_fleet_and_how_to_sweep_now() -> None:
    fleet = next(block for block in readme_values_blocks() if "fleet" in block)
    assert len(fleet["models"]) >= 2
    assert set(fleet["fleet"]) == {"sweepIntervalSeconds", "monitorConcurrency", "retrainConcurrency"}
    assert "prefect deployment run sweep/sweep" in README
