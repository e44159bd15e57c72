"""MLflow clients that carry their own credentials, so two registries with different owners share a process.

MLflow reads a server's credentials from the process-wide MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN
at each request. An environment with a registry of its own must not send the default registry's
credentials, nor change them for everyone else: its client is given its own ``MlflowHostCreds`` —
MLflow's REST stores take a function returning them, and its HTTP artifact repository is asked for them
through one property. TLS settings (MLFLOW_TRACKING_INSECURE_TLS, certificate paths) stay process-wide.
"""

from __future__ import annotations

import posixpath
from functools import partial
from typing import Any

from service.registry_config import Credentials

SERVED_ARTIFACTS = "/mlflow-artifacts/artifacts"


def host_creds(uri: str, credentials: Credentials) -> Any:
    """The host credentials MLflow's REST calls to ``uri`` use: these credentials, TLS from the process."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import MlflowHostCreds

    tls = get_default_host_creds(uri)
    return MlflowHostCreds(
        host=uri,
        username=credentials.username,
        password=credentials.password,
        token=credentials.token,
        ignore_tls_verification=tls.ignore_tls_verification,
        client_cert_path=tls.client_cert_path,
        server_cert_path=tls.server_cert_path,
    )


def make_client(tracking_uri: str, credentials: Credentials | None = None) -> Any:
    """An MlflowClient for ``tracking_uri``; with ``credentials``, every request it makes sends those."""
    from mlflow import MlflowClient
    from mlflow.store.model_registry.rest_store import RestStore as RegistryRestStore
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.tracking._model_registry.client import ModelRegistryClient
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    if credentials is None:
        return client
    creds = partial(host_creds, tracking_uri, credentials)

    class _Tracking(TrackingServiceClient):
        store = RestStore(creds)

        def _get_artifact_repo(self, resource_id: str, *, resource: str = "run") -> Any:
            if resource != "run":
                return super()._get_artifact_repo(resource_id, resource=resource)
            return artifact_repository(self.get_run(resource_id).info.artifact_uri, tracking_uri, credentials)

    class _Registry(ModelRegistryClient):
        store = RegistryRestStore(creds)

    client._tracking_client = _Tracking(tracking_uri)
    client._registry_client_lazy = _Registry(tracking_uri, tracking_uri)  # the attribute MlflowClient caches it in
    return client


def artifact_repository(artifact_uri: str, tracking_uri: str, credentials: Credentials | None = None) -> Any:
    """The artifact repository of ``artifact_uri``; a server's proxied artifacts get ``credentials``."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if credentials is None or not artifact_uri.startswith(("mlflow-artifacts:", "http://", "https://")):
        return get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)
    return _served_artifacts_class()(artifact_uri, tracking_uri, credentials)


def _served_artifacts_class() -> type:
    from mlflow.entities import FileInfo
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
    from mlflow.utils.request_utils import augmented_raise_for_status
    from mlflow.utils.rest_utils import http_request

    class CredentialedArtifacts(HttpArtifactRepository):
        """A tracking server's proxied artifacts, every request sent with this registry's credentials.

        Multipart transfers stay off: their requests fetch the process-wide credentials."""

        def __init__(self, artifact_uri: str, tracking_uri: str, credentials: Credentials) -> None:
            if artifact_uri.startswith("mlflow-artifacts:"):
                artifact_uri = MlflowArtifactsRepository.resolve_uri(artifact_uri, tracking_uri)
            super().__init__(artifact_uri, tracking_uri=tracking_uri)
            self._credentials = credentials

        @property
        def _host_creds(self) -> Any:
            return host_creds(self.artifact_uri, self._credentials)

        def _is_multipart_upload_enabled(self) -> bool:
            return False

        def list_artifacts(self, path: str | None = None) -> list[Any]:
            # MLflow's own list_artifacts fetches the process-wide credentials; the same request with ours.
            url, tail = self.artifact_uri.split(SERVED_ARTIFACTS, maxsplit=1)
            root = tail.lstrip("/")
            params = {"path": posixpath.join(root, path) if path else root}
            response = http_request(host_creds(url, self._credentials), SERVED_ARTIFACTS, "GET", params=params)
            augmented_raise_for_status(response)
            infos = [
                FileInfo(posixpath.join(path, f["path"]) if path else f["path"], f["is_dir"], f.get("file_size"))
                for f in response.json().get("files", [])
            ]
            single = len(infos) == 1 and not infos[0].is_dir and path is not None
            if single and infos[0].path == posixpath.join(path, posixpath.basename(path)):
                return []  # MLflow's contract: listing a file gives nothing
            return sorted(infos, key=lambda info: info.path)

    return CredentialedArtifacts
