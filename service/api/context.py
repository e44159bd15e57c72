"""What every route group of the API shares: the settings, the models folder, the registry, the tokens."""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import DriftloopError
from service.fleet import ModelsDirectory
from service.settings import Config, Settings


def _tracking_uri(settings: Settings, configs: dict[str, Config]) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if settings.tracking_uri:
        return settings.tracking_uri
    for config in configs.values():
        return config.tracking_uri()
    raise DriftloopError("no MLflow tracking URI: set MLFLOW_TRACKING_URI or DRIFTLOOP_TRACKING_URI")


def _token_check(settings: Settings, required: bool) -> Any:
    bearer = HTTPBearer(auto_error=False, description="DRIFTLOOP_API_TOKEN")
    expected = settings.api_token.get_secret_value() if settings.api_token else None

    # A default, not Annotated[...]: with postponed annotations FastAPI cannot see the local `bearer`.
    def check(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if not required:
            return
        given = credentials.credentials if credentials else ""
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return Depends(check)


@dataclass
class ApiContext:
    """Built once per app. The models folder is read again when a model file changes."""

    settings: Settings
    models_dir: ModelsDirectory = field(init=False)
    tracking_uri: str = field(init=False)
    read: Any = field(init=False)  # the dependency guarding reads (a token only if api_protect_reads)
    write: Any = field(init=False)  # the dependency guarding changes (always a token)

    def __post_init__(self) -> None:
        self.models_dir = ModelsDirectory(self.settings.models_dir)
        self.tracking_uri = _tracking_uri(self.settings, self.models_dir.configs())
        self.read = _token_check(self.settings, required=self.settings.api_protect_reads)
        self.write = _token_check(self.settings, required=True)

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)

    def config_of(self, name: str) -> Config:
        configs = self.models_dir.configs()
        if name not in configs:
            raise HTTPException(404, f"no model named {name!r} is configured in {self.settings.models_dir}")
        return configs[name]

    def registry_of(self, name: str) -> Any:
        from service.registry import Registry

        return Registry(self.config_of(name))

    def own(self) -> dict[str, dict[str, Any]]:
        """Per model, the clients of its environments with a registry of their own: their aliases live there."""
        from service.registry import Registry

        configs = self.models_dir.configs()
        return {name: Registry(c).own_clients() for name, c in configs.items() if c.registry.environments}
