"""One exception hierarchy for driftloop.

Every message names the file, column or key at fault and what was expected, so that a user can fix
the input without reading code. Two kinds never mix: bad input (a config key, a column, a missing
version) is permanent and never retried; an ``InfrastructureError`` (a server down, a timeout, a 5xx)
says nothing about the input, is retried with backoff, and must never be read as an answer. The CLI
exits 2 for bad input and 3 for infrastructure.
"""

from __future__ import annotations


class DriftloopError(Exception):
    """Base of every error driftloop raises on purpose."""


class ConfigError(DriftloopError):
    """The model configuration file is missing, malformed or invalid."""


class DataSourceError(DriftloopError):
    """A batch or reference could not be found or read."""


class ContractViolation(DriftloopError):
    """A batch does not satisfy the model's data contract."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source} breaks the data contract:\n{lines}")


class RegistryError(DriftloopError):
    """The model registry is missing something an operation needs (a model, version or alias)."""


class PromotionError(DriftloopError):
    """A promotion, approval or rollback cannot be carried out."""


class InfrastructureError(DriftloopError):
    """A service driftloop depends on did not answer (unreachable, timed out, 5xx or 429): retry it.

    Never read as "absent" or "no": a lookup that could not ask has no answer."""


class RegistryUnavailable(InfrastructureError):
    """The MLflow tracking server or model registry could not be asked."""


class DataSourceUnavailable(InfrastructureError):
    """A batch's storage (a file system, S3...) failed for a reason other than the data itself."""


class ComputeUnavailable(InfrastructureError):
    """The Dask cluster a check runs on could not be reached, or lost the check's work beyond its retries."""


def is_transient(exc: BaseException | object) -> bool:
    """Whether trying again may help: a dependency's failure, not anything about the input.

    Our own errors say which they are; of the rest, only network-level failures count (a raw
    ``ValueError`` or ``KeyError`` is a bug or bad input, and stays one however often it is retried)."""
    if isinstance(exc, InfrastructureError):
        return True
    if isinstance(exc, DriftloopError) or not isinstance(exc, BaseException):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    # httpx, requests, botocore and aiohttp name their network failures alike, and share no base class.
    return any(word in type(exc).__name__ for word in _TRANSIENT_WORDS)


_TRANSIENT_WORDS = ("Timeout", "Connect", "Unavailable", "Throttl", "RemoteProtocol", "ReadError")
