"""Outcome and session ratings of one episode stored all at once, from as many connections: the
summary rows end as a rebuild from the ratings makes them (feedback.rollups)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from django.db import connections

from alliance_app.clinic.models import Episode, TherapySession
from alliance_app.feedback import rollups
from alliance_app.feedback.models import Rating
from tests import factories
from tests.factories import rate
from tests.test_rollups import snapshot
from tests.test_unlock_concurrency import database_for_threads  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = 12


def test_ratings_stored_at_once_keep_the_ends_and_sums_a_rebuild_makes(
    org,
    therapist,
    database_for_threads,  # noqa: F811
):
    episodes = [factories.episode(factories.client(org, therapist)) for _ in range(2)]
    held = [
        TherapySession.objects.create(
            episode=episode, number=number, date=date(2026, 1, 5) + timedelta(weeks=number)
        )
        for episode in episodes
        for number in range(1, SESSIONS + 1)
    ]
    slots = [(session.pk, scale) for session in held for scale in ("outcome", "session")]
    start = threading.Barrier(len(slots))

    def store(slot: tuple[int, str]) -> None:
        database_for_threads()
        session_pk, scale = slot
        try:
            session = TherapySession.objects.select_related("episode__client__organization").get(
                pk=session_pk
            )
            # Each its own total, so that an end taken from the wrong rating shows.
            items = " ".join([str(5 + session.number / 5)] * 4)
            start.wait()
            rate(session, f"{scale}-adult", items)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(len(slots)) as pool:
        list(pool.map(store, slots))

    assert Rating.objects.count() == len(slots)
    kept = snapshot(episodes)
    # Every episode's ends are its first and last sessions, whatever order they were stored in.
    assert [(row[4], row[8]) for row in kept[0]] == [(1, SESSIONS)] * len(episodes)
    rollups.rebuild(Episode.objects.filter(pk__in=[episode.pk for episode in episodes]))
    assert snapshot(episodes) == kept
