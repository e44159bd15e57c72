"""One exception hierarchy for driftloop.

Every message names the file, column or key at fault and what was expected, so that a user can fix
the input without reading code. The CLI maps every ``DriftloopError`` to exit code 2.
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
