"""A throw-away PostgreSQL cluster from Debian's binaries, for the local stack and the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from service.stack.processes import StackError, base_env


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
            raise StackError(
                f"{' '.join(argv[:3])} exited {result.returncode}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
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
            self._run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
        if self.running():
            self._create(databases)
            return self
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "postgres.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self._create(databases)
        return self

    def _create(self, databases: tuple[str, ...]) -> None:
        existing = self._run(
            [
                str(self.bin / "psql"),
                "-h",
                str(self.sockets),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-Atc",
                "select datname from pg_database",
            ]
        ).split()
        for name in databases:
            if name not in existing:
                self._run(
                    [str(self.bin / "createdb"), "-h", str(self.sockets), "-p", str(self.port), "-U", "postgres", name]
                )

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
    reachable = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(root)], capture_output=True, cwd="/"
    )
    if reachable.returncode == 0:
        return folder
    if folder.is_symlink():
        return folder.resolve()
    outside = Path(tempfile.mkdtemp(prefix="driftloop-pg-", dir="/var/tmp"))
    os.chmod(outside, 0o755)
    folder.symlink_to(outside, target_is_directory=True)
    return outside


# the stack -------------------------------------------------------------------------------------------
