"""`make bench-scaleout`: the dashboards on a PostgreSQL streaming replica of the bench's data.

1. The bench's database (`alliance_bench` on 127.0.0.1:5432, prepared as `make bench` does)
   and a streaming replica of that whole server made on this machine: pg_basebackup -R -X
   stream into a temporary folder (timed), a second postgres on a free port from it. If the
   server's pg_hba.conf does not allow replication from 127.0.0.1, the line is added and the
   server reloaded (or, when the file cannot be written, the bench stops and says what to add).
2. The dashboards under wrk, first with gunicorn on the primary alone, then with
   DATABASE_REPLICA_URLS naming the replica: p50 and p95 both ways, and where the reads went
   (each server's `pg_stat_database` transactions and rows read, and the CPU time of the
   backends serving the app, from /proc).
3. A no-loss run (bench/lossless.py) with the replica in use: every acknowledged rating stored
   exactly once, flags and summary rows as the rules give; the primary's CPU per submission
   gives where the next limit is (submissions/s a primary core can take).
4. The replica stopped half-way through a second no-loss run while a browser keeps opening the
   dashboards: every page must answer 200, from the primary once the replica is gone.
The replica is stopped and its folder removed at the end, even on failure. Results:
results/scaleout-<time>.json and a table on stdout.
"""

import argparse
import json
import math
import random
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from . import cluster, data, load, run, server, stats
from .run import say
from .web import Browser

TABLET_USERNAME = "bench-scaleout"
CLOCK_TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.scaleout", description=__doc__.splitlines()[0]
    )
    p.add_argument("--database", default="alliance_bench")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--duration", type=int, default=12, help="measured seconds per page")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--tablets", type=int, default=50)
    p.add_argument("--lossless-duration", type=int, default=40)
    p.add_argument("--max-rate", type=int, default=100, help="submissions/s to provide for")
    p.add_argument("--results", default="results")
    p.add_argument("--keep", action="store_true", help="keep the temporary folders")
    return p.parse_args(argv)


def scaleout_therapist(org, password: str):
    """This bench's tablet therapist, in no team (no measured dashboard sees its ratings)."""
    from alliance_app.accounts.models import Membership, Role, User

    user, _created = User.objects.get_or_create(
        username=f"{TABLET_USERNAME}-{org.slug}", defaults={"first_name": "Bench"}
    )
    user.set_password(password)
    user.save()
    Membership.objects.update_or_create(
        user=user, defaults={"organization": org, "role": Role.THERAPIST, "team": None}
    )
    return user


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """User and system CPU ticks of each process, from /proc (gone processes left out)."""
    found = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[pid] = int(fields[11]) + int(fields[12])
    return found


class Meter:
    """What one database server did for the app between two readings: transactions, rows read,
    and the CPU seconds of its client backends for the database."""

    def __init__(self, db: server.Database):
        self.db = db

    def backends(self) -> list[int]:
        pids = self.db.psql(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "  # noqa: S608
            f"AND datname = '{self.db.name}' AND pid <> pg_backend_pid()"
        )
        return [int(pid) for pid in pids.split()]

    def reading(self) -> dict:
        xacts, rows = self.db.psql(
            "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched "  # noqa: S608
            f"FROM pg_stat_database WHERE datname = '{self.db.name}'"
        ).split("|")
        return {"xacts": int(xacts), "rows": int(rows), "cpu": cpu_ticks(self.backends())}

    @staticmethod
    def delta(before: dict, after: dict) -> dict:
        cpu = sum(t - before["cpu"].get(pid, 0) for pid, t in after["cpu"].items())
        return {
            "transactions": after["xacts"] - before["xacts"],
            "rows_read": after["rows"] - before["rows"],
            "backend_cpu_s": round(cpu / CLOCK_TICKS, 2),
        }


class Scaleout:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.bench = run.Bench(
            run.parse_args(
                [
                    *("--database", args.database, "--tablets", str(args.tablets)),
                    *("--lossless-duration", str(args.lossless_duration), "--no-install"),
                ]
            )
        )
        self.replica: cluster.Cluster | None = None
        self.result: dict = {"timings": {}}

    def prepare(self) -> None:
        """The seeded data's people to measure (seeded users only: the users `make bench` makes
        for itself get new passwords each run, which would log out a bench running beside this
        one), and a tablet therapist of this bench's own with its clients' empty sessions."""
        bench, args = self.bench, self.args
        org = bench.org
        personas = data.choose_personas(org, team=20)
        personas["supervisor"] = {**personas["supervisor"], "synthetic": False}
        personas["supervision"] = data.supervision_subject(org, personas["supervisor"]["username"])
        self.personas = personas
        self.result["personas"] = personas
        password = secrets.token_urlsafe(18)
        self.tablet_user = scaleout_therapist(org, password)
        self.tablet_password = password
        removed = data.remove_bench_clients(self.tablet_user)
        per_client = run.SESSIONS_PER_BENCH_CLIENT * 2
        per_tablet = max(
            1, math.ceil(args.max_rate * args.lossless_duration / args.tablets / per_client)
        )
        bench.lossless_pools = {
            name: data.create_pool(
                org,
                self.tablet_user,
                name,
                per_tablet * args.tablets,
                run.SESSIONS_PER_BENCH_CLIENT,
            )
            for name in ("scaleout-one", "scaleout-kill")
        }
        bench.rng = random.Random(20261130)  # noqa: S311 -- synthetic answers
        say(f"personas: {json.dumps(personas)}; removed {removed} rows of an earlier run")

    def logins(self, base: str) -> None:
        password = self.bench.password
        personas = self.personas
        self.therapist = Browser(base).login(personas["therapist"]["username"], password)
        viewer = personas["chart"]["viewer"]
        self.viewer = Browser(base).login(viewer, password)
        self.supervisor = Browser(base).login(personas["supervisor"]["username"], password)
        self.bench.submitter = Browser(base).login(self.tablet_user.username, self.tablet_password)

    def endpoints(self) -> list[dict]:
        chart = self.personas["chart"]["client_id"]
        supervision = self.personas["supervision"]["therapist_id"]
        return [
            {"name": "healthz", "label": "floor: /healthz", "path": "/healthz", "who": None},
            {"name": "caseload", "label": "caseload", "path": "/caseload/", "who": self.therapist},
            {"name": "client_chart", "label": "client chart", "path": f"/clients/{chart}/",
             "who": self.viewer},
            {"name": "inbox", "label": "supervisor inbox", "path": "/inbox/",
             "who": self.supervisor},
            {"name": "team", "label": "team statistics", "path": "/team/", "who": self.supervisor},
            {"name": "supervision", "label": "supervision page",
             "path": f"/supervision/{supervision}/?months=all", "who": self.supervisor},
            {"name": "export", "label": "export ratings.csv", "path": "/exports/ratings.csv",
             "who": self.therapist},
        ]  # fmt: skip

    # -- the replica -------------------------------------------------------------------------

    def start_replica(self) -> None:
        primary = self.bench.db
        self.result["pg_hba"] = cluster.allow_replication(primary, say)
        say("pg_basebackup of the whole server at 127.0.0.1:5432 (-R -X stream)")
        self.replica, seconds = cluster.new_replica(primary)
        size = primary.psql(
            "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database"
        )
        self.replica.start()
        self.result["timings"]["basebackup_s"] = round(seconds, 1)
        self.result["basebackup"] = {"seconds": round(seconds, 1), "cluster_size": size}
        say(f"replica on port {self.replica.port}: base backup of {size} in {seconds:.1f} s")
        if self.replica.psql("SELECT pg_is_in_recovery()") != "t":
            raise RuntimeError("the replica is not in recovery: not a standby")
        self.replica_db = self.replica.database(primary.name)

    def caught_up(self, timeout: float = 60) -> float:
        """Wait until the replica has replayed everything the primary wrote; the seconds it took."""
        began = time.monotonic()
        target = self.bench.db.psql("SELECT pg_current_wal_lsn()")
        while time.monotonic() - began < timeout:
            behind = self.replica.psql(
                f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn()) > 0"
            )
            if behind == "f":
                return time.monotonic() - began
            time.sleep(0.1)
        raise RuntimeError(f"the replica did not catch up within {timeout:.0f} s")

    # -- measuring ---------------------------------------------------------------------------

    def start_app(self, env: dict[str, str]) -> server.Gunicorn:
        port = server.free_port()
        app = server.Gunicorn(
            env, port, workers=self.args.workers, log_path=self.bench.work / f"gunicorn-{port}.log"
        )
        app.start()
        self.bench.servers.append(app)
        return app

    def dashboards(self, app: server.Gunicorn, label: str) -> dict:
        self.logins(app.base_url)
        # Logging in is a write: wait out the pin to the primary it sets.
        time.sleep(6)
        endpoints = self.endpoints()
        meters = {"primary": Meter(self.bench.db)}
        if label == "replica":
            meters["replica"] = Meter(self.replica_db)
        before = {name: meter.reading() for name, meter in meters.items()}
        measurements = []
        for endpoint in endpoints:
            who = endpoint["who"]
            if who is not None and (status := who.get(endpoint["path"]).status) != 200:
                raise RuntimeError(f"{endpoint['path']} answered {status}")
            measured, _raw = load.measure(
                name=endpoint["name"],
                label=endpoint["label"],
                base_url=app.base_url,
                path=endpoint["path"],
                headers={"Cookie": who.cookie_header()} if who else {},
                warmup_s=self.args.warmup,
                duration_s=self.args.duration,
                connections=self.args.connections,
                min_requests=30,
                max_duration_s=30,
            )
            measurements.append(measured)
            say(
                f"{label:<8} {endpoint['label']:<22} p50 {measured.p50_ms:7.1f} ms  "
                f"p95 {measured.p95_ms:7.1f} ms  errors {measured.errors + measured.unexpected}"
            )
            time.sleep(min(5.0, measured.max_ms / 1000 + 0.5))
        after = {name: meter.reading() for name, meter in meters.items()}
        return {
            "rows": stats.ratio_rows(measurements, "healthz"),
            "databases": {name: Meter.delta(before[name], after[name]) for name in meters},
        }

    def lossless(self, name: str, app: server.Gunicorn, stop_replica: bool) -> dict:
        """A no-loss run; with `stop_replica`, the replica is stopped half-way while a browser
        keeps opening the dashboards."""
        pages = [e for e in self.endpoints() if e["who"] is not None and e["name"] != "export"]
        seen: Counter = Counter()
        after_stop: Counter = Counter()
        stopped = threading.Event()
        finished = threading.Event()

        def browse() -> None:
            while not finished.is_set():
                for page in pages:
                    try:
                        status = page["who"].get(page["path"]).status
                    except OSError as error:
                        status = type(error).__name__
                    seen[status] += 1
                    if stopped.is_set():
                        after_stop[status] += 1

        def stop_half_way() -> None:
            if not finished.wait(self.args.lossless_duration / 2):
                self.replica.stop("fast")
                say("replica stopped (pg_ctl stop -m fast)")
                stopped.set()

        meter = Meter(self.bench.db)
        gunicorn_before = cpu_ticks(app.worker_pids())
        before = meter.reading()
        # Without the replica stopping, nothing else runs: the primary's CPU is the writes'.
        helpers = [threading.Thread(target=f) for f in (browse, stop_half_way) if stop_replica]
        for helper in helpers:
            helper.start()
        try:
            outcome = self.bench.lossless_run(name, [app], kill=False)
        finally:
            finished.set()
            for helper in helpers:
                helper.join()
        primary = Meter.delta(before, meter.reading())
        gunicorn_after = cpu_ticks(app.worker_pids())
        app_cpu = sum(t - gunicorn_before.get(pid, 0) for pid, t in gunicorn_after.items())
        driver = outcome["driver"]
        acked = driver["acknowledged"]
        outcome["scaleout"] = {
            "dashboard_statuses": {str(k): v for k, v in seen.items()},
            "dashboard_statuses_after_replica_stopped": {str(k): v for k, v in after_stop.items()},
            "primary": primary,
            "app_cpu_s": round(app_cpu / CLOCK_TICKS, 2),
            "primary_cpu_ms_per_submission": round(1000 * primary["backend_cpu_s"] / acked, 2)
            if acked
            else None,
            "app_cpu_ms_per_submission": round(10 * app_cpu / acked, 2) if acked else None,
        }
        outcome["scaleout"]["pages_ok"] = not stop_replica or (
            set(seen) == {200} and after_stop[200] > 0
        )
        if stop_replica:
            say(
                f"  dashboards opened during the run: {dict(seen)}, after the replica stopped: "
                f"{dict(after_stop)}"
            )
        return outcome

    # -- the whole run -----------------------------------------------------------------------

    def run(self) -> int:
        began = time.monotonic()
        started_at = datetime.now(UTC)
        load.ensure_wrk(install=True)
        self.bench.prepare_database()
        self.start_replica()
        self.prepare()
        self.bench.collectstatic()
        self.result["timings"]["replica_catch_up_s"] = round(self.caught_up(), 2)

        say("the dashboards with the primary alone")
        alone = self.start_app(self.bench.env)
        self.result["primary_alone"] = self.dashboards(alone, "primary")
        self.bench.stop_servers()

        say(f"the dashboards with DATABASE_REPLICA_URLS naming the replica ({self.replica_db.url})")
        env = {**self.bench.env, "DATABASE_REPLICA_URLS": self.replica_db.url}
        app = self.start_app(env)
        self.result["with_replica"] = self.dashboards(app, "replica")
        lag = []
        sampling = threading.Event()

        def sample_lag() -> None:
            while not sampling.wait(0.5):
                found = self.bench.db.psql(
                    "SELECT COALESCE(max(extract(epoch FROM replay_lag)), 0) "
                    "FROM pg_stat_replication"
                )
                lag.append(float(found or 0))

        sampler = threading.Thread(target=sample_lag)
        sampler.start()
        try:
            self.result["lossless"] = [self.lossless("scaleout-one", app, stop_replica=False)]
        finally:
            sampling.set()
            sampler.join()
        self.result["replica_lag_s"] = {
            "max": round(max(lag), 3) if lag else None,
            "samples": len(lag),
        }
        self.result["lossless"].append(self.lossless("scaleout-kill", app, stop_replica=True))
        self.bench.stop_servers()
        self.result["duration_s"] = round(time.monotonic() - began, 1)
        self.result["started_at"] = started_at.isoformat(timespec="seconds")
        self.result["next_limit"] = next_limit(self.result["lossless"][0])
        ok = all(r["ok_here"] for r in map(judged, self.result["lossless"]))
        self.result["ok"] = ok
        results = server.ROOT / self.args.results
        results.mkdir(exist_ok=True)
        stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
        text = json.dumps(self.result, indent=2, default=str)
        (results / f"scaleout-{stamp}.json").write_text(text)
        (results / "scaleout-latest.json").write_text(text)
        print(report_text(self.result))
        print(f"written: {self.args.results}/scaleout-{stamp}.json")
        return 0 if ok else 1

    def cleanup(self) -> None:
        self.bench.stop_servers()
        if self.replica is not None:
            if self.args.keep:
                say(f"kept the replica's folder {self.replica.folder} (stopped)")
                if self.replica.running():
                    self.replica.stop("fast")
            else:
                self.replica.remove()
        self.bench.cleanup()


def judged(outcome: dict) -> dict:
    """A no-loss run passes here when nothing was lost or doubled and the dashboards answered."""
    outcome["ok_here"] = outcome["ok"] and outcome["scaleout"]["pages_ok"]
    return outcome


def next_limit(outcome: dict) -> dict:
    """Where one more app server stops helping: the primary takes every write, so its CPU per
    acknowledged submission bounds the submissions/s per core it can take."""
    figures = outcome["scaleout"]
    per = figures["primary_cpu_ms_per_submission"]
    app_per = figures["app_cpu_ms_per_submission"]
    return {
        "primary_cpu_ms_per_submission": per,
        "primary_submissions_per_core_s": round(1000 / per) if per else None,
        "app_cpu_ms_per_submission": app_per,
        "app_submissions_per_core_s": round(1000 / app_per) if app_per else None,
        "acknowledged_per_s": outcome["driver"]["acked_per_s"],
    }


def report_text(result: dict) -> str:
    alone = {row["name"]: row for row in result["primary_alone"]["rows"]}
    lines = [
        "",
        f"Scale-out: base backup {result['basebackup']['seconds']} s "
        f"({result['basebackup']['cluster_size']}), total {result['duration_s']} s",
        "",
        f"{'page':<24} {'p50 alone':>10} {'p95 alone':>10} {'p50 replica':>12} {'p95 replica':>12}",
    ]
    for row in result["with_replica"]["rows"]:
        other = alone.get(row["name"], {})
        lines.append(
            f"{row['label']:<24} {other.get('p50_ms', 0):>10.1f} {other.get('p95_ms', 0):>10.1f} "
            f"{row['p50_ms']:>12.1f} {row['p95_ms']:>12.1f}"
        )
    for name, where in (("alone", "primary_alone"), ("replica", "with_replica")):
        for db, figures in result[where]["databases"].items():
            lines.append(f"  {name:<8} {db:<8} {figures}")
    for outcome in result["lossless"]:
        rec, extra = outcome["reconciliation"], outcome["scaleout"]
        lines.append(
            f"no-loss {outcome['name']}: acknowledged {rec['acknowledged']} stored {rec['stored']} "
            f"lost {rec['lost']} duplicated {rec['duplicated']} "
            f"5xx {outcome['driver']['server_errors']}; pages {extra['dashboard_statuses']}"
            f" -> {'OK' if outcome['ok_here'] else 'FAILED'}"
        )
    lines.append(f"replica lag (max replay_lag): {result['replica_lag_s']}")
    lines.append(f"next limit: {result['next_limit']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    scaleout = Scaleout(parse_args(argv))
    # A SIGTERM (a timeout, Ctrl-C from make) still stops the replica and gunicorn.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return scaleout.run()
    finally:
        scaleout.cleanup()


if __name__ == "__main__":
    sys.exit(main())
