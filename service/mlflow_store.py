"""One MLflow server as driftloop talks to it: its own client and credentials, and what a failure means.

Only a definite "not found" from MLflow means absent; any other failure to ask is a
``RegistryUnavailable`` (retried) or, when the server refused, a ``RegistryError``. Messages name the
server and, for an environment with a registry of its own, the environment and its credentials' source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from service.errors import RegistryError, RegistryUnavailable
from service.mlflow_clients import artifact_repository, make_client
from service.mlflow_errors import classify, is_not_found
from service.registry_config import Credentials

T = TypeVar("T")


class Store:
    """An MLflow tracking server and model registry, through a client of its own."""

    def __init__(self, tracking_uri: str, env: str | None = None, credentials: Credentials | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.env = env
        self.credentials = credentials
        self.client = make_client(tracking_uri, credentials)
        own = f" (the registry of environment {env!r}, {credentials.source})" if env and credentials else ""
        self.label = f"{tracking_uri}{own}"

    def ask(self, what: str, call: Callable[[], T]) -> T:
        """Run one MLflow call; a failure becomes RegistryUnavailable or RegistryError, naming the server."""
        from mlflow.exceptions import MlflowException

        try:
            return call()
        except MlflowException as exc:
            raise classify(self.label, what, exc) from exc
        except FileNotFoundError as exc:  # a local store's artifact that is not there: a definite answer
            raise RegistryError(f"MLflow at {self.label}: cannot {what}: {exc}") from exc
        except OSError as exc:  # requests' connection errors and timeouts are OSErrors
            if _refused(exc):  # an artifact request the server answered with 4xx (a wrong credential: 401)
                raise RegistryError(f"MLflow at {self.label} refused to {what}: {exc}") from exc
            raise RegistryUnavailable(f"MLflow at {self.label} did not answer ({what}): {exc}") from exc

    def lookup(self, what: str, call: Callable[[], T]) -> T | None:
        """Like ``ask``, but a definite "not found" is None: the one answer that means absent."""
        from mlflow.exceptions import MlflowException

        try:
            return self.ask(what, call)
        except (RegistryError, RegistryUnavailable) as exc:
            cause = exc.__cause__
            if isinstance(cause, MlflowException) and is_not_found(cause):
                return None
            raise

    def artifacts(self, artifact_uri: str) -> Any:
        """The artifact repository at ``artifact_uri`` (a run's root), spoken to with this store's credentials."""
        return artifact_repository(artifact_uri, self.tracking_uri, self.credentials)


def _refused(exc: OSError) -> bool:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status is not None and status < 500 and status != 429
