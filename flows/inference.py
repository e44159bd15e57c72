"""The batch-inference flow: score a batch with an environment's champion."""

from __future__ import annotations

from prefect import flow

from flows import tasks
from service import inference


@flow(name="batch-inference")
def batch_inference(config_path: str, env: str, input_uri: str, output_uri: str) -> inference.ScoringSummary:
    _, registry = tasks.load(config_path)
    return inference.score_batch(registry, env, input_uri, output_uri)
