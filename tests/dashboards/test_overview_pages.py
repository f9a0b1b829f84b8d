"""The overview shows its teams twenty at a time, by name, with the whole organisation's totals on
every page: it costs the same with twenty teams as with a hundred (issue: fast at any size)."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.dashboards.views import OVERVIEW_TEAMS
from tests import factories
from tests.factories import logged_in, rate

pytestmark = pytest.mark.django_db


def clinic(org, teams: int, first: int = 1) -> list:
    """`teams` teams (named from `first` on), each with a therapist who has one client rated in
    one session: team n's client rates it n/10 (modulo 10) on each item."""
    made = []
    for number in range(first, first + teams):
        team = factories.team(org, f"Team {number:03d}")
        therapist = factories.user(org, Role.THERAPIST, team=team)
        session = factories.therapy_session(factories.episode(factories.client(org, therapist)), 1)
        score = f"{number % 100 / 10:.1f}"
        rate(session, "session-adult", " ".join([score] * 4))
        made.append(team)
    return made


def names(response) -> list[str]:
    return [name for name, _row, _link in response.context["rows"]]


def chart_lines(response) -> list[str]:
    return [line["name"] for line in json.loads(response.context["chart"])["data"]]


def test_the_overview_lists_twenty_teams_a_page_with_the_whole_organisations_totals(org, admin):
    clinic(org, 45)
    http = logged_in(admin)
    first = http.get(reverse("overview"))
    assert names(first) == [f"Team {n:03d}" for n in range(1, OVERVIEW_TEAMS + 1)]
    assert chart_lines(first) == names(first)
    assert first.context["totals"].sessions == 45
    page = first.content.decode()
    assert "Teams 1 to 20 of 45, by name" in page
    assert "1 / 3" in page
    last = http.get(reverse("overview"), {"page": "3"})
    assert names(last) == [f"Team {n:03d}" for n in range(41, 46)]
    assert chart_lines(last) == names(last)
    assert [row.sessions for _name, row, _link in last.context["rows"]] == [1] * 5
    assert last.context["totals"].sessions == 45
    assert [name for name, _rates, _link in last.context["rupture_rows"]] == names(last)


@pytest.mark.parametrize(("asked", "shown"), [("abc", 1), ("0", 1), ("-2", 1), ("99", 3)])
def test_a_page_number_that_is_not_one_shows_the_first_or_the_last(org, admin, asked, shown):
    clinic(org, 45)
    response = logged_in(admin).get(reverse("overview"), {"page": asked})
    assert response.status_code == 200
    assert response.context["page"].number == shown


def test_a_small_organisation_has_one_page_and_no_page_links(org, admin):
    clinic(org, 3)
    response = logged_in(admin).get(reverse("overview"))
    assert names(response) == ["Team 001", "Team 002", "Team 003"]
    page = response.content.decode()
    assert 'data-testid="overview-teams-shown"' not in page
    assert 'aria-label="Pages"' not in page


def test_the_overview_asks_as_many_queries_with_twenty_teams_as_with_sixty(org, admin):
    def queries() -> tuple[int, int]:
        http = logged_in(admin)
        counts = []
        for _visit in (1, 2):  # a miss (the data just changed), then a hit
            with CaptureQueriesContext(connection) as captured:
                assert http.get(reverse("overview")).status_code == 200
            counts.append(len(captured))
        return tuple(counts)

    clinic(org, 20)
    twenty = queries()
    clinic(org, 40, first=21)  # forty more teams: the data changed
    assert queries() == twenty
