"""Tests of service.config_file.load_config on model configuration files written to a temporary folder."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from service.config_file import load_config
from service.errors import ConfigError
from service.settings import Config

WriteConfig = Callable[..., Path]


def minimal_config(task: str = "classification") -> dict[str, object]:
    """The smallest valid config: a model and its data, nothing else."""
    return {
        "model": {"name": "weather", "task": task, "target": "weather"},
        "data": {"reference": "data/reference.csv", "current": "incoming/*.csv"},
    }


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write a config (a mapping dumped as YAML, or raw text) to ``<tmp>/project/driftloop.yaml``."""

    def write(content: dict[str, object] | str, name: str = "driftloop.yaml") -> Path:
        path = tmp_path / "project" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return write


def with_section(section: str, values: object, task: str = "classification") -> dict[str, object]:
    return minimal_config(task) | {section: values}


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


# --- defaults -------------------------------------------------------------------------------------


def test_minimal_config_gets_the_documented_defaults(write_config: WriteConfig) -> None:
    # given: a file with only `model` and `data`
    path = write_config(minimal_config())
    # when
    config = load_config(path)
    # then: debounce 2 of 3, three environments with prod behind an approval, and the other defaults
    assert (config.drift.debounce.window, config.drift.debounce.min_drifted) == (3, 2)
    assert config.environments == ["dev", "staging", "prod"]
    assert config.policy_for("prod") == "approval"
    assert config.policy_for("staging") == "auto"
    assert config.policy_for("dev") == "auto"
    assert config.drift.drift_share == 0.5
    assert config.contract.min_rows == 10
    assert config.contract.max_unseen_category_share == 0.05
    assert config.training.window == 2
    assert config.training.random_state == 0
    assert config.evaluation.mode == "enabled"
    assert config.evaluation.holdout == 0.25
    assert config.evaluation.min_gain == 0.0
    assert config.model.ignore == []
    assert config.model.features is None
    assert config.source == path.resolve()


@pytest.mark.parametrize(
    ("task", "metric", "estimator"),
    [
        ("classification", "f1_macro", "sklearn.ensemble.HistGradientBoostingClassifier"),
        ("regression", "neg_rmse", "sklearn.ensemble.HistGradientBoostingRegressor"),
    ],
)
def test_metric_and_estimator_default_per_task(
    write_config: WriteConfig, task: str, metric: str, estimator: str
) -> None:
    # given: no evaluation.metric and no model.estimator
    path = write_config(minimal_config(task))
    # when
    config = load_config(path)
    # then
    assert config.metric == metric
    assert config.model.estimator_path == estimator


def test_configured_metric_and_estimator_replace_the_defaults(write_config: WriteConfig) -> None:
    # given
    raw = minimal_config() | {"evaluation": {"metric": "accuracy"}}
    raw["model"] = {**raw["model"], "estimator": "sklearn.linear_model.LogisticRegression"}  # type: ignore[dict-item]
    # when
    config = load_config(write_config(raw))
    # then
    assert config.metric == "accuracy"
    assert config.model.estimator_path == "sklearn.linear_model.LogisticRegression"


# --- strict validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"colour": "red"}, "colour"),
        ({"drift": {"thresold": 0.3}}, "drift.thresold"),
        ({"drift": {"debounce": {"windw": 4}}}, "drift.debounce.windw"),
        (
            {"model": {"name": "weather", "task": "classification", "target": "weather", "feature": ["a"]}},
            "model.feature",
        ),
    ],
    ids=["top-level", "nested", "two-levels-deep", "inside-model"],
)
def test_unknown_key_is_an_error_naming_the_dotted_key_and_the_file(
    write_config: WriteConfig, extra: dict[str, object], key: str
) -> None:
    # given: a typo in a key
    path = write_config(minimal_config() | extra)
    # when
    message = config_error(path)
    # then: the message says which file and which key, so the typo can be fixed without reading code
    assert str(path) in message
    assert f"{key}: unknown key" in message


@pytest.mark.parametrize(
    ("section", "values", "key", "got"),
    [
        ("training", {"window": "two"}, "training.window", "'two'"),
        ("evaluation", {"mode": "shadow"}, "evaluation.mode", "'shadow'"),
        ("environments", "prod", "environments", "'prod'"),
        ("contract", {"min_rows": 0}, "contract.min_rows", "0"),
    ],
    ids=["string-for-int", "unknown-mode", "string-for-list", "below-minimum"],
)
def test_wrong_value_is_an_error_naming_the_key_and_the_value(
    write_config: WriteConfig, section: str, values: object, key: str, got: str
) -> None:
    # given
    path = write_config(with_section(section, values))
    # when
    message = config_error(path)
    # then
    assert str(path) in message
    assert f"  - {key}: " in message
    assert f"(got {got})" in message


def test_missing_target_is_an_error_naming_model_target(write_config: WriteConfig) -> None:
    # given: a model section without its label column
    raw = minimal_config()
    raw["model"] = {"name": "weather", "task": "classification"}
    path = write_config(raw)
    # when
    message = config_error(path)
    # then
    assert "model.target: required key is missing" in message


def test_missing_data_section_is_named(write_config: WriteConfig) -> None:
    # given
    path = write_config({"model": minimal_config()["model"]})
    # when / then
    assert "data: required key is missing" in config_error(path)


def test_min_drifted_above_window_is_rejected(write_config: WriteConfig) -> None:
    # given: "act when 4 of the last 3 checks drift" can never happen
    path = write_config(with_section("drift", {"debounce": {"window": 3, "min_drifted": 4}}))
    # when
    message = config_error(path)
    # then
    assert "drift.debounce.min_drifted (4) must not exceed drift.debounce.window (3)" in message


def test_promotion_policy_for_an_unknown_environment_is_rejected(write_config: WriteConfig) -> None:
    # given: a policy for `qa`, which is not one of the environments
    raw = minimal_config() | {"environments": ["dev", "prod"], "promotion": {"qa": "auto"}}
    path = write_config(raw)
    # when
    message = config_error(path)
    # then
    assert "promotion has environments not in `environments`: ['qa']" in message


def test_unknown_promotion_policy_is_rejected(write_config: WriteConfig) -> None:
    # given
    path = write_config(with_section("promotion", {"prod": "manual"}))
    # when / then
    assert "promotion.prod: " in config_error(path)


def test_target_listed_among_features_is_rejected(write_config: WriteConfig) -> None:
    # given
    raw = minimal_config()
    raw["model"] = {**raw["model"], "features": ["humidity", "weather"]}  # type: ignore[dict-item]
    # when / then
    assert "model.features must not contain the target 'weather'" in config_error(write_config(raw))


def test_name_template_without_env_placeholder_is_rejected(write_config: WriteConfig) -> None:
    # given: every environment would get the same registered name
    path = write_config(with_section("registry", {"name_template": "{model}"}))
    # when / then
    message = config_error(path)
    assert "registry.name_template" in message
    assert "must use exactly the placeholders {model} and {env}, found ['model']" in message


# --- unreadable files -------------------------------------------------------------------------------


def test_invalid_yaml_is_an_error_naming_the_file(write_config: WriteConfig) -> None:
    # given: an unclosed flow sequence
    path = write_config("model: {name: weather, task: [classification\n")
    # when
    message = config_error(path)
    # then
    assert message.startswith(f"{path}: not valid YAML")


def test_missing_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    # given
    path = tmp_path / "nowhere" / "driftloop.yaml"
    # when / then
    assert config_error(path) == f"{path}: config file not found"


@pytest.mark.parametrize("text", ["", "- model\n- data\n", "just a string\n"], ids=["empty", "list", "scalar"])
def test_file_that_is_not_a_mapping_is_an_error_naming_the_file(write_config: WriteConfig, text: str) -> None:
    # given
    path = write_config(text)
    # when / then
    assert config_error(path) == f"{path}: expected a mapping with `model` and `data` sections"


@pytest.mark.parametrize("kind", ["directory", "not-utf8"])
def test_unreadable_config_is_an_error_naming_the_path(tmp_path: Path, kind: str) -> None:
    # given: --config pointing at a folder, or at a binary file
    if kind == "directory":
        path = tmp_path
    else:
        path = tmp_path / "driftloop.yaml"
        path.write_bytes(b"\xff\xfe\x00model")
    # when / then
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


# --- registered names ------------------------------------------------------------------------------


def test_registered_name_follows_the_default_template(write_config: WriteConfig) -> None:
    # given
    config = load_config(write_config(minimal_config()))
    # when / then
    assert [config.registered_name(env) for env in config.environments] == [
        "weather-dev",
        "weather-staging",
        "weather-prod",
    ]


def test_registered_name_follows_a_configured_template(write_config: WriteConfig) -> None:
    # given
    config = load_config(write_config(with_section("registry", {"name_template": "team_a.{env}.{model}"})))
    # when / then
    assert config.registered_name("prod") == "team_a.prod.weather"


def test_registered_name_for_an_unknown_environment_is_an_error(write_config: WriteConfig) -> None:
    # given
    config = load_config(write_config(minimal_config()))
    # when
    with pytest.raises(ConfigError) as caught:
        config.registered_name("qa")
    # then: the message lists the environments to choose from
    assert str(caught.value) == "unknown environment 'qa': expected one of ['dev', 'staging', 'prod']"


def test_name_template_with_an_unknown_placeholder_is_rejected_on_load(write_config: WriteConfig) -> None:
    # given: `{team}` is not something driftloop can fill in
    path = write_config(with_section("registry", {"name_template": "{team}-{model}-{env}"}))
    # when / then: the mistake surfaces at load time, naming the key
    with pytest.raises(ConfigError, match=r"registry\.name_template"):
        load_config(path).registered_name("dev")


# --- tracking URI ----------------------------------------------------------------------------------


def test_tracking_uri_from_the_environment_wins_over_the_config(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: both the config and MLFLOW_TRACKING_URI name a server
    config = load_config(write_config(with_section("registry", {"tracking_uri": "http://from-config:5000"})))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    # when / then
    assert config.tracking_uri() == "http://from-env:5000"


def test_tracking_uri_from_the_config_is_used_when_the_environment_has_none(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_config(write_config(with_section("registry", {"tracking_uri": "http://from-config:5000"})))
    # when / then
    assert config.tracking_uri() == "http://from-config:5000"


def test_tracking_uri_defaults_to_a_sqlite_store_beside_the_config_file(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given: nothing configured, and a working directory elsewhere than the config file
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = write_config(minimal_config())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # when
    uri = load_config(path).tracking_uri()
    # then
    assert uri == f"sqlite:///{path.parent.resolve()}/mlflow.db"


# --- paths -----------------------------------------------------------------------------------------


def test_resolve_reads_relative_paths_from_the_config_files_folder(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given: the command runs from another folder
    path = write_config(minimal_config())
    monkeypatch.chdir(tmp_path)
    config = load_config(path)
    # when / then
    assert config.resolve("data/reference.csv") == str(path.parent.resolve() / "data" / "reference.csv")
    assert config.resolve(config.data.current) == str(path.parent.resolve() / "incoming" / "*.csv")
    assert config.resolve("../shared/ref.csv") == str(tmp_path.resolve() / "shared" / "ref.csv")


@pytest.mark.parametrize("uri", ["s3://bucket/data/reference.csv", "gs://b/x/*.parquet", "/abs/path/ref.csv"])
def test_resolve_leaves_uris_and_absolute_paths_alone(write_config: WriteConfig, uri: str) -> None:
    # given
    config = load_config(write_config(minimal_config()))
    # when / then
    assert config.resolve(uri) == uri


def test_config_built_in_code_resolves_nothing() -> None:
    # given: a config that was not read from a file
    config = Config.model_validate(minimal_config())
    # when / then
    assert config.source is None
    assert config.resolve("data/reference.csv") == "data/reference.csv"


# --- contract limits, stattest and evaluation mode -------------------------------------------------


def test_new_contract_limits_get_their_documented_defaults(write_config: WriteConfig) -> None:
    # given / when
    config = load_config(write_config(minimal_config()))
    # then
    assert config.contract.max_missing_target_share == 0.05
    assert config.contract.max_out_of_range_share == 0.01
    assert config.contract.range_margin == 0.5
    assert config.drift.stattest is None


@pytest.mark.parametrize(
    ("key", "value", "bound"),
    [
        ("max_missing_target_share", 1.5, "less than or equal to 1"),
        ("max_out_of_range_share", -0.1, "greater than or equal to 0"),
        ("range_margin", -1, "greater than or equal to 0"),
    ],
)
def test_contract_limit_out_of_bounds_is_an_error_naming_the_key(
    write_config: WriteConfig, key: str, value: float, bound: str
) -> None:
    # given
    path = write_config(with_section("contract", {key: value}))
    # when
    message = config_error(path)
    # then: the known key is named with its bound, not reported as an unknown key
    assert f"  - contract.{key}: Input should be {bound} (got {value})" in message


def test_misspelt_stattest_fails_on_load_naming_drift_stattest_and_the_valid_names(write_config: WriteConfig) -> None:
    # given: a typo in the stattest
    path = write_config(with_section("drift", {"stattest": "pssi"}))
    # when: the config is loaded, before any data is read or model trained
    message = config_error(path)
    # then
    assert str(path) in message
    assert "  - drift.stattest: " in message
    assert "drift.stattest 'pssi' is not an Evidently stattest: expected one of [" in message
    assert all(f"'{name}'" in message for name in ("psi", "ks", "jensenshannon", "wasserstein", "chisquare"))


def test_text_only_stattest_is_rejected_because_no_checked_column_is_text(write_config: WriteConfig) -> None:
    # given: an Evidently test that applies to text columns only
    path = write_config(with_section("drift", {"stattest": "abs_text_content_drift"}))
    # when / then
    assert "drift.stattest 'abs_text_content_drift' is not an Evidently stattest" in config_error(path)


@pytest.mark.parametrize("stattest", ["psi", "ks", "chisquare", "hellinger", "TVD", "t_test"])
def test_evidently_stattests_load(write_config: WriteConfig, stattest: str) -> None:
    # given / when
    config = load_config(write_config(with_section("drift", {"stattest": stattest})))
    # then
    assert config.drift.stattest == stattest


def test_loading_a_config_does_not_import_evidently() -> None:
    # given: a fresh interpreter, which validates a config naming a stattest
    code = (
        "import sys; from service.settings import DriftSection; DriftSection(stattest='psi'); "
        "print('evidently' in sys.modules)"
    )
    # when
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    # then: the stattest names are checked without importing Evidently (seconds)
    assert out.stdout.strip() == "False"
