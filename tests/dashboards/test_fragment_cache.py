"""The caseload, the client page and the inbox cache their costly parts under what they show:
a second visit renders nothing again, yet a stored rating, a flag acted on, another viewer's
rights, another language or a later hour always shows at once, and each browser's forms carry
its own CSRF token."""

import datetime
import re

import pytest
import time_machine
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone, translation

from alliance_app.accounts.models import Role
from alliance_app.dashboards import fragments
from alliance_app.dashboards.templatetags.fragments import CSRF_PLACEHOLDER, FragmentNode
from alliance_app.feedback.models import Flag, FlagStatus
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db


class Clinic:
    """North: therapist Ann, supervised by Sue. South: therapist Cal, supervised by Tom. An
    admin. A-1 (Ann's) and C-1 (Cal's) each have two sessions, the second with a low alliance."""

    def __init__(self):
        self.org = org = factories.organization("Fjord Clinic")
        north, south = factories.team(org, "North"), factories.team(org, "South")
        self.ann = factories.user(org, team=north, username="ann")
        self.cal = factories.user(org, team=south, username="cal")
        self.sue = factories.user(org, role=Role.SUPERVISOR, team=north, username="sue")
        self.sue.membership.supervised_teams.add(north)
        self.tom = factories.user(org, role=Role.SUPERVISOR, team=south, username="tom")
        self.tom.membership.supervised_teams.add(south)
        self.admin = factories.user(org, role=Role.ADMIN, username="boss")
        self.a1 = self.history(self.ann, "A-1")
        self.c1 = self.history(self.cal, "C-1")

    def history(self, therapist, code):
        client = factories.client(self.org, therapist, code=code)
        episode = factories.episode(client)
        for number, alliance in enumerate(["10 10 10 10", "8 8 8 8"], 1):
            session = factories.therapy_session(episode, number=number)
            rate(session, "outcome-adult", "5 5 5 5")
            rate(session, "session-adult", alliance)
        return client

    def next_session(self, client, outcome: str):
        episode = client.episodes.get()
        session = factories.therapy_session(episode, number=episode.sessions.count() + 1)
        rate(session, "outcome-adult", outcome)
        return session


@pytest.fixture
def clinic():
    BROWSERS.clear()
    return Clinic()


@pytest.fixture
def builds(monkeypatch):
    """How many cached parts were rendered afresh."""
    counted = []
    build = FragmentNode._build

    def counting(self, context):
        counted.append(self.name.var)
        return build(self, context)

    monkeypatch.setattr(FragmentNode, "_build", counting)
    return counted


BROWSERS: dict[int, HttpClient] = {}


def visit(user, url: str) -> str:
    """The page as `user` sees it, in one browser per user (signing in again would change the
    user's last login, and with it every part that shows the user)."""
    if user.pk not in BROWSERS:
        BROWSERS[user.pk] = factories.logged_in(user)
    response = BROWSERS[user.pk].get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert CSRF_PLACEHOLDER not in html
    return html


def row(html: str, code: str) -> str:
    rows = re.findall(r'<tr data-testid="caseload-row">.+?</tr>', html, flags=re.S)
    [found] = [text for text in rows if f">{code}</a>" in text]
    return found


def inbox_items(html: str) -> list[str]:
    return re.findall(r'<li class="alliance-flag.+?</li>', html, flags=re.S)


def test_a_rating_stored_after_a_visit_shows_on_the_next_caseload(clinic, builds):
    first = row(visit(clinic.ann, reverse("caseload")), "A-1")
    assert "20.0 → 20.0" in first
    assert row(visit(clinic.ann, reverse("caseload")), "A-1") == first
    assert builds == ["caseload"]  # the second visit rendered no table
    clinic.next_session(clinic.a1, "9 9 9 9")
    after = row(visit(clinic.ann, reverse("caseload")), "A-1")
    assert "20.0 → 36.0" in after and "improving" in after
    assert builds == ["caseload", "caseload"]


def test_the_client_page_shows_a_new_session_in_its_table_and_chart(clinic, builds):
    url = reverse("client_detail", args=[clinic.a1.pk])
    first = visit(clinic.ann, url)
    assert visit(clinic.ann, url).count("<tr>") == first.count("<tr>")
    assert builds.count("client-sessions") == 1
    session = clinic.next_session(clinic.a1, "9 9 9 9")
    after = visit(clinic.ann, url)
    assert reverse("rating_result", args=[session.ratings.get().pk]) in after
    assert after.count("<tr>") == first.count("<tr>") + 1
    chart = re.search(r'id="client-chart-data">(.+?)</script>', after).group(1)
    assert chart != re.search(r'id="client-chart-data">(.+?)</script>', first).group(1)


def test_a_flag_acknowledged_then_resolved_changes_the_inbox_at_once(clinic, builds):
    url = reverse("inbox") + "?kind=low_alliance"
    [item] = inbox_items(visit(clinic.sue, url))
    assert 'data-flag-status="open"' in item and "formaction" in item
    visit(clinic.sue, url)
    assert builds == ["inbox"]
    flag = Flag.objects.get(client=clinic.a1, kind="low_alliance")
    http = factories.logged_in(clinic.sue)
    http.post(reverse("flag_action", args=[flag.pk, "acknowledge"]), {"note": "Spoke of it."})
    [item] = inbox_items(visit(clinic.sue, url))
    assert 'data-flag-status="acknowledged"' in item and "Spoke of it." in item
    assert "formaction" not in item
    http.post(reverse("flag_action", args=[flag.pk, "resolve"]), {"note": "Repaired."})
    assert inbox_items(visit(clinic.sue, url)) == []


def test_viewers_with_other_rights_never_get_each_others_part(clinic):
    url = reverse("inbox") + f"?kind=low_alliance&therapist={clinic.ann.pk}"
    # The same flag: Sue may act on it, the admin may only read it.
    [sues] = inbox_items(visit(clinic.sue, url))
    [admins] = inbox_items(visit(clinic.admin, url))
    assert "<form" in sues and "<form" not in admins
    # Supervisors of two teams: each their own team's flags only.
    everyone = reverse("inbox") + "?kind=low_alliance"
    assert [">A-1</a>" in item for item in inbox_items(visit(clinic.sue, everyone))] == [True]
    assert [">C-1</a>" in item for item in inbox_items(visit(clinic.tom, everyone))] == [True]
    # On the client page, only the treating therapist is offered the e-mailed links.
    clinic.org.client_email = True
    clinic.org.save()
    page = reverse("client_detail", args=[clinic.a1.pk])
    emailed = reverse("link_emails", args=[clinic.a1.episodes.get().sessions.first().pk])
    assert emailed in visit(clinic.ann, page)
    assert emailed not in visit(clinic.sue, page)


def test_another_language_gets_its_own_part(clinic):
    url = reverse("inbox") + "?kind=low_alliance"
    [english] = inbox_items(visit(clinic.sue, url))
    assert ">Resolve</button>" in english
    clinic.sue.language = "nb"
    clinic.sue.save()
    [norwegian] = inbox_items(visit(clinic.sue, url))
    assert ">Lukk</button>" in norwegian and ">Resolve</button>" not in norwegian
    caseload = row(visit(clinic.ann, reverse("caseload")), "A-1")
    clinic.ann.language = "es"
    clinic.ann.save()
    assert row(visit(clinic.ann, reverse("caseload")), "A-1") != caseload


def test_each_browser_posts_with_its_own_token_from_the_cached_list(clinic, builds):
    url = reverse("inbox") + "?kind=low_alliance"
    flag = Flag.objects.get(client=clinic.a1, kind="low_alliance")
    browsers, tokens = [], []
    for _browser in range(2):
        http = HttpClient(enforce_csrf_checks=True)
        http.force_login(clinic.sue)
        [item] = inbox_items(http.get(url).content.decode())
        browsers.append(http)
        tokens.append(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', item).group(1))
    assert builds == ["inbox"]  # the second browser's list came from the cache
    assert tokens[0] != tokens[1]
    for http, action, token in zip(browsers, ("acknowledge", "resolve"), tokens, strict=True):
        address = reverse("flag_action", args=[flag.pk, action])
        assert http.post(address, {"note": "Seen."}).status_code == 403
        assert (
            http.post(address, {"csrfmiddlewaretoken": token, "note": "Seen."}).status_code == 302
        )
    flag.refresh_from_db()
    assert flag.status == FlagStatus.RESOLVED


def test_a_flags_age_is_as_of_each_visit(clinic):
    url = reverse("inbox") + "?kind=low_alliance"
    [now] = inbox_items(visit(clinic.sue, url))
    assert "0\xa0minutes ago" in now
    # Five minutes on, the cached list is still there, the flag as it was: only its age differs.
    later = timezone.now() + datetime.timedelta(minutes=5, seconds=10)
    with time_machine.travel(later, tick=False):
        [then] = inbox_items(visit(clinic.sue, url))
    assert "5\xa0minutes ago" in then


def test_a_fingerprint_sees_related_rows_the_language_and_the_time_zone(clinic):
    flags = list(Flag.objects.select_related("client__primary_therapist").order_by("pk"))
    key = fragments.fingerprint(flags, True)
    assert fragments.fingerprint(flags, True) == key
    assert fragments.fingerprint(flags, False) != key
    flags[0].client.primary_therapist.first_name = "Anna"
    assert fragments.fingerprint(flags, True) != key
    flags[0].client.primary_therapist.first_name = "Ann"
    assert fragments.fingerprint(flags, True) == key
    with translation.override("nb"):
        assert fragments.fingerprint(flags, True) != key
    with timezone.override(datetime.timezone(datetime.timedelta(hours=9))):
        assert fragments.fingerprint(flags, True) != key
    with pytest.raises(TypeError):
        fragments.fingerprint(Flag.objects.all())
