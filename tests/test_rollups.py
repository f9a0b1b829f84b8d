"""Summary rows (feedback.rollups): kept as each rating is stored, equal to those made afresh."""

import io
import random
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from alliance_app.clinic.models import Episode, SessionFormat, TherapySession
from alliance_app.clinic.services import client_delete
from alliance_app.feedback import rollups
from alliance_app.feedback.models import AllianceMonth, OutcomeEnds, Rating
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db


def sessions(episode, *dates, fmt=SessionFormat.INDIVIDUAL):
    return [
        TherapySession.objects.create(episode=episode, number=number, date=day, format=fmt)
        for number, day in enumerate(dates, start=1)
    ]


def ends(episode) -> tuple:
    row = OutcomeEnds.objects.get(episode=episode)
    # The copies kept beside the foreign keys say what the rated rows say.
    assert (row.first_number, row.first_total, row.instrument) == (
        row.first.session.number,
        row.first.total,
        row.first.instrument,
    )
    assert (row.latest_number, row.latest_total) == (row.latest.session.number, row.latest.total)
    return (row.first_number, row.first_total, row.latest_number, row.latest_total)


def months(episode) -> list[tuple]:
    return list(
        AllianceMonth.objects.filter(episode=episode)
        .order_by("month")
        .values_list("month", "total_sum", "count", "concerns")
    )


def snapshot(episodes) -> tuple[list, list]:
    return (
        sorted(
            OutcomeEnds.objects.filter(episode__in=episodes).values_list(
                "episode_id", "client_id", "therapist_id", *rollups.ENDS
            )
        ),
        sorted(
            AllianceMonth.objects.filter(episode__in=episodes).values_list(
                "episode_id", "therapist_id", "month", "total_sum", "count", "concerns"
            )
        ),
    )


@pytest.fixture
def episode(adult):
    return factories.episode(adult)


def test_the_ends_follow_session_order_whatever_order_the_ratings_come_in(episode):
    one, two, three, four = sessions(episode, *(date(2026, 1, day) for day in (5, 12, 19, 26)))
    rate(two, "outcome-adult", "5 5 5 5")
    assert ends(episode) == (2, Decimal("20.0"), 2, Decimal("20.0"))
    rate(four, "outcome-adult", "6 6 6 6")
    assert ends(episode) == (2, Decimal("20.0"), 4, Decimal("24.0"))
    # A session rated late (a remote link answered afterwards) moves the first end back...
    rate(one, "outcome-adult", "4 4 4 4")
    assert ends(episode) == (1, Decimal("16.0"), 4, Decimal("24.0"))
    # ...and one between the ends moves neither.
    rate(three, "outcome-adult", "9 9 9 9")
    assert ends(episode) == (1, Decimal("16.0"), 4, Decimal("24.0"))


def test_session_ratings_are_summed_per_calendar_month_with_their_concerns(episode):
    january, february, later = sessions(
        episode, date(2026, 1, 30), date(2026, 2, 2), date(2026, 2, 9)
    )
    rate(january, "session-adult", "9.5 9.5 9.5 9.5")
    rate(february, "session-adult", "9 9 9 8.9")  # 35.9: below the cut-off of 36.0
    rate(later, "session-adult", "9 9 9 9")  # 36.0: the cut-off itself is no concern
    assert months(episode) == [
        (date(2026, 1, 1), Decimal("38.0"), 1, 0),
        (date(2026, 2, 1), Decimal("71.9"), 2, 1),
    ]


def test_only_the_clients_own_ratings_count(org, therapist):
    couple = factories.episode(factories.client(org, therapist))
    (session,) = sessions(couple, date(2026, 3, 2), fmt=SessionFormat.COUPLE)
    rate(session, "outcome-adult", "2 2 2 2", rater="partner", label="Sam")
    rate(session, "session-adult", "5 5 5 5", rater="partner", label="Sam")
    rate(session, "session-adult", "6 6 6 6", rater="client", label="Jo")
    assert not OutcomeEnds.objects.filter(episode=couple).exists()
    assert months(couple) == []
    rate(session, "outcome-adult", "7 7 7 7")
    rate(session, "session-adult", "9.5 9.5 9.5 9.5")
    assert ends(couple) == (1, Decimal("28.0"), 1, Decimal("28.0"))
    assert months(couple) == [(date(2026, 3, 1), Decimal("38.0"), 1, 0)]


def test_a_repeated_submission_is_summed_once(episode):
    (session,) = sessions(episode, date(2026, 1, 5))
    key = factories.key()
    rate(session, "session-adult", "9 9 9 9", idempotency_key=key)
    rate(session, "session-adult", "9 9 9 9", idempotency_key=key)
    assert months(episode) == [(date(2026, 1, 1), Decimal("36.0"), 1, 0)]


def test_what_the_service_keeps_equals_what_a_rebuild_makes(org, therapist):
    rng = random.Random(7)
    episodes = []
    for _ in range(4):
        episode = factories.episode(factories.client(org, therapist))
        episodes.append(episode)
        weekly = [date(2026, 1 + week // 4, 1 + 7 * (week % 4)) for week in range(12)]
        held = sessions(episode, *weekly)
        slots = [(session, scale) for session in held for scale in ("outcome", "session")]
        for session, scale in rng.sample(slots, k=len(slots) - 3):
            items = " ".join(str(rng.randint(50, 100) / 10) for _ in range(4))
            rate(session, f"{scale}-adult", items)
    kept = snapshot(episodes)
    assert len(kept[0]) == 4
    # Twelve weekly sessions over three months; three of 24 ratings left out
    # cannot empty one.
    assert len(kept[1]) == 4 * 3
    rollups.rebuild(Episode.objects.filter(pk__in=[episode.pk for episode in episodes]))
    assert snapshot(episodes) == kept


def test_a_rebuild_replaces_rows_gone_stale(episode):
    (session,) = sessions(episode, date(2026, 1, 5))
    rate(session, "session-adult", "9 9 9 9")
    rate(session, "outcome-adult", "5 5 5 5")
    # Say the admin moved the session to another month.
    TherapySession.objects.filter(pk=session.pk).update(date=date(2026, 2, 5))
    rollups.rebuild(Episode.objects.filter(pk=episode.pk))
    assert months(episode) == [(date(2026, 2, 1), Decimal("36.0"), 1, 0)]
    assert ends(episode) == (1, Decimal("20.0"), 1, Decimal("20.0"))


def test_erasing_a_client_erases_their_summary_rows(org, therapist, adult, episode):
    (session,) = sessions(episode, date(2026, 1, 5))
    rate(session, "session-adult", "9 9 9 9")
    rate(session, "outcome-adult", "5 5 5 5")
    client_delete(client=adult)
    assert not Rating.objects.exists()
    assert not OutcomeEnds.objects.exists()
    assert not AllianceMonth.objects.exists()


def test_moving_a_session_in_the_admin_moves_its_ratings_month(client, episode, django_user_model):
    (session,) = sessions(episode, date(2026, 1, 5))
    rate(session, "session-adult", "9 9 9 9")
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.org", "pw"))
    change = reverse("admin:clinic_therapysession_change", args=[session.pk])
    form = {"episode": episode.pk, "number": 1, "date": "2026-02-05", "format": "individual"}
    assert client.post(change, form).status_code == 302
    assert months(episode) == [(date(2026, 2, 1), Decimal("36.0"), 1, 0)]


def test_the_command_rebuilds_an_organisations_rows(org, episode):
    (session,) = sessions(episode, date(2026, 1, 5))
    rate(session, "session-adult", "9 9 9 9")
    AllianceMonth.objects.all().delete()
    out = io.StringIO()
    call_command("rebuild_rollups", organization_slug=org.slug, stdout=out)
    assert months(episode) == [(date(2026, 1, 1), Decimal("36.0"), 1, 0)]
    assert out.getvalue() == f"{org.slug}: 0 episode outcome ends, 1 monthly sums\n"
    with pytest.raises(CommandError, match="no organisation"):
        call_command("rebuild_rollups", organization_slug="nowhere")


def test_handing_an_episode_to_another_therapist_in_the_admin_moves_its_sums(
    client, org, episode, django_user_model
):
    (session,) = sessions(episode, date(2026, 1, 5))
    rate(session, "session-adult", "9 9 9 9")
    rate(session, "outcome-adult", "5 5 5 5")
    colleague = factories.user(org)
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.org", "pw"))
    form = {
        "client": episode.client_id,
        "therapist": colleague.pk,
        "opened": "2026-01-05",
        "closed": "",
        "closure": "",
        "sessions-TOTAL_FORMS": "1",
        "sessions-INITIAL_FORMS": "1",
        "sessions-MIN_NUM_FORMS": "0",
        "sessions-MAX_NUM_FORMS": "1000",
        "sessions-0-id": session.pk,
        "sessions-0-episode": episode.pk,
        "sessions-0-number": "1",
        "sessions-0-date": "2026-01-05",
        "sessions-0-format": "individual",
    }
    change = reverse("admin:clinic_episode_change", args=[episode.pk])
    response = client.post(change, form)
    assert response.status_code == 302, response.context["errors"]
    assert list(AllianceMonth.objects.values_list("therapist_id", "count")) == [(colleague.pk, 1)]
    assert OutcomeEnds.objects.get(episode=episode).therapist == colleague
