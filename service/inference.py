"""Batch scoring with an environment's champion (``models:/<model>-<env>@champion``)."""

from __future__ import annotations

from dataclasses import dataclass

from service.contracts import conform, contract_from_dict, validate_batch
from service.data import read_frame, write_frame
from service.errors import RegistryError
from service.registry import CHAMPION, CONTRACT_PATH, Registry

PREDICTION_COLUMN = "prediction"


@dataclass(frozen=True)
class ScoringSummary:
    model_uri: str
    version: str
    rows: int
    output_uri: str


def score_batch(registry: Registry, env: str, input_uri: str, output_uri: str) -> ScoringSummary:
    """Validate the input against the champion's contract (labels optional) and write predictions."""
    champion = registry.at_alias(env, CHAMPION)
    if champion is None:
        raise RegistryError(f"{registry.name(env)} has no @champion: promote or approve a version first")
    contract = contract_from_dict(registry.run_dict(champion.run_id, CONTRACT_PATH, champion.env))
    frame = read_frame(input_uri)
    validate_batch(frame, contract, input_uri, require_target=False)
    model = registry.load_version(champion)
    scored = frame.copy()
    scored[PREDICTION_COLUMN] = model.predict(conform(frame, contract)[contract.feature_names])  # type: ignore[attr-defined]
    write_frame(scored, output_uri)
    return ScoringSummary(champion.uri, champion.version, len(scored), output_uri)
