"""Champion/challenger comparison on the same fresh holdout, and the gate that decides promotion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType

import numpy as np
import pandas as pd

from service.contracts import DataContract
from service.errors import ConfigError
from service.settings import Config

Scorer = Callable[[object, pd.DataFrame, pd.Series], float]


def _metrics() -> ModuleType:
    # scikit-learn takes about a second to import: a monitor pass that trains nothing never pays it.
    from sklearn import metrics

    return metrics


def _labels(model: object, features: pd.DataFrame) -> np.ndarray:
    return model.predict(features)  # type: ignore[attr-defined]


def _roc_auc(model: object, features: pd.DataFrame, target: pd.Series) -> float:
    proba = model.predict_proba(features)  # type: ignore[attr-defined]
    classes = list(model.classes_)  # type: ignore[attr-defined]
    if len(classes) == 2:
        return float(_metrics().roc_auc_score(target, proba[:, 1]))
    return float(_metrics().roc_auc_score(target, proba, multi_class="ovr", labels=classes))


# Every metric is "higher is better", so the gate needs no per-metric direction.
METRICS: dict[str, Scorer] = {
    "accuracy": lambda m, x, y: float(_metrics().accuracy_score(y, _labels(m, x))),
    "balanced_accuracy": lambda m, x, y: float(_metrics().balanced_accuracy_score(y, _labels(m, x))),
    "f1_macro": lambda m, x, y: float(_metrics().f1_score(y, _labels(m, x), average="macro")),
    "roc_auc": _roc_auc,
    "r2": lambda m, x, y: float(_metrics().r2_score(y, _labels(m, x))),
    "neg_rmse": lambda m, x, y: -float(_metrics().root_mean_squared_error(y, _labels(m, x))),
    "neg_mae": lambda m, x, y: -float(_metrics().mean_absolute_error(y, _labels(m, x))),
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
    from sklearn.model_selection import train_test_split

    train, holdout = train_test_split(
        frame,
        test_size=config.evaluation.holdout,
        random_state=config.training.random_state,
        stratify=stratify,
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


# A slice smaller than this, or with a single target value, gives a score too noisy to hold a model back.
MIN_SLICE_ROWS = 20
DRY_RUN_OVERRIDE = "; dry_run: promoted anyway"


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
    skipped_slices: dict[str, str] = field(default_factory=dict)  # "column=value" -> why it was not judged
    overridden: bool = False  # dry_run promoted a challenger that failed the gate
    champion_version: str | None = None  # the version it was judged against (set by whoever loaded it)

    @property
    def promote(self) -> bool:
        """Whether the challenger goes on: the gate's verdict unless the mode only watches it."""
        return self.passed or self.mode in ("dry_run", "disabled")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Slices:
    regressions: dict[str, float]
    skipped: dict[str, str]


def _too_small(part: pd.DataFrame, target: str) -> str | None:
    if len(part) < MIN_SLICE_ROWS:
        return f"{len(part)} rows, fewer than {MIN_SLICE_ROWS}"
    if part[target].nunique() < 2:
        return f"one target value only: {part[target].iloc[0]}"
    return None


def _judge_slices(
    challenger: object, champion: object, holdout: pd.DataFrame, contract: DataContract, config: Config
) -> _Slices:
    """Slices (column=value) in which the challenger scores worse than the champion by too much, and the
    slices too small to judge (reported, so that a gate never looks stricter than it was)."""
    worse, skipped = {}, {}
    for column in config.evaluation.slice_by:
        if column not in holdout.columns:
            raise ConfigError(f"evaluation.slice_by: column {column!r} is not in the data")
        for value, part in holdout.groupby(column):
            name = f"{column}={value}"
            if why := _too_small(part, contract.target):  # type: ignore[arg-type]
                skipped[name] = why
                continue
            metric = config.metric
            drop = score(champion, part, contract, metric) - score(challenger, part, contract, metric)
            if drop > config.evaluation.max_slice_regression:
                worse[name] = round(drop, 6)
    return _Slices(worse, skipped)


def _verdict(challenger_score: float, champion_score: float, slices: _Slices, config: Config) -> tuple[bool, str]:
    metric, min_gain = config.metric, config.evaluation.min_gain
    gain = challenger_score - champion_score
    if gain < min_gain:
        return False, (
            f"{metric} {challenger_score:.4f} vs champion {champion_score:.4f}: gain {gain:+.4f} "
            f"is below the required {min_gain:+.4f}"
        )
    if slices.regressions:
        limit = config.evaluation.max_slice_regression
        return False, f"{metric} regresses by more than {limit} in slices {slices.regressions}"
    return True, f"{metric} {challenger_score:.4f} vs champion {champion_score:.4f}: gain {gain:+.4f}"


def evaluate_gate(
    challenger: object, champion: object | None, holdout: pd.DataFrame, contract: DataContract, config: Config
) -> GateDecision:
    """Score both models on the same holdout and decide whether the challenger may replace the champion.

    ``evaluation.mode: disabled`` compares nothing: the champion is not scored, no slice is judged, and
    the challenger's score is still computed so that the training run records how good it was.
    """
    metric, min_gain, mode = config.metric, config.evaluation.min_gain, config.evaluation.mode
    challenger_score = score(challenger, holdout, contract, metric)
    if mode == "disabled":
        reason = "evaluation disabled (evaluation.mode: disabled): promoted without comparing with the champion"
        return GateDecision(True, metric, challenger_score, None, min_gain, reason, mode)
    if champion is None:
        return GateDecision(True, metric, challenger_score, None, min_gain, "no champion yet", mode)
    champion_score = score(champion, holdout, contract, metric)
    slices = _judge_slices(challenger, champion, holdout, contract, config)
    passed, reason = _verdict(challenger_score, champion_score, slices, config)
    if slices.skipped:
        reason += f"; slices too small to judge: {slices.skipped}"
    overridden = not passed and mode == "dry_run"
    if overridden:
        reason += DRY_RUN_OVERRIDE
    return GateDecision(
        passed,
        metric,
        challenger_score,
        champion_score,
        min_gain,
        reason,
        mode,
        slice_regressions=slices.regressions,
        skipped_slices=slices.skipped,
        overridden=overridden,
    )
