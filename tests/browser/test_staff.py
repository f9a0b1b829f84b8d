"""An organisation admin on a tablet in portrait (820 × 1180) finds the staff page in the
Organisation menu, moves a colleague to another team, and is told which clients to hand over
before the colleague can be deactivated."""

import pytest

from alliance_app.accounts.models import Membership, Role
from alliance_app.audit.models import Action, AuditEntry
from tests import factories
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET_TALL = {"width": 820, "height": 1180}


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_admin_moves_a_colleague_and_is_told_whose_clients_to_hand_over(page):
    page.set_viewport_size(TABLET_TALL)
    org = factories.organization()
    north, south = factories.team(org, "North"), factories.team(org, "South")
    factories.user(org, role=Role.ADMIN, username="ada")
    tom = factories.user(org, team=north, username="tom")
    client = factories.client(org, tom, code="T-7")

    log_in(page, "ada", factories.PASSWORD)
    page.get_by_text("Organisation", exact=True).click()
    page.get_by_role("link", name="Staff").click()
    page.wait_for_url("**/staff/")
    row = page.get_by_test_id("staff-row").filter(has_text="Tom")
    assert row.get_by_test_id("staff-clients").inner_text() == "1"
    assert fits(page)

    row.get_by_role("link", name="Tom").click()
    page.wait_for_url(f"**/staff/{tom.pk}/")
    page.get_by_label("Team", exact=True).select_option(label="South")
    page.get_by_role("button", name="Save the changes").click()
    page.wait_for_url("**/staff/")
    assert page.get_by_text("Tom's details are saved.").is_visible()
    assert "Team: South" in page.get_by_test_id("staff-row").filter(has_text="Tom").inner_text()
    assert Membership.objects.get(user=tom).team == south

    page.get_by_test_id("staff-row").filter(has_text="Tom").get_by_role("link").click()
    page.get_by_role("button", name="Deactivate").click()
    holding = page.get_by_test_id("staff-holding")
    assert "cannot be deactivated yet" in holding.inner_text()
    hand_over = holding.get_by_role("link", name="Hand T-7 over")
    assert hand_over.get_attribute("href") == f"/clients/{client.pk}/hand-over/"
    assert fits(page)
    tom.refresh_from_db()
    assert tom.is_active
    assert AuditEntry.objects.filter(action=Action.STAFF_CHANGED).count() == 1
    assert not AuditEntry.objects.filter(action=Action.STAFF_DEACTIVATED).exists()
    assert page.console_errors == []


def test_an_admin_of_many_teams_pages_through_them_fifty_at_a_time(page):
    page.set_viewport_size(TABLET_TALL)
    org = factories.organization()
    for number in range(1, 53):
        factories.team(org, f"Team {number:02d}")
    factories.user(org, role=Role.ADMIN, username="ada")

    log_in(page, "ada", factories.PASSWORD)
    page.wait_for_url("**/overview/")
    page.goto("/teams/")
    assert page.get_by_test_id("team-row").count() == 50
    assert fits(page)
    page.get_by_role("link", name="Next").click()
    page.wait_for_url("**/teams/?page=2")
    rows = page.get_by_test_id("team-row")
    assert [rows.nth(n).locator("th").inner_text().split("\n")[0] for n in range(2)] == [
        "Team 51",
        "Team 52",
    ]
    assert page.get_by_text("2 / 2").is_visible()
    assert fits(page)
    assert page.console_errors == []
