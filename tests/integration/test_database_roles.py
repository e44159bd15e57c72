"""The bundled PostgreSQL's roles script, from the rendered chart, against a real PostgreSQL.

The chart's PostgreSQL pod runs `roles.sh` (ConfigMap `<release>-postgresql-init`) as the superuser
over its unix socket, on the first start and on every later one. Here the same files, taken from
`helm template`, run against a throw-away cluster with password authentication on 127.0.0.1, as in
the pod; then the servers connect with the URLs of the database Secret, as the chart's pods do.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from service.stack.postgres import postgres_bin, postgres_folder

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "driftloop"
SUPERUSER = "driftloop"  # postgresql.username: the image's POSTGRES_USER, the bootstrap superuser
TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_ENABLED": "false",
}


def as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root, and the pod runs its scripts as PostgreSQL's user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Cluster:
    folder: Path
    port: int
    bin: Path

    def run_as_superuser(self, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "PGHOST": str(self.folder / "sockets"),
            "PGPORT": str(self.port),
            "POSTGRES_USER": SUPERUSER,
            **env,
        }
        return subprocess.run(as_postgres(argv), capture_output=True, text=True, env=environment, cwd="/", timeout=120)

    def sql(self, database: str, query: str) -> str:
        result = self.run_as_superuser(
            [str(self.bin / "psql"), "-U", SUPERUSER, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", query], {}
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def connect_as(self, role: str, password: str, database: str) -> subprocess.CompletedProcess[str]:
        """psql over TCP with a password, as Prefect and MLflow reach PostgreSQL's Service."""
        env = {"PATH": os.environ["PATH"], "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
        argv = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", role, "-d", database]
        return subprocess.run([*argv, "-Atc", "select current_user"], capture_output=True, text=True, env=env)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    binaries = postgres_bin()
    if binaries is None:
        pytest.fail("PostgreSQL server binaries not found: run .ci/install-integration (as root) first", pytrace=False)
    folder = postgres_folder(tmp_path)
    (folder / "sockets").mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "sockets", "postgres")
    found = Cluster(folder, free_port(), binaries)
    # As the image's initdb: the superuser named by postgresql.username, passwords on TCP.
    init = [str(binaries / "initdb"), "-D", str(folder / "data"), "-U", SUPERUSER, "--no-sync", "-E", "UTF8"]
    init += ["--auth-local=trust", "--auth-host=scram-sha-256"]
    assert found.run_as_superuser(init, {}).returncode == 0
    options = f"-p {found.port} -k {folder / 'sockets'} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-o", options, "-w"]
    started = found.run_as_superuser([*start, "start"], {})
    assert started.returncode == 0, started.stderr
    yield found
    found.run_as_superuser([str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"], {})


@dataclass
class Secret:
    folder: Path
    prefect_password: str
    mlflow_password: str

    def url(self, server: str, port: int) -> str:
        password = self.prefect_password if server == "prefect" else self.mlflow_password
        scheme = "postgresql+asyncpg" if server == "prefect" else "postgresql+psycopg2"
        return f"{scheme}://{server}:{quote(password, safe='')}@127.0.0.1:{port}/{server}"


@pytest.fixture
def chart_scripts(cluster: Cluster) -> Path:
    """The files of the rendered `driftloop-postgresql-init` ConfigMap, executable as in the pod."""
    command = ["helm", "template", "driftloop", str(CHART), "--namespace", "driftloop"]
    command += ["--set", "database.existingSecret=driftloop-database", "--show-only", "templates/postgresql.yaml"]
    command += ["--set", "auth.existingSecret=driftloop-auth", "--set", "auth.flowRunExistingSecret=driftloop-auth"]
    rendered = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    (configmap,) = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc and doc["kind"] == "ConfigMap"]
    folder = cluster.folder / "scripts"
    folder.mkdir()
    for name, text in configmap["data"].items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o555)
    return folder


@pytest.fixture
def database_secret(cluster: Cluster) -> Secret:
    """The database Secret's URL keys as the pod mounts them: one file per key."""
    folder = cluster.folder / "secret"
    folder.mkdir()
    # A password with characters a URL must percent-encode, as an existingSecret may hold.
    found = Secret(folder, "p@ss:w/rd%" + secrets.token_hex(8), secrets.token_hex(16))
    for server in ("prefect", "mlflow"):
        (folder / f"{server}-url").write_text(found.url(server, cluster.port))
    if os.geteuid() == 0:
        for path in (folder, *folder.iterdir()):
            shutil.chown(path, "postgres")
    return found


def run_roles_script(cluster: Cluster, scripts: Path, secret: Secret) -> subprocess.CompletedProcess[str]:
    return cluster.run_as_superuser([str(scripts / "roles.sh")], {"DRIFTLOOP_DATABASE_SECRETS": str(secret.folder)})


def migrate(server: str, url: str) -> subprocess.CompletedProcess[str]:
    """The migrate hook's command for one server, with the URL the hook gets from the Secret."""
    env = {**os.environ, **TELEMETRY_OFF}
    if server == "prefect":
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = url
        command = ["prefect", "server", "database", "upgrade", "-y"]
    else:
        command = ["mlflow", "db", "upgrade", url]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd="/")


def test_each_server_gets_its_own_role_owning_only_its_database(
    cluster: Cluster, chart_scripts: Path, database_secret: Secret
) -> None:
    result = run_roles_script(cluster, chart_scripts, database_secret)
    assert result.returncode == 0, result.stdout + result.stderr

    roles = cluster.sql("postgres", "select rolname, rolsuper, rolcreatedb, rolcreaterole from pg_roles order by 1")
    assert "mlflow|f|f|f" in roles.splitlines() and "prefect|f|f|f" in roles.splitlines()
    owners = cluster.sql("postgres", "select datname, pg_get_userbyid(datdba) from pg_database order by 1")
    assert {"mlflow|mlflow", "prefect|prefect"} <= set(owners.splitlines())

    assert cluster.connect_as("prefect", database_secret.prefect_password, "prefect").stdout.strip() == "prefect"
    assert cluster.connect_as("mlflow", database_secret.mlflow_password, "mlflow").stdout.strip() == "mlflow"
    for role, password, other in (
        ("prefect", database_secret.prefect_password, "mlflow"),
        ("mlflow", database_secret.mlflow_password, "prefect"),
        ("prefect", database_secret.prefect_password, "postgres"),
    ):
        refused = cluster.connect_as(role, password, other)
        assert refused.returncode != 0
        assert f'permission denied for database "{other}"' in refused.stderr
    wrong = cluster.connect_as("prefect", database_secret.mlflow_password, "prefect")
    assert 'password authentication failed for user "prefect"' in wrong.stderr


def test_both_servers_migrate_their_schemas_as_their_own_roles(
    cluster: Cluster, chart_scripts: Path, database_secret: Secret
) -> None:
    assert run_roles_script(cluster, chart_scripts, database_secret).returncode == 0

    for server in ("prefect", "mlflow"):
        result = migrate(server, database_secret.url(server, cluster.port))
        assert result.returncode == 0, f"{server}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    not_theirs = "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
    not_theirs += " where n.nspname = 'public' and pg_get_userbyid(c.relowner) <> current_database()"
    assert cluster.sql("prefect", "select count(*) from pg_tables where schemaname = 'public'") != "0"
    assert cluster.sql("mlflow", "select count(*) from pg_tables where tablename = 'registered_models'") == "1"
    assert cluster.sql("prefect", not_theirs) == "0" and cluster.sql("mlflow", not_theirs) == "0"


def test_an_upgrade_from_the_shared_superuser_hands_each_database_to_its_role(
    cluster: Cluster, chart_scripts: Path, database_secret: Secret
) -> None:
    # Releases before separate roles: both databases created and migrated by the superuser.
    cluster.sql("postgres", f"alter role {SUPERUSER} password 'old-shared'")
    for server in ("prefect", "mlflow"):
        cluster.sql("postgres", f"create database {server}")
        scheme = "postgresql+asyncpg" if server == "prefect" else "postgresql+psycopg2"
        result = migrate(server, f"{scheme}://{SUPERUSER}:old-shared@127.0.0.1:{cluster.port}/{server}")
        assert result.returncode == 0, f"{server}: {result.stdout[-2000:]}{result.stderr[-2000:]}"

    # The next start of the upgraded PostgreSQL pod, and a start after that.
    for _ in range(2):
        result = run_roles_script(cluster, chart_scripts, database_secret)
        assert result.returncode == 0, result.stdout + result.stderr

    for server in ("prefect", "mlflow"):
        owned = "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        owned += f" where n.nspname = 'public' and pg_get_userbyid(c.relowner) = '{SUPERUSER}'"
        assert cluster.sql(server, owned) == "0", f"{server}: objects still owned by the superuser"
        assert migrate(server, database_secret.url(server, cluster.port)).returncode == 0
    # Owning its tables, the role can change them, as its next schema migration will.
    change = "begin; alter table alembic_version add column probe int; rollback"
    env = {"PATH": os.environ["PATH"], "PGPASSWORD": database_secret.mlflow_password}
    argv = ["psql", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "mlflow", "-d", "mlflow", "-v", "ON_ERROR_STOP=1"]
    altered = subprocess.run([*argv, "-c", change], capture_output=True, text=True, env=env)
    assert altered.returncode == 0, altered.stderr


def test_a_url_naming_the_superuser_is_left_alone_with_a_warning(
    cluster: Cluster, chart_scripts: Path, database_secret: Secret
) -> None:
    # An existingSecret from before separate roles: PostgreSQL keeps starting, and says what to do.
    (database_secret.folder / "mlflow-url").write_text(f"postgresql://{SUPERUSER}:x@127.0.0.1:5432/mlflow")

    result = run_roles_script(cluster, chart_scripts, database_secret)

    assert result.returncode == 0, result.stderr
    assert "connects as the PostgreSQL superuser; give each server its own role" in result.stderr
    assert cluster.sql("postgres", f"select rolsuper from pg_roles where rolname = '{SUPERUSER}'") == "t"


def test_a_malformed_url_stops_postgresql_from_starting_with_the_expected_form(
    cluster: Cluster, chart_scripts: Path, database_secret: Secret
) -> None:
    (database_secret.folder / "prefect-url").write_text("prefect-without-a-password")

    result = run_roles_script(cluster, chart_scripts, database_secret)

    assert result.returncode != 0
    assert "the database URL must name a role, its password, the host and a database" in result.stderr
