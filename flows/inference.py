"""The batch-inference flow: score a batch with an environment's champion."""

from __future__ import annotations

from prefect import flow

from service import inference
from service.config_file import load_config
from service.registry import Registry


@flow(name="batch-inference")
def batch_inference(config_path: str, env: str, input_uri: str, output_uri: str) -> inference.ScoringSummary:
    registry = Registry(load_config(config_path))
    return inference.score_batch(registry, env, input_uri, output_uri)
