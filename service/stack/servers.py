"""A local stack: the cluster's servers on 127.0.0.1, for trying driftloop (and testing it) without Kubernetes.

PostgreSQL (Debian's binaries, when installed; else sqlite for both stores), ``prefect server``,
``mlflow server`` proxying artifacts, a Prefect *process* work pool ``driftloop`` with one worker (it
stands in for the Kubernetes pool: only the pool type differs) and the deployments of
``flows/prefect.yaml`` registered into it, running flows from this code's folder, with a local folder
of model files in place of the cluster's /etc/driftloop/models.
Everything lives under one folder: data, logs (``logs/``), pid files and ``stack.json``.

Only subprocesses here: ``service/`` does not import Prefect.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from service.progress import step
from service.stack.postgres import Postgres, postgres_bin, postgres_folder
from service.stack.processes import (
    CODE_ROOT,
    POOL,
    PREFECT_YAML,
    STATE_FILE,
    Service,
    StackError,
    base_env,
    executable,
    free_port,
)


@dataclass
class StackState:
    root: str
    backend: str
    prefect_url: str
    prefect_ui_url: str
    mlflow_url: str
    postgres_port: int | None
    postgres_folder: str | None
    postgres_bin: str | None
    config_path: str | None
    ports: dict[str, int]
    models_dir: str | None = None


# Where the chart mounts the model files; the stack's models folder stands in for it.
CLUSTER_MODELS_DIR = "/etc/driftloop/models"
# A flow-run process is Prefect's engine itself. Without a command, Prefect 3.8's process worker starts a
# workspace supervisor that imports Prefect, prepares the workspace and then execs the engine, which
# imports it all again: 2.4 CPU s more per model in a 6-model sweep, for dependency installs we never
# ask for.
ENGINE_COMMAND = shlex.join([sys.executable, "-m", "prefect.engine"])


def has_psycopg2() -> bool:
    """Whether MLflow's postgresql store can load its driver (not a dependency of driftloop itself)."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str) -> str:
    """``auto`` is PostgreSQL when Debian's binaries and MLflow's driver for it are installed, else
    sqlite. A PostgreSQL asked for that cannot run is refused, saying what to install, before anything
    starts."""
    installed = postgres_bin() is not None
    if backend == "auto":
        return "postgresql" if installed and has_psycopg2() else "sqlite"
    if backend == "postgresql" and not installed:
        raise StackError("PostgreSQL requested but no initdb found (apt-get install postgresql)")
    if backend == "postgresql" and not has_psycopg2():
        raise StackError(
            "PostgreSQL requested but psycopg2, the driver of MLflow's postgresql store, is not installed:"
            " pip install psycopg2-binary (or use --backend sqlite)"
        )
    return backend


class Stack:
    """The local stack under ``root``. ``up()`` starts it; the Service objects allow restarting one server.

    ``models_dir`` is the folder the ``sweep`` deployment reads (one monitor run per model file);
    ``config_path`` the default config of the per-model deployments (else ``models_dir/driftloop.yaml``,
    as on the cluster)."""

    def __init__(
        self,
        root: Path,
        *,
        backend: str = "auto",
        config_path: Path | None = None,
        models_dir: Path | None = None,
        worker_env: dict[str, str] | None = None,
        prefect_port: int | None = None,
        mlflow_port: int | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.backend = backend = resolve_backend(backend)
        bin_ = postgres_bin()
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path = config_path
        self.models_dir = Path(models_dir).resolve() if models_dir is not None else None
        self.worker_env = worker_env or {}
        self.prefect_port = prefect_port or free_port()
        self.mlflow_port = mlflow_port or free_port()
        self.postgres: Postgres | None = None
        if backend == "postgresql":
            assert bin_ is not None
            self.postgres = Postgres(postgres_folder(self.root), free_port(), bin_)
        self.prefect_server: Service | None = None
        self.mlflow_server: Service | None = None
        self.worker: Service | None = None

    # urls ------------------------------------------------------------------------------------------
    @property
    def prefect_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def prefect_ui_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment for a Prefect/MLflow client of this stack (the CLI, a flow run, a test)."""
        env = {
            "PREFECT_API_URL": self.prefect_url,
            "PREFECT_HOME": str(self.root / "prefect-client"),
            "MLFLOW_TRACKING_URI": self.mlflow_url,
        }
        return base_env(**{**env, **extra})

    # servers ---------------------------------------------------------------------------------------
    def _prefect_database(self) -> str:
        if self.postgres:
            return self.postgres.url("prefect", "postgresql+asyncpg")
        return f"sqlite+aiosqlite:///{self.root / 'prefect.db'}"

    def make_prefect_server(self) -> Service:
        env = base_env(
            PREFECT_HOME=str(self.root / "prefect-server"),
            PREFECT_API_DATABASE_CONNECTION_URL=self._prefect_database(),
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(self.prefect_port),
            PREFECT_UI_API_URL=self.prefect_url,
            PREFECT_API_DATABASE_MIGRATE_ON_START="true",
        )
        argv = [executable("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.prefect_port)]
        return Service("prefect-server", argv, env, self.root, f"{self.prefect_url}/health")

    def make_mlflow_server(
        self, port: int | None = None, database: str = "mlflow", name: str = "mlflow-server"
    ) -> Service:
        """The tracking server (``database`` and ``port`` other than the stack's: a second, separate one)."""
        port = port or self.mlflow_port
        artifacts = self.root / ("mlartifacts" if database == "mlflow" else f"mlartifacts-{database}")
        artifacts.mkdir(parents=True, exist_ok=True)
        if self.postgres:
            if database != "mlflow":
                self.postgres.start((database,))
            backend = self.postgres.url(database, "postgresql+psycopg2")
        else:
            backend = f"sqlite:///{self.root / (database + '.db')}"
        env = base_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        argv = [
            executable("mlflow"), "server",
            "--backend-store-uri", backend,
            "--serve-artifacts", "--artifacts-destination", str(artifacts),
            "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
            "--allowed-hosts", f"127.0.0.1:{port},localhost:{port}",
        ]  # fmt: skip
        return Service(name, argv, env, self.root, f"http://127.0.0.1:{port}/health")

    def make_worker(self) -> Service:
        env = self.client_env(
            **{
                "PREFECT_HOME": str(self.root / "prefect-worker"),
                "PREFECT_WORKER_QUERY_SECONDS": "2",
                "PREFECT_WORKER_PREFETCH_SECONDS": "5",
                **self.worker_env,
            }
        )
        argv = [executable("prefect"), "worker", "start", "--pool", POOL, "--type", "process"]
        argv += ["--name", "driftloop-local"]
        return Service("worker", argv, env, self.root, None, cwd=str(CODE_ROOT))

    def prefect_cli(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [executable("prefect"), "--no-prompt", *args],
            env=self.client_env(),
            cwd=str(CODE_ROOT),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise StackError(
                f"prefect {args[0]} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    # deployments -----------------------------------------------------------------------------------
    def local_prefect_yaml(self) -> Path:
        """flows/prefect.yaml for this stack: flows run from this code's folder instead of the image's
        /opt/driftloop, the sweep reads the stack's models folder, the default config is the stack's,
        and schedules are left paused (sweep from the UI or ``prefect deployment run sweep/sweep``)."""
        document = yaml.safe_load(PREFECT_YAML.read_text())
        document["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": str(CODE_ROOT)}}]
        for deployment in document["deployments"]:
            self._localise_parameters(deployment.get("parameters") or {})
            pool = deployment["work_pool"] = dict(deployment["work_pool"])  # an anchor shared by all
            pool["job_variables"] = {**(pool.get("job_variables") or {}), "command": ENGINE_COMMAND}
            for schedule in deployment.get("schedules") or []:
                schedule["active"] = False
        path = self.root / "prefect.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def _localise_parameters(self, parameters: dict[str, object]) -> None:
        if "models_dir" in parameters and self.models_dir is not None:
            parameters["models_dir"] = str(self.models_dir)
        if "config_path" not in parameters:
            return
        if self.config_path is not None:
            parameters["config_path"] = str(self.config_path)
        elif self.models_dir is not None and str(parameters["config_path"]).startswith(CLUSTER_MODELS_DIR + "/"):
            relative = str(parameters["config_path"])[len(CLUSTER_MODELS_DIR) + 1 :]
            parameters["config_path"] = str(self.models_dir / relative)

    def register_deployments(self) -> None:
        step("creating the work pool %s", POOL)
        self.prefect_cli("work-pool", "create", POOL, "--type", "process", "--overwrite")
        step("registering the deployments of flows/prefect.yaml")
        self.prefect_cli("deploy", "--all", "--prefect-file", str(self.local_prefect_yaml()))

    # lifecycle -------------------------------------------------------------------------------------
    def up(self) -> StackState:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            if self.postgres:
                step("starting PostgreSQL in %s", self.postgres.folder)
                self.postgres.start(("prefect", "mlflow"))
            self.prefect_server = self.make_prefect_server().start()
            self.mlflow_server = self.make_mlflow_server().start()
            self.register_deployments()
            self.worker = self.make_worker().start()
        except BaseException:
            self.down()
            raise
        state = self.state()
        (self.root / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
        return state

    def state(self) -> StackState:
        return StackState(
            root=str(self.root),
            backend=self.backend,
            prefect_url=self.prefect_url,
            prefect_ui_url=self.prefect_ui_url,
            mlflow_url=self.mlflow_url,
            postgres_port=self.postgres.port if self.postgres else None,
            postgres_folder=str(self.postgres.folder) if self.postgres else None,
            postgres_bin=str(self.postgres.bin) if self.postgres else None,
            config_path=str(self.config_path) if self.config_path else None,
            ports={"prefect": self.prefect_port, "mlflow": self.mlflow_port},
            models_dir=str(self.models_dir) if self.models_dir else None,
        )

    def down(self) -> None:
        for service in (self.worker, self.mlflow_server, self.prefect_server):
            if service is not None:
                service.stop()
        if self.postgres:
            with contextlib.suppress(StackError, OSError, subprocess.SubprocessError):
                self.postgres.stop()


# the `driftloop stack` commands ------------------------------------------------------------------------
