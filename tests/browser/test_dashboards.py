import pytest

from alliance_app.accounts.models import Role
from alliance_app.feedback.models import FlagStatus
from tests import factories
from tests.browser.conftest import log_in
from tests.factories import rate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def drop():
    """Therapist Ines's client D-7 rated the alliance lower today; supervisor Sol oversees her.

    Two sessions, so that the fall is a drop from the last rating and not yet a rupture (that
    needs two earlier ratings to measure the client's usual level against)."""
    org = factories.organization()
    team = factories.team(org, "North")
    ines = factories.user(org, team=team, username="ines")
    sol = factories.user(org, role=Role.SUPERVISOR, username="sol")
    sol.membership.supervised_teams.add(team)
    client = factories.client(org, ines, code="D-7")
    episode = factories.episode(client)
    for number, alliance in enumerate(["9.8 9.8 9.8 9.8", "9.2 9.3 9.3 9.4"], 1):
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
    flag.get_by_label("Note (optional)").fill("Asked about it; the homework felt rushed.")
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


def test_the_supervision_page_draws_its_charts_and_opens_the_v(page, live_server):
    """Supervisor Sol opens therapist Ines's page: both charts draw, and a client's code opens
    that client's chart with the rupture and its repair marked."""
    org = factories.organization()
    team = factories.team(org, "North")
    ines = factories.user(org, team=team, username="ines")
    sol = factories.user(org, role=Role.SUPERVISOR, username="sol")
    sol.membership.supervised_teams.add(team)
    client = factories.client(org, ines, code="V-1")
    episode = factories.episode(client)
    high, dip = "10 10 10 9.5", "10 7 10 9.5"  # 39.5, and 36.5 where the goals item fell
    # five ruptures, each repaired a session later: enough for a profile
    for number, items in enumerate([high, high] + [dip, high] * 5, 1):
        rate(factories.therapy_session(episode, number=number), "session-adult", items)

    log_in(page, "sol", factories.PASSWORD)
    page.goto(f"/supervision/{ines.pk}/?months=all")
    page.locator("#profile-chart[data-chart-ready]").wait_for()
    page.locator("#month-chart[data-chart-ready]").wait_for()
    assert "Bordin" in page.inner_text("main")
    page.get_by_role("link", name="V-1").click()
    chart = page.locator("#client-chart[data-chart-ready]")
    chart.wait_for()
    assert page.url.endswith(f"/clients/{client.pk}/?episode={episode.pk}#chart")
    legend = chart.locator(".legendtext").evaluate_all("texts => texts.map(t => t.textContent)")
    assert {"Rupture", "Repair"} <= set(legend)
    assert page.console_errors == []
