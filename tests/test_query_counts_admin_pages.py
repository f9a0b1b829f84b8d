"""The staff page, the settings page and a rating sent from the tablet cost the same number of
queries for a small organisation as for a large one; the staff rows and the settings form, whose
HTML is cached under a key made of what they show, show an edit at once."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import signing
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.accounts.fields import time_zone_names
from alliance_app.accounts.models import Organization, Role
from alliance_app.feedback.models import Flag, OutcomeEnds, Rating, Rupture
from alliance_app.feedback.views import TABLET_SALT
from tests import factories
from tests.factories import logged_in

pytestmark = pytest.mark.django_db

# Seen again with nothing changed, the rows come from the cache (session, user, data version);
# on a miss they are read: how many match, the page's colleagues, their supervised teams.
STAFF_QUERIES = 3
STAFF_MISS_QUERIES = 6
SETTINGS_QUERIES = 3
# The teams page likewise: on a miss, how many teams there are and the page's 50 with counts.
TEAMS_QUERIES = 3
TEAMS_MISS_QUERIES = 5
SUBMIT_QUERIES = 13
OUTCOME_SUBMIT_QUERIES = 10


@pytest.fixture
def org():
    return factories.organization()


@pytest.fixture
def admin(org):
    return factories.user(org, role=Role.ADMIN, username="ada")


def counted(http, method: str, url: str, data=None, **extra) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(http, method)(url, data or {}, **extra)
    return len(captured), response


def add_colleagues(org: Organization, count: int) -> None:
    team = factories.team(org)
    for _n in range(count):
        member = factories.user(org, role=Role.SUPERVISOR, team=team)
        member.membership.supervised_teams.add(team)
        factories.client(org, member)


@pytest.mark.parametrize("colleagues", [5, 50])
def test_the_staff_page_takes_a_fixed_number_of_queries(org, admin, colleagues):
    add_colleagues(org, colleagues)
    http = logged_in(admin)
    http.get(reverse("staff_list"))  # the first page after logging in renews the session
    queries, response = counted(http, "get", reverse("staff_list"))
    assert response.status_code == 200
    assert len(response.context["rows"]) == min(colleagues + 1, 50)
    assert queries == STAFF_QUERIES
    cache.clear()
    queries, response = counted(http, "get", reverse("staff_list"))
    assert len(response.context["rows"]) == min(colleagues + 1, 50)
    assert queries == STAFF_MISS_QUERIES


@pytest.mark.parametrize("teams", [5, 60])
def test_the_teams_page_takes_a_fixed_number_of_queries(org, admin, teams):
    for number in range(teams):
        team = factories.team(org, f"Team {number}")
        factories.user(org, role=Role.SUPERVISOR, team=team).membership.supervised_teams.add(team)
    http = logged_in(admin)
    http.get(reverse("team_list"))
    queries, response = counted(http, "get", reverse("team_list"))
    assert len(response.context["teams"]) == min(teams, 50)
    assert queries == TEAMS_QUERIES
    cache.clear()
    queries, response = counted(http, "get", reverse("team_list"))
    assert [team.member_count for team in response.context["teams"]] == [1] * min(teams, 50)
    assert queries == TEAMS_MISS_QUERIES


@pytest.mark.parametrize("clients", [5, 50])
def test_the_settings_page_takes_a_fixed_number_of_queries(org, admin, clients):
    for _n in range(clients):
        factories.client(org, admin)
    http = logged_in(admin)
    http.get(reverse("organization_settings"))
    queries, response = counted(http, "get", reverse("organization_settings"))
    assert response.status_code == 200
    assert queries == SETTINGS_QUERIES


def submit_path(session_pk: int, instrument: str) -> str:
    token = signing.dumps([session_pk, instrument, "client", ""], salt=TABLET_SALT)
    return reverse("rate_submit", args=[token])


def rated_before(org, clients: int, sessions: int, instrument: str, items: str):
    """A therapist with `clients` clients, one of them in an episode of `sessions` sessions, all
    but the last rated on `instrument`: their signed-in browser, the episode, its last session."""
    therapist = factories.user(org)
    for _n in range(clients):
        factories.client(org, therapist)
    episode = factories.episode(factories.client(org, therapist))
    rated = [factories.therapy_session(episode, number=n) for n in range(1, sessions + 1)]
    for session in rated[:-1]:
        factories.rate(session, instrument, items)
    http = logged_in(therapist)
    http.get(reverse("caseload"))  # the first page after logging in renews the session
    return http, episode, rated[-1]


@pytest.mark.parametrize(("clients", "sessions"), [(5, 5), (50, 20)])
def test_a_rating_sent_from_the_tablet_takes_a_fixed_number_of_queries(org, clients, sessions):
    http, _episode, last = rated_before(org, clients, sessions, "session-adult", "9.5 9.5 9.5 9.5")
    queries, response = counted(
        http,
        "post",
        submit_path(last.pk, "session-adult"),
        {**dict.fromkeys(factories.SESSION_KEYS, "4.0"), "idempotency_key": str(factories.key())},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201
    # A fall to 16 after a run of 38s: a rupture, flagged once, and stored with the rating.
    assert Rupture.objects.filter(rating__session=last).count() == 1
    assert Flag.objects.filter(rating__session=last, kind="rupture").count() == 1
    assert Rating.objects.filter(session=last).count() == 1
    assert queries == SUBMIT_QUERIES


@pytest.mark.parametrize(("clients", "sessions"), [(5, 5), (50, 20)])
def test_an_outcome_rating_sent_from_the_tablet_takes_a_fixed_number_of_queries(
    org, clients, sessions
):
    http, episode, last = rated_before(org, clients, sessions, "outcome-adult", "6 6 6 6")
    queries, response = counted(
        http,
        "post",
        submit_path(last.pk, "outcome-adult"),
        {
            **dict.fromkeys(factories.ADULT_OUTCOME_KEYS, "2.0"),
            "idempotency_key": str(factories.key()),
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201
    # A fall from 24 to 8: a reliable deterioration, flagged, and the latest end moved.
    assert Flag.objects.filter(rating__session=last, kind="deterioration").exists()
    assert OutcomeEnds.objects.get(episode=episode).latest_number == sessions
    assert queries == OUTCOME_SUBMIT_QUERIES


def test_a_colleague_renamed_shows_on_the_staff_page_at_once(org, admin):
    colleague = factories.user(org, username="tom")
    http = logged_in(admin)
    assert "Tom" in http.get(reverse("staff_list")).content.decode()
    colleague.first_name = "Thomasina"
    colleague.save()
    page = http.get(reverse("staff_list")).content.decode()
    assert "Thomasina" in page


def test_a_team_supervised_shows_on_the_staff_page_at_once(org, admin):
    colleague = factories.user(org, role=Role.SUPERVISOR, username="sue")
    http = logged_in(admin)
    assert "Supervises: Harbour" not in http.get(reverse("staff_list")).content.decode()
    colleague.membership.supervised_teams.add(factories.team(org, "Harbour"))
    assert "Supervises: Harbour" in http.get(reverse("staff_list")).content.decode()


def test_a_setting_changed_shows_on_the_settings_page_at_once(org, admin):
    def shown(page: str, field: str) -> str:
        return re.search(rf'<input[^>]*name="{field}"[^>]*value="([^"]*)"', page).group(1)

    http = logged_in(admin)
    page = http.get(reverse("organization_settings")).content.decode()
    assert (shown(page, "name"), shown(page, "rupture_k")) == (org.name, str(org.rupture_k))
    # Neither the language nor the time zone changes: only the stored values tell the keys apart.
    Organization.objects.filter(pk=org.pk).update(name="Fjord Clinic", rupture_k=org.rupture_k + 1)
    page = http.get(reverse("organization_settings")).content.decode()
    assert (shown(page, "name"), shown(page, "rupture_k")) == (
        "Fjord Clinic",
        str(org.rupture_k + 1),
    )


def test_the_cached_settings_form_carries_each_requests_own_csrf_token(org, admin):
    # The second is served from the cache.
    for http in (logged_in(admin), logged_in(admin)):
        response = http.get(reverse("organization_settings"))
        token = str(response.context["csrf_token"])
        assert f'name="csrfmiddlewaretoken" value="{token}"' in response.content.decode()


def test_the_settings_page_offers_every_time_zone_to_choose_from(org, admin):
    page = logged_in(admin).get(reverse("organization_settings")).content.decode()
    datalist = re.search(r'<datalist id="time-zones">(.*?)</datalist>', page).group(1)
    assert re.findall(r'<option value="([^"]+)">', datalist) == sorted(time_zone_names())


def test_an_invitations_forms_on_the_cached_staff_rows_carry_each_requests_own_token(org, admin):
    from tests.test_staff import invited

    invited(org, "new@example.org")
    for http in (logged_in(admin), logged_in(admin)):
        response = http.get(reverse("staff_list"))
        table = response.content.decode().split('data-testid="staff"', 1)[1]
        token = str(response.context["csrf_token"])
        # Resend and withdraw, each a form with this request's token.
        assert table.count('name="csrfmiddlewaretoken"') == 2
        assert table.count(f'name="csrfmiddlewaretoken" value="{token}"') == 2


def test_an_invitation_that_lapses_shows_as_expired_though_the_rows_are_cached(org, admin):
    from tests.test_staff import invited

    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    lapses = start + timedelta(minutes=5)

    def status(http) -> str:
        table = http.get(reverse("staff_list")).content.decode()
        row = table.split('data-username="new@example.org"', 1)[1].split("</tr>", 1)[0]
        badge = re.search(r'<span class="badge[^"]*">([^<]+)</span>', row)
        return badge.group(1)

    with time_machine.travel(start, tick=False):
        invited(org, "new@example.org", expires_at=lapses)
        http = logged_in(admin)
        assert status(http) == "Invited"
    # Nothing is written in between: the same cached rows, counted from a later time.
    with time_machine.travel(lapses + timedelta(minutes=1), tick=False):
        assert status(http) == "Invitation expired"
