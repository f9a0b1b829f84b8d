import random
from collections import defaultdict
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count

from alliance_app.accounts.models import Membership, Role
from alliance_app.clinic.models import Client, Episode, TherapySession
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import Rating
from alliance_app.measures import EpisodeOutcome, FlagKind, RatingPoint, classify_episode, flags_for
from alliance_app.seeding.demo import Alliance, ClientPlan, Course, demo_plans, history


def test_the_same_seed_makes_the_same_histories():
    assert demo_plans(random.Random(7)) == demo_plans(random.Random(7))
    plan = ClientPlan(course=Course.IMPROVING, alliance=Alliance.RUPTURE_REPAIR, sessions=8)
    assert history(random.Random(3), plan) == history(random.Random(3), plan)
    assert history(random.Random(3), plan) != history(random.Random(4), plan)


def _flags_and_outcomes():
    """Run the clinical rules over every stored rating, as the app will."""
    points = defaultdict(list)
    for rating in Rating.objects.select_related("session"):
        points[rating.session.episode_id].append(
            RatingPoint(
                rating.session.number,
                rating.rater_key,
                catalogue().get(rating.instrument),
                rating.items,
                rating.total,
            )
        )
    clients_flagged, outcomes = defaultdict(set), defaultdict(int)
    for episode_id, ratings in points.items():
        for point in ratings:
            for finding in flags_for(point, [other for other in ratings if other is not point]):
                clients_flagged[finding.kind].add(episode_id)
        outcome = sorted(
            (p for p in ratings if p.instrument.scale == "outcome" and p.rater == "client"),
            key=lambda p: p.session_number,
        )
        if len(outcome) >= 2:
            first, latest = outcome[0], outcome[-1]
            outcomes[classify_episode(first.instrument, first.total, latest.total)] += 1
    return clients_flagged, outcomes


@pytest.mark.django_db
def test_seed_demo_builds_a_believable_clinic_once():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "therapist1" in out.getvalue() and "alliance-demo" in out.getvalue()

    roles = dict(Membership.objects.values_list("role").annotate(n=Count("id")))
    assert roles == {Role.ADMIN: 1, Role.SUPERVISOR: 2, Role.THERAPIST: 6}
    assert all(
        m.supervised_teams.count() == 1 for m in Membership.objects.filter(role="supervisor")
    )
    assert 55 <= Client.objects.count() <= 70
    sessions_per_episode = Episode.objects.annotate(n=Count("sessions")).values_list("n", flat=True)
    assert min(sessions_per_episode) >= 1 and max(sessions_per_episode) <= 20
    assert Episode.objects.filter(closure="planned").exists()
    assert Episode.objects.filter(closure="unplanned").exists()

    # Every session has an outcome and a session rating from each rater; couples have two raters.
    assert Rating.objects.count() == sum(
        2 * (2 if s.format == "couple" else 1) for s in TherapySession.objects.all()
    )
    assert Rating.objects.filter(rater="partner").exists()
    child_instruments = set(
        Rating.objects.filter(session__episode__client__age_band="child").values_list(
            "instrument", flat=True
        )
    )
    assert child_instruments == {"outcome-child", "session-child"}

    flagged, outcomes = _flags_and_outcomes()
    assert len(flagged[FlagKind.ALLIANCE_DROP]) >= 5
    assert len(flagged[FlagKind.LOW_ALLIANCE]) >= 3
    assert len(flagged[FlagKind.DETERIORATION]) >= 2
    improved = outcomes[EpisodeOutcome.RECOVERED] + outcomes[EpisodeOutcome.IMPROVED]
    assert improved > sum(outcomes.values()) / 2
    assert outcomes[EpisodeOutcome.DETERIORATED] >= 2

    before = Rating.objects.count()
    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert "already there" in again.getvalue()
    assert Rating.objects.count() == before
