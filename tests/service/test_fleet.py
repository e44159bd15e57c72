"""The models directory: loading every file, naming the bad ones, isolating one model's failure."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.errors import ConfigError, DataSourceError, RegistryUnavailable
from service.fleet import ModelEntry, ModelReport, ask_each, is_due, load_fleet, model_files, run_fleet, worst_exit_code


def write_model(folder: Path, file: str, name: str, **extra: object) -> Path:
    document = {
        "model": {"name": name, "task": "classification", "target": "y"},
        "data": {"reference": "ref.csv", "current": "batches/*.csv"},
        **extra,
    }
    path = folder / file
    path.write_text(yaml.safe_dump(document))
    return path


def test_model_files_are_every_yaml_and_yml_in_name_order(tmp_path: Path) -> None:
    write_model(tmp_path, "b.yml", "b")
    write_model(tmp_path, "a.yaml", "a")
    (tmp_path / "notes.txt").write_text("not a model")
    assert [path.name for path in model_files(tmp_path)] == ["a.yaml", "b.yml"]


def test_an_empty_or_missing_models_directory_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \*\.yaml or \*\.yml model file"):
        model_files(tmp_path)
    with pytest.raises(ConfigError, match="models directory not found"):
        model_files(tmp_path / "absent")


def test_two_files_naming_the_same_model_are_an_error_naming_both_files(tmp_path: Path) -> None:
    first = write_model(tmp_path, "a.yaml", "churn")
    second = write_model(tmp_path, "b.yaml", "churn")
    write_model(tmp_path, "c.yaml", "fraud")
    entries = load_fleet(model_files(tmp_path))
    errors = {entry.path.name: entry.error for entry in entries}
    assert errors["c.yaml"] is None
    for name in ("a.yaml", "b.yaml"):
        assert errors[name] is not None and str(first) in errors[name] and str(second) in errors[name]


def test_a_bad_file_is_its_own_error_and_the_others_still_load(tmp_path: Path) -> None:
    write_model(tmp_path, "a.yaml", "churn", drift={"thresold": 0.1})
    write_model(tmp_path, "b.yaml", "fraud")
    entries = load_fleet(model_files(tmp_path))
    assert entries[0].config is None and "drift.thresold: unknown key" in str(entries[0].error)
    assert entries[1].config is not None and entries[1].name == "fraud"


def test_one_models_failure_never_stops_another_and_the_worst_exit_code_wins(tmp_path: Path) -> None:
    entries = load_fleet([write_model(tmp_path, f"{n}.yaml", n) for n in ("a", "b", "c", "d")])
    failures = {"a": DataSourceError("a.csv: file not found"), "b": RegistryUnavailable("MLflow at x did not answer")}

    def run_one(entry: ModelEntry) -> ModelReport:
        if entry.name in failures:
            raise failures[entry.name]
        if entry.name == "c":
            raise KeyError("surprise")
        return ModelReport(entry.name, str(entry.path), checked=1)

    reports = {report.model: report for report in run_fleet(entries, run_one)}
    assert reports["a"].exit_code == 2 and "a.csv: file not found" in reports["a"].error
    assert reports["b"].exit_code == 3 and "did not answer" in reports["b"].error
    assert reports["c"].exit_code == 2 and reports["c"].error == "KeyError: 'surprise'"
    assert reports["d"].exit_code == 0 and reports["d"].checked == 1
    assert worst_exit_code(list(reports.values())) == 3


def test_a_pass_is_due_at_every_sweep_unless_the_model_asks_for_passes_further_apart() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert is_due(now - timedelta(minutes=5), None, now)  # no check_every: every sweep
    assert is_due(None, 3600, now)  # never run yet
    assert not is_due(now - timedelta(minutes=30), 3600, now)
    assert is_due(now - timedelta(minutes=60), 3600, now)


def test_a_sweep_asks_every_model_side_by_side_in_order_and_a_failing_question_is_that_models_alone(
    tmp_path: Path,
) -> None:
    import threading

    entries = [ModelEntry(tmp_path / f"{name}.yaml", None) for name in ("a", "b", "c", "d")]
    # a, b and c each wait for the other two: asked one after another, the barrier would time out
    together = threading.Barrier(3, timeout=10)

    def ask(entry: ModelEntry) -> str | None:
        if entry.name == "d":
            raise RegistryUnavailable("mlflow at http://x: 503")
        together.wait()
        return None if entry.name == "b" else f"{entry.name}: 1 new batch(es)"

    answers = ask_each(entries, ask, threads=4)
    assert [(entry.name, reason) for entry, reason in answers] == [
        ("a", "a: 1 new batch(es)"),
        ("b", None),
        ("c", "c: 1 new batch(es)"),
        ("d", "could not tell (mlflow at http://x: 503)"),
    ]
