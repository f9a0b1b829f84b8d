"""The database side of the benchmark, through Django's ORM, in the orchestrator's process.

Who is measured (personas chosen from the seeded data by size, not by name), the bench's own
therapist with empty therapy sessions to submit into, and the checks after a no-loss run: what
is stored, and whether each stored rating carries exactly the flags the rules give.
"""

import os
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

BENCH_PREFIX = "bench-"  # the bench's own users: bench-tablet-<slug>, bench-supervisor-<slug>
BENCH_USERNAME = "bench-tablet"


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def organization(slug: str):
    from alliance_app.accounts.models import Organization

    return Organization.objects.filter(slug=slug).first()


def dataset_counts(org) -> dict:
    from alliance_app.accounts.models import Membership, Role, Team
    from alliance_app.clinic.models import Client, TherapySession
    from alliance_app.feedback.models import Flag, Rating

    members = Membership.objects.filter(organization=org).exclude(
        user__username__startswith=BENCH_PREFIX
    )
    clients = Client.objects.filter(organization=org).exclude(
        primary_therapist__username__startswith=BENCH_PREFIX
    )
    return {
        "teams": Team.objects.filter(organization=org).count(),
        "therapists": members.filter(role=Role.THERAPIST).count(),
        "supervisors": members.filter(role=Role.SUPERVISOR).count(),
        "admins": members.filter(role=Role.ADMIN).count(),
        "clients": clients.count(),
        "active_clients": clients.filter(active=True).count(),
        "sessions": TherapySession.objects.filter(episode__client__in=clients).count(),
        "ratings": Rating.objects.filter(session__episode__client__in=clients).count(),
        "flags": Flag.objects.filter(client__in=clients).count(),
    }


def _closest(candidates: list[tuple[int, object]], target: int):
    """The candidate whose size is nearest the target, at least the target if one is."""
    return min(candidates, key=lambda c: (c[0] < target, abs(c[0] - target)))


def choose_personas(org, *, caseload: int = 50, chart_sessions: int = 40, team: int = 20) -> dict:
    """The therapist nearest `caseload` active clients, the client nearest `chart_sessions`
    sessions (preferably that therapist's), the supervisor of the team nearest `team` therapists.
    """
    from django.db.models import Count, F, Q
    from django.db.models.functions import Abs

    from alliance_app.accounts.models import Membership, Role
    from alliance_app.clinic.models import Client
    from alliance_app.feedback.models import Rating

    therapists = (
        Membership.objects.filter(organization=org, role=Role.THERAPIST)
        .exclude(user__username__startswith=BENCH_PREFIX)
        .annotate(
            active=Count(
                "user__primary_clients",
                filter=Q(
                    user__primary_clients__active=True,
                    user__primary_clients__organization=org,
                ),
            )
        )
        .select_related("user")
    )
    candidates = [(m.active, m.user) for m in therapists]
    if not candidates:
        raise RuntimeError(f"the organisation {org.slug!r} has no therapists")
    active, therapist = _closest(candidates, caseload)

    sized = (
        Client.objects.filter(organization=org)
        .exclude(primary_therapist__username__startswith=BENCH_PREFIX)
        .annotate(sessions=Count("episodes__sessions"), episodes_n=Count("episodes", distinct=True))
        .annotate(distance=Abs(F("sessions") - chart_sessions))
    )
    nearest = sized.order_by("distance").values_list("distance", flat=True).first()
    best = sized.filter(distance=nearest).select_related("primary_therapist")
    chart = (
        best.filter(primary_therapist=therapist, episodes_n=1).first()
        or best.filter(episodes_n=1).first()
        or best.order_by("pk").first()
    )

    supervisors = []
    for membership in (
        Membership.objects.filter(organization=org, role=Role.SUPERVISOR)
        .exclude(user__username__startswith=BENCH_PREFIX)
        .select_related("user")
        .prefetch_related("supervised_teams")
    ):
        teams = [t.pk for t in membership.supervised_teams.all()]
        size = Membership.objects.filter(team__in=teams, role=Role.THERAPIST).count()
        supervisors.append((size, (membership, teams)))
    if not supervisors:
        raise RuntimeError(f"the organisation {org.slug!r} has no supervisors")
    team_size, (supervisor, team_ids) = _closest(supervisors, team)
    return {
        "therapist": {"username": therapist.username, "active_clients": active},
        "chart": {
            "client_id": chart.pk,
            "code": chart.code,
            "sessions": chart.sessions,
            "episodes": chart.episodes_n,
            "viewer": chart.primary_therapist.username,
        },
        "supervisor": {
            "username": supervisor.user.username,
            "teams": len(team_ids),
            "team_therapists": team_size,
            "synthetic": False,
        },
        "export": {
            "username": therapist.username,
            "ratings": Rating.objects.filter(
                session__episode__client__primary_therapist=therapist
            ).count(),
        },
    }


def team_figures(org, username: str) -> dict:
    """How much a supervisor's inbox and team statistics cover."""
    from alliance_app.accounts.models import Membership
    from alliance_app.clinic.models import Client
    from alliance_app.feedback.models import OPEN_STATUSES, Flag, Rating

    membership = Membership.objects.get(organization=org, user__username=username)
    clients = Client.objects.filter(
        primary_therapist__membership__team__in=membership.supervised_teams.all()
    )
    return {
        "team_clients": clients.count(),
        "team_ratings": Rating.objects.filter(session__episode__client__in=clients).count(),
        "team_open_flags": Flag.objects.filter(
            client__in=clients, status__in=OPEN_STATUSES
        ).count(),
    }


def supervision_subject(org, username: str) -> dict:
    """The therapist of a supervisor's teams with the most client session ratings: the
    supervision page measured is theirs, as that supervisor opens it (every month)."""
    from django.db.models import Sum

    from alliance_app.accounts.models import Membership, Role
    from alliance_app.feedback.models import AllianceMonth, Rater, Rupture

    membership = Membership.objects.get(organization=org, user__username=username)
    therapists = Membership.objects.filter(
        team__in=membership.supervised_teams.all(), role=Role.THERAPIST
    ).values("user_id")
    busiest = (
        AllianceMonth.objects.filter(therapist_id__in=therapists)
        .values("therapist_id", "therapist__username")
        .annotate(rated=Sum("count"))
        .order_by("-rated", "therapist_id")
        .first()
    )
    if busiest is None:
        raise RuntimeError(f"no therapist of {username!r}'s teams has a rated session")
    ruptures = Rupture.objects.filter(therapist_id=busiest["therapist_id"])
    return {
        "therapist_id": busiest["therapist_id"],
        "username": busiest["therapist__username"],
        "rated_sessions": busiest["rated"],
        "ruptures": ruptures.filter(rater=Rater.CLIENT, rater_label="").count(),
        "episodes_listed": ruptures.values("episode_id").distinct().count(),
    }


def bench_training(org) -> dict:
    """A training for the evaluation page, made here rather than by the seeding: half of the
    organisation's therapists with rated sessions attended, in the middle month of their ratings,
    so that both windows hold months of data. Made once; a later run finds it."""
    from django.db.models import Max, Min
    from django.utils import timezone

    from alliance_app.accounts.models import Role, User
    from alliance_app.feedback.models import AllianceMonth
    from alliance_app.research.models import Training, TrainingKind

    therapists = list(
        User.objects.filter(
            membership__organization=org,
            membership__role__in=[Role.THERAPIST, Role.SUPERVISOR],
        )
        .exclude(username__startswith=BENCH_PREFIX)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    span = AllianceMonth.objects.filter(therapist_id__in=therapists).aggregate(
        first=Min("month"), last=Max("month")
    )
    if span["first"] is None:
        raise RuntimeError("no therapist of the organisation has a rated session")
    middle = span["first"] + (span["last"] - span["first"]) / 2
    date = min(middle.replace(day=15), timezone.localdate())
    training, created = Training.objects.get_or_create(
        organization=org,
        title="Bench: rupture-repair workshop",
        defaults={"kind": TrainingKind.WORKSHOP, "date": date},
    )
    if created:
        training.attendees.add(*therapists[::2])
    return {
        "training_id": training.pk,
        "date": training.date.isoformat(),
        "attendees": training.attendees.count(),
        "therapists": len(therapists),
    }


# ---------------------------------------------------------------------------------------------
# The bench's own therapist and the empty sessions its submissions go into


def bench_therapist(org, password: str):
    """A therapist of the organisation in no team, so that no measured dashboard sees the
    bench's ratings; its password is set anew each run."""
    from alliance_app.accounts.models import Membership, Role, User

    user, _created = User.objects.get_or_create(
        username=f"{BENCH_USERNAME}-{org.slug}"[:150],
        defaults={"first_name": "Bench", "last_name": "Tablet"},
    )
    user.set_password(password)
    user.save()
    Membership.objects.update_or_create(
        user=user, defaults={"organization": org, "role": Role.THERAPIST, "team": None}
    )
    return user


def bench_supervisor(org, password: str, therapists: int) -> dict:
    """A supervisor of whole teams adding up to about `therapists` therapists, for data whose
    own supervisors each oversee far fewer (or more): the inbox and team statistics are then
    measured at the size asked for. In no team itself; its password is set anew each run."""
    from django.db.models import Count, Q

    from alliance_app.accounts.models import Membership, Role, Team, User

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
    user, _created = User.objects.get_or_create(
        username=f"bench-supervisor-{org.slug}"[:150],
        defaults={"first_name": "Bench", "last_name": "Supervisor"},
    )
    user.set_password(password)
    user.save()
    membership, _created = Membership.objects.update_or_create(
        user=user, defaults={"organization": org, "role": Role.SUPERVISOR, "team": None}
    )
    membership.supervised_teams.set(chosen)
    return {"username": user.username, "teams": len(chosen), "team_therapists": total}


def remove_bench_clients(user) -> int:
    """The previous runs' bench clients, with their sessions, ratings and flags."""
    from alliance_app.clinic.models import Client

    removed, _per_model = Client.objects.filter(primary_therapist=user).delete()
    return removed


@dataclass(frozen=True)
class Slot:
    """One place a rating can go: a session, a scale, the client as rater."""

    session: int
    number: int
    client: int
    scale: str
    instrument: str
    item_keys: tuple[str, ...]


def create_pool(org, user, name: str, clients: int, sessions: int) -> list[list[Slot]]:
    """`clients` adult clients of the bench therapist, each one open episode of `sessions`
    empty sessions; per client, its slots in the order a therapist would use them."""
    from django.utils import timezone

    from alliance_app.clinic.models import Client, Episode, TherapySession
    from alliance_app.feedback.instruments import catalogue
    from alliance_app.measures import AgeBand, Scale

    today = timezone.localdate()
    instruments = [catalogue().for_client(scale, AgeBand.ADULT) for scale in Scale]
    made = Client.objects.bulk_create(
        Client(
            organization=org,
            code=f"BENCH-{name}-{i:04d}",
            age_band=AgeBand.ADULT.value,
            primary_therapist=user,
        )
        for i in range(clients)
    )
    episodes = Episode.objects.bulk_create(
        Episode(client=client, therapist=user, opened=today - timedelta(weeks=sessions))
        for client in made
    )
    made_sessions = TherapySession.objects.bulk_create(
        TherapySession(
            episode=episode,
            number=n,
            date=today - timedelta(weeks=sessions - n),
        )
        for episode in episodes
        for n in range(1, sessions + 1)
    )
    by_episode: dict[int, list] = {}
    for session in made_sessions:
        by_episode.setdefault(session.episode_id, []).append(session)
    pool = []
    for episode in episodes:
        pool.append(
            [
                Slot(
                    session=session.pk,
                    number=session.number,
                    client=episode.client_id,
                    scale=instrument.scale.value,
                    instrument=instrument.code,
                    item_keys=tuple(instrument.item_keys),
                )
                for session in sorted(by_episode[episode.pk], key=lambda s: s.number)
                for instrument in instruments
            ]
        )
    return pool


def slot_path(slot: Slot) -> str:
    """The tablet's submit URL for this slot, signed as the client page signs it."""
    from django.core import signing
    from django.urls import reverse

    from alliance_app.feedback.views import TABLET_SALT

    token = signing.dumps([slot.session, slot.instrument, "client", ""], salt=TABLET_SALT)
    return reverse("rate_submit", args=[token])


def scores_for(slot: Slot, rng: random.Random) -> dict[str, str]:
    """Believable answers: outcome items spread widely, session items mostly high, now and then
    a low one (so that flags are raised and checked too)."""
    if slot.scale == "outcome":
        values = [rng.uniform(1.0, 9.0) for _ in slot.item_keys]
    else:
        low = rng.random() < 0.15
        values = [rng.uniform(5.0, 10.0) if low else rng.uniform(8.5, 10.0) for _ in slot.item_keys]
    return {key: f"{value:.1f}" for key, value in zip(slot.item_keys, values, strict=True)}


def submission(slot: Slot, rng: random.Random) -> dict:
    """What the driver sends for a slot: path, form, key, and what to check it against.

    The answers follow `rng`, so a run's are the same each time; the idempotency key is new to
    every run, since the runs (`make bench`, `make bench-growth`) seed their generators alike and
    share the bench's database: a key drawn from the seed would be one an earlier run stored,
    and the submission refused as a form already used."""
    form = scores_for(slot, rng)
    return {
        "key": str(uuid.uuid4()),
        "path": slot_path(slot),
        "form": form,
        "session": slot.session,
        "scale": slot.scale,
        "items": [form[key] for key in slot.item_keys],
    }


# ---------------------------------------------------------------------------------------------
# After a run: what is stored, and is each rating whole


def stored_ratings(client_ids: list[int]) -> list:
    from alliance_app.feedback.models import Rating

    from .lossless import StoredRating

    rows = Rating.objects.filter(session__episode__client_id__in=client_ids).values_list(
        "idempotency_key", "session_id", "scale", "rater", "rater_label", *_ITEMS
    )
    return [
        StoredRating(
            key=str(key),
            slot=(session, scale, rater, label),
            items=tuple(f"{Decimal(v):.1f}" for v in items),
        )
        for key, session, scale, rater, label, *items in rows
    ]


_ITEMS = ("item_1", "item_2", "item_3", "item_4")


def consistency(client_ids: list[int], *, replay_flags: bool) -> dict:
    """Nothing half-stored: every rating's total is its items' sum, every flag belongs to a
    stored rating of the same client, and (when each client's ratings were submitted one after
    the other, as the no-loss driver does) each rating has exactly the flags the rules give,
    replayed in the order the ratings were stored."""
    from django.db import connection

    from alliance_app.feedback.models import Flag, Rating
    from alliance_app.feedback.ruptures import sd_in_force
    from alliance_app.feedback.services import as_point
    from alliance_app.measures import (
        LASTING_KINDS,
        FlagKind,
        Scale,
        flags_for,
        flags_to_raise,
        rupture_finding,
        ruptures_for,
    )
    from alliance_app.measures.expected import not_on_track_for

    ratings = list(
        Rating.objects.filter(session__episode__client_id__in=client_ids)
        .select_related("session__episode__client__organization")
        .prefetch_related("flags")
        .order_by("session__episode_id", "pk")
    )
    wrong_total = [r.pk for r in ratings if sum(r.items) != r.total]
    wrong_client = [
        f.pk for r in ratings for f in r.flags.all() if f.client_id != r.session.episode.client_id
    ]
    flags_here = Flag.objects.filter(client_id__in=client_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {Flag._meta.db_table} f "  # noqa: S608 -- table names only
            f"LEFT JOIN {Rating._meta.db_table} r ON r.id = f.rating_id "
            f"WHERE r.id IS NULL AND f.client_id = ANY(%s)",
            [list(client_ids)],
        )
        orphans = cursor.fetchone()[0]
    result = {
        "ratings": len(ratings),
        "flags": flags_here.count(),
        "wrong_total": len(wrong_total),
        "flags_of_another_client": len(wrong_client),
        "flags_without_rating": orphans,
        "flags_checked_against_rules": replay_flags,
    }
    if replay_flags:
        mismatched, examples = 0, []
        history: dict[int, list] = {}
        # The bench's flags stay open, so every lasting flag raised keeps waiting.
        waiting: dict[int, list] = {}
        sd: dict[int, object] = {}
        bands: dict[int, object] = {}
        for rating in ratings:
            episode = rating.session.episode
            organization = episode.client.organization
            if organization.pk not in bands:
                bands[organization.pk] = organization.expected_response_model()
            point = as_point(rating)
            earlier = history.get(episode.pk, [])
            findings = flags_for(point, earlier, organization.flag_rules())
            off_track = not_on_track_for(
                point,
                earlier,
                model=bands[organization.pk],
                band=episode.client.age_band,
                rules=organization.flag_rules(),
            )
            findings = flags_to_raise(
                findings + ([off_track] if off_track is not None else []),
                rater=point.rater,
                unacknowledged=waiting.get(episode.pk, []),
            )
            waiting.setdefault(episode.pk, []).extend(
                (f.kind, point.rater) for f in findings if f.kind in LASTING_KINDS
            )
            history.setdefault(episode.pk, []).append(point)
            if point.instrument.scale is Scale.SESSION:
                # A fall below the rater's own level is a rupture: its flag takes the place of
                # the drop flag (`feedback.ruptures`, `services._raise_flags`).
                organization = episode.client.organization
                if organization.pk not in sd:
                    sd[organization.pk] = sd_in_force(organization).value
                series = [
                    other
                    for other in history[episode.pk]
                    if other.rater == point.rater and other.instrument.scale is Scale.SESSION
                ]
                found = [
                    rupture
                    for rupture in ruptures_for(
                        series, s=sd[organization.pk], rules=organization.rupture_rules()
                    )
                    if rupture.session_number == point.session_number
                ]
                if found:
                    findings = [f for f in findings if f.kind is not FlagKind.ALLIANCE_DROP]
                    findings.append(rupture_finding(found[0], organization.flag_rules()))
            expected = sorted((f.kind.value, f.item, int(f.severity)) for f in findings)
            actual = sorted((f.kind, f.item, f.severity) for f in rating.flags.all())
            if expected != actual:
                mismatched += 1
                if len(examples) < 3:
                    examples.append({"rating": rating.pk, "expected": expected, "stored": actual})
        result["flags_as_rules_give"] = mismatched == 0
        result["ruptures_as_rules_give"] = _ruptures_stored(client_ids) == _ruptures_found(
            ratings, history, sd
        )
        result["ratings_with_other_flags"] = mismatched
        if examples:
            result["examples"] = examples
    kept, remade = _summary_rows(client_ids)
    result["summary_rows"] = sum(len(rows) for rows in kept)
    result["summary_rows_as_ratings_give"] = kept == remade
    result["ok"] = (
        not wrong_total
        and not wrong_client
        and orphans == 0
        and result.get("ratings_with_other_flags", 0) == 0
        and result.get("ruptures_as_rules_give", True)
        and kept == remade
    )
    return result


def expected_fit(org) -> dict:
    """The organisation's latest expected-response fit: its size, cost and held-out validation,
    and whether its band is the one in use."""
    from alliance_app.feedback.models import ExpectedResponseFit

    fit = ExpectedResponseFit.objects.filter(organization=org).order_by("-version").first()
    if fit is None:
        raise RuntimeError(f"the organisation {org.slug!r} has no expected-response fit")
    org.refresh_from_db(fields=["expected_response"])
    in_use = org.expected_response_model()
    signal = fit.validation.get("signal", {})
    return {
        "version": fit.version,
        "status": fit.status,
        "episodes": fit.episodes,
        "seconds": round(fit.seconds, 1),
        "peak_memory_mb": round(fit.peak_memory_mb),
        "in_use": in_use is not None and in_use.fit_id == fit.pk,
        "max_session": fit.parameters.get("max_session"),
        "bands": {
            band: {"episodes": entry["episodes"], "pooled": entry["pooled"]}
            for band, entry in fit.parameters.get("bands", {}).items()
        },
        "held_out_episodes": fit.validation.get("held_out_episodes"),
        "validation": {
            key: {
                figure: signal[key][figure]
                for figure in ("sensitivity", "specificity", "ppv", "flagged_share")
            }
            for key in ("by_session_3", "by_session_4")
            if key in signal
        },
    }


def client_page_queries(username: str, client_id: int) -> dict:
    """The client page's queries, as its viewer opens it a second time (the first renews the
    login session), through Django's test client in this process, and whether the page draws
    the expected-response band."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client as HttpClient
    from django.test.utils import CaptureQueriesContext, override_settings

    from alliance_app.accounts.models import User

    http = HttpClient()
    http.force_login(User.objects.get(username=username))
    # The test client calls itself "testserver", a host no deployment lists.
    with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
        http.get(f"/clients/{client_id}/")
        with CaptureQueriesContext(connection) as captured:
            page = http.get(f"/clients/{client_id}/")
    if page.status_code != 200:
        raise RuntimeError(f"/clients/{client_id}/ answered {page.status_code}")
    return {"queries": len(captured), "band_drawn": b'"legendgroup":"expected"' in page.content}


def _ruptures_stored(client_ids: list[int]) -> list[tuple]:
    from alliance_app.feedback.models import Rupture, rater_key

    rows = Rupture.objects.filter(episode__client_id__in=client_ids).values_list(
        "episode_id", "rater", "rater_label", "session_number", "status", "repaired_number"
    )
    return sorted((e, rater_key(r, label), n, st, rep) for e, r, label, n, st, rep in rows)


def _ruptures_found(ratings: list, history: dict[int, list], sd: dict[int, object]) -> list[tuple]:
    """Each rater's ruptures in each episode as the rule finds them in the stored ratings."""
    from alliance_app.feedback.ruptures import sd_in_force
    from alliance_app.measures import Scale, ruptures_for

    episodes = {rating.session.episode_id: rating.session.episode for rating in ratings}
    found = []
    for episode_id, points in history.items():
        episode = episodes[episode_id]
        organization = episode.client.organization
        session_points = [p for p in points if p.instrument.scale is Scale.SESSION]
        for rater in sorted({p.rater for p in session_points}):
            for rupture in ruptures_for(
                [p for p in session_points if p.rater == rater],
                s=sd.setdefault(organization.pk, sd_in_force(organization).value),
                rules=organization.rupture_rules(),
                episode_closed=not episode.is_open,
            ):
                found.append(
                    (
                        episode_id,
                        rater,
                        rupture.session_number,
                        rupture.status.value,
                        rupture.repaired_at,
                    )
                )
    return sorted(found)


def _summary_rows(client_ids: list[int]) -> tuple[tuple, tuple]:
    """The dashboards' summary rows as the submissions left them, and as a rebuild from the
    stored ratings makes them (in a transaction rolled back, so nothing changes)."""
    from django.db import transaction

    from alliance_app.clinic.models import Episode
    from alliance_app.feedback import rollups
    from alliance_app.feedback.models import AllianceMonth, OutcomeEnds

    def rows() -> tuple:
        ends = OutcomeEnds.objects.filter(client_id__in=client_ids).values_list(
            "episode_id", "client_id", "therapist_id", *rollups.ENDS
        )
        months = AllianceMonth.objects.filter(episode__client_id__in=client_ids).values_list(
            "episode_id", "therapist_id", "month", "total_sum", "count", "concerns"
        )
        return sorted(ends), sorted(months)

    kept = rows()
    with transaction.atomic():
        rollups.rebuild(Episode.objects.filter(client_id__in=client_ids))
        remade = rows()
        transaction.set_rollback(True)
    return kept, remade
