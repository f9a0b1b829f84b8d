import pytest

from alliance_app.accounts.models import Role
from alliance_app.feedback.models import FlagStatus
from tests import factories
from tests.browser.conftest import log_in
from tests.factories import rate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def drop():
    """Therapist Ines's client D-7 rated the alliance lower today; supervisor Sol oversees her."""
    org = factories.organization()
    team = factories.team(org, "North")
    ines = factories.user(org, team=team, username="ines")
    sol = factories.user(org, role=Role.SUPERVISOR, username="sol")
    sol.membership.supervised_teams.add(team)
    client = factories.client(org, ines, code="D-7")
    episode = factories.episode(client)
    for number, alliance in enumerate(["9.8 9.8 9.8 9.8", "9.7 9.8 9.8 9.8", "9.2 9.3 9.3 9.4"], 1):
        session = factories.therapy_session(episode, number=number)
        rate(session, "outcome-adult", f"{4 + number} 5 5 5")
        rate(session, "session-adult", alliance)
    return client


def test_the_client_chart_draws_without_errors(page, drop):
    log_in(page, "ines", factories.PASSWORD)
    page.goto(f"/clients/{drop.pk}/")
    chart = page.locator("#client-chart[data-chart-ready]")
    chart.wait_for()
    assert chart.locator(".main-svg").count() >= 1
    assert chart.locator(".scatterlayer .trace").count() >= 3  # outcome, session, flag markers
    assert page.console_errors == []


def test_a_flag_acknowledged_by_the_therapist_shows_so_in_the_supervisors_inbox(
    browser, live_server, page, drop
):
    log_in(page, "ines", factories.PASSWORD)
    page.goto("/")
    assert page.url.endswith("/caseload/")
    page.get_by_role("link", name="D-7").click()
    flag = page.get_by_test_id("flag").filter(has_text="Alliance drop")
    flag.get_by_placeholder("Note (optional)").fill("Asked about it; the homework felt rushed.")
    flag.get_by_role("button", name="Acknowledge").click()
    assert page.get_by_text("Flag acknowledged.").is_visible()
    assert drop.flags.get(kind="alliance_drop").status == FlagStatus.ACKNOWLEDGED

    supervisor = browser.new_context(
        base_url=live_server.url, viewport={"width": 1024, "height": 768}
    )
    inbox = supervisor.new_page()
    log_in(inbox, "sol", factories.PASSWORD)
    assert inbox.url.endswith("/inbox/")
    item = inbox.get_by_test_id("inbox-flag").filter(has_text="Alliance drop")
    assert item.get_attribute("data-flag-status") == "acknowledged"
    assert "the homework felt rushed" in item.inner_text()
    supervisor.close()
