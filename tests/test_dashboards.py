"""Caseload, client page, supervisor inbox, team statistics and overview: who sees what, in
what order, with which figures, and in a number of queries that does not grow with the data."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.clinic.models import Closure, Episode
from alliance_app.feedback.models import FlagStatus
from alliance_app.feedback.services import flag_acknowledge
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db


class World:
    """North team: therapists Ann and Ben, supervised by Sue. South team: Cal. And an admin."""

    def __init__(self):
        self.org = org = factories.organization("Harbour Clinic")
        self.north, self.south = factories.team(org, "North"), factories.team(org, "South")
        self.ann = factories.user(org, team=self.north, username="ann")
        self.ben = factories.user(org, team=self.north, username="ben")
        self.cal = factories.user(org, team=self.south, username="cal")
        self.sue = factories.user(org, role=Role.SUPERVISOR, team=self.north, username="sue")
        self.sue.membership.supervised_teams.add(self.north)
        self.admin = factories.user(org, role=Role.ADMIN, username="boss")
        # Ann: A-1 improving with a drop at session 3; A-2 flat without flags; A-3 no sessions.
        self.a1 = self.history(
            self.ann,
            "A-1",
            ["5 5 5 5", "6 6 6 6", "7 7 7 7"],
            ["10 10 10 10", "10 10 10 9.8", "9.5 9.5 9.5 9.5"],
        )
        self.a2 = self.history(
            self.ann, "A-2", ["6 6 6 6", "6 6 6 6.5"], ["9.5 9.5 9.5 9.5", "9.5 9.5 9.5 9.5"]
        )
        self.a3 = factories.client(org, self.ann, code="A-3")
        # Ben: B-1 with a low alliance (high severity); Cal: C-1 with a low alliance.
        self.b1 = self.history(self.ben, "B-1", ["5 5 5 5"], ["8 8 8 8"])
        self.c1 = self.history(self.cal, "C-1", ["5 5 5 5"], ["8 8 8 8"])

    def history(self, therapist, code, outcomes, sessions):
        client = factories.client(self.org, therapist, code=code)
        episode = factories.episode(client)
        for number, (outcome, alliance) in enumerate(zip(outcomes, sessions, strict=True), 1):
            session = factories.therapy_session(episode, number=number)
            rate(session, "outcome-adult", outcome)
            rate(session, "session-adult", alliance)
        return client


@pytest.fixture
def world():
    return World()


def page(http, user, name, **params):
    http.force_login(user)
    return http.get(reverse(name), params)


# Caseload


def test_the_caseload_holds_the_therapists_own_active_clients_by_need(client, world):
    response = page(client, world.ann, "caseload")
    codes = [row.code for row in response.context["rows"]]
    assert codes == ["A-1", "A-2", "A-3"]  # A-1 has an open drop flag
    a1 = response.context["rows"][0]
    assert (a1.sessions, a1.intake_total, a1.latest_total, a1.change) == (3, 20, 28, 8)
    assert a1.direction == "improved" and a1.open_flags == 1 and a1.top_severity == 2
    assert a1.statuses == ["improving"]
    a2 = response.context["rows"][1]
    assert a2.statuses == ["clinical"] and str(a2.change) == "0.5"


def test_the_caseload_searches_and_filters(client, world):
    assert [r.code for r in page(client, world.ann, "caseload", q="a-2").context["rows"]] == ["A-2"]
    flagged = page(client, world.ann, "caseload", status="flagged").context["rows"]
    assert [r.code for r in flagged] == ["A-1"]
    clinical = page(client, world.ann, "caseload", status="clinical").context["rows"]
    assert [r.code for r in clinical] == ["A-2"]


def test_a_closed_episode_leaves_the_caseload(client, world):
    client.force_login(world.ann)
    episode = Episode.objects.get(client=world.a2)
    client.post(reverse("episode_close", args=[episode.pk]), {"closure": Closure.PLANNED})
    episode.refresh_from_db()
    assert (episode.closure, episode.closed is not None) == ("planned", True)
    assert [r.code for r in page(client, world.ann, "caseload").context["rows"]] == ["A-1", "A-3"]


def test_closing_needs_a_reason_and_the_clients_therapist(client, world):
    episode = Episode.objects.get(client=world.a2)
    client.force_login(world.ann)
    client.post(reverse("episode_close", args=[episode.pk]), {"closure": "vanished"})
    client.force_login(world.ben)
    assert (
        client.post(reverse("episode_close", args=[episode.pk]), {"closure": "planned"}).status_code
        == 404
    )
    episode.refresh_from_db()
    assert episode.is_open


def test_admins_have_no_caseload(client, world):
    assert page(client, world.admin, "caseload").status_code == 403


# Client page


def test_the_client_page_carries_the_chart_and_the_flag_actions(client, world):
    client.force_login(world.ann)
    html = client.get(reverse("client_detail", args=[world.a1.pk])).content.decode()
    assert 'data-chart="client-chart-data"' in html
    figure = json.loads(html.split('id="client-chart-data">', 1)[1].split("</script>", 1)[0])
    names = {trace.get("name") for trace in figure["data"]}
    # A-1's fall from 39.9 to 38.0 is a rupture: marked as one, its flag told in the hover.
    assert {"Outcome · client", "Session · client", "Rupture", "clinical cutoff 25.0"} <= names
    notes = {note["text"] for note in figure["layout"]["annotations"]}
    assert "reliable-change band" in notes
    assert "Acknowledge" in html and "Close this episode of care" in html
    assert "/static/plotly/plotly.min.js" in html


def test_the_admin_reads_a_client_page_without_actions(client, world):
    client.force_login(world.admin)
    html = client.get(reverse("client_detail", args=[world.a1.pk])).content.decode()
    assert "below this client&#x27;s usual" in html
    assert "Acknowledge" not in html and "Start today" not in html


# Supervisor inbox


def test_the_inbox_holds_the_supervised_teams_flags_open_first(client, world):
    drop = world.a1.flags.get()
    flag_acknowledge(flag=drop, by=world.ann, note="Next session")
    response = page(client, world.sue, "inbox")
    flags = list(response.context["page"])
    assert [f.client.code for f in flags] == ["B-1", "A-1"]  # open before acknowledged
    assert "C-1" not in response.content.decode()
    assert "Next session" in response.content.decode()


def test_the_inbox_orders_by_severity_then_age(client, world):
    extra = factories.therapy_session(world.a1.episodes.get(), number=4)
    rate(extra, "outcome-adult", "4 4 3 3")  # deterioration: high severity
    flags = list(page(client, world.sue, "inbox").context["page"])
    assert [(f.client.code, f.kind) for f in flags] == [
        ("B-1", "low_alliance"),
        ("A-1", "deterioration"),
        ("A-1", "rupture"),
    ]


def test_the_inbox_filters(client, world):
    def codes(**params):
        return [f.client.code for f in page(client, world.sue, "inbox", **params).context["page"]]

    assert codes(therapist=world.ben.pk) == ["B-1"]
    assert codes(kind="rupture") == ["A-1"]
    assert codes(team=world.north.pk) == ["B-1", "A-1"]
    assert codes(status=FlagStatus.RESOLVED) == []


def inbox_item(text: str) -> str:
    return text.split('data-testid="inbox-flag"', 1)[1].split("</li>", 1)[0]


def test_each_inbox_flag_has_one_form_whose_two_buttons_acknowledge_or_resolve(client, world):
    response = page(client, world.sue, "inbox", kind="low_alliance")
    [flag] = response.context["page"]
    forms = re.findall(r"<form.+?</form>", inbox_item(response.content.decode()), flags=re.S)
    assert len(forms) == 1
    acknowledge = reverse("flag_action", args=[flag.pk, "acknowledge"])
    resolve = reverse("flag_action", args=[flag.pk, "resolve"])
    assert f'action="{resolve}"' in forms[0] and f'formaction="{acknowledge}"' in forms[0]
    assert forms[0].count('name="csrfmiddlewaretoken"') == 1
    here = reverse("inbox") + "?kind=low_alliance"
    # The acknowledge button posts the form's note and way back to its own address.
    client.post(acknowledge, {"note": "Talked it through.", "next": here})
    flag.refresh_from_db()
    assert (flag.status, flag.acknowledged_note) == (FlagStatus.ACKNOWLEDGED, "Talked it through.")
    # Resolving needs the note: without one the flag stays as it was, and the page says why.
    answer = client.post(resolve, {"note": " ", "next": here}, follow=True)
    assert "Say in a few words what came of it." in answer.content.decode()
    flag.refresh_from_db()
    assert flag.status == FlagStatus.ACKNOWLEDGED
    # An acknowledged flag offers resolving only.
    [form] = re.findall(r"<form.+?</form>", inbox_item(answer.content.decode()), flags=re.S)
    assert "formaction" not in form and "What came of it" in form


def test_the_admin_sees_every_flag_and_therapists_have_no_inbox(client, world):
    codes = [f.client.code for f in page(client, world.admin, "inbox").context["page"]]
    assert sorted(codes) == ["A-1", "B-1", "C-1"]
    assert page(client, world.ann, "inbox").status_code == 403


# Statistics


def test_team_statistics_cover_the_supervised_therapists(client, world):
    response = page(client, world.sue, "team_statistics")
    names = [name for name, *_ in response.context["rows"]]
    assert names == ["Ann", "Ben"]  # Sue has no caseload of her own; Cal is in the South team
    totals = response.context["totals"]
    assert (totals.active_clients, totals.sessions) == (3, 6)  # A-3 has no episode yet
    # Client session totals: A-1 40.0, 39.8, 38.0; A-2 38.0, 38.0; B-1 32.0 → mean 37.6
    assert totals.mean_session_rating == 37.6
    assert 'data-chart="monthly-chart-data"' in response.content.decode()


def test_the_overview_is_for_admins_and_goes_by_team(client, world):
    response = page(client, world.admin, "overview")
    assert [name for name, *_ in response.context["rows"]] == ["North", "South"]
    north, south = (row for _, row, _link in response.context["rows"])
    assert (north.sessions, south.sessions) == (6, 1)
    # The trend chart draws a line per team, not per therapist.
    chart = json.loads(response.context["chart"])
    assert {trace["name"] for trace in chart["data"]} <= {"North", "South"}
    assert chart["data"]
    assert page(client, world.sue, "overview").status_code == 403


# Query counts: constant however many clients there are


def count_queries(http, url) -> int:
    http.get(url)  # the first page after logging in also renews the session
    with CaptureQueriesContext(connection) as captured:
        response = http.get(url)
    assert response.status_code == 200
    return len(captured)


def caseload_of(org, therapist, team, clients: int) -> None:
    for n in range(clients):
        patient = factories.client(org, therapist, code=f"Q{n:03}")
        episode = factories.episode(patient)
        for number in (1, 2):
            session = factories.therapy_session(episode, number=number)
            rate(session, "outcome-adult", "5 5 5 5")
            rate(session, "session-adult", "9 9 9 8.9" if number == 2 else "9.5 9.5 9.5 9.5")


PAGES = {
    # page: (who looks, the URL, its queries: session, the user with their membership, then the
    # page's own)
    "caseload": (Role.THERAPIST, lambda w: reverse("caseload"), 3),
    # the client page checks the client may be seen and records that it was viewed (one insert
    # into the audit trail); its second visit finds its cached result: the data version
    "client": (Role.THERAPIST, lambda w: reverse("client_detail", args=[w["first"]]), 5),
    # the inbox's second visit finds its cached page of flags: the data version
    "inbox": (Role.SUPERVISOR, lambda w: reverse("inbox"), 3),
    # the team pages' second visit finds their cached result: the data version, then nothing
    # more (tests/dashboards/test_query_counts pins their misses)
    "team": (Role.SUPERVISOR, lambda w: reverse("team_statistics"), 3),
    "overview": (Role.ADMIN, lambda w: reverse("overview"), 3),
}


@pytest.mark.parametrize("name", PAGES)
def test_each_dashboard_runs_the_same_number_of_queries_for_5_and_50_clients(client, name):
    role, url, pinned = PAGES[name]
    counts = []
    for size in (5, 50):
        org = factories.organization()
        team = factories.team(org)
        therapist = factories.user(org, team=team)
        supervisor = factories.user(org, role=Role.SUPERVISOR)
        supervisor.membership.supervised_teams.add(team)
        admin = factories.user(org, role=Role.ADMIN)
        caseload_of(org, therapist, team, size)
        viewer = {Role.THERAPIST: therapist, Role.SUPERVISOR: supervisor, Role.ADMIN: admin}[role]
        client.force_login(viewer)
        first = org.clients.order_by("code").first().pk
        counts.append(count_queries(client, url({"first": first})))
    assert counts == [pinned, pinned]
