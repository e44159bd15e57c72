"""Prometheus metrics per configured model, read from MLflow at scrape time (cached briefly)."""

from __future__ import annotations

import time
from typing import Any

from service.history import ModelCounts, model_counts
from service.settings import Config

_CACHE_SECONDS = 15.0
_cache: dict[str, tuple[float, ModelCounts]] = {}


def _counts(client: Any, config: Config) -> ModelCounts:
    # Counting runs reads the whole history: scrapes every few seconds must not repeat it each time.
    name = config.model.name
    cached = _cache.get(name)
    if cached and time.monotonic() - cached[0] < _CACHE_SECONDS:
        return cached[1]
    envs = [(env, config.registered_name(env)) for env in config.environments]
    counts = model_counts(client, name, envs)
    _cache[name] = (time.monotonic(), counts)
    return counts


def render_metrics(client: Any, configs: dict[str, Config]) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Collector:
        def collect(self) -> Any:
            families = {
                "checks": CounterMetricFamily("driftloop_drift_checks", "Drift checks recorded", labels=["model"]),
                "drifts": CounterMetricFamily("driftloop_drifts", "Checks that found dataset drift", labels=["model"]),
                "retrains": CounterMetricFamily("driftloop_trainings", "Training runs", labels=["model"]),
                "rejections": CounterMetricFamily(
                    "driftloop_rejections", "Challengers the gate rejected", labels=["model"]
                ),
            }
            promotions = CounterMetricFamily("driftloop_promotions", "Versions made champion", labels=["model", "env"])
            share = GaugeMetricFamily(
                "driftloop_last_drift_share", "Share of drifted columns in the latest check", labels=["model"]
            )
            for name, config in configs.items():
                counts = _counts(client, config)
                for key, family in families.items():
                    family.add_metric([name], getattr(counts, key))
                for env, value in counts.promotions.items():
                    promotions.add_metric([name, env], value)
                if counts.last_drift_share is not None:
                    share.add_metric([name], counts.last_drift_share)
            yield from [*families.values(), promotions, share]

    registry = CollectorRegistry()
    registry.register(Collector())
    return generate_latest(registry)
