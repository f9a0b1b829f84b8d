"""`make bench-growth`: every page's p95 on the bench's data (1×) and on five times as much (5×).

The 5× database `alliance_bench_5x` holds 1,000 therapists, 50,000 clients and 1,000,000
sessions in 100 teams of ten: more therapists and clients, the same caseloads, teams and
histories as the 1× data (`alliance_bench`, 200 therapists in 20 teams, `make bench`'s). It is
seeded once, the first time, and kept; the seeding's time and rows per second are kept beside it
(`results/growth-seed-<database>.json`) so that later runs report them too.

Each size is prepared and served by a process of its own (Django reads its database once per
process): the same personas chosen by size (a therapist with ~50 active clients, a 40-session
client, a supervisor over ~20 therapists), the same pages, by `bench.run`'s phases. With both
servers up, the sizes take turns phase by phase (`interleaved`), so that a machine whose speed
drifts during the run does not pass for growth. The report gives each page's p95 at both sizes
and their ratio, against a growth of at most GROWTH_TARGET.
"""

import argparse
import json
import re
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import data, load, server
from .run import Bench, admin_username, latency_rows, parse_args, run_phase, say

ROOT = server.ROOT
GROWTH_TARGET = 1.3


@dataclass(frozen=True)
class Size:
    name: str
    database: str
    therapists: int
    clients: int
    sessions: int
    teams: int

    def seed_arguments(self, slug: str) -> list[str]:
        return [
            "seed_scale",
            *("--therapists", str(self.therapists), "--clients", str(self.clients)),
            *("--sessions", str(self.sessions), "--teams", str(self.teams)),
            *("--organization-slug", slug, "--no-progress"),
        ]


SIZES = {
    "1x": Size("1x", "alliance_bench", 200, 10_000, 200_000, 20),
    "5x": Size("5x", "alliance_bench_5x", 1_000, 50_000, 1_000_000, 100),
}
SLUG = "scale"
SEEDED = re.compile(r"Inserted (?P<tables>.*): (?P<rows>\d+) rows in (?P<seconds>[\d.]+) s")
PHASES = re.compile(r"Seconds spent: (?P<phases>.*)\.$", re.MULTILINE)
CPU = re.compile(r"CPU seconds of this process: (?P<seconds>[\d.]+)\.")


# -- pure figures --------------------------------------------------------------------------------


def seeding_figures(stdout: str, wall_s: float) -> dict:
    """What `seed_scale` said it inserted, and how fast: rows per second in all and for the
    ratings, sessions and flags, over the command's own time (`wall_s`: the process's, start-up
    included)."""
    found = SEEDED.search(stdout)
    if found is None:
        raise ValueError(f"seed_scale said nothing of what it inserted: {stdout[-300:]!r}")
    tables = {}
    for part in found["tables"].split(", "):
        name, count = part.rsplit(" ", 1)
        tables[name] = int(count)
    seconds = float(found["seconds"])
    phases = PHASES.search(stdout)
    cpu = CPU.search(stdout)
    return {
        "seconds": seconds,
        "process_seconds": round(wall_s, 1),
        "rows": int(found["rows"]),
        "tables": tables,
        "rows_per_s": round(int(found["rows"]) / seconds),
        "cpu_seconds": float(cpu["seconds"]) if cpu else None,
        "per_s": {
            name: round(tables.get(table, 0) / seconds)
            for name, table in (
                ("ratings", "ratings"),
                ("sessions", "therapy sessions"),
                ("flags", "flags"),
            )
        },
        "phases_s": {
            name: float(value)
            for name, value in (
                part.rsplit(" ", 1) for part in (phases["phases"].split(", ") if phases else [])
            )
        },
    }


def growth_verdict(p95_1x: float, p95_5x: float, target: float = GROWTH_TARGET) -> dict:
    """The p95 at 5× over the p95 at 1×, and whether it stays within `target`."""
    if p95_1x <= 0 or p95_5x <= 0:
        raise ValueError("latencies must be positive")
    ratio = p95_5x / p95_1x
    return {"growth": round(ratio, 2), "within_target": ratio <= target}


def growth_rows(rows_1x: list[dict], rows_5x: list[dict], target: float = GROWTH_TARGET) -> list:
    """Each page measured at both sizes: p50 and p95 at 1× and 5×, the growth of its p95, and
    the growth of its p95 as a ratio to the floor (the same page on a busier machine: both
    sizes' floors moved together). Pages measured at one size only are left out."""
    before = {row["name"]: row for row in rows_1x}
    compared = []
    for row in rows_5x:
        first = before.get(row["name"])
        if first is None:
            continue
        compared.append(
            {
                "name": row["name"],
                "label": row["label"],
                "p50_1x_ms": first["p50_ms"],
                "p50_5x_ms": row["p50_ms"],
                "p95_1x_ms": first["p95_ms"],
                "p95_5x_ms": row["p95_ms"],
                **growth_verdict(first["p95_ms"], row["p95_ms"], target),
                "floor_ratio_growth": round(row["p95_ratio"] / first["p95_ratio"], 2),
            }
        )
    return compared


def growth_table(rows: list[dict], target: float = GROWTH_TARGET) -> str:
    lines = [
        "| page | p95 1× ms | p95 5× ms | growth | × floor growth | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        verdict = "met" if row["within_target"] else "MISSED"
        lines.append(
            f"| {row['label']} | {row['p95_1x_ms']:.1f} | {row['p95_5x_ms']:.1f} | "
            f"{row['growth']:.2f} | {row['floor_ratio_growth']:.2f} | ≤ {target:g}× {verdict} |"
        )
    return "\n".join(lines)


# -- one size, in its own process ----------------------------------------------------------------


def growth_member(org, name: str, role, password: str):
    """A user of the growth bench's own (`bench-growth-<name>-<slug>`), in no team: `make
    bench`'s users (`bench-tablet-…`, `bench-supervisor-…`) and their passwords are left alone,
    so a growth run started beside it breaks neither run (their figures, though, are shared)."""
    from alliance_app.accounts.models import Membership, User

    user, _created = User.objects.get_or_create(
        username=f"{data.BENCH_PREFIX}growth-{name}-{org.slug}"[:150],
        defaults={"first_name": "Bench", "last_name": name.title()},
    )
    user.set_password(password)
    user.save()
    Membership.objects.update_or_create(
        user=user, defaults={"organization": org, "role": role, "team": None}
    )
    return user


def growth_supervisor(org, password: str, therapists: int) -> dict:
    """A supervisor of whole teams, taken by name, adding up to about `therapists` therapists
    (as `data.bench_supervisor` chooses them)."""
    from django.db.models import Count, Q

    from alliance_app.accounts.models import Membership, Role, Team

    teams = (
        Team.objects.filter(organization=org)
        .annotate(n=Count("members", filter=Q(members__role=Role.THERAPIST)))
        .filter(n__gt=0)
        .order_by("name")
    )
    chosen, total = [], 0
    for team in teams:
        if total >= therapists:
            break
        chosen.append(team)
        total += team.n
    user = growth_member(org, "supervisor", Role.SUPERVISOR, password)
    Membership.objects.get(user=user).supervised_teams.set(chosen)
    return {"username": user.username, "teams": len(chosen), "team_therapists": total}


class GrowthBench(Bench):
    """`make bench`'s latency phases on one database, set up with only what the pages need."""

    def __init__(self, args: argparse.Namespace, size: Size):
        super().__init__(args)
        self.size = size

    def seed_if_missing(self, *, allowed: bool) -> dict | None:
        """Seed the size's database if it does not hold the organisation yet (and `allowed`),
        keeping what seeding took in results/growth-seed-<database>.json; return that record."""
        db = server.Database(name=self.size.database, port=self.args.db_port)
        record_path = ROOT / self.args.results / f"growth-seed-{db.name}.json"
        env = server.app_environment(db, self.work / "static", secrets.token_urlsafe(50))
        if db.exists() and self._holds_organization(db):
            return json.loads(record_path.read_text()) if record_path.exists() else None
        if not allowed:
            raise SystemExit(
                f"{db.name} holds no organisation {SLUG!r}: run `make bench` first to seed it"
            )
        if not db.exists():
            say(f"creating the database {db.name}")
            db.create()
        server.manage(env, "migrate", "--noinput")
        command = self.size.seed_arguments(SLUG)
        say(f"seeding {db.name}: manage.py {' '.join(command)}")
        began = time.monotonic()
        done = server.manage(env, *command)
        record = {
            "database": db.name,
            "size": self.size.name,
            "command": command,
            "seeded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **seeding_figures(done.stdout, time.monotonic() - began),
        }
        record_path.parent.mkdir(exist_ok=True)
        record_path.write_text(json.dumps(record, indent=2))
        say(f"seeded in {record['seconds']} s: {record['rows_per_s']} rows/s, {record['per_s']}")
        return record

    @staticmethod
    def _holds_organization(db: server.Database) -> bool:
        try:
            found = db.psql(
                f"SELECT 1 FROM accounts_organization WHERE slug = '{SLUG}'",  # noqa: S608
                database=db.name,
            )
        except RuntimeError:  # not migrated yet
            return False
        return found == "1"

    def prepare_bench_data(self) -> None:
        """Personas, the bench supervisor, the training and both fits (made once, kept), and
        the rating-submission pools; no research export and no no-loss pools."""
        args = self.args
        self.personas = data.choose_personas(self.org, team=args.team_size)
        self.bench_password = "growth-" + self.work.name
        supervisor = self.personas["supervisor"]
        if abs(supervisor["team_therapists"] - args.team_size) > 0.2 * args.team_size:
            made = growth_supervisor(self.org, self.bench_password, args.team_size)
            self.personas["supervisor"] = {**made, "synthetic": True}
        self.personas["supervisor"].update(
            data.team_figures(self.org, self.personas["supervisor"]["username"])
        )
        self.personas["supervision"] = data.supervision_subject(
            self.org, self.personas["supervisor"]["username"]
        )
        self.personas["training"] = data.bench_training(self.org)
        self.personas["admin"] = {"username": admin_username(self.org)}
        say(f"personas: {json.dumps(self.personas)}")
        from alliance_app.accounts.models import Role
        from alliance_app.research.models import AllianceOutcomeFit

        fits = []
        if not AllianceOutcomeFit.objects.filter(organization=self.org).exists():
            fits.append("fit_alliance_outcome")
        try:
            in_use = data.expected_fit(self.org)["in_use"]
        except RuntimeError:
            in_use = False
        if not in_use:
            fits.append("fit_expected_response")
        # The two fits read the same ratings and write apart: one process each, at once.
        began = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            took = list(pool.map(self.fit, fits))
        self.timings.update(
            {f"{name}_s": seconds for name, seconds in zip(fits, took, strict=True)}
        )
        if fits:
            self.timings["fits_s"] = round(time.monotonic() - began, 1)
        self.bench_user = growth_member(self.org, "tablet", Role.THERAPIST, self.bench_password)
        data.remove_bench_clients(self.bench_user)
        per_client = 80  # sessions per bench client, two scales each
        rate = args.max_rate

        def pool(name: str, seconds: int) -> list:
            clients = max(1, -(-rate * seconds // per_client))
            return data.create_pool(self.org, self.bench_user, f"growth-{name}", clients, 40)

        self.tablet_pool = pool("tablet", 0)
        self.warm_pool = pool("warm", args.warmup)
        self.submit_pool = pool("submit", args.duration)
        import random

        self.rng = random.Random(20261125)  # noqa: S311 -- synthetic answers

    def fit(self, command: str) -> float:
        began = time.monotonic()
        server.manage(self.env, command, "--organization-slug", self.slug)
        return round(time.monotonic() - began, 1)

    def collectstatic(self) -> None:
        """Collect into the run's shared folder once: both sizes serve the same files, and
        compressing them (Brotli at its highest quality) is the slowest step of setting up."""
        shared = self.args.static_root
        if shared is not None:
            self.env["STATIC_ROOT"] = str(shared)
            if (Path(shared) / "staticfiles.json").exists():
                say(f"static files already collected into {shared}")
                self.timings["collectstatic_s"] = 0.0
                return
        super().collectstatic()

    def serve(self) -> dict:
        """Prepare the data, start the server and sign the personas in; the phases to run
        against it (`run.run_phase`), with what the report says of this size."""
        args = self.args
        load.ensure_wrk(install=not args.no_install)
        self.prepare_database()
        began = time.monotonic()
        self.prepare_bench_data()
        self.timings["bench_data_s"] = round(time.monotonic() - began, 1)
        self.collectstatic()
        began = time.monotonic()
        app = self.start_server(args.workers)
        self.logins(app.base_url)
        self.timings["server_and_logins_s"] = round(time.monotonic() - began, 1)
        phases, sizes = self.phases(app)
        return {
            "size": self.size.name,
            "base_url": app.base_url,
            "workers": app.workers,
            "phases": phases,
            "response_bytes": sizes,
            "dataset": self.dataset_info,
            "personas": self.personas,
            "timings": self.timings,
            "postgresql": self.db.server_version(),
        }


def bench_arguments(size: Size, options: argparse.Namespace) -> argparse.Namespace:
    args = parse_args(
        [
            *("--database", size.database, "--organization-slug", SLUG, "--dataset", "scale"),
            *("--therapists", str(size.therapists), "--clients", str(size.clients)),
            *("--sessions", str(size.sessions), "--results", options.results),
            *("--duration", str(options.duration), "--warmup", str(options.warmup)),
            *("--min-requests", str(options.min_requests)),
            *("--max-phase", str(options.max_phase)),
            *("--connections", str(options.connections), "--max-rate", str(options.max_rate)),
            *(["--no-install"] if options.no_install else []),
        ]
    )
    args.static_root = getattr(options, "static_root", None)
    return args


def serve_one(options: argparse.Namespace) -> int:
    """A size's server, ready for the parent's phases: its plan written to `options.out`, then
    kept running until the parent closes this process's standard input."""
    size = SIZES[options.serve]
    bench = GrowthBench(bench_arguments(size, options), size)
    try:
        began = time.monotonic()
        seeding = bench.seed_if_missing(allowed=size.name != "1x")
        bench.timings["seed_s"] = round(time.monotonic() - began, 1)
        plan = {**bench.serve(), "seeding": seeding}
        written = Path(options.out + ".part")
        written.write_text(json.dumps(plan, default=str))
        written.rename(options.out)
        sys.stdin.read()
    finally:
        bench.cleanup()
    return 0


class Served:
    """A size's server in a process of its own (Django reads its database once per process)."""

    def __init__(self, options: argparse.Namespace, size: str, work: Path):
        self.size = size
        self.out = work / f"{size}.json"
        self.began = time.monotonic()
        arguments = child_arguments(options, size, self.out, work / "static")
        self.process = subprocess.Popen(  # noqa: S603 -- this module, in a process of its own
            [sys.executable, "-m", "bench.growth", *arguments], cwd=ROOT, stdin=subprocess.PIPE
        )
        while not self.out.exists():
            if self.process.poll() is not None:
                raise SystemExit(f"preparing {size} failed ({self.process.returncode})")
            time.sleep(0.5)
        self.plan = json.loads(self.out.read_text())
        self.ready_s = round(time.monotonic() - self.began, 1)

    def phase(self, name: str) -> dict | None:
        return next((phase for phase in self.plan["phases"] if phase["name"] == name), None)

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()


def interleaved(served: dict[str, Served], options: argparse.Namespace) -> dict[str, list]:
    """Every phase at each size, one size right after the other, the order turned at every
    phase (1×, 5×, then 5×, 1×, ...): a machine that slows down or speeds up during the run
    moves both sizes' figures alike, instead of one size's phases all before the other's.
    Each size's rows, with their ratios to its own floors."""
    sizes = list(served)
    names = [phase["name"] for phase in served[sizes[0]].plan["phases"]]
    measurements = {size: [] for size in sizes}
    raws = {size: {} for size in sizes}
    last: list = []
    for index, name in enumerate(names):
        for size in sizes if index % 2 == 0 else sizes[::-1]:
            phase = served[size].phase(name)
            if phase is None:
                continue
            plan = served[size].plan
            say(f"{size}: {phase['label']}")
            measured, raws[size][name] = run_phase(
                phase, plan["base_url"], plan["workers"], options, last
            )
            measurements[size].append(measured)
            last = [measured]
    return {
        size: latency_rows(measurements[size], raws[size], served[size].plan["response_bytes"])
        for size in sizes
    }


# -- both sizes and the report -------------------------------------------------------------------


def options_parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__.splitlines()[0])
    # Shorter phases than `make bench`'s: 19 of them at each size, and the whole run (seeding 5×
    # the first time included) should take under 15 minutes.
    p.add_argument("--duration", type=int, default=5, help="measured seconds per phase")
    p.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per phase")
    p.add_argument("--min-requests", type=int, default=20, help="per phase, if time allows")
    p.add_argument("--max-phase", type=int, default=20, help="longest measured phase (s)")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--max-rate", type=int, default=300, help="submissions/s to provide for")
    p.add_argument("--target", type=float, default=GROWTH_TARGET, help="largest growth of a p95")
    p.add_argument("--seed-only", action="store_true", help="seed the 5× database and stop")
    p.add_argument("--results", default="results")
    p.add_argument("--no-install", action="store_true", help="do not apt-get install wrk")
    p.add_argument(
        "--reuse",
        type=reuse_argument,
        action="append",
        default=[],
        metavar="SIZE=FILE",
        help="take a size's pages from an earlier measurement or `make bench` JSON",
    )
    p.add_argument("--serve", choices=sorted(SIZES), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--static-root", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def reuse_argument(text: str) -> tuple[str, str]:
    size, _, path = text.partition("=")
    if size not in SIZES or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: give SIZE=FILE, SIZE one of {sorted(SIZES)}")
    return size, path


def reused(path: str) -> dict:
    """A measurement kept from before: this module's own, or `make bench`'s results document
    (the same pages, personas and dataset counts, measured by the same phases)."""
    document = json.loads(Path(path).read_text())
    document.setdefault("seeding", None)
    document["reused_from"] = path
    return document


def child_arguments(
    options: argparse.Namespace, size: str, out: Path, static_root: Path
) -> list[str]:
    passed = ("duration", "warmup", "min_requests", "max_phase", "connections", "max_rate")
    return [
        *("--serve", size, "--out", str(out), "--results", options.results),
        *("--static-root", str(static_root)),
        *(f"--{name.replace('_', '-')}={getattr(options, name)}" for name in passed),
        *(["--no-install"] if options.no_install else []),
    ]


def main(argv: list[str] | None = None) -> int:
    options = options_parse(argv)
    if options.serve:
        return serve_one(options)
    if options.seed_only:
        bench = GrowthBench(bench_arguments(SIZES["5x"], options), SIZES["5x"])
        try:
            print(json.dumps(bench.seed_if_missing(allowed=True), indent=2))
        finally:
            bench.cleanup()
        return 0
    started_at = datetime.now(UTC)
    began = time.monotonic()
    measured = {size: reused(path) for size, path in options.reuse}
    steps = {}
    with tempfile.TemporaryDirectory(prefix="alliance-growth-") as work:
        served: dict[str, Served] = {}
        try:
            for size in SIZES:
                if size in measured:
                    say(f"{size}: the figures of {dict(options.reuse)[size]}")
                    continue
                say(f"preparing {size} ({SIZES[size].database}) in a process of its own")
                served[size] = Served(options, size, Path(work))
            phases_began = time.monotonic()
            rows_of = interleaved(served, options) if served else {}
            latency_s = round(time.monotonic() - phases_began, 1)
        finally:
            for one in served.values():
                one.stop()
        for size, one in served.items():
            plan = one.plan
            measured[size] = {
                key: plan[key]
                for key in ("size", "dataset", "personas", "timings", "postgresql", "seeding")
            } | {"endpoints": rows_of[size]}
            steps[size] = {"ready_s": one.ready_s, **plan.get("timings", {})}
        if served:
            steps["phases"] = {"latency_s": latency_s}
    rows = growth_rows(
        measured["1x"]["endpoints"], measured["5x"]["endpoints"], target=options.target
    )
    document = {
        "schema": "alliance-bench-growth/1",
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - began, 1),
        "steps_s": steps,
        "target": options.target,
        "load": {
            "connections": options.connections,
            "warmup_s": options.warmup,
            "duration_s": options.duration,
        },
        "growth": rows,
        "all_within_target": all(row["within_target"] for row in rows),
        "sizes": measured,
    }
    results = ROOT / options.results
    results.mkdir(exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(document, indent=2, default=str)
    (results / f"growth-{stamp}.json").write_text(text)
    (results / "growth-latest.json").write_text(text)
    print(report_text(document))
    print(f"written: {results / f'growth-{stamp}.json'} and {results / 'growth-latest.json'}")
    return 0


def report_text(document: dict) -> str:
    lines = [""]
    for name, size in document["sizes"].items():
        counts = size["dataset"]["counts"]
        personas = size["personas"]
        lines.append(
            f"{name}: {size['dataset']['database']}: {counts['therapists']} therapists, "
            f"{counts['clients']} clients, {counts['sessions']} sessions, {counts['ratings']} "
            f"ratings, {counts['flags']} flags; caseload {personas['therapist']['active_clients']}"
            f" active clients, chart {personas['chart']['sessions']} sessions, supervisor over "
            f"{personas['supervisor']['team_therapists']} therapists "
            f"({personas['supervisor']['team_clients']} clients)"
        )
        seeding = size.get("seeding")
        if seeding:
            per_s = ", ".join(f"{k} {v:,}/s" for k, v in seeding["per_s"].items())
            lines.append(
                f"  seeded {seeding['seeded_at']} in {seeding['seconds']} s: "
                f"{seeding['rows']:,} rows, {seeding['rows_per_s']:,} rows/s ({per_s})"
            )
    for name, steps in document.get("steps_s", {}).items():
        parts = ", ".join(f"{step.removesuffix('_s')} {value:g}" for step, value in steps.items())
        lines.append(f"{name} took (s): {parts}")
    lines += ["", growth_table(document["growth"], document["target"])]
    lines.append(
        f"(wrk, {document['load']['connections']} connections, {document['load']['duration_s']} s"
        f" per phase after {document['load']['warmup_s']} s warm-up; the growth target is "
        "reported, not enforced)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
