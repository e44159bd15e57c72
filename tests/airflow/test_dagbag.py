"""The DAG module, imported by Airflow's own DagBag with only Airflow and its providers installed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from .conftest import airflow_python

DESCRIBE = """
import json
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=".", include_examples=False)
dags = {
    dag_id: {
        "schedule": str(dag.timetable.summary),
        "max_active_runs": dag.max_active_runs,
        "tasks": sorted(task.task_id for task in dag.tasks),
        "downstream": {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks},
        "retries": {task.task_id: task.retries for task in dag.tasks},
        "operators": {task.task_id: type(task).__name__ for task in dag.tasks},
    }
    for dag_id, dag in bag.dags.items()
}
print(json.dumps({"errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": dags}))
"""


def describe(env: dict[str, str]) -> dict[str, dict]:
    result = airflow_python(DESCRIBE, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_models(folder: Path, documents: dict[str, object]) -> Path:
    folder.mkdir()
    for file, document in documents.items():
        (folder / file).write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return folder


def test_the_dagbag_has_one_dag_per_model_file_and_no_import_error(
    airflow_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # given two model files, one with its own check interval, and a file that is not a model file
    models = write_models(
        tmp_path / "models",
        {
            "weather.yaml": {"model": {"name": "weather", "task": "classification", "target": "weather"}},
            "humidity.yml": {
                "model": {"name": "humidity", "task": "regression", "target": "humidity"},
                "data": {"reference": "r.csv", "current": "c/*.csv", "check_every": 7200},
            },
        },
    )
    (models / "README.md").write_text("not a model file")
    # when Airflow fills its DagBag from airflow/dags, Kubernetes variant (the default)
    found = describe(airflow_env(models))
    # then there is one DAG per model file, and no import error
    assert found["errors"] == {}
    assert sorted(found["dags"]) == ["driftloop_humidity", "driftloop_weather"]
    weather, humidity = found["dags"]["driftloop_weather"], found["dags"]["driftloop_humidity"]
    assert weather["schedule"] == "0 * * * *" and humidity["schedule"] == "2:00:00"
    # and each is check -> branch -> retrain -> promote, one run at a time, retried (exit 3 only: see below)
    assert weather["tasks"] == ["check", "nothing_to_do", "promote", "retrain", "retrain_requested"]
    assert weather["downstream"]["check"] == ["retrain_requested"]
    assert weather["downstream"]["retrain_requested"] == ["nothing_to_do", "retrain"]
    assert weather["downstream"]["retrain"] == ["promote"]
    assert weather["max_active_runs"] == 1
    assert weather["retries"]["check"] == 3
    assert weather["operators"]["check"] == "DriftloopPodOperator"
    # and the local variant runs the same steps as bash tasks
    local = describe(airflow_env(models, DRIFTLOOP_AIRFLOW_RUNNER="local"))["dags"]["driftloop_weather"]
    assert local["operators"]["retrain"] == "DriftloopBashOperator" and local["tasks"] == weather["tasks"]


def test_a_bad_model_file_is_an_import_error_naming_the_file(
    airflow_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # given a folder with a good model file, one without model.name, and one that is not YAML
    models = write_models(
        tmp_path / "models",
        {
            "weather.yaml": {"model": {"name": "weather", "task": "classification", "target": "weather"}},
            "nameless.yaml": {"model": {"task": "classification", "target": "weather"}},
            "broken.yml": "model: [name: x\n",
        },
    )
    # when Airflow imports the DAG module
    found = describe(airflow_env(models))
    # then the import error names each bad file and what is wrong with it
    (error,) = found["errors"].values()
    assert f"{models / 'nameless.yaml'}: model.name: expected the model's name" in error
    assert f"{models / 'broken.yml'}: cannot read this model file" in error


EXIT_RULE = """
import json, sys
sys.path.insert(0, ".")
from airflow.exceptions import AirflowException, AirflowFailException
import driftloop_dags
outcomes = {}
for code in (2, 3, 1, 137, None):
    try:
        driftloop_dags.fail_unless_transient(code, AirflowException("failed"))
    except AirflowFailException:
        outcomes[str(code)] = "fail"
    except AirflowException:
        outcomes[str(code)] = "retry"
print(json.dumps(outcomes))
"""


def test_only_a_transient_exit_is_retried(airflow_env: Callable[..., dict[str, str]], tmp_path: Path) -> None:
    # given the DAG module's rule for a failed driftloop command
    models = write_models(tmp_path / "models", {"w.yaml": {"model": {"name": "w"}}})
    # when a command exits 2 (bad input), 3 (a server down), 1, is killed (137) or never ran (no code)
    result = airflow_python(EXIT_RULE, airflow_env(models))
    assert result.returncode == 0, result.stderr[-3000:]
    # then only bad input and plain failures fail at once; the rest is left to Airflow's retries
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "2": "fail",
        "3": "retry",
        "1": "fail",
        "137": "retry",
        "None": "retry",
    }


def test_the_dag_module_imports_only_airflow_kubernetes_and_yaml() -> None:
    # driftloop runs in the pod or from PATH: Airflow's environment has none of it, nor Prefect
    import sys

    from tests.test_code import imported_modules

    from .conftest import DAGS

    third_party = imported_modules(DAGS / "driftloop_dags.py") - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"airflow", "kubernetes", "pendulum", "yaml"}
