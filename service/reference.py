"""The reference a batch is checked against: the current champion's training window, the contract drawn
from it and, for a champion trained since profiles are stored, its stored profile and report sample."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from service.contracts import DataContract, conform, contract_from_dict, validate_batch
from service.data import read_window
from service.drift.check import ReferenceProfile, profile_reference
from service.progress import step
from service.registry import CHAMPION, CONTRACT_PATH, LINEAGE_PATH, Registry
from service.stored_reference import StoredReference, stored_reference


@dataclass(frozen=True)
class Reference:
    """The data the current champion learned from, and the contract drawn from it.

    A champion trained since profiles are stored has its profile and a report sample kept with it
    (``stored``): a check downloads the profile and never reads the window. Otherwise the window is read,
    only when a batch is to be checked: a pass with nothing new reads no data."""

    run_id: str
    version: str
    uris: tuple[str, ...]
    contract: DataContract
    stored: StoredReference | None = None

    @property
    def frame(self) -> pd.DataFrame:  # the whole window, read on demand (the evidently engine needs it)
        return _prepared_reference(self.uris, self.contract)[0]

    @property
    def profile(self) -> ReferenceProfile:
        return self.stored.profile() if self.stored else _prepared_reference(self.uris, self.contract)[1]

    @property
    def rows(self) -> int:
        return self.stored.rows if self.stored else len(self.frame)

    def report_sample(self) -> pd.DataFrame:  # the stored sample, or the window of a champion without one
        return self.stored.sample() if self.stored else self.frame


@lru_cache(maxsize=4)
def _prepared_reference(uris: tuple[str, ...], contract: DataContract) -> tuple[pd.DataFrame, ReferenceProfile]:
    # A champion's window is read, checked and profiled once per process, not once per batch.
    step("reading the champion's training data: %s", file_names(uris))
    # Parquet strings as categories: the cached window holds a code per row, not a string per row.
    frame = read_window(list(uris), categories=True)
    validate_batch(frame, contract, ", ".join(uris), require_target=True)
    frame = conform(frame, contract)
    return frame, profile_reference(frame, contract.numerical, contract.categorical)


def current_reference(registry: Registry) -> Reference | None:
    """The first environment's champion and its training window, or None before the first training."""
    champion = registry.at_alias(registry.config.environments[0], CHAMPION)
    return None if champion is None else reference_of(registry, champion.run_id, champion.version)


def reference_of(registry: Registry, run_id: str, version: str = "") -> Reference:
    """The reference a training run makes: its window, the contract stored with it (not one re-drawn
    from data that may have changed since) and, when it has one, its stored profile."""
    lineage, contract = registry.run_dict(run_id, LINEAGE_PATH), registry.run_dict(run_id, CONTRACT_PATH)
    uris = tuple(str(uri) for uri in lineage["training_data"])  # type: ignore[attr-defined]
    return Reference(run_id, version, uris, contract_from_dict(contract), stored_reference(registry, run_id, lineage))


def file_names(uris: tuple[str, ...] | list[str]) -> str:
    """The files' names without their folders, for progress lines."""
    return ", ".join(uri.rstrip("/").rsplit("/", 1)[-1] for uri in uris)
