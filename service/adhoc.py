"""Ad-hoc drift check of two files, with no model config: what ``driftloop drift`` runs."""

from __future__ import annotations

from service.contracts import conform, contract_for_columns, validate_batch
from service.data import list_batches, read_window
from service.drift.check import check_drift
from service.drift.result import DriftResult
from service.settings import DriftSection


def check_files(reference_uri: str, current_uri: str, ignore: list[str], settings: DriftSection) -> DriftResult:
    """Compare every column but ``ignore``; column kinds are taken from the reference."""
    reference = read_window(list_batches(reference_uri))
    contract = contract_for_columns(reference, ignore, reference_uri)
    current = read_window(list_batches(current_uri))
    validate_batch(current, contract, current_uri, require_target=False)
    return check_drift(
        conform(reference, contract),
        conform(current, contract),
        numerical=contract.numerical,
        categorical=contract.categorical,
        settings=settings,
    )
