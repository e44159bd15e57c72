"""Background server processes for the local stack: start, wait until they answer, stop; ports, env.

Each process runs in its own process group with its pid in a file, so a later command can stop it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from service.errors import DriftloopError
from service.progress import step

CODE_ROOT = Path(__file__).resolve().parents[2]
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


def executable(name: str) -> str:
    """A console script installed beside this Python (prefect, mlflow), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise StackError(f"{name}: command not found beside {sys.executable} nor on PATH")
    return found


def alive(pid: int) -> bool:
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
            if not alive(pid):
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
        step("starting %s (log: %s)", self.name, self.log)
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
        step("waiting for %s to answer at %s", self.name, self.health_url)
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
        return pid is not None and alive(pid)

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
