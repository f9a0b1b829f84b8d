"""The rating submission's hand-written SQL (feedback.statements) gives what the ORM query it stands
for gives, value for value and type for type, on SQLite and on PostgreSQL."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from alliance_app.clinic.models import Closure, Episode, TherapySession
from alliance_app.feedback import statements
from alliance_app.feedback.models import AllianceMonth, OutcomeEnds, Rating, Rupture, RuptureSD
from alliance_app.feedback.ruptures import sd_in_force
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db


def fields(instance, names=None) -> dict:
    names = names or [field.attname for field in type(instance)._meta.concrete_fields]
    return {name: (getattr(instance, name), type(getattr(instance, name))) for name in names}


@pytest.fixture
def closed_episode(org, therapist):
    patient = factories.client(org, therapist, code="C-STATEMENTS")
    episode = Episode.objects.create(
        client=patient,
        therapist=therapist,
        opened=date(2026, 1, 5),
        closed=date(2026, 3, 2),
        closure=Closure.PLANNED,
    )
    return episode


def test_the_session_for_a_rating_is_the_orm_s_session_episode_and_client(closed_episode):
    session = TherapySession.objects.create(
        episode=closed_episode, number=3, date=date(2026, 2, 9), format="couple"
    )
    found = statements.session_for_rating(session.pk)
    expected = TherapySession.objects.select_related("episode__client").get(pk=session.pk)
    assert fields(found.session) == fields(expected)
    assert fields(found.session.episode) == fields(expected.episode)
    # Dates, booleans and the aware creation time come back as the ORM gives them.
    assert fields(found.session.episode.client) == fields(expected.episode.client)
    assert timezone.is_aware(found.session.episode.client.created_at)
    assert found.measured_sd is None


def test_a_session_that_does_not_exist_is_none():
    assert statements.session_for_rating(987_654) is None


def test_the_measured_sd_comes_with_the_session_and_is_the_one_in_force(org, session_one):
    measured = RuptureSD.objects.create(
        organization=org,
        value=Decimal("3.45"),
        series=12,
        degrees_of_freedom=40,
        is_fallback=False,
    )
    found = statements.session_for_rating(session_one.pk)
    assert fields(found.measured_sd) == fields(RuptureSD.objects.get(pk=measured.pk))
    statements.keep_measured_sd(org, found.measured_sd)
    assert sd_in_force(org).value == Decimal("3.45")


def test_an_organisation_kept_without_a_measured_sd_asks_no_more(
    org, session_one, django_assert_num_queries
):
    statements.keep_measured_sd(org, statements.session_for_rating(session_one.pk).measured_sd)
    with django_assert_num_queries(0):
        assert sd_in_force(org).source == "fallback"


def test_the_episode_s_ratings_are_the_orm_s_in_session_order(adult, therapist):
    episode = factories.episode(adult)
    days = [date(2026, 1, 5), date(2026, 1, 12), date(2026, 2, 2)]
    made = [
        TherapySession.objects.create(episode=episode, number=number, date=day)
        for number, day in enumerate(days, start=1)
    ]
    for session in reversed(made):
        rate(session, "session-adult", "9.1 8.0 7.5 9.9")
        rate(session, "session-adult", "5.0 5.0 5.0 5.0", rater="other", label="Sam")
    rate(made[0], "outcome-adult", "4.0 4.0 4.0 4.0")
    found = statements.episode_ratings(episode.pk, "session")
    expected = list(
        Rating.objects.filter(session__episode=episode, scale="session")
        .select_related("session")
        .order_by("session__number", "rater", "rater_label")
    )
    read = ["id", "session_id", "created_at", "instrument", "scale", "rater", "rater_label"]
    read += ["item_1", "item_2", "item_3", "item_4", "total"]
    assert [fields(rating, read) for rating in found] == [fields(r, read) for r in expected]
    assert [(r.session.number, r.session.date) for r in found] == [
        (r.session.number, r.session.date) for r in expected
    ]
    assert [r.rater for r in found] == ["client", "other"] * 3
    # The session's other columns are read when asked for, not made up.
    made[1].format = "couple"
    made[1].save()
    assert [r.session.format for r in statements.episode_ratings(episode.pk, "session")][2] == (
        "couple"
    )


def test_the_series_rupture_rows_are_the_orm_s(adult):
    episode = factories.episode(adult)
    rated = {
        number: rate(factories.therapy_session(episode, number), "session-adult", "9 9 9 9")
        for number in (2, 4)
    }
    # Rows as the rule would never write them, written after the ratings (which rewrite them).
    for number in (4, 2):
        Rupture.objects.create(
            rating=rated[number].rating,
            episode=episode,
            therapist_id=episode.therapist_id,
            rater="client",
            rater_label="",
            session_number=number,
            month=date(2026, 1, 1),
            total=Decimal("30.0"),
            baseline=Decimal("36.25"),
            drop=Decimal("6.25"),
            threshold=Decimal("4.10"),
            dimensions="goals",
            status="pending",
        )
    found = statements.series_ruptures(episode.pk, "client", "")
    expected = Rupture.objects.filter(episode=episode, rater="client", rater_label="")
    assert [fields(row) for row in found] == [
        fields(row) for row in expected.order_by("session_number")
    ]
    assert [row.session_number for row in found] == [2, 4]
    assert statements.series_ruptures(episode.pk, "other", "Sam") == []


def test_a_month_row_adds_exactly_and_says_whether_it_was_there(adult):
    episode = factories.episode(adult)
    month = date(2026, 1, 1)
    first = dict.fromkeys(statements.MONTH_SUMS, 0) | {"total_sum": Decimal("0.1"), "count": 1}
    assert statements.add_to_month(episode.pk, month, first) == 0
    AllianceMonth.objects.create(
        episode=episode,
        therapist_id=episode.therapist_id,
        month=month,
        total_sum=Decimal("0.1"),
        count=1,
        concerns=0,
    )
    for total, concern in ((Decimal("0.1"), 1), (Decimal("0.1"), 0)):
        assert (
            statements.add_to_month(
                episode.pk,
                month,
                {
                    "total_sum": total,
                    "count": 1,
                    "concerns": concern,
                    "tensions_answered": 1,
                    "tensions": concern,
                    "tension_resolution_sum": 3,
                },
            )
            == 1
        )
    row = AllianceMonth.objects.get(episode=episode)
    # Three tenths are three tenths, not 0.30000000000000004.
    assert (row.total_sum, row.count, row.concerns) == (Decimal("0.3"), 3, 1)
    assert (row.tensions_answered, row.tensions, row.tension_resolution_sum) == (2, 1, 6)


def test_the_ends_move_outward_only(adult):
    episode = factories.episode(adult)
    sessions = [factories.therapy_session(episode, number) for number in (1, 2, 3, 4)]
    ratings = {
        number: rate(session, "outcome-adult", f"{number}.0 {number}.0 {number}.0 {number}.0")
        for number, session in zip((1, 2, 3, 4), sessions, strict=True)
    }
    row = OutcomeEnds.objects.get(episode=episode)
    assert (row.first_number, row.latest_number) == (1, 4)
    later = ratings[4].rating
    # Nothing between the ends moves them; a later rating moves the latest, an earlier the first.
    assert statements.move_ends(episode.pk, later.pk, 3, Decimal("1.0"), later.instrument) == 0
    assert statements.move_ends(episode.pk, later.pk, 5, Decimal("2.5"), later.instrument) == 1
    first = ratings[1].rating
    assert statements.move_ends(episode.pk, first.pk, 0, Decimal("7.5"), "outcome-child") == 1
    row.refresh_from_db()
    assert (row.latest_number, row.latest_total, row.latest_id) == (5, Decimal("2.5"), later.pk)
    assert (row.first_number, row.first_total) == (0, Decimal("7.5"))
    assert row.instrument == "outcome-child"
