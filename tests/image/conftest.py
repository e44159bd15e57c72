"""The container image, built with a real Docker engine and no registry.

Debian's engine (``.ci/install-docker``) is started here when it isn't running, with no bridge and no
iptables rules: builds and containers use the host's network (``--network host``), which also lets a
container reach servers on 127.0.0.1, as a Job's pod reaches the cluster's services.
No registry is reachable, so the base image is made with ``debootstrap`` (the Debian release and
mirror of this machine, python3 + venv + pip + ca-certificates, and this machine's own CA
certificates, which its package proxy may need) and ``docker import``. It is cached as a tarball under
/var/cache/driftloop-test and as an image tag, so only the first run pays for it (one to two minutes).
The engine caches the build's layers: a cold build takes about five minutes, then a change to the
code rebuilds only the last layers (under a minute).
``DRIFTLOOP_TEST_BASE_IMAGE`` names another base instead (python:3.11-slim-bookworm, where a registry
is reachable). pip inside the build reaches PyPI the way pip on this machine does: same index URLs
(http ones; file:// indexes and find-links are local to this machine), same proxies, and a CA bundle
holding the same certificates.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("DRIFTLOOP_TEST_CACHE", "/var/cache/driftloop-test"))
IMAGE = "driftloop-test/driftloop:test"
GIT_SHA = "image-test-sha"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
INSTALL_HINT = "run .ci/install-docker (as root) first: it installs docker.io, debootstrap, hadolint and checkov"
BUILD_TIMEOUT = 30 * 60
POD_STORE = "/var/lib/driftloop"  # a writable volume in the container, as a PVC would be
POD_REGISTRY = {"tracking_uri": f"sqlite:///{POD_STORE}/mlflow.db", "artifact_root": f"{POD_STORE}/artifacts"}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def run(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args[:6])}... exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}",
            pytrace=False,
        )
    return result


def _engine_answers(docker: str) -> bool:
    return subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="session")
def docker() -> Iterator[str]:
    """The docker client, talking to a running engine; started here (and stopped after) if need be."""
    client = require_tool("docker")
    if _engine_answers(client):
        yield client
        return
    dockerd = require_tool("dockerd")
    if os.geteuid() != 0:
        pytest.fail("the Docker engine is not running and only root can start it here", pytrace=False)
    pid_file = Path("/var/run/docker.pid")
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pid_file.read_text().strip()), 0)
            pytest.fail(f"dockerd (pid in {pid_file}) is running but does not answer `docker info`", pytrace=False)
        pid_file.unlink()  # left by an engine that did not stop cleanly
    CACHE.mkdir(parents=True, exist_ok=True)
    log = (CACHE / "dockerd.log").open("ab")
    engine = subprocess.Popen(
        [dockerd, "--bridge=none", "--iptables=false", "--ip-forward=false"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not _engine_answers(client):
        if engine.poll() is not None or time.monotonic() > deadline:
            engine.kill()
            pytest.fail(f"dockerd did not start: see {CACHE / 'dockerd.log'}", pytrace=False)
        time.sleep(0.5)
    try:
        yield client
    finally:
        engine.terminate()
        try:
            engine.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.kill()
        log.close()


def _os_release() -> dict[str, str]:
    fields = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        fields[key] = value.strip().strip('"')
    return fields


def debian_mirror(suite: str) -> str:
    """The Debian archive that apt on this machine uses for ``suite`` (not the security archive)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.+)$", stanza, re.MULTILINE))
            if suite in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                return fields["URIs"].split()[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        if path.exists():
            for match in re.finditer(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{suite}\s", path.read_text(), re.MULTILINE):
                return match[1]
    pytest.fail(f"no Debian archive for {suite} found in this machine's apt sources", pytrace=False)


@pytest.fixture(scope="session")
def base_image(docker: str) -> str:
    """A Debian base image like this machine's, made with debootstrap: the tarball is cached."""
    if os.environ.get("DRIFTLOOP_TEST_BASE_IMAGE"):
        return os.environ["DRIFTLOOP_TEST_BASE_IMAGE"]
    suite = _os_release().get("VERSION_CODENAME") or pytest.fail("no VERSION_CODENAME in /etc/os-release")
    mirror = debian_mirror(suite)
    cas = sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []
    key = hashlib.sha256(
        "\n".join([suite, mirror, *BASE_PACKAGES, *(p.name + p.read_text() for p in cas)]).encode()
    ).hexdigest()[:12]
    tag = f"driftloop-test/base:{suite}-{key}"
    if run(docker, "image", "inspect", tag, check=False).returncode == 0:
        return tag
    tarball = CACHE / f"base-{suite}-{key}.tar"
    if not tarball.exists():
        started = time.monotonic()
        _debootstrap(suite, mirror, cas, tarball)
        (CACHE / "base.log").write_text(f"debootstrap {suite} from {mirror}: {time.monotonic() - started:.0f} s\n")
    with tarball.open("rb") as stream:
        run(docker, "import", "--message", f"debootstrap {suite} from {mirror}", "-", tag, stdin=stream)
    return tag


def _debootstrap(suite: str, mirror: str, cas: list[Path], tarball: Path) -> None:
    debootstrap = require_tool("debootstrap")
    if os.geteuid() != 0:
        pytest.fail("debootstrap needs root", pytrace=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="rootfs-") as work:
        rootfs = Path(work) / "rootfs"
        run(
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            suite,
            str(rootfs),
            mirror,
            timeout=20 * 60,
        )
        # The certificates this machine trusts beyond Debian's, so pip in the build trusts them too.
        for ca in cas:
            shutil.copy(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
        run("chroot", str(rootfs), "update-ca-certificates")
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftovers).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".partial")
        run("tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), ".", timeout=600)
        partial.rename(tarball)


def _pip_config() -> dict[str, str]:
    """pip's effective settings on this machine (``pip config list``), environment variables first."""
    result = subprocess.run(
        ["python", "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    settings: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(:env:|[\w-]+)\.([\w-]+)='(.*)'$", line)
        if match and (match[1] == ":env:" or match[2] not in settings):
            settings[match[2]] = match[3]
    return settings


def build_args() -> list[str]:
    """Build args that let pip in the build reach the index that pip here reaches, the same way."""
    pip = _pip_config()
    args = {"DRIFTLOOP_GIT_SHA": GIT_SHA}
    if pip.get("index-url"):
        args["PIP_INDEX_URL"] = pip["index-url"]
    extra = [url for url in pip.get("extra-index-url", "").split() if url.startswith(("http://", "https://"))]
    if extra:
        args["PIP_EXTRA_INDEX_URL"] = " ".join(extra)
    if pip.get("default-timeout"):
        args["PIP_DEFAULT_TIMEOUT"] = pip["default-timeout"]
    if pip.get("trusted-host"):
        args["PIP_TRUSTED_HOST"] = pip["trusted-host"]
    if not os.environ.get("DRIFTLOOP_TEST_BASE_IMAGE"):
        # The debootstrapped base trusts what this machine trusts, in Debian's bundle: pip uses that
        # rather than its own copy of certifi's, which lacks this machine's certificates.
        args["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        if os.environ.get(name):
            args[name] = os.environ[name]
    return [arg for name, value in args.items() for arg in ("--build-arg", f"{name}={value}")]


@pytest.fixture(scope="session")
def image(docker: str, base_image: str) -> str:
    """The image, built from the repository's Dockerfile (layers cached by the engine between runs)."""
    env = dict(os.environ)
    if subprocess.run([docker, "buildx", "version"], capture_output=True, check=False).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"  # Debian's engine: the legacy builder, which is all it has
    started = time.monotonic()
    command = [docker, "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base_image}", *build_args()]
    result = subprocess.run(
        [*command, "--tag", IMAGE, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env=env,
        check=False,
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "build.log").write_text(f"{result.stdout}\n{result.stderr}\n{time.monotonic() - started:.0f} s\n")
    if result.returncode != 0:
        pytest.fail(f"docker build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}", pytrace=False)
    return IMAGE


@pytest.fixture(scope="session")
def container(docker: str, image: str):
    """Run a command in the image as the chart's restricted pods do: read-only root, /tmp a tmpfs, no caps.

    ``detach=True`` starts it in the background under ``name``; the caller removes it.
    """

    def run_container(
        *command: str,
        env: dict[str, str] | None = None,
        volumes: dict[Path, str] | None = None,
        user: str | None = None,
        timeout: float = 300,
        detach: bool = False,
        name: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        args = [docker, "run", "--network", "host", "--read-only", "--tmpfs", "/tmp"]
        args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        args += ["--detach"] if detach else ["--rm"]
        args += ["--name", name] if name else []
        args += ["--user", user] if user else []
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        for source, target in (volumes or {}).items():
            args += ["--volume", f"{source}:{target}"]
        return subprocess.run([*args, image, *command], capture_output=True, text=True, timeout=timeout, check=False)

    return run_container


@contextlib.contextmanager
def background(docker: str, name: str) -> Iterator[None]:
    """Remove the detached container ``name`` afterwards; on a failure, show what it printed."""
    try:
        yield
    except BaseException:
        logs = subprocess.run([docker, "logs", "--tail", "60", name], capture_output=True, text=True, check=False)
        print(f"--- logs of {name}:\n{logs.stdout}\n{logs.stderr}")
        raise
    finally:
        subprocess.run([docker, "rm", "--force", name], capture_output=True, check=False)


def pod_store(folder: Path) -> Path:
    """A host folder to mount at POD_STORE, owned by the pod's user as an fsGroup would make it."""
    folder.mkdir()
    os.chown(folder, 10001, 10001)
    return folder


def read_pod_registry(store: Path) -> Any:
    """An MlflowClient on a copy of the pod's sqlite store (the host never writes the pod's store).

    registry_uri too: a Registry opened earlier in this process set the process-wide registry URI.
    """
    from mlflow import MlflowClient

    copy = store.parent / "mlflow-read.db"
    shutil.copyfile(store / "mlflow.db", copy)
    return MlflowClient(f"sqlite:///{copy}", registry_uri=f"sqlite:///{copy}")


def drift_checks(mlflow: Any, model: str) -> list[Any]:
    """The drift-check runs the monitor recorded for ``model``."""
    return mlflow.search_runs(
        [mlflow.get_experiment_by_name(f"driftloop/{model}/monitoring").experiment_id],
        filter_string="tags.`driftloop.kind` = 'drift_check'",
    )
