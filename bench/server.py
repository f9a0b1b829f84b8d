"""The app under test: its environment, its database (through psql), collectstatic, gunicorn.

Every process here is started by the benchmark and ended by its own process id.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .web import Browser

ROOT = Path(__file__).resolve().parent.parent
PROTECTED_DATABASES = {"test_alliance", "alliance", "postgres", "template0", "template1"}


@dataclass(frozen=True)
class Database:
    name: str = "alliance_bench"
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"

    def __post_init__(self):
        if self.name in PROTECTED_DATABASES or self.name.startswith("test_"):
            raise ValueError(f"the benchmark never uses the database {self.name!r}")
        if self.host not in ("127.0.0.1", "localhost"):
            raise ValueError("the benchmark's database runs on this machine (127.0.0.1)")

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.name}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(  # noqa: S603 -- psql with statements built from checked names
            [
                *("psql", "-h", self.host, "-p", str(self.port), "-U", self.user),
                *("-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def exists(self) -> bool:
        found = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.name}'")  # noqa: S608
        return found == "1"

    def create(self) -> None:
        self.psql(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def server_version(self) -> str:
        return self.psql("SHOW server_version")


def app_environment(database: Database, static_root: Path, secret_key: str) -> dict[str, str]:
    """Production settings (DEBUG off, hashed compressed static files) on plain HTTP localhost."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "SECURE_", "DJANGO_"))
        and key not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "STATIC_ROOT", "BEHIND_TLS_PROXY")
    }
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "alliance_app.settings",
        "DEBUG": "false",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": database.url,
        "STATIC_ROOT": str(static_root),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(  # noqa: S603 -- manage.py of this project
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (gunicorn's workers), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields follow the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class Gunicorn:
    """One gunicorn master with its workers on 127.0.0.1:port."""

    env: dict[str, str]
    port: int
    workers: int = 3
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 60.0) -> "Gunicorn":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 -- gunicorn of this project's venv
            [
                sys.executable,
                "-m",
                "gunicorn",
                "alliance_app.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--worker-class",
                "sync",
                "--timeout",
                "120",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        if log is not subprocess.DEVNULL:
            log.close()
        self.wait_ready(wait)
        return self

    def wait_ready(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        probe = Browser(self.base_url, timeout=5)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn on port {self.port} exited ({self.log_path})")
            try:
                # Every worker imports the app lazily on its first request: touch each.
                if probe.get("/healthz").status == 200 and all(
                    probe.get("/healthz").status == 200 for _ in range(self.workers * 2)
                ):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn on port {self.port} did not answer within {wait:.0f} s")

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid) if self.process else []

    def kill(self) -> list[int]:
        """SIGKILL to the master and every worker at once: no graceful anything."""
        if self.process is None:
            return []
        pids = [self.process.pid, *self.worker_pids()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        # Orphaned workers are re-parented; make sure each one is gone before the port is reused.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids[1:]):
            time.sleep(0.05)
        self.process = None
        return pids

    def stop(self) -> None:
        """A graceful stop (SIGTERM to the master), SIGKILL if it lingers."""
        if self.process is None:
            return
        workers = self.worker_pids()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.05)
        self.process = None


def _alive(pid: int) -> bool:
    """Still running (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"
