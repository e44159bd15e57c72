"""Champion/challenger comparison on the same fresh holdout, and the gate that decides promotion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.model_selection import train_test_split

from service.contracts import DataContract
from service.errors import ConfigError
from service.settings import Config

Scorer = Callable[[object, pd.DataFrame, pd.Series], float]


def _labels(model: object, features: pd.DataFrame) -> np.ndarray:
    return model.predict(features)  # type: ignore[attr-defined]


def _roc_auc(model: object, features: pd.DataFrame, target: pd.Series) -> float:
    proba = model.predict_proba(features)  # type: ignore[attr-defined]
    classes = list(model.classes_)  # type: ignore[attr-defined]
    if len(classes) == 2:
        return float(metrics.roc_auc_score(target, proba[:, 1]))
    return float(metrics.roc_auc_score(target, proba, multi_class="ovr", labels=classes))


# Every metric is "higher is better", so the gate needs no per-metric direction.
METRICS: dict[str, Scorer] = {
    "accuracy": lambda m, x, y: float(metrics.accuracy_score(y, _labels(m, x))),
    "balanced_accuracy": lambda m, x, y: float(metrics.balanced_accuracy_score(y, _labels(m, x))),
    "f1_macro": lambda m, x, y: float(metrics.f1_score(y, _labels(m, x), average="macro")),
    "roc_auc": _roc_auc,
    "r2": lambda m, x, y: float(metrics.r2_score(y, _labels(m, x))),
    "neg_rmse": lambda m, x, y: -float(metrics.root_mean_squared_error(y, _labels(m, x))),
    "neg_mae": lambda m, x, y: -float(metrics.mean_absolute_error(y, _labels(m, x))),
}


def score(model: object, frame: pd.DataFrame, contract: DataContract, metric: str) -> float:
    if metric not in METRICS:
        raise ConfigError(f"evaluation.metric: unknown metric {metric!r}: expected one of {sorted(METRICS)}")
    return METRICS[metric](model, frame[contract.feature_names], frame[contract.target])


def split_holdout(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the configured share of the fresh data, stratified for classification when possible."""
    target = frame[config.model.target]
    stratify = None
    if config.model.task == "classification" and target.value_counts().min() >= 2:
        stratify = target
    train, holdout = train_test_split(
        frame,
        test_size=config.evaluation.holdout,
        random_state=config.training.random_state,
        stratify=stratify,
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    metric: str
    challenger_score: float
    champion_score: float | None
    min_gain: float
    reason: str
    mode: str
    slice_regressions: dict[str, float] = field(default_factory=dict)

    @property
    def promote(self) -> bool:
        """Whether the challenger goes on: the gate's verdict unless the mode only watches it."""
        return self.passed or self.mode in ("dry_run", "disabled")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _slice_regressions(
    challenger: object, champion: object, holdout: pd.DataFrame, contract: DataContract, config: Config
) -> dict[str, float]:
    """Slices (column=value) in which the challenger scores worse than the champion by too much."""
    worse = {}
    for column in config.evaluation.slice_by:
        if column not in holdout.columns:
            raise ConfigError(f"evaluation.slice_by: column {column!r} is not in the data")
        for value, part in holdout.groupby(column):
            if len(part) < 20 or part[contract.target].nunique() < 2:
                continue  # too small or too pure to score meaningfully
            metric = config.metric
            drop = score(champion, part, contract, metric) - score(challenger, part, contract, metric)
            if drop > config.evaluation.max_slice_regression:
                worse[f"{column}={value}"] = round(drop, 6)
    return worse


def evaluate_gate(
    challenger: object, champion: object | None, holdout: pd.DataFrame, contract: DataContract, config: Config
) -> GateDecision:
    """Score both models on the same holdout and decide whether the challenger may replace the champion."""
    metric, min_gain, mode = config.metric, config.evaluation.min_gain, config.evaluation.mode
    challenger_score = score(challenger, holdout, contract, metric)
    if champion is None:
        return GateDecision(True, metric, challenger_score, None, min_gain, "no champion yet", mode)
    champion_score = score(champion, holdout, contract, metric)
    gain = challenger_score - champion_score
    slices = _slice_regressions(challenger, champion, holdout, contract, config)
    if gain < min_gain:
        reason = (
            f"{metric} {challenger_score:.4f} vs champion {champion_score:.4f}: gain {gain:+.4f} "
            f"is below the required {min_gain:+.4f}"
        )
        passed = False
    elif slices:
        limit = config.evaluation.max_slice_regression
        reason = f"{metric} regresses by more than {limit} in slices {slices}"
        passed = False
    else:
        reason = f"{metric} {challenger_score:.4f} vs champion {champion_score:.4f}: gain {gain:+.4f}"
        passed = True
    return GateDecision(passed, metric, challenger_score, champion_score, min_gain, reason, mode, slices)
