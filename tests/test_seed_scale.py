import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Q
from django.utils.translation import gettext

from alliance_app.accounts.models import Membership, Organization, Role, User
from alliance_app.clinic.models import Client, Episode, TherapySession
from alliance_app.dashboards import selectors, stats
from alliance_app.feedback.models import Flag, FlagStatus, Rating
from alliance_app.feedback.services import as_point
from alliance_app.measures import FlagKind, flags_for, flags_to_raise

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


def test_stored_flags_are_what_the_rules_give():
    seed(sessions=600, seed_value=2)
    rules = Organization.objects.get(slug="scale").flag_rules()

    for client in Client.objects.order_by("code")[::2]:
        ratings = list(
            Rating.objects.filter(session__episode__client=client)
            .select_related("session")
            .order_by("session__number", "scale", "rater")
        )
        stored = list(client.flags.all())
        position = {rating.pk: index for index, rating in enumerate(ratings)}
        expected = set()
        by_id = {rating.pk: rating for rating in ratings}
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

    statuses = set(Flag.objects.values_list("status", flat=True))
    assert FlagStatus.RESOLVED in statuses and FlagStatus.OPEN in statuses
    assert not Flag.objects.filter(
        Q(status=FlagStatus.RESOLVED) & (Q(resolved_at__isnull=True) | Q(resolved_by=None))
    ).exists()


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
