"""driftloop's loop as Airflow DAGs: one DAG per model file of $DRIFTLOOP_MODELS_DIR, id ``driftloop_<model>``.

    check ──> retrain_requested ──> retrain ──> promote        (nothing_to_do when no retrain is asked for)

- ``check``: ``driftloop check NAME --json`` checks the model's new batches and records each verdict in
  MLflow; it says whether a retrain is requested and for which drift check.
- ``retrain_requested``: branches on that answer.
- ``retrain``: ``driftloop retrain NAME --drift-run ID --no-promote`` trains, evaluates against the
  champion on the same holdout, registers, and settles the version by the gate in the first environment.
- ``promote``: ``driftloop promote NAME --auto`` promotes it along the environments whose policy is
  ``auto``; an environment whose policy is ``approval`` (prod by default) receives it as @challenger,
  and a person approves it with ``driftloop approve NAME --env prod`` (or ``POST /models/NAME/approve``).

Each command is idempotent, so a retried task or a rerun DAG never records a check, a training or a
version twice. A task is retried only when driftloop exits 3 (a server or storage did not answer) or
dies without an answer of its own (killed, a pod that never started); exit 2 (bad input: a config key,
a quarantined batch) fails the task at once, as the Prefect path never retries bad input.

This module needs only Airflow and its cncf.kubernetes provider: it reads the model files with pyyaml,
and driftloop itself runs in the pod (``DRIFTLOOP_AIRFLOW_RUNNER=kubernetes``, the default) or from PATH
(``local``: BashOperator tasks, for ``airflow standalone``). A model file that does not parse, or has no
``model.name``, fails the import of this module with an error naming the file.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import yaml
from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator
from airflow.sdk import DAG
from kubernetes.client import models as k8s

MODELS_DIR = Path(os.environ.get("DRIFTLOOP_MODELS_DIR", "/etc/driftloop/models"))
RUNNER = os.environ.get("DRIFTLOOP_AIRFLOW_RUNNER", "kubernetes")  # or "local"
DRIFTLOOP = os.environ.get("DRIFTLOOP_BIN", "driftloop")  # local runner: the console script
RETRIES = int(os.environ.get("DRIFTLOOP_AIRFLOW_RETRIES", "3"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("DRIFTLOOP_AIRFLOW_RETRY_DELAY", "30")))
EXIT_TRANSIENT = 3  # driftloop's "a server or storage did not answer"
KILLED = 128  # exit codes from 128 on: killed by a signal (OOM, eviction), not driftloop's answer

# Kubernetes: the chart's release, and what its flow-run Jobs get (helm/driftloop, files/base-job-template.json
# and values.yaml's flowRun): the same image, security contexts, resources, models ConfigMap and Secret.
RELEASE = os.environ.get("DRIFTLOOP_RELEASE", "driftloop")
NAMESPACE = os.environ.get("DRIFTLOOP_NAMESPACE", "driftloop")
IMAGE = os.environ.get("DRIFTLOOP_IMAGE", "driftloop:0.1.0")
POD_MODELS_DIR = "/etc/driftloop/models"
XCOM_RETURN = "/airflow/xcom/return.json"  # where the provider's sidecar reads a pod's XCom
RESOURCES = {
    "requests": {
        "cpu": os.environ.get("DRIFTLOOP_CPU_REQUEST", "500m"),
        "memory": os.environ.get("DRIFTLOOP_MEMORY_REQUEST", "1Gi"),
    },
    "limits": {
        "cpu": os.environ.get("DRIFTLOOP_CPU_LIMIT", "2"),
        "memory": os.environ.get("DRIFTLOOP_MEMORY_LIMIT", "4Gi"),
    },
}
RUN_AS = 10001  # the image's user
POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "runAsGroup": RUN_AS,
    "fsGroup": RUN_AS,
    "fsGroupChangePolicy": "OnRootMismatch",
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsGroup": RUN_AS,
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "seccompProfile": {"type": "RuntimeDefault"},
}
AUTH_SECRET_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


class ModelFileError(ValueError):
    """A model file this module cannot make a DAG of."""


def read_model_file(path: Path) -> dict[str, Any]:
    """What a DAG needs of a model file, read with pyyaml alone (driftloop validates the rest when it runs)."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelFileError(f"{path}: cannot read this model file: {exc}") from None
    model = document.get("model") if isinstance(document, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    if not isinstance(name, str) or not name:
        raise ModelFileError(f"{path}: model.name: expected the model's name (a string) in this model file")
    data = document.get("data") or {}
    check_every = data.get("check_every") if isinstance(data, dict) else None
    if check_every is not None and (not isinstance(check_every, int) or check_every < 60):
        raise ModelFileError(f"{path}: data.check_every: expected whole seconds, at least 60, got {check_every!r}")
    return {"name": name, "file": path.name, "check_every": check_every}


def model_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: DRIFTLOOP_MODELS_DIR is not a folder: expected the folder of model files")
    return sorted({*folder.glob("*.yaml"), *folder.glob("*.yml")})


def fail_unless_transient(exit_code: int | None, error: Exception) -> None:
    """Let Airflow retry a failure only when trying again may help."""
    if exit_code is not None and exit_code != EXIT_TRANSIENT and exit_code < KILLED:
        raise AirflowFailException(f"driftloop exited {exit_code} (bad input, not retried): {error}") from error
    raise error


class DriftloopBashOperator(BashOperator):
    """A driftloop command on this machine's PATH; exit 2 fails at once, exit 3 is retried."""

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except (AirflowSkipException, AirflowFailException):
            raise
        except AirflowException as exc:
            process = getattr(self.subprocess_hook, "sub_process", None)
            fail_unless_transient(process.returncode if process is not None else None, exc)


class DriftloopPodOperator(KubernetesPodOperator):
    """A driftloop command in a pod of the driftloop image; exit 2 fails at once, exit 3 is retried."""

    def cleanup(self, pod: Any, remote_pod: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().cleanup(pod, remote_pod, *args, **kwargs)
        except (AirflowSkipException, AirflowFailException):
            raise
        except AirflowException as exc:
            fail_unless_transient(self._base_exit_code(remote_pod), exc)

    def _base_exit_code(self, remote_pod: Any) -> int | None:
        statuses = (remote_pod.status.container_statuses if remote_pod and remote_pod.status else None) or []
        for status in statuses:
            if status.name == self.base_container_name and status.state and status.state.terminated:
                return status.state.terminated.exit_code
        return None  # the container never ran to an end: the pod did not start, or was lost


def pod_task(task_id: str, script: str, env: dict[str, str], *, xcom: bool = False) -> DriftloopPodOperator:
    """The flow-run Job's pod, running ``script`` (a shell line) instead of a Prefect flow run."""
    secret_env = [
        k8s.V1EnvVar(
            name=key,
            value_from=k8s.V1EnvVarSource(
                secret_key_ref=k8s.V1SecretKeySelector(name=f"{RELEASE}-flow-run-auth", key=key)
            ),
        )
        for key in AUTH_SECRET_KEYS
    ]
    plain_env = [k8s.V1EnvVar(name=key, value=value) for key, value in env.items()]
    tracking = k8s.V1EnvVar(name="MLFLOW_TRACKING_URI", value=f"http://{RELEASE}-mlflow:5000")
    return DriftloopPodOperator(
        task_id=task_id,
        name=f"driftloop-{task_id}",
        namespace=NAMESPACE,
        image=IMAGE,
        image_pull_policy="IfNotPresent",
        cmds=["/bin/sh", "-c"],
        arguments=[f"{script} > {XCOM_RETURN}" if xcom else script],
        env_vars=[tracking, *plain_env, *secret_env],
        labels={"app.kubernetes.io/component": "flow-run", "app.kubernetes.io/instance": RELEASE},
        service_account_name=f"{RELEASE}-flow-run",
        automount_service_account_token=False,
        security_context=POD_SECURITY_CONTEXT,
        container_security_context=CONTAINER_SECURITY_CONTEXT,
        xcom_sidecar_container_security_context=CONTAINER_SECURITY_CONTEXT,
        container_resources=k8s.V1ResourceRequirements(**RESOURCES),
        volumes=[
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="4Gi")),
            k8s.V1Volume(name="models", config_map=k8s.V1ConfigMapVolumeSource(name=f"{RELEASE}-models")),
        ],
        volume_mounts=[
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
            k8s.V1VolumeMount(name="models", mount_path=POD_MODELS_DIR, read_only=True),
        ],
        full_pod_spec=k8s.V1Pod(spec=k8s.V1PodSpec(containers=[], enable_service_links=False)),
        do_xcom_push=xcom,
        on_finish_action="delete_pod",
    )


def bash_task(task_id: str, script: str, env: dict[str, str], *, xcom: bool = False) -> DriftloopBashOperator:
    # The last line of output is the task's XCom: the JSON answer, on one line.
    command = f'out=$({script}) || {{ code=$?; echo "$out"; exit $code; }}; echo "$out" | tr "\\n" " "; echo'
    return DriftloopBashOperator(
        task_id=task_id,
        bash_command=command if xcom else script,
        env=env,
        append_env=True,
        skip_on_exit_code=None,
        do_xcom_push=xcom,
    )


def task(task_id: str, script: str, env: dict[str, str] | None = None, *, xcom: bool = False) -> Any:
    make = pod_task if RUNNER == "kubernetes" else bash_task
    return make(task_id, script, env or {}, xcom=xcom)


def retrain_requested(ti: Any) -> str:
    """Follow ``retrain`` when the check asked for one, and hand it the drift check to answer."""
    answer = ti.xcom_pull(task_ids="check")
    answer = json.loads(answer) if isinstance(answer, str) else answer
    if not answer or not answer.get("retrain_requested"):
        return "nothing_to_do"
    ti.xcom_push(key="drift_run", value=answer.get("drift_run") or "")
    return "retrain"


def build_dag(model: dict[str, Any]) -> DAG:
    name = model["name"]
    models_dir = POD_MODELS_DIR if RUNNER == "kubernetes" else str(MODELS_DIR)
    where = f"{DRIFTLOOP} {{step}} {name} --models {models_dir}"
    drift_run = {"DRIFTLOOP_DRIFT_RUN": "{{ ti.xcom_pull(task_ids='retrain_requested', key='drift_run') or '' }}"}
    answering = '${DRIFTLOOP_DRIFT_RUN:+--drift-run "$DRIFTLOOP_DRIFT_RUN"}'
    schedule = timedelta(seconds=model["check_every"]) if model["check_every"] else "@hourly"
    with DAG(
        dag_id=f"driftloop_{name}",
        description=f"driftloop: drift check, retrain and promotion of {name} ({model['file']})",
        schedule=schedule,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,  # two runs of one model would check the same new batch side by side
        default_args={"retries": RETRIES, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True},
        tags=["driftloop", name],
        doc_md=__doc__,
    ) as dag:
        check = task("check", where.format(step="check") + " --json", xcom=True)
        branch = BranchPythonOperator(task_id="retrain_requested", python_callable=retrain_requested)
        retrain = task("retrain", where.format(step="retrain") + f" --no-promote {answering}", drift_run)
        promote = task("promote", where.format(step="promote") + f" --auto {answering}", drift_run)
        check >> branch >> [retrain, EmptyOperator(task_id="nothing_to_do")]
        retrain >> promote
    return dag


def build_dags(folder: Path) -> dict[str, DAG]:
    models, errors = [], []
    for path in model_files(folder):
        try:
            models.append(read_model_file(path))
        except ModelFileError as exc:
            errors.append(str(exc))
    if errors:  # loud, as driftloop is with a bad config: the import error names every bad file
        raise ModelFileError("; ".join(errors))
    return {f"driftloop_{model['name']}": build_dag(model) for model in models}


globals().update(build_dags(MODELS_DIR))
