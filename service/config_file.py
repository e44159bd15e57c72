"""Reading a model configuration file: YAML into a validated ``Config``, naming the key at fault on error."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from service.errors import ConfigError
from service.settings import Config


def _describe(error: ValidationError, path: Path) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key")
        elif item["type"] == "missing":
            lines.append(f"  - {key}: required key is missing")
        else:
            lines.append(f"  - {key}: {item['msg']} (got {item.get('input')!r})")
    return f"{path} is not a valid driftloop config:\n" + "\n".join(lines)


def load_config(path: str | Path) -> Config:
    """Read and validate a model configuration file, naming the key at fault on error."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with `model` and `data` sections")
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    config.source = path.resolve()
    return config
