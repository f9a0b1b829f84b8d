"""Each signed-in page alone, through Django's test client, on the bench's data: time, queries and
a profile per page, to see where a page's time goes before and after a change.

    python -m bench.profile_pages bench/profiles            # every page, 40 requests each
    python -m bench.profile_pages /tmp/p --pages inbox team --requests 80

The people measured are the bench's (`bench.data.choose_personas`): the therapist nearest 50
active clients, the client nearest 40 sessions, the supervisor nearest 20 therapists (the bench's
own `bench-supervisor-<slug>` when no seeded one is near), the busiest therapist of their teams
for the supervision page, and the organisation's first admin for the overview, staff and settings
pages. Client mode's `/rate/` is the signed-in floor: it is measured for a session of a therapist
of this script's own (`bench-profile-<slug>`, in no team, so no dashboard measured sees it).

Production settings (DEBUG off, so Django's cached template loader and whitenoise's manifest,
collected once into `--static-root`), one request at a time, in this process: no server, no
network, so the figures are the page's own cost. Per page: median and p95 of `--requests` timed
requests after `--warmup`, the queries of one request, and a pyinstrument profile of `--profiled`
requests as text in the output folder (`<page>.txt`), with every figure in `pages.json`.
Pages keep their results and fragments in the cache until the data changes; `--cold` empties it
before every request, to measure each page as on its first visit after a change.
"""

import argparse
import json
import secrets
import statistics
import sys
import time
from pathlib import Path

from . import data, server

PAGES = (
    "client_page",
    "caseload",
    "client_chart",
    "inbox",
    "team",
    "overview",
    "supervision_index",
    "supervision",
    "staff",
    "settings",
)
FLOOR = "client_page"
PROFILE_USERNAME = "bench-profile"
FLAT_LINES = 50


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the profiles and pages.json")
    parser.add_argument("--database", default="alliance_bench")
    parser.add_argument("--slug", default="scale", help="the seeded organisation")
    parser.add_argument("--pages", nargs="+", choices=PAGES, default=list(PAGES))
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="requests before timing")
    parser.add_argument("--profiled", type=int, default=10, help="requests profiled per page")
    parser.add_argument("--team-size", type=int, default=20)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="empty the cache before every request: each page as on its first visit after a "
        "change of the data (cached results and fragments all missed)",
    )
    parser.add_argument(
        "--static-root",
        type=Path,
        default=Path("/tmp/alliance-profile-static"),  # noqa: S108 -- a cache of collectstatic
        help="collectstatic goes here once (DEBUG off needs the manifest)",
    )
    return parser.parse_args(argv)


def environment(args: argparse.Namespace) -> dict[str, str]:
    database = server.Database(name=args.database)
    env = server.app_environment(database, args.static_root, secrets.token_urlsafe(32))
    # Django's test client asks for "testserver".
    env["ALLOWED_HOSTS"] += ",testserver"
    if not (args.static_root / "staticfiles.json").exists():
        done = server.manage(env, "collectstatic", "--noinput")
        if done.returncode != 0:
            raise RuntimeError(f"collectstatic failed: {done.stderr[-2000:]}")
    return env


def personas(org, team_size: int) -> dict:
    """Who looks at which page, chosen as `bench.run` chooses them."""
    from alliance_app.accounts.models import Membership, Role, User

    chosen = data.choose_personas(org, team=team_size)
    supervisor = chosen["supervisor"]
    if abs(supervisor["team_therapists"] - team_size) > 0.2 * team_size:
        chosen["supervisor"] = _bench_supervisor(org, team_size)
    username = chosen["supervisor"]["username"]
    chosen["supervision"] = data.supervision_subject(org, username)
    admin = (
        Membership.objects.filter(organization=org, role=Role.ADMIN)
        .exclude(user__username__startswith=data.BENCH_PREFIX)
        .order_by("user_id")
        .values_list("user__username", flat=True)
        .first()
    )
    if admin is None:
        raise RuntimeError(f"the organisation {org.slug!r} has no admin")
    chosen["admin"] = {"username": admin}
    chosen["tablet"] = {"username": _tablet_user(org).username}
    users = {
        user.username: user
        for user in User.objects.filter(
            username__in=[
                chosen["therapist"]["username"],
                chosen["chart"]["viewer"],
                username,
                admin,
                chosen["tablet"]["username"],
            ]
        )
    }
    return {"chosen": chosen, "users": users}


def _bench_supervisor(org, team_size: int) -> dict:
    """The bench's own supervisor, made as `bench.run` makes it when there is none yet. One that
    exists is used as it is: setting its password again would sign out a bench run under way."""
    from alliance_app.accounts.models import User

    existing = User.objects.filter(username=f"bench-supervisor-{org.slug}"[:150]).first()
    if existing is None:
        return data.bench_supervisor(org, secrets.token_urlsafe(18), team_size)
    return {"username": existing.username, "existing": True}


def _tablet_user(org):
    """This script's own therapist, in no team, with one client and one session to hand over."""
    from alliance_app.accounts.models import Membership, Role, User
    from alliance_app.clinic.models import Client

    user, _created = User.objects.get_or_create(
        username=f"{PROFILE_USERNAME}-{org.slug}"[:150],
        defaults={"first_name": "Bench", "last_name": "Profile"},
    )
    Membership.objects.update_or_create(
        user=user, defaults={"organization": org, "role": Role.THERAPIST, "team": None}
    )
    if not Client.objects.filter(primary_therapist=user).exists():
        data.create_pool(org, user, "profile", 1, 1)
    return user


def urls(chosen: dict) -> dict[str, tuple[str, str]]:
    """Each page: who opens it (a persona's username) and its address."""
    supervisor = chosen["supervisor"]["username"]
    return {
        "client_page": (chosen["tablet"]["username"], "/rate/"),
        "caseload": (chosen["therapist"]["username"], "/caseload/"),
        "client_chart": (chosen["chart"]["viewer"], f"/clients/{chosen['chart']['client_id']}/"),
        "inbox": (supervisor, "/inbox/"),
        "team": (supervisor, "/team/"),
        "overview": (chosen["admin"]["username"], "/overview/"),
        "staff": (chosen["admin"]["username"], "/staff/"),
        "settings": (chosen["admin"]["username"], "/settings/"),
        "supervision_index": (supervisor, "/supervision/"),
        "supervision": (
            supervisor,
            f"/supervision/{chosen['supervision']['therapist_id']}/?months=all",
        ),
    }


def browsers(users: dict) -> dict:
    """A signed-in test client per user; the tablet's is in client mode."""
    from django.test import Client

    from alliance_app.clinic.models import TherapySession

    signed_in = {}
    for username, user in users.items():
        browser = Client()
        browser.force_login(user)
        signed_in[username] = browser
    tablet = next(name for name in users if name.startswith(PROFILE_USERNAME))
    mine = TherapySession.objects.filter(episode__client__primary_therapist=users[tablet])
    session = mine.first()
    handed = signed_in[tablet].post(
        f"/sessions/{session.pk}/hand-over/", {"scale": "outcome", "rater": "client"}
    )
    if handed.status_code != 302 or handed["Location"] != "/rate/":
        raise RuntimeError(f"hand-over answered {handed.status_code}")
    return signed_in


def measure(browser, user, url: str, args: argparse.Namespace, profile_to: Path) -> dict:
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    def get():
        if args.cold:
            cache.clear()
        response = browser.get(url)
        if response.status_code == 302 and response["Location"].startswith("/login/"):
            # A bench run setting its supervisor's password signs this script out too.
            browser.force_login(user)
            response = browser.get(url)
        if response.status_code != 200:
            where = response.get("Location", "")
            raise RuntimeError(f"{url} answered {response.status_code} {where}")
        return response

    for _warm in range(args.warmup):
        body = get().content
    times, cpu = [], []
    for _timed in range(args.requests):
        began, began_cpu = time.perf_counter(), time.process_time()
        get()
        times.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    with CaptureQueriesContext(connection) as captured:
        get()
    # Read now: the next request empties the connection's log that `captured` points into.
    queries = len(captured)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _profiled in range(args.profiled):
        get()
    profiler.stop()
    # The call tree, then the functions that spent the most time themselves (Django's frames,
    # hidden in the tree, show there: template nodes, formatting, the database driver).
    flat = profiler.output_text(flat=True).splitlines()
    profile_to.write_text(profiler.output_text() + "\n".join(flat[:FLAT_LINES]) + "\n")
    times.sort()
    return {
        "url": url,
        "requests": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 1),
        # This process's CPU per request: the Python side, steadier than wall time on a busy
        # machine (the database's own time is not in it).
        "cpu_p50_ms": round(statistics.median(cpu), 1),
        "queries": queries,
        "bytes": len(body),
    }


def report(pages: dict) -> str:
    floor = pages.get(FLOOR)
    lines = [
        f"{'page':<18} {'p50 ms':>8} {'p95 ms':>8} {'p95 x floor':>12} {'cpu p50':>8} "
        f"{'queries':>8}"
    ]
    for name, page in pages.items():
        ratio = f"{page['p95_ms'] / floor['p95_ms']:.1f}" if floor else ""
        lines.append(
            f"{name:<18} {page['p50_ms']:>8} {page['p95_ms']:>8} {ratio:>12} "
            f"{page['cpu_p50_ms']:>8} {page['queries']:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data.setup_django(environment(args))
    org = data.organization(args.slug)
    if org is None:
        print(f"no organisation {args.slug!r} in {args.database}: seed it first", file=sys.stderr)
        return 2
    found = personas(org, args.team_size)
    signed_in = browsers(found["users"])
    addresses = urls(found["chosen"])
    args.out.mkdir(parents=True, exist_ok=True)
    pages = {}
    for name in [FLOOR, *(page for page in args.pages if page != FLOOR)]:
        username, url = addresses[name]
        browser, user = signed_in[username], found["users"][username]
        pages[name] = measure(browser, user, url, args, args.out / f"{name}.txt")
        print(f"{name}: {pages[name]}", flush=True)
    document = {"personas": found["chosen"], "cold": args.cold, "pages": pages}
    (args.out / "pages.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(report(pages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
