"""The no-loss benchmark's check of what was stored replays the rules as rating_submit applies
them: rupture flags in place of drop flags, and rupture rows as the rule finds them."""

import pytest
from django.db import connection

from alliance_app.feedback.models import Flag, Rupture
from bench.data import consistency
from tests import factories
from tests.factories import rate

pytestmark = [
    pytest.mark.django_db,
    # The check counts orphaned flags with PostgreSQL's ANY(array), as the bench runs on it.
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the bench runs on PostgreSQL"),
]


def test_the_check_agrees_with_the_flags_and_ruptures_rating_submit_left():
    org = factories.organization()
    therapist = factories.user(org)
    client = factories.client(org, therapist)
    episode = factories.episode(client)
    story = ["9.9 9.9 9.9 9.9", "9.9 9.9 9.9 9.9", "9.2 9.2 9.0 9.2", "9.9 9.9 9.9 9.8", "8 8 8 8"]
    for number, items in enumerate(story, 1):
        session = factories.therapy_session(episode, number=number)
        rate(session, "outcome-adult", "5 5 5 5")
        rate(session, "session-adult", items)
    assert Rupture.objects.count() == 2 and Flag.objects.filter(kind="rupture").count() == 2
    result = consistency([client.pk], replay_flags=True)
    assert result["ruptures_as_rules_give"] and result["flags_as_rules_give"] and result["ok"]

    Rupture.objects.filter(session_number=3).update(
        status="unrepaired", repaired_number=None, sessions_to_repair=None
    )
    Flag.objects.filter(kind="rupture", rating__session__number=5).delete()
    result = consistency([client.pk], replay_flags=True)
    assert not result["ruptures_as_rules_give"]
    assert result["ratings_with_other_flags"] == 1 and not result["ok"]
