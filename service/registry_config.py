"""The ``registry`` section of a model file: the default MLflow registry and environments with their own.

Part of the model file schema (``service.settings.Config``), kept apart so settings.py stays short.
An environment listed under ``environments`` lives in its own MLflow server, with its own credentials
(named by ``credentials_env``, never MLflow's process-wide MLFLOW_TRACKING_* variables, which belong
to the default registry); every other environment uses the default registry.
"""

from __future__ import annotations

import os
import string

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.errors import ConfigError

CREDENTIAL_SUFFIXES = ("TRACKING_USERNAME", "TRACKING_PASSWORD", "TRACKING_TOKEN")


class RegistryEnvironment(BaseModel):
    """One environment's own MLflow registry."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = Field(description="This environment's MLflow tracking server (http:// or https://).")
    credentials_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Prefix of the variables holding its credentials: <PREFIX>_TRACKING_USERNAME, "
        "_TRACKING_PASSWORD, _TRACKING_TOKEN. Unset: no credentials are sent.",
    )

    @field_validator("tracking_uri")
    @classmethod
    def _a_server(cls, value: str) -> str:
        # Copies cross servers by MLflow's REST API; a local store has no network identity to record.
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// MLflow server, got {value!r}")
        return value.rstrip("/")


class Credentials(BaseModel):
    """What the client of one environment's registry sends, read from <PREFIX>_TRACKING_* variables."""

    model_config = ConfigDict(frozen=True)

    username: str | None = None
    password: str | None = None
    token: str | None = None
    source: str = "no credentials"  # how a message names where they came from

    @classmethod
    def from_env(cls, prefix: str | None, key: str) -> Credentials:
        """The credentials under ``prefix``; a prefix with none of its variables set is a ConfigError."""
        if prefix is None:
            return cls()
        names = [f"{prefix}_{suffix}" for suffix in CREDENTIAL_SUFFIXES]
        values = [os.environ.get(name) or None for name in names]
        if not any(values):
            raise ConfigError(f"{key}: none of {', '.join(names)} is set: expected a username and password or a token")
        return cls(username=values[0], password=values[1], token=values[2], source=f"credentials {prefix}_TRACKING_*")


class RegistrySection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_uri: str | None = Field(
        default=None, description="The default MLflow registry of every environment; MLFLOW_TRACKING_URI wins."
    )
    artifact_root: str | None = Field(
        default=None, description="Where new experiments keep artifacts; default: beside a local store."
    )
    name_template: str = Field(default="{model}-{env}", description="Registered model name per env.")
    environments: dict[str, RegistryEnvironment] = Field(
        default_factory=dict, description="Environments with a registry of their own (a separate MLflow server)."
    )

    @field_validator("name_template")
    @classmethod
    def _has_placeholders(cls, value: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        if fields != {"model", "env"}:
            raise ValueError(f"must use exactly the placeholders {{model}} and {{env}}, found {sorted(fields)}")
        return value

    def check_environments(self, environments: list[str]) -> None:
        """Each entry names a configured environment, and the first one trains into the default registry."""
        unknown = sorted(set(self.environments) - set(environments))
        if unknown:
            raise ValueError(f"registry.environments has environments not in `environments`: {unknown}")
        if environments[0] in self.environments:
            raise ValueError(
                f"registry.environments.{environments[0]}: the first environment holds the training runs and "
                "lives in the default registry; set registry.tracking_uri instead"
            )

    def credentials(self, env: str) -> Credentials:
        own = self.environments[env]
        return Credentials.from_env(own.credentials_env, f"registry.environments.{env}.credentials_env")
