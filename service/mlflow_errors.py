"""What a failed MLflow call means for driftloop: a definite "not found", a refusal (the request is
wrong or not allowed: never retried), or a server that did not answer (retried)."""

from __future__ import annotations

from service.errors import RegistryError, RegistryUnavailable


def is_not_found(exc: Exception) -> bool:
    """MLflow's definite "does not exist" (a missing alias is reported as an invalid parameter)."""
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_DOES_NOT_EXIST" or (code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc))


def forbidden(exc: Exception) -> bool:
    """Whether MLflow's auth app refused the request (HTTP 403)."""
    cause = exc.__cause__
    return cause is not None and getattr(cause, "get_http_status_code", lambda: 0)() == 403


def classify(tracking_uri: str, what: str, exc: Exception) -> Exception:
    """The driftloop error for a failed MLflow call: unavailable (retry) unless MLflow refused the request."""
    status = exc.get_http_status_code() if hasattr(exc, "get_http_status_code") else 500
    if status >= 500 or status == 429:
        return RegistryUnavailable(f"MLflow at {tracking_uri} did not answer ({what}): {exc}")
    return RegistryError(f"MLflow at {tracking_uri} refused to {what}: {exc}")
