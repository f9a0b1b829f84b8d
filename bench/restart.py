"""`python -m bench.restart`: a no-loss run in which PostgreSQL restarts half-way.

The shared server at 127.0.0.1:5432 is never restarted: the bench starts a primary of its own
(initdb in a temporary folder, a free port; `bench/cluster.py`), creates the database, migrates
it and seeds seed_demo's small clinic into it, and makes its tablets' clients and empty sessions
as `make bench` does. Then gunicorn serves it while tablets submit ratings from another process
(`bench/lossless.py`), and half-way through PostgreSQL is stopped (`pg_ctl stop -m fast`), left
down for a few seconds and started again. Meanwhile /healthz is asked every 0.2 s.

It passes when the app answered 503 (never 500) while the database was down, /healthz said 503
during the outage and 200 again after it, tablets resent with the same key until acknowledged,
and afterwards every acknowledged rating is stored exactly once, with the flags and summary rows
the rules give (`bench/data.py`). The temporary server is stopped and removed at the end, even
on failure. Results: results/restart-<time>.json and a summary on stdout; exit status 1 when it
does not pass.
"""

import argparse
import json
import math
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from . import cluster, data, run, server
from .run import say
from .web import Browser

DATABASE = "alliance_restart"
UNSAFE_BUT_FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.restart", description=__doc__.splitlines()[0])
    p.add_argument("--tablets", type=int, default=30, help="concurrent submitting tablets")
    p.add_argument("--duration", type=int, default=40, help="seconds of submitting")
    p.add_argument("--down", type=float, default=5.0, help="seconds PostgreSQL stays down")
    p.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    p.add_argument("--max-rate", type=int, default=150, help="submissions/s to provide for")
    p.add_argument("--results", default="results")
    p.add_argument("--keep", action="store_true", help="keep the temporary folders")
    return p.parse_args(argv)


class HealthWatch:
    """/healthz every `every` seconds from a thread: each answer with its time."""

    def __init__(self, base_url: str, every: float = 0.2):
        self.browser = Browser(base_url, timeout=5)
        self.every = every
        self.answers: list[tuple[float, int | str]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.watch)
        self.began = time.monotonic()

    def watch(self) -> None:
        while not self.done.wait(self.every):
            try:
                status: int | str = self.browser.get("/healthz").status
            except OSError as error:
                status = type(error).__name__
            self.answers.append((time.monotonic() - self.began, status))

    def __enter__(self) -> "HealthWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


class Restart:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.primary: cluster.Cluster | None = None
        self.bench: run.Bench | None = None
        self.work = Path(tempfile.mkdtemp(prefix="alliance-restart-"))

    def prepare(self) -> None:
        """The temporary primary with the database migrated, one organisation, and the bench's
        tablet therapist with its clients' empty sessions (bench/data.py, as `make bench`)."""
        args = self.args
        began = time.monotonic()
        self.primary = cluster.new_primary()
        # Setting up needs no durability: fsync comes back on with the restart below.
        self.primary.start(options=UNSAFE_BUT_FAST)
        say(f"a primary of the bench's own on port {self.primary.port} ({self.primary.folder})")
        db = self.primary.database(DATABASE)
        db.create()
        env = server.app_environment(db, self.work / "static", secrets.token_urlsafe(50))
        say("migrate")
        server.manage(env, "migrate", "--noinput")
        data.setup_django(env)
        from alliance_app.accounts.models import Organization

        org = Organization.objects.create(name="Restart bench", slug="restart")
        password = secrets.token_urlsafe(18)
        self.user = data.bench_therapist(org, password)
        self.password = password
        per_client = run.SESSIONS_PER_BENCH_CLIENT * 2
        per_tablet = max(1, math.ceil(args.max_rate * args.duration / args.tablets / per_client))
        pool = data.create_pool(
            org, self.user, "restart", per_tablet * args.tablets, run.SESSIONS_PER_BENCH_CLIENT
        )
        say("collectstatic")
        server.manage(env, "collectstatic", "--noinput")
        from django.db import connections

        connections.close_all()
        self.primary.stop("fast")
        self.primary.start()
        self.bench = run.Bench(
            run.parse_args(
                [
                    *("--database", DATABASE, "--db-port", str(self.primary.port)),
                    *("--tablets", str(args.tablets), "--lossless-duration", str(args.duration)),
                    "--no-install",
                ]
            )
        )
        self.bench.env = env
        self.bench.lossless_pools = {"restart": pool}
        self.bench.rng = random.Random(20261130)  # noqa: S311 -- synthetic answers
        self.prepared_s = round(time.monotonic() - began, 1)
        say(f"ready: {len(pool)} clients' empty sessions for the tablets ({self.prepared_s} s)")

    def restart_half_way(self, started: float, outage: dict, finished: threading.Event) -> None:
        if finished.wait(self.args.duration / 2):
            return
        outage["stop_at_s"] = round(time.monotonic() - started, 2)
        self.primary.stop("fast")
        outage["stopped_at_s"] = round(time.monotonic() - started, 2)
        say(f"PostgreSQL stopped (pg_ctl stop -m fast); starting it in {self.args.down:g} s")
        time.sleep(self.args.down)
        outage["start_at_s"] = round(time.monotonic() - started, 2)
        self.primary.start()
        outage["started_at_s"] = round(time.monotonic() - started, 2)
        say(f"PostgreSQL started again ({outage['started_at_s'] - outage['stop_at_s']:.1f} s down)")

    def run(self) -> int:
        began = time.monotonic()
        started_at = datetime.now(UTC)
        self.prepare()
        bench = self.bench
        app = bench.start_server(self.args.workers)
        bench.submitter = Browser(app.base_url).login(self.user.username, self.password)
        # The database connection of this process breaks with the restart: close it now, and the
        # checks after the run open a new one.
        from django.db import connections

        connections.close_all()
        outage: dict = {}
        finished = threading.Event()
        with HealthWatch(app.base_url) as health:
            restarter = threading.Thread(
                target=self.restart_half_way, args=(health.began, outage, finished)
            )
            restarter.start()
            try:
                outcome = bench.lossless_run("restart", [app], kill=False)
            finally:
                finished.set()
                restarter.join()
            time.sleep(1.0)
        result = judge(outcome, health.answers, outage)
        result["prepared_s"] = self.prepared_s
        result["duration_s"] = round(time.monotonic() - began, 1)
        result["started_at"] = started_at.isoformat(timespec="seconds")
        results = server.ROOT / self.args.results
        results.mkdir(exist_ok=True)
        stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
        (results / f"restart-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
        print(report_text(result))
        print(f"written: {self.args.results}/restart-{stamp}.json")
        return 0 if result["ok"] else 1

    def cleanup(self) -> None:
        if self.bench is not None:
            self.bench.stop_servers()
            self.bench.cleanup()
        shutil.rmtree(self.work, ignore_errors=True)
        if self.primary is not None:
            if self.args.keep:
                say(f"kept {self.primary.folder}")
                if self.primary.running():
                    self.primary.stop("fast")
            else:
                self.primary.remove()


def judge(outcome: dict, health: list[tuple[float, int | str]], outage: dict) -> dict:
    """The run's verdict: the no-loss checks, and the outage seen as 503s, never as 500s."""
    driver = outcome["driver"]
    statuses = Counter({int(k): v for k, v in driver["statuses"].items()})
    server_errors = {status: n for status, n in statuses.items() if status >= 500}
    down_from, up_at = outage.get("stop_at_s"), outage.get("started_at_s")
    during = [s for t, s in health if down_from is not None and down_from <= t <= up_at]
    after = [s for t, s in health if up_at is not None and t > up_at + 2]
    healthz = {
        "asked": len(health),
        "statuses": {str(k): v for k, v in Counter(s for _t, s in health).items()},
        "during_outage": {str(k): v for k, v in Counter(during).items()},
        "after_outage": {str(k): v for k, v in Counter(after).items()},
        "first_503_at_s": next((t for t, s in health if s == 503), None),
        "last_503_at_s": next((t for t, s in reversed(health) if s == 503), None),
    }
    checks = {
        "restarted": up_at is not None,
        "no_loss": outcome["reconciliation"]["ok"],
        "flags_and_summary_rows": outcome["consistency"]["ok"],
        "app_answered_503_while_down": server_errors.get(503, 0) > 0,
        "never_another_5xx": set(server_errors) <= {503},
        "nothing_rejected": driver["rejected"] == 0 and driver["replays_other"] == 0,
        "no_stuck_tablets": driver["stuck_threads"] == 0,
        "healthz_503_during_outage": 503 in during,
        "healthz_200_after": bool(after) and set(after) == {200},
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "outage": outage,
        "healthz": healthz,
        "driver": {k: v for k, v in driver.items() if k != "submissions"},
        "reconciliation": outcome["reconciliation"],
        "consistency": outcome["consistency"],
    }


def report_text(result: dict) -> str:
    rec, driver = result["reconciliation"], result["driver"]
    lines = [
        "",
        f"Database restart: {'OK' if result['ok'] else 'FAILED'} ({result['duration_s']} s, "
        f"set-up {result['prepared_s']} s)",
        f"  outage: {result['outage']}",
        f"  tablets: sent {driver['sent']}, acknowledged {rec['acknowledged']}, stored "
        f"{rec['stored']}, lost {rec['lost']}, duplicated {rec['duplicated']}, extra "
        f"{rec['extra']}; statuses {driver['statuses']}, transport errors "
        f"{driver['transport_errors']}, retried {driver['retried']}",
        f"  /healthz: {result['healthz']}",
        f"  checks: {result['checks']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    restart = Restart(parse_args(argv))
    # A SIGTERM (a timeout, Ctrl-C from make) still stops the temporary server and gunicorn.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return restart.run()
    finally:
        restart.cleanup()


if __name__ == "__main__":
    sys.exit(main())
