"""Settings: the process environment (``DRIFTLOOP_*``) and the model configuration file schema.

The model file is validated strictly on load: an unknown key or a wrong type is an error that names
the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.errors import ConfigError
from service.registry_config import RegistrySection

DEFAULT_ESTIMATORS = {
    "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}
DEFAULT_METRICS = {"classification": "f1_macro", "regression": "neg_rmse"}
# Every metric is "higher is better"; service.evaluate implements exactly these.
METRICS_BY_TASK = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc"),
    "regression": ("r2", "neg_rmse", "neg_mae"),
}
DEFAULT_CONFIG_FILE = "driftloop.yaml"


class Settings(BaseSettings):
    """Process-wide settings, read from ``DRIFTLOOP_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLOOP_", extra="ignore")

    config: Path = Field(
        default=Path(DEFAULT_CONFIG_FILE),
        description="Model configuration file used when a command is given no --config.",
    )
    models_dir: Path = Field(
        default=Path("/etc/driftloop/models"),
        description="Folder of model config files (*.yaml) that the API serves; one file per model.",
    )
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI for the API when no model config names one."
    )
    git_sha: str | None = Field(
        default=None,
        description="Code version recorded on every registered model; read from git when unset.",
    )
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token the API requires for every change; unset: changes refused."
    )
    api_protect_reads: bool = Field(default=False, description="Require the token for reads too.")
    webhook_url: str | None = Field(default=None, description="Where to POST signed JSON notifications.")
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key signing each webhook body (X-Driftloop-Signature)."
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of the Dask scheduler (tcp://host:8786) for models with `drift.engine: dask` that "
        "name none in their file: where the chart points flow runs at an existing Dask cluster.",
    )
    dask_connect_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for the Dask scheduler before the check fails (exit 3)."
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Strict):
    name: str = Field(description="Base name of the model in the registry.", pattern=r"^[A-Za-z0-9_.-]+$")
    task: Literal["classification", "regression"] = Field(description="Kind of supervised problem.")
    target: str = Field(description="Label column.")
    features: list[str] | None = Field(
        default=None, description="Feature columns; default: every column but the target and `ignore`."
    )
    ignore: list[str] = Field(default_factory=list, description="Columns neither used nor checked.")
    estimator: str | None = Field(
        default=None, description="Dotted path of a scikit-learn estimator; default per task."
    )
    params: dict[str, object] = Field(default_factory=dict, description="Estimator keyword arguments.")

    @property
    def estimator_path(self) -> str:
        return self.estimator or DEFAULT_ESTIMATORS[self.task]


class DataSection(_Strict):
    reference: str = Field(description="Reference data (csv or parquet, any fsspec URI).")
    current: str = Field(description="One batch or a glob of batches, taken in name order.")
    check_every: int | None = Field(default=None, ge=60, description="Seconds between passes; default: every sweep.")


class ContractSection(_Strict):
    min_rows: int = Field(default=10, ge=1, description="Fewest rows a batch may have.")
    max_unseen_category_share: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Largest share of a categorical column's values unseen in reference."
    )
    max_missing_target_share: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Largest share of a batch's rows with no target; training drops them."
    )
    max_out_of_range_share: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Largest share of a numeric column's values beyond the reference's [min, max] widened by "
        "range_margin. Batches may pass the reference's extremes (sample values themselves) a little, drifted ones "
        "further: the margin and this share tolerate that; -999 sentinels and wrong units fail.",
    )
    range_margin: float = Field(
        default=0.5, ge=0.0, description="How far beyond [min, max] a value may lie, as a share of the range's width."
    )


class DebounceSection(_Strict):
    """Act when the latest check drifts and at least ``min_drifted`` of the last ``window`` did."""

    window: int = Field(default=3, ge=1, description="How many recent checks to look at (M).")
    min_drifted: int = Field(default=2, ge=1, description="How many of them must drift (N).")

    @model_validator(mode="after")
    def _n_within_m(self) -> DebounceSection:
        if self.min_drifted > self.window:
            raise ValueError(
                f"drift.debounce.min_drifted ({self.min_drifted}) must not exceed drift.debounce.window ({self.window})"
            )
        return self


class DriftSection(_Strict):
    columns: list[str] | None = Field(default=None, description="Columns to check; default: features.")
    drift_share: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Share of drifted columns that makes the dataset drift."
    )
    stattest: str | None = Field(default=None, description="Evidently stattest for every column; default: its choice.")
    stattest_threshold: float | None = Field(default=None, gt=0.0, description="Threshold of that test.")
    debounce: DebounceSection = Field(default_factory=DebounceSection)
    engine: Literal["fast", "evidently", "dask"] = Field(
        default="fast",
        description="fast: Evidently's tests computed with numpy on every row; evidently: its full report; "
        "dask: the fast engine's tests on a Dask cluster, whose workers read the files.",
    )
    dask_scheduler: str | None = Field(
        default=None, description="engine dask: the scheduler's address; default: $DRIFTLOOP_DASK_SCHEDULER."
    )
    report_rows: int = Field(
        default=5_000,
        ge=1001,  # above Evidently's small-sample threshold, so the report uses the same tests as the verdict
        description="Rows per side above which Evidently draws the HTML report on a random sample.",
    )

    # Evidently 0.7's stattests for numerical or categorical columns (text-only ones never apply here), copied
    # so that a config loads without importing Evidently (seconds); a test checks them against its registry.
    STATTEST_KINDS: ClassVar[dict[str, frozenset[str]]] = {
        **dict.fromkeys(("anderson", "cramer_von_mises", "ed", "empirical_mmd", "es"), frozenset({"num"})),
        **dict.fromkeys(("ks", "mannw", "t_test", "wasserstein"), frozenset({"num"})),
        **dict.fromkeys(("TVD", "chisquare", "fisher_exact", "g_test", "z"), frozenset({"cat"})),
        **dict.fromkeys(("hellinger", "jensenshannon", "kl_div", "psi"), frozenset({"num", "cat"})),
    }

    @field_validator("stattest")
    @classmethod
    def _known_stattest(cls, value: str | None) -> str | None:
        if value is not None and value not in cls.STATTEST_KINDS:
            valid = sorted(cls.STATTEST_KINDS)
            raise ValueError(f"drift.stattest {value!r} is not an Evidently stattest: expected one of {valid}")
        return value


class TrainingSection(_Strict):
    window: int = Field(default=2, ge=1, description="How many most recent batches a retrain learns from.")
    random_state: int = Field(
        default=0, description="Seed for the holdout split, the estimator and the training.max_rows sample."
    )
    max_rows: int | None = Field(
        default=None,
        ge=2,
        description="Train on a seeded random sample of this many rows when the window has more (drawn before "
        "the holdout split; null: every row). Bounds a retrain's memory; the sample and window sizes are "
        "recorded on the version.",
    )


class EvaluationSection(_Strict):
    metric: str | None = Field(default=None, description="f1_macro, accuracy, roc_auc, neg_rmse, r2...")
    holdout: float = Field(default=0.25, gt=0.0, lt=1.0, description="Share of fresh data held out.")
    min_gain: float = Field(default=0.0, description="How much the challenger must beat the champion by.")
    slice_by: list[str] = Field(default_factory=list, description="Categorical columns to check per slice.")
    max_slice_regression: float = Field(
        default=0.05, ge=0.0, description="Largest drop of the metric allowed in any slice."
    )
    mode: Literal["enabled", "dry_run", "disabled"] = Field(
        default="enabled",
        description="enabled: the gate decides; dry_run: decide and record, but promote anyway and say so; "
        "disabled: promote without evaluating (the champion is not scored; the challenger is, for the record).",
    )


PromotionPolicy = Literal["auto", "approval"]


class Config(_Strict):
    """A model configuration file (``driftloop.yaml``)."""

    model: ModelSection
    data: DataSection
    contract: ContractSection = Field(default_factory=ContractSection)
    drift: DriftSection = Field(default_factory=DriftSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    environments: list[str] = Field(default_factory=lambda: ["dev", "staging", "prod"], min_length=1)
    promotion: dict[str, PromotionPolicy] = Field(
        default_factory=lambda: {"prod": "approval"},
        description="Policy per environment after the first; missing ones are auto.",
    )
    registry: RegistrySection = Field(default_factory=RegistrySection)
    source: Path | None = Field(default=None, exclude=True, description="File this was read from.")

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.model.features is not None and self.model.target in self.model.features:
            raise ValueError(f"model.features must not contain the target {self.model.target!r}")
        unknown = sorted(set(self.promotion) - set(self.environments))
        if unknown:
            raise ValueError(f"promotion has environments not in `environments`: {unknown}")
        if len(set(self.environments)) != len(self.environments):
            raise ValueError("environments must not repeat")
        self.registry.check_environments(self.environments)
        allowed = METRICS_BY_TASK[self.model.task]
        if self.evaluation.metric is not None and self.evaluation.metric not in allowed:
            raise ValueError(
                f"evaluation.metric {self.evaluation.metric!r} does not fit a {self.model.task} model: "
                f"expected one of {list(allowed)}"
            )
        return self

    @property
    def metric(self) -> str:
        return self.evaluation.metric or DEFAULT_METRICS[self.model.task]

    def policy_for(self, env: str) -> PromotionPolicy:
        return self.promotion.get(env, "auto")

    def experiment_name(self, stage: str) -> str:
        """The MLflow experiment of this model's ``stage`` (training, monitoring), the same in every registry."""
        return f"driftloop/{self.model.name}/{stage}"

    def registered_name(self, env: str) -> str:
        if env not in self.environments:
            raise ConfigError(f"unknown environment {env!r}: expected one of {self.environments}")
        return self.registry.name_template.format(model=self.model.name, env=env)

    def resolve(self, uri: str) -> str:
        """Read a path relative to the config file's folder; leave URIs with a scheme alone."""
        if "://" in uri or self.source is None or Path(uri).is_absolute():
            return uri
        return str((self.source.parent / uri).resolve())

    def tracking_uri(self, env: str | None = None) -> str:
        """The registry of ``env`` (its own when configured), else the default one of every environment."""
        own = self.registry.environments.get(env) if env is not None else None
        if own is not None:
            return own.tracking_uri
        env_uri = os.environ.get("MLFLOW_TRACKING_URI")
        if env_uri:
            return env_uri
        if self.registry.tracking_uri:
            return self.registry.tracking_uri
        base = self.source.parent if self.source else Path.cwd()
        return f"sqlite:///{(base / 'mlflow.db').resolve()}"
