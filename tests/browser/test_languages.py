"""The journey in Norwegian and in Spanish at 820×1180: the therapist switches the interface,
walks the caseload and the client's page, hands the tablet to a client who reads the other
language, takes it back to the result, and a supervisor reads the flag in the inbox."""

import pytest

from alliance_app.accounts.models import Role
from tests import factories
from tests.browser.conftest import log_in, tap_line
from tests.extraction import shipped_translation as translated

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TALL_TABLET = {"width": 820, "height": 1180}
NAMES = {"es": "Español", "nb": "Norsk bokmål"}
# The session scale's title in each language (fixtures/instruments/session-adult*.json).
SESSION_TITLE = {"es": "Cómo fue esta sesión", "nb": "Hvordan denne timen gikk"}


def html_lang(page) -> str:
    return page.evaluate("document.documentElement.lang")


def choose_language(page, language: str) -> None:
    page.get_by_test_id("language").click()
    page.wait_for_url("**/account/language/**")
    page.get_by_label(NAMES[language]).check()
    page.locator("main form button[type=submit]").click()


@pytest.mark.parametrize(("staff", "client_language"), [("nb", "es"), ("es", "nb")])
def test_the_journey_in_the_staffs_language_and_client_mode_in_the_clients(
    browser, live_server, page, staff, client_language
):
    org = factories.organization()
    org.ask_tension = False  # the question after the scale has a test of its own
    org.save()
    team = factories.team(org, "North")
    therapist = factories.user(org, team=team, username=f"tove-{staff}")
    supervisor = factories.user(org, role=Role.SUPERVISOR, username=f"sofia-{staff}")
    supervisor.membership.supervised_teams.add(team)
    client = factories.client(org, therapist, code="N-7")
    client.language = client_language
    client.save()
    page.set_viewport_size(TALL_TABLET)

    log_in(page, therapist.username, factories.PASSWORD)
    page.wait_for_url("**/caseload/")
    choose_language(page, staff)
    page.wait_for_url("**/caseload/")
    assert html_lang(page) == staff
    assert page.get_by_role("heading", name=translated(staff, "Caseload")).is_visible()
    assert page.get_by_role("button", name=translated(staff, "Log out")).is_visible()

    page.get_by_role("link", name="N-7").click()
    page.get_by_role("button", name=translated(staff, "Start today's session")).click()
    hand = translated(staff, "Hand to client: session rating")
    page.get_by_role("button", name=hand).click()
    page.wait_for_url("**/rate/")
    # The client's language, whatever the therapist's.
    assert html_lang(page) == client_language
    assert page.get_by_role("heading", name=SESSION_TITLE[client_language]).is_visible()
    for track in page.locator(".vas-track").all():
        tap_line(page, track, 0.6)
    page.locator("#rating-submit").click()
    page.wait_for_url("**/rate/thanks/")
    thanks = translated(client_language, "Thank you — please hand the tablet back")
    assert page.get_by_text(thanks).is_visible()

    page.get_by_role(
        "link", name=translated(client_language, "Therapist: unlock the tablet")
    ).click()
    page.wait_for_url("**/rate/unlock/")
    assert html_lang(page) == staff
    page.locator("input[type=password]").fill(factories.PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/ratings/*/")
    # The therapist's language again, the client's answers and flag explained in it.
    assert html_lang(page) == staff
    flag = page.get_by_test_id("flag").first
    assert translated(staff, "Low alliance") in flag.inner_text()
    low = translated(
        staff, "Session rating %(total)s, below %(cutoff)s: ask what could be done differently."
    )
    assert low.split("%(total)s")[0] in flag.inner_text()

    inbox = browser.new_context(base_url=live_server.url, viewport=TALL_TABLET, has_touch=True)
    try:
        other = inbox.new_page()
        log_in(other, supervisor.username, factories.PASSWORD)
        choose_language(other, staff)
        other.goto("/inbox/")
        assert html_lang(other) == staff
        assert other.get_by_role("heading", name=translated(staff, "Flag inbox")).is_visible()
        assert low.split("%(total)s")[0] in other.locator("main").inner_text()
    finally:
        inbox.close()
    assert page.console_errors == []
