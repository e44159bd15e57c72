"""A local stack: the cluster's servers on 127.0.0.1, for trying driftloop (and testing it) without Kubernetes.

PostgreSQL (Debian's binaries, when installed; else sqlite for both stores), ``prefect server``,
``mlflow server`` proxying artifacts, a Prefect *process* work pool ``driftloop`` with one worker (it
stands in for the Kubernetes pool: only the pool type differs) and the deployments of
``flows/prefect.yaml`` registered into it, running flows from this code's folder.
Everything lives under one folder: data, logs (``logs/``), pid files and ``stack.json``.

Only subprocesses here: ``service/`` does not import Prefect.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from service.errors import DriftloopError

CODE_ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = CODE_ROOT / "flows" / "prefect.yaml"
POOL = "driftloop"
STATE_FILE = "stack.json"
TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_ENABLED": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


class StackError(DriftloopError):
    """A server of the local stack did not start, or a step of setting it up failed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without Prefect/MLflow settings leaking in, telemetry off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DRIFTLOOP_CONFIG"))}
    env.update(TELEMETRY_OFF)
    env.update(extra)
    return env


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 500
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _bin(name: str) -> str:
    """A console script installed beside this Python (prefect, mlflow), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise StackError(f"{name}: command not found beside {sys.executable} nor on PATH")
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_pid(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group led by ``pid`` (servers' children included), SIGKILL after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.2)


@dataclass
class Service:
    """One long-running server process, its log, its pid file and the URL that says it is ready."""

    name: str
    argv: list[str]
    env: dict[str, str]
    root: Path
    health_url: str | None = None
    cwd: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.root / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "pids" / f"{self.name}.pid"

    def start(self, timeout: float = 180.0) -> Service:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"\n--- {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() takes its children too
            )
        self.pid_file.write_text(str(self.process.pid))
        if self.health_url:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 180.0) -> None:
        assert self.health_url
        deadline = time.monotonic() + timeout
        while not answers(self.health_url):
            if self.process is not None and self.process.poll() is not None:
                raise StackError(f"{self.name} exited with {self.process.returncode}: see {self.log}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise StackError(f"{self.name}: {self.health_url} did not answer in {timeout:.0f} s: see {self.log}")
            time.sleep(0.5)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    @property
    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_file.read_text())
        return None

    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        pid = self.pid
        return pid is not None and _alive(pid)

    def stop(self, timeout: float = 20.0) -> None:
        pid = self.pid
        if pid is not None:
            stop_pid(pid, timeout)
            if self.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=5)
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def restart(self, timeout: float = 180.0) -> Service:
        self.stop()
        return self.start(timeout)


# PostgreSQL ------------------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """Debian's server binaries (/usr/lib/postgresql/<ver>/bin), newest first, or initdb on PATH."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as root, run its binaries as the `postgres` user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster: trust auth, 127.0.0.1 only, unix socket in its own folder."""

    folder: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def sockets(self) -> Path:
        return self.folder / "sockets"

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, argv: list[str], timeout: float = 120) -> str:
        result = subprocess.run(
            _as_postgres(argv), capture_output=True, text=True, timeout=timeout, env=base_env(), cwd="/"
        )
        if result.returncode != 0:
            raise StackError(f"{' '.join(argv[:3])} exited {result.returncode}: {result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result.stdout

    def start(self, databases: tuple[str, ...] = ()) -> Postgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            for path in (self.folder, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-o", options, "-w", "-t", "60", "start"])
        existing = self._run(
            [str(self.bin / "psql"), "-h", str(self.sockets), "-p", str(self.port), "-U", "postgres", "-Atc", "select datname from pg_database"]
        ).split()
        for name in databases:
            if name not in existing:
                self._run([str(self.bin / "createdb"), "-h", str(self.sockets), "-p", str(self.port), "-U", "postgres", name])
        return self

    def running(self) -> bool:
        result = subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]), capture_output=True, cwd="/"
        )
        return result.returncode == 0

    def stop(self) -> None:
        if self.data.exists() and self.running():
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])


def postgres_folder(root: Path) -> Path:
    """``root/postgres``, or — as root, when the `postgres` user cannot reach ``root`` (a 0700 home or
    pytest's tmp folders) — a folder under /var/tmp linked from ``root/postgres``."""
    folder = root / "postgres"
    if os.geteuid() != 0:
        return folder
    reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(root)], capture_output=True, cwd="/")
    if reachable.returncode == 0:
        return folder
    if folder.is_symlink():
        return folder.resolve()
    outside = Path(tempfile.mkdtemp(prefix="driftloop-pg-", dir="/var/tmp"))
    os.chmod(outside, 0o755)
    folder.symlink_to(outside, target_is_directory=True)
    return outside


# the stack -------------------------------------------------------------------------------------------


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


class Stack:
    """The local stack under ``root``. ``up()`` starts it; the Service objects allow restarting one server."""

    def __init__(
        self,
        root: Path,
        *,
        backend: str = "auto",
        config_path: Path | None = None,
        worker_env: dict[str, str] | None = None,
        prefect_port: int | None = None,
        mlflow_port: int | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        bin_ = postgres_bin()
        if backend == "auto":
            backend = "postgresql" if bin_ else "sqlite"
        if backend == "postgresql" and bin_ is None:
            raise StackError("PostgreSQL requested but no initdb found (apt-get install postgresql)")
        self.backend = backend
        self.config_path = config_path
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

    def _mlflow_database(self) -> str:
        if self.postgres:
            return self.postgres.url("mlflow", "postgresql+psycopg2")
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def make_prefect_server(self) -> Service:
        env = base_env(
            PREFECT_HOME=str(self.root / "prefect-server"),
            PREFECT_API_DATABASE_CONNECTION_URL=self._prefect_database(),
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(self.prefect_port),
            PREFECT_UI_API_URL=self.prefect_url,
            PREFECT_API_DATABASE_MIGRATE_ON_START="true",
        )
        argv = [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.prefect_port)]
        return Service("prefect-server", argv, env, self.root, f"{self.prefect_url}/health")

    def make_mlflow_server(self) -> Service:
        artifacts = self.root / "mlartifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        env = base_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        argv = [
            _bin("mlflow"), "server",
            "--backend-store-uri", self._mlflow_database(),
            "--serve-artifacts", "--artifacts-destination", str(artifacts),
            "--workers", "1", "--host", "127.0.0.1", "--port", str(self.mlflow_port),
            "--allowed-hosts", f"127.0.0.1:{self.mlflow_port},localhost:{self.mlflow_port}",
        ]  # fmt: skip
        return Service("mlflow-server", argv, env, self.root, f"{self.mlflow_url}/health")

    def make_worker(self) -> Service:
        env = self.client_env(
            **{
                "PREFECT_HOME": str(self.root / "prefect-worker"),
                "PREFECT_WORKER_QUERY_SECONDS": "2",
                "PREFECT_WORKER_PREFETCH_SECONDS": "5",
                **self.worker_env,
            }
        )
        argv = [_bin("prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--name", "driftloop-local"]
        return Service("worker", argv, env, self.root, None, cwd=str(CODE_ROOT))

    def prefect_cli(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [_bin("prefect"), "--no-prompt", *args],
            env=self.client_env(),
            cwd=str(CODE_ROOT),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise StackError(f"prefect {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    # deployments -----------------------------------------------------------------------------------
    def local_prefect_yaml(self) -> Path:
        """flows/prefect.yaml for this stack: flows run from this code's folder instead of the image's
        /opt/driftloop, the default config is the stack's, and schedules are left paused (run a pass
        from the UI or ``prefect deployment run monitor/monitor``)."""
        document = yaml.safe_load(PREFECT_YAML.read_text())
        document["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": str(CODE_ROOT)}}]
        for deployment in document["deployments"]:
            if self.config_path is not None:
                deployment.setdefault("parameters", {})["config_path"] = str(self.config_path)
            for schedule in deployment.get("schedules") or []:
                schedule["active"] = False
        path = self.root / "prefect.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def register_deployments(self) -> None:
        self.prefect_cli("work-pool", "create", POOL, "--type", "process", "--overwrite")
        self.prefect_cli("deploy", "--all", "--prefect-file", str(self.local_prefect_yaml()))

    # lifecycle -------------------------------------------------------------------------------------
    def up(self) -> StackState:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            if self.postgres:
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
        )

    def down(self) -> None:
        for service in (self.worker, self.mlflow_server, self.prefect_server):
            if service is not None:
                service.stop()
        if self.postgres:
            with contextlib.suppress(StackError, OSError, subprocess.SubprocessError):
                self.postgres.stop()


# the `driftloop stack` commands ------------------------------------------------------------------------


def demo_config_for(root: Path, mlflow_url: str, batches: int = 8, rows: int = 500, drift_at: int = 5) -> Path:
    """A demo stream with every batch delivered, and its config pointing at the stack's MLflow server."""
    from service.demo import deliver, prepare_workspace

    workspace = prepare_workspace(root / "demo", batches, rows, drift_at)
    for batch in workspace.batches:
        deliver(workspace, batch)
    document = yaml.safe_load(workspace.config_path.read_text())
    document.setdefault("registry", {})["tracking_uri"] = mlflow_url
    workspace.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    return workspace.config_path


def read_state(root: Path) -> dict[str, Any] | None:
    path = Path(root) / STATE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def stack_up(root: Path, backend: str = "auto", config_path: Path | None = None) -> StackState:
    root = Path(root).resolve()
    existing = read_state(root)
    if existing and answers(existing["prefect_url"] + "/health"):
        raise StackError(f"{root}: a stack is already running there ({existing['prefect_ui_url']}): `driftloop stack down` first")
    prefect_port, mlflow_port = free_port(), free_port()
    if config_path is None:
        config_path = demo_config_for(root, f"http://127.0.0.1:{mlflow_port}")
    stack = Stack(root, backend=backend, config_path=Path(config_path).resolve(), prefect_port=prefect_port, mlflow_port=mlflow_port)
    return stack.up()


def stack_down(root: Path) -> list[str]:
    """Stop what ``stack_up`` started under ``root``; returns the names of what was stopped."""
    root = Path(root).resolve()
    stopped = []
    for name in ("worker", "mlflow-server", "prefect-server"):
        pid_file = root / "pids" / f"{name}.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError):
                pid = int(pid_file.read_text())
                if _alive(pid):
                    stop_pid(pid)
                    stopped.append(name)
            pid_file.unlink(missing_ok=True)
    state = read_state(root)
    if state and state.get("postgres_folder"):
        postgres = Postgres(Path(state["postgres_folder"]), state["postgres_port"], Path(state["postgres_bin"]))
        if postgres.data.exists() and postgres.running():
            postgres.stop()
            stopped.append("postgresql")
    return stopped


def stack_status(root: Path) -> list[tuple[str, str, bool]]:
    """(component, URL or pid, answering) for each component of the stack under ``root``."""
    state = read_state(Path(root).resolve())
    if state is None:
        raise StackError(f"{Path(root).resolve()}: no stack here ({STATE_FILE} not found): `driftloop stack up --dir ...` first")
    rows = [
        ("prefect api", state["prefect_url"], answers(state["prefect_url"] + "/health")),
        ("prefect ui", state["prefect_ui_url"], answers(state["prefect_ui_url"])),
        ("mlflow", state["mlflow_url"], answers(state["mlflow_url"] + "/health")),
    ]
    pid_file = Path(state["root"]) / "pids" / "worker.pid"
    worker_pid = int(pid_file.read_text()) if pid_file.exists() else None
    rows.append(("worker", f"pool {POOL}, pid {worker_pid}", worker_pid is not None and _alive(worker_pid)))
    if state.get("postgres_port"):
        postgres = Postgres(Path(state["postgres_folder"]), state["postgres_port"], Path(state["postgres_bin"]))
        rows.append(("postgresql", f"127.0.0.1:{postgres.port}", postgres.running()))
    if state.get("config_path"):
        rows.append(("config", state["config_path"], Path(state["config_path"]).exists()))
    return rows
