"""Building and fitting the scikit-learn pipeline a config describes."""

from __future__ import annotations

import importlib
import inspect

import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from service.contracts import DataContract
from service.errors import ConfigError
from service.settings import Config


def _estimator_class(path: str) -> type[BaseEstimator]:
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(
            f"model.estimator: cannot import {path!r}: expected a dotted class path "
            "such as sklearn.ensemble.HistGradientBoostingClassifier"
        ) from None
    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
        raise ConfigError(f"model.estimator: {path!r} is not a scikit-learn estimator class")
    return cls


def build_estimator(config: Config) -> BaseEstimator:
    cls = _estimator_class(config.model.estimator_path)
    params = dict(config.model.params)
    # A fixed seed makes a retrain reproducible from its lineage (data hashes + config).
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = config.training.random_state
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"model.params: not accepted by {config.model.estimator_path}: {exc}") from None


def build_pipeline(config: Config, contract: DataContract) -> Pipeline:
    """Impute and one-hot encode per the contract's column kinds, then the configured estimator."""
    preprocess = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), contract.numerical),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                contract.categorical,
            ),
        ],
        remainder="drop",
    )
    return Pipeline([("preprocess", preprocess), ("estimator", build_estimator(config))])


def fit_pipeline(config: Config, contract: DataContract, frame: pd.DataFrame) -> Pipeline:
    pipeline = build_pipeline(config, contract)
    try:
        pipeline.fit(frame[contract.feature_names], frame[contract.target])
    except ValueError as exc:
        raise ConfigError(f"model.params: {config.model.estimator_path} failed to fit: {exc}") from None
    return pipeline
