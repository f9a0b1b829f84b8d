import hashlib
import re
import threading
import uuid
from collections import defaultdict
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext

from alliance_app.accounts.models import Membership, Organization, Role, User
from alliance_app.clinic.models import Client, Episode, TherapySession
from alliance_app.dashboards import selectors, stats
from alliance_app.feedback import ruptures
from alliance_app.feedback.models import (
    AllianceMonth,
    Flag,
    FlagStatus,
    Rating,
    Reflection,
    Rupture,
    TensionReport,
)
from alliance_app.feedback.services import as_point, rating_submit
from alliance_app.measures import (
    FlagKind,
    Scale,
    TensionAnswer,
    flags_for,
    flags_to_raise,
    rupture_finding,
    ruptures_for,
    tension_finding,
)
from alliance_app.seeding import scale as seeding_scale
from alliance_app.seeding.management.commands import seed_scale
from alliance_app.seeding.scale import COLUMNS

pytestmark = pytest.mark.django_db

LASTING = {FlagKind.DETERIORATION, FlagKind.NO_CHANGE}


def seed(*args: str, therapists=6, clients=40, sessions=300, teams=2, seed_value=1) -> str:
    out = StringIO()
    call_command(
        "seed_scale",
        f"--therapists={therapists}",
        f"--clients={clients}",
        f"--sessions={sessions}",
        f"--teams={teams}",
        f"--seed={seed_value}",
        *args,
        stdout=out,
        stderr=StringIO(),
    )
    return out.getvalue()


def totals_checksum(slug: str = "scale") -> str:
    rows = Rating.objects.filter(session__episode__client__organization__slug=slug).order_by(
        "session__episode__client__code", "session__number", "scale", "rater"
    )
    digest = hashlib.sha256()
    for code, number, scale, rater, *scores in rows.values_list(
        "session__episode__client__code",
        "session__number",
        "scale",
        "rater",
        "item_1",
        "item_2",
        "item_3",
        "item_4",
        "total",
    ):
        digest.update(f"{code}/{number}/{scale}/{rater}/{scores}".encode())
    return digest.hexdigest()


def test_it_seeds_the_exact_sizes_with_valid_ratings():
    output = seed()

    assert TherapySession.objects.count() == 300
    assert Client.objects.count() == Episode.objects.count() == 40
    sessions = TherapySession.objects.annotate(raters=Count("ratings__rater", distinct=True))
    for session in sessions.annotate(n=Count("ratings")):
        assert session.n == 2 * session.raters
        assert session.raters == (2 if session.format == "couple" else 1)
    for rating in Rating.objects.all():
        assert rating.total == sum(rating.items)
        assert 0 <= rating.total <= 40
    lengths = Episode.objects.annotate(n=Count("sessions")).values_list("n", flat=True)
    assert min(lengths) >= 1 and max(lengths) <= 40

    roles = dict(Membership.objects.values_list("role").annotate(n=Count("id")))
    assert roles == {Role.ADMIN: 1, Role.SUPERVISOR: 2, Role.THERAPIST: 6}
    for supervisor in Membership.objects.filter(role=Role.SUPERVISOR):
        assert list(supervisor.supervised_teams.all()) == [supervisor.team]
    assert User.objects.get(username="scale-admin").is_staff
    assert User.objects.get(username="scale-therapist-0001").check_password("alliance-bench")
    assert "therapy sessions 300" in output and "rows/s" in output


def test_child_clients_rate_on_the_child_scales():
    seed(clients=200, sessions=1000, seed_value=4)

    instruments = set(
        Rating.objects.filter(session__episode__client__age_band="child").values_list(
            "instrument", flat=True
        )
    )
    assert instruments == {"outcome-child", "session-child"}
    assert Rating.objects.filter(rater="partner").exists()
    assert {"planned", "unplanned", ""} == set(Episode.objects.values_list("closure", flat=True))


def rupture_rows(episode) -> list[tuple]:
    return list(
        episode.ruptures.order_by("rater", "rater_label", "session_number").values_list(
            "rater",
            "rater_label",
            "session_number",
            "total",
            "baseline",
            "drop",
            "threshold",
            "dimensions",
            "status",
            "repaired_number",
            "sessions_to_repair",
        )
    )


def found_ruptures(client, org) -> dict:
    """The pure rule over each rater's session ratings of the client's episode, with the SD in
    force: (rating id) -> the rupture found there."""
    episode = client.episodes.get()
    series = defaultdict(list)
    for rating in Rating.objects.filter(session__episode=episode, scale=Scale.SESSION.value):
        series[rating.rater_key].append(rating)
    found = {}
    for ratings in series.values():
        by_number = {rating.session.number: rating for rating in ratings}
        for rupture in ruptures_for(
            [as_point(rating) for rating in ratings],
            s=ruptures.sd_in_force(org).value,
            rules=org.rupture_rules(),
            episode_closed=not episode.is_open,
        ):
            found[by_number[rupture.session_number].pk] = rupture
    return found


def test_stored_flags_and_ruptures_are_what_the_rules_give():
    seed(sessions=600, seed_value=2)
    org = Organization.objects.get(slug="scale")
    rules = org.flag_rules()
    assert ruptures.sd_in_force(org).source == "measured"

    for client in Client.objects.order_by("code")[::2]:
        ratings = list(
            Rating.objects.filter(session__episode__client=client)
            .select_related("session", "tension")
            .order_by("session__number", "scale", "rater")
        )
        stored = list(client.flags.all())
        position = {rating.pk: index for index, rating in enumerate(ratings)}
        expected = set()
        by_id = {rating.pk: rating for rating in ratings}
        found = found_ruptures(client, org)
        for index, rating in enumerate(ratings):
            point = as_point(rating)
            others = [as_point(other) for other in ratings if other is not rating]
            # rating_submit: a lasting state waiting unacknowledged for this rater is not raised.
            waiting = [
                (FlagKind(flag.kind), by_id[flag.rating_id].rater_key)
                for flag in stored
                if flag.kind in LASTING
                and position[flag.rating_id] < index
                and (flag.acknowledged_at is None or flag.acknowledged_at > rating.created_at)
            ]
            findings = flags_to_raise(
                flags_for(point, others, rules), rater=point.rater, unacknowledged=waiting
            )
            # A rupture's flag says more than a drop from the previous session, and replaces it.
            if rating.pk in found:
                findings = [f for f in findings if f.kind is not FlagKind.ALLIANCE_DROP]
                findings.append(rupture_finding(found[rating.pk], rules))
            answer = getattr(rating, "tension", None)
            if answer is not None and answer.tension:
                answer = TensionAnswer(tension=True, resolution=answer.resolution)
                findings.append(tension_finding(answer, rules))
            for finding in findings:
                expected.add(
                    (
                        rating.pk,
                        finding.kind.value,
                        finding.item,
                        finding.severity,
                        gettext(finding.message) % finding.params,
                    )
                )
        assert {
            (flag.rating_id, flag.kind, flag.item, flag.severity, flag.explanation)
            for flag in stored
        } == expected
        assert all(flag.created_at == flag.rating.created_at for flag in stored)
        assert {
            rupture.rating_id: (rupture.total, rupture.baseline, rupture.drop, rupture.status)
            for rupture in Rupture.objects.filter(episode__client=client)
        } == {
            pk: (found.total, found.baseline, found.drop, found.status.value)
            for pk, found in found.items()
        }

    statuses = set(Flag.objects.values_list("status", flat=True))
    assert FlagStatus.RESOLVED in statuses and FlagStatus.OPEN in statuses
    assert not Flag.objects.filter(
        Q(status=FlagStatus.RESOLVED) & (Q(resolved_at__isnull=True) | Q(resolved_by=None))
    ).exists()
    assert Flag.objects.filter(kind=FlagKind.RUPTURE.value).exists()
    assert Flag.objects.filter(kind=FlagKind.CLIENT_REPORTED_TENSION.value).exists()


def test_ruptures_and_flags_are_what_rating_submit_finds_storing_one_rating_at_a_time():
    """Replay a sample of clients through rating_submit, in session order, into copies of their
    episodes: the copies get the same rupture rows and the same flags (lasting ones aside: the
    seeded clinic acknowledged them as it went, the replay leaves them open)."""
    seed(clients=60, sessions=900, seed_value=9)
    org = Organization.objects.get(slug="scale")
    with_ruptures = Client.objects.filter(episodes__ruptures__isnull=False).distinct()
    statuses = set(Rupture.objects.values_list("status", flat=True))
    assert statuses == {"repaired", "unrepaired", "pending"}
    sample = [
        *with_ruptures.order_by("code")[:8],
        *Client.objects.exclude(pk__in=with_ruptures).order_by("code")[:3],
    ]
    replayed_ruptures = 0
    for client in sample:
        episode = client.episodes.get()
        copy = Client.objects.create(
            organization=org,
            code=f"{client.code}-again",
            age_band=client.age_band,
            primary_therapist=client.primary_therapist,
            active=client.active,
        )
        again = Episode.objects.create(
            client=copy,
            therapist=episode.therapist,
            opened=episode.opened,
            closed=episode.closed,
            closure=episode.closure,
        )
        for session in episode.sessions.order_by("number"):
            session_again = TherapySession.objects.create(
                episode=again, number=session.number, date=session.date, format=session.format
            )
            for rating in session.ratings.select_related("tension").order_by("scale", "rater"):
                told = getattr(rating, "tension", None)
                rating_submit(
                    session=session_again,
                    instrument_code=rating.instrument,
                    scores=dict(
                        zip(as_point(rating).instrument.item_keys, rating.items, strict=True)
                    ),
                    idempotency_key=uuid.uuid4(),
                    rater=rating.rater,
                    rater_label=rating.rater_label,
                    stored_at=rating.created_at,
                    tension=told
                    and TensionAnswer(tension=told.tension, resolution=told.resolution),
                )
        assert rupture_rows(again) == rupture_rows(episode)
        replayed_ruptures += len(rupture_rows(again))

        def flags_of(client):
            return sorted(
                (
                    flag.rating.session.number,
                    flag.rating.scale,
                    flag.rating.rater,
                    flag.kind,
                    flag.item,
                    flag.severity,
                    flag.explanation,
                )
                for flag in client.flags.select_related("rating__session")
                if flag.kind not in LASTING
            )

        assert flags_of(copy) == flags_of(client)
        assert sorted(
            TensionReport.objects.filter(rating__session__episode=again).values_list(
                "rating__session__number", "tension", "resolution"
            )
        ) == sorted(
            TensionReport.objects.filter(rating__session__episode=episode).values_list(
                "rating__session__number", "tension", "resolution"
            )
        )
    assert replayed_ruptures >= 8


def test_ruptures_tensions_and_reflections_come_in_bulk():
    seed(clients=300, sessions=4000, seed_value=6)
    org = Organization.objects.get(slug="scale")
    episodes = Episode.objects.filter(client__organization=org)

    # Roughly as in Larsson et al. 2018 (a quarter of therapies with a rupture).
    ruptured = episodes.filter(ruptures__isnull=False).distinct().count()
    assert 0.1 * episodes.count() <= ruptured <= 0.4 * episodes.count()
    by_status = dict(Rupture.objects.values_list("status").annotate(n=Count("pk")))
    assert by_status["repaired"] > by_status["unrepaired"] > 0 and by_status["pending"] > 0
    dimensions = set(" ".join(Rupture.objects.values_list("dimensions", flat=True)).split())
    assert {"bond", "goals", "tasks"} <= dimensions
    # Each rupture has its flag, worked through as the others; no drop flag beside it.
    assert Flag.objects.filter(kind="rupture").count() == Rupture.objects.count()
    assert not Flag.objects.filter(kind="alliance_drop", rating__rupture__isnull=False).exists()
    assert set(Flag.objects.filter(kind="rupture").values_list("status", flat=True)) == {
        FlagStatus.OPEN,
        FlagStatus.ACKNOWLEDGED,
        FlagStatus.RESOLVED,
    }

    session_ratings = Rating.objects.filter(scale="session")
    answered = TensionReport.objects.count()
    yes = TensionReport.objects.filter(tension=True)
    assert 0.75 * session_ratings.count() <= answered <= 0.95 * session_ratings.count()
    assert 0.03 * answered <= yes.count() <= 0.2 * answered
    assert {1, 5} <= set(yes.values_list("resolution", flat=True))
    assert Flag.objects.filter(kind="client_reported_tension").count() == yes.count()
    # Tension answered at a rupture says yes far more often than elsewhere.
    at_ruptures = TensionReport.objects.filter(rating__rupture__isnull=False)
    assert at_ruptures.filter(tension=True).count() > 3 * (yes.count() / answered) * (
        at_ruptures.count()
    )
    # The monthly summary rows count the client's own answers.
    own = TensionReport.objects.filter(rating__rater="client", rating__rater_label="")
    assert (
        AllianceMonth.objects.aggregate(n=Sum("tensions"))["n"] == own.filter(tension=True).count()
    )
    assert AllianceMonth.objects.aggregate(n=Sum("tensions_answered"))["n"] == own.count()

    reflections = Reflection.objects.select_related("flag__client")
    assert reflections.count() > 20
    assert all(r.author_id == r.flag.client.primary_therapist_id for r in reflections)
    assert reflections.filter(teaching_consent=True).exclude(note="").exists()
    assert not reflections.filter(flag__status=FlagStatus.OPEN).exists()
    assert not reflections.filter(strategies__isnull=True).exists()


def test_the_same_seed_gives_the_same_clinic_and_replace_rebuilds_it():
    seed(seed_value=3)
    first, ratings = totals_checksum(), Rating.objects.count()

    with pytest.raises(CommandError, match="already exists"):
        seed(seed_value=3)
    seed("--replace", seed_value=3)
    assert totals_checksum() == first
    assert Rating.objects.count() == ratings
    assert Organization.objects.count() == 1

    seed("--replace", seed_value=4)
    assert totals_checksum() != first
    assert TherapySession.objects.count() == 300


def test_another_slug_seeds_a_second_organisation():
    seed(sessions=100, clients=20)
    seed("--organization-slug=scale2", sessions=100, clients=20)

    assert TherapySession.objects.count() == 200
    assert User.objects.filter(username="scale2-therapist-0006").exists()


def test_large_enough_clinics_have_long_histories_and_a_full_caseload():
    seed(therapists=4, clients=200, sessions=2000)

    sessions_per_episode = Episode.objects.annotate(n=Count("sessions"))
    assert sessions_per_episode.filter(n=40).count() >= 10
    heaviest = User.objects.get(username="scale-therapist-0001")
    assert Client.objects.filter(primary_therapist=heaviest, active=True).count() >= 50


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clients": 10, "sessions": 401}, "between"),
        ({"clients": 10, "sessions": 9}, "between"),
        ({"therapists": 2, "teams": 3}, "more teams"),
    ],
)
def test_it_refuses_impossible_sizes(options, message):
    with pytest.raises(CommandError, match=message):
        seed(**options)
    assert not Organization.objects.exists()


def test_the_summary_rows_give_the_figures_the_ratings_give():
    seed()
    org = Organization.objects.get(slug="scale")
    ratings = Rating.objects.filter(session__episode__client__organization=org)
    therapists = list(Membership.objects.filter(organization=org).values_list("user", flat=True))
    rules = org.flag_rules()
    figures = selectors.figures(therapists, rules=rules)
    by_episode = sorted(figures.outcomes, key=lambda row: row.episode_id)
    assert by_episode == stats.episode_outcomes(selectors.rating_rows(ratings), rules=rules)
    assert len(by_episode) > 20


def test_the_bulk_rows_name_every_column_of_their_tables():
    """COPY (PostgreSQL) writes only the columns named: a column added to a model and left out
    here would fail on PostgreSQL alone, or be filled by nothing."""
    for model, columns in COLUMNS.items():
        assert sorted(columns) == sorted(f.attname for f in model._meta.concrete_fields), model


def test_it_reports_rates_and_where_the_time_went():
    output = seed()

    rates = re.search(r"Per second: ratings (\S+), sessions (\S+), flags (\S+)\.", output)
    assert rates is not None
    assert all(float(rate.replace(",", "")) > 0 for rate in rates.groups())
    for phase in ("histories", "summary rows", "ruptures and reflections"):
        assert re.search(rf"{phase} \d+\.\d", output), phase
    assert re.search(r"CPU seconds of this process: \d+\.\d\.", output)


@pytest.mark.django_db(transaction=True)
def test_batches_written_beside_the_next_give_the_same_clinic(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("batches are written by a thread of their own on PostgreSQL only")
    monkeypatch.setattr(seed_scale, "CLIENTS_PER_CHUNK", 7)
    writers = []

    def batch_insert(batch):
        writers.append(threading.current_thread().name)
        return insert(batch)

    insert = seeding_scale._batch_insert
    monkeypatch.setattr(seeding_scale, "_batch_insert", batch_insert)

    def clinic() -> tuple:
        flags = Flag.objects.order_by(
            "client__code", "rating__session__number", "rating__scale", "rating__rater", "kind"
        ).values_list(
            "client__code", "kind", "status", "acknowledged_at", "resolved_at", "resolved_note"
        )
        return totals_checksum(), list(flags), Reflection.objects.count()

    seed(seed_value=5)
    beside, written_beside = clinic(), writers[:]
    writers.clear()
    with transaction.atomic():
        seed("--replace", seed_value=5)
        in_turn = clinic()

    assert len(written_beside) == 6 and all(n.startswith("seed-writer") for n in written_beside)
    assert set(writers) == {threading.current_thread().name}
    assert beside == in_turn
    assert len(beside[1]) > 0
