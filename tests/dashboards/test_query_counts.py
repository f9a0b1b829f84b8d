"""Every dashboard runs a fixed number of queries, the same for 5 clients as for 50.

One clinic per size: a team of three therapists, the first treating every client; each client
four rated sessions in which the alliance dips and comes back (a rupture, repaired), with a
tension reported and the outcome rated at the first and last session, so each client carries
open flags of several kinds. An expected-response band is in use, so the pages judge every
episode against it too. Each page is opened twice and the second visit counted (the first
after logging in also renews the login session); for the pages with cached results that is a
hit, and their misses are pinned as well.
"""

import datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.feedback.models import OPEN_STATUSES, Flag
from alliance_app.measures import TensionAnswer
from tests import factories
from tests.factories import expected_band_load, rate

pytestmark = pytest.mark.django_db

HIGH, DIP = "10 10 10 9.5", "10 7 10 9.5"  # 39.5, and 36.5 where the goals item fell
START = datetime.date(2026, 1, 6)
NO_TENSION = TensionAnswer(tension=False)

# Each page: who opens it, its address, and its queries. Every page begins with the same two:
# the login session, and the user with their membership and organisation (the band in use
# travels with the organisation: judging by it costs no query).
PAGES = {
    # one query, a row per client with correlated subqueries
    "caseload": (Role.THERAPIST, lambda w: reverse("caseload"), 3),
    # cached result: the client (the access check), the audit entry, the data version
    "client": (Role.THERAPIST, lambda w: reverse("client_detail", args=[w.first]), 5),
    # cached result: the data version, then the page's rows from the cache
    "inbox": (Role.SUPERVISOR, lambda w: reverse("inbox"), 3),
    # cached results (accounts.cached): the data version, then the result from the cache
    "team": (Role.SUPERVISOR, lambda w: reverse("team_statistics"), 3),
    "overview": (Role.ADMIN, lambda w: reverse("overview"), 3),
    "supervision_index": (Role.SUPERVISOR, lambda w: reverse("supervision_index"), 5),
    "supervision": (
        Role.SUPERVISOR,
        lambda w: reverse("supervision", args=[w.therapist.pk]) + "?months=all",
        # the therapist seen, the viewer's membership, the data version; the audit entries
        5,
    ),
    # the band's fits, with who started each
    "expected_response": (Role.ADMIN, lambda w: reverse("expected_response"), 3),
    "exports": (Role.THERAPIST, lambda w: reverse("exports"), 2),
}


class Clinic:
    def __init__(self, clients: int):
        self.org = factories.organization()
        expected_band_load(self.org, boundary=(23.0, 0.0, 0.0, 0.0))
        team = factories.team(self.org)
        self.therapist = factories.user(self.org, team=team)
        for _colleague in range(2):
            factories.user(self.org, team=team)
        supervisor = factories.user(self.org, role=Role.SUPERVISOR)
        supervisor.membership.supervised_teams.add(team)
        admin = factories.user(self.org, role=Role.ADMIN)
        self.viewers = {Role.THERAPIST: self.therapist, Role.SUPERVISOR: supervisor}
        self.viewers[Role.ADMIN] = admin
        for n in range(clients):
            self._client(f"Q{n:03}")
        self.first = self.org.clients.order_by("code").first().pk

    def _client(self, code: str) -> None:
        episode = factories.episode(factories.client(self.org, self.therapist, code=code))
        items = (HIGH, HIGH, DIP, HIGH)
        for number, scores in enumerate(items, 1):
            session = episode.sessions.create(
                number=number, date=START + datetime.timedelta(days=number), format="individual"
            )
            tension = TensionAnswer(tension=True, resolution=2) if number == 3 else NO_TENSION
            rate(session, "session-adult", scores, tension=tension)
            if number in (1, len(items)):
                rate(session, "outcome-adult", "5 5 5 5" if number == 1 else "4 4 4 4")


# On a miss (the data changed since the last visit), the cached pages' queries: the data
# version's, then those that compute the result.
# The client page's: the episode, its sessions with their ratings, the rating rows, the chart's
# flags and ruptures, the client's flags with their rows, which of the rupture and tension
# flags the therapist may reflect on (no reflection is written, so no strategies are read).
# The inbox's: the supervisor's clients, the count, the page's flags chosen, then read with
# their rows, the therapists and teams for the filters, which of the flags one may reflect on.
# The overview's page of teams is cut from the organisation's figures, a result of its own: the
# data version is read for each.
MISSES = {"team": 8, "overview": 10, "supervision": 17, "client": 13, "inbox": 10}


def count_queries(http, url: str) -> int:
    http.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = http.get(url)
    assert response.status_code == 200, url
    return len(captured)


def counts_for(client, clinic: Clinic) -> dict[str, int]:
    counted = {}
    for name, (role, url, _pinned) in PAGES.items():
        client.force_login(clinic.viewers[role])
        counted[name] = count_queries(client, url(clinic))
    return counted


def test_every_dashboard_runs_the_same_pinned_number_of_queries_for_5_and_50_clients(client):
    small, large = Clinic(5), Clinic(50)
    # Every client has open flags of several kinds, so the inbox fills its first page of 50.
    flags = Flag.objects.filter(client__organization=large.org, status__in=OPEN_STATUSES)
    assert flags.count() > 50
    assert flags.values("kind").distinct().count() >= 3
    pinned = {name: page[2] for name, page in PAGES.items()}
    assert counts_for(client, small) == pinned
    assert counts_for(client, large) == pinned


def test_a_cached_page_runs_fewer_queries_when_nothing_changed_than_after_a_change(client):
    for clinic in (Clinic(5), Clinic(50)):
        for name, misses in MISSES.items():
            role, url, hits = PAGES[name]
            client.force_login(clinic.viewers[role])
            client.get(url(clinic))
            cache.clear()
            assert count_queries_once(client, url(clinic)) == misses, name
            assert count_queries_once(client, url(clinic)) == hits < misses, name


def count_queries_once(http, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = http.get(url)
    assert response.status_code == 200, url
    return len(captured)
