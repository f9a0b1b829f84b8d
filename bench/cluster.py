"""Temporary PostgreSQL servers on this machine: a streaming replica of the shared server
(`make bench-scaleout`) or a primary of the bench's own that it may restart (`bench/restart.py`).

Each lives in a folder under the system's temporary directory, owned by the `postgres` user
(PostgreSQL refuses to run as root), listens on 127.0.0.1 on a free port with its socket in
its own folder, and is stopped (by its data folder, `pg_ctl stop`) and removed at the end.
The shared server at 127.0.0.1:5432 is only read from, never restarted.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import server

HBA_REPLICATION_LINE = "host replication postgres 127.0.0.1/32 trust"
HBA_NOTE = "# added by Alliance's bench-scaleout: replication from this machine for pg_basebackup"
# Hot standby refuses to start with less of these than its primary has.
STANDBY_MATCHES = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def bindir() -> Path:
    """PostgreSQL's server programs: pg_config's answer, else the newest Debian folder."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        found = subprocess.run(
            ["pg_config", "--bindir"],  # noqa: S607 -- wherever this machine installed it
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if (Path(found) / "pg_ctl").exists():
            return Path(found)
    folders = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name or 0)
    )
    if not folders or not (folders[-1] / "pg_ctl").exists():
        raise SystemExit("PostgreSQL's server programs (pg_ctl, initdb) are not installed")
    return folders[-1]


def as_postgres(command: list[str]) -> list[str]:
    """Run as the postgres user when we are root: PostgreSQL will not run as root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def run(command: list[str], timeout: float = 600) -> str:
    done = subprocess.run(  # noqa: S603 -- PostgreSQL's own programs with our arguments
        as_postgres(command), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def owned_folder(prefix: str) -> Path:
    """A fresh temporary folder the postgres user owns (when we are root)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
    folder.chmod(0o700)
    return folder


@dataclass
class Cluster:
    """One PostgreSQL server of the bench's own: its folder, port and log."""

    folder: Path
    port: int
    bin: Path = field(default_factory=bindir)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    def database(self, name: str) -> server.Database:
        return server.Database(name=name, port=self.port)

    def psql(self, sql: str, database: str = "postgres") -> str:
        return server.Database(name="alliance_cluster", port=self.port).psql(sql, database)

    def start(self, wait: int = 120, options: str = "") -> None:
        """Start and wait until it takes connections; `options` are extra server settings
        (`-c name=value`) for this start only."""
        run(
            [
                str(self.bin / "pg_ctl"),
                *("-D", str(self.data), "-l", str(self.log), "-w", "-t", str(wait)),
                "-o",
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 {options}",
                "start",
            ],
            timeout=wait + 30,
        )

    def stop(self, mode: str = "fast") -> None:
        run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def running(self) -> bool:
        done = subprocess.run(  # noqa: S603 -- pg_ctl status on our own folder
            as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def remove(self) -> None:
        """Stop (immediately, if need be) and delete the folder."""
        if self.data.exists() and self.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def new_primary() -> Cluster:
    """An empty primary of the bench's own (initdb), trust authentication on 127.0.0.1."""
    cluster = Cluster(owned_folder("alliance-pg-primary-"), server.free_port())
    run(
        [
            str(cluster.bin / "initdb"),
            *("-D", str(cluster.data), "-U", "postgres", "-A", "trust"),
            *("-E", "UTF8", "--locale=C.UTF-8", "--no-sync"),
        ]
    )
    return cluster


def replication_allowed(primary: server.Database) -> bool:
    found = primary.psql(
        "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL "
        "AND 'replication' = ANY(database) AND type IN ('host', 'hostnossl') "
        "AND (address IS NULL OR address IN ('127.0.0.1', 'all', 'samehost'))"
    )
    return int(found or 0) > 0


def allow_replication(primary: server.Database, say) -> str:
    """Make sure pg_basebackup may connect for replication; add the pg_hba.conf line if not.

    Returns what was done, for the report. A server whose pg_hba.conf this process cannot
    write stops the bench with the line to add."""
    if replication_allowed(primary):
        return "pg_hba.conf already allows replication from 127.0.0.1"
    hba = Path(primary.psql("SHOW hba_file"))
    if not os.access(hba, os.W_OK):
        raise SystemExit(
            f"{hba} does not allow replication from 127.0.0.1. Add the line\n"
            f"    {HBA_REPLICATION_LINE}\nand reload PostgreSQL (SELECT pg_reload_conf()), "
            "then run the bench again."
        )
    with hba.open("a") as conf:
        conf.write(f"\n{HBA_NOTE}\n{HBA_REPLICATION_LINE}\n")
    primary.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)
    if not replication_allowed(primary):
        raise SystemExit(f"added {HBA_REPLICATION_LINE!r} to {hba}, but the server rejects it")
    say(f"added '{HBA_REPLICATION_LINE}' to {hba} and reloaded the server")
    return f"added '{HBA_REPLICATION_LINE}' to {hba}"


def new_replica(primary: server.Database) -> tuple[Cluster, float]:
    """A streaming replica of `primary` (pg_basebackup -R -X stream), not yet started; and the
    seconds the base backup took."""
    cluster = Cluster(owned_folder("alliance-pg-replica-"), server.free_port())
    began = time.monotonic()
    run(
        [
            str(cluster.bin / "pg_basebackup"),
            *("-h", primary.host, "-p", str(primary.port), "-U", primary.user),
            *("-D", str(cluster.data), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"),
        ],
        timeout=1800,
    )
    seconds = time.monotonic() - began
    matches = {name: primary.psql(f"SHOW {name}") for name in STANDBY_MATCHES}
    # Debian keeps postgresql.conf and pg_hba.conf outside the data folder: the copy has neither.
    settings = {
        "hot_standby": "on",
        "shared_buffers": "128MB",
        "unix_socket_directories": f"'{cluster.folder}'",
        **matches,
    }
    config = "".join(f"{name} = {value}\n" for name, value in settings.items())
    hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
    for name, text in (("postgresql.conf", config), ("pg_hba.conf", hba)):
        path = cluster.data / name
        if not path.exists():
            _write_as_postgres(path, text)
    return cluster, seconds


def _write_as_postgres(path: Path, text: str) -> None:
    path.write_text(text)
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(0o600)
