"""An organisation admin on a tablet in portrait (820 × 1180) raises the alliance cutoff, reads
what it would do to this month's ratings, confirms, and finds it saved."""

import os
from decimal import Decimal
from pathlib import Path

import pytest

from alliance_app.accounts.models import Organization
from alliance_app.audit.models import Action, AuditEntry
from tests.browser.conftest import log_in
from tests.factories import PASSWORD
from tests.test_settings_page import this_months_clinic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET_TALL = {"width": 820, "height": 1180}
PHONE = {"width": 390, "height": 844}


def shot(page, name: str) -> None:
    """A full-page picture for a person to look at, when SCREENSHOT_DIR asks for them."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_admin_previews_a_new_cutoff_and_saves_it(page):
    page.set_viewport_size(TABLET_TALL)
    clinic = this_months_clinic()
    log_in(page, "ada", PASSWORD)
    page.wait_for_url("**/overview/")
    page.locator("summary", has_text="Organisation").click()
    page.get_by_role("link", name="Settings").click()
    page.wait_for_url("**/settings/")
    assert fits(page)
    shot(page, "settings-820")
    page.get_by_label("Alliance cutoff").fill("38")
    page.get_by_role("button", name="Show what this would change").click()

    preview = page.get_by_test_id("settings-preview")
    preview.wait_for()
    assert "3 of this month's 5 session ratings by clients would count as alliance concerns, " in (
        preview.inner_text()
    )
    assert "against 1 now" in preview.inner_text()
    assert Organization.objects.get(pk=clinic.org.pk).alliance_cutoff is None
    assert fits(page)
    shot(page, "settings-preview-820")
    page.set_viewport_size(PHONE)
    assert fits(page)
    shot(page, "settings-preview-390")
    page.set_viewport_size(TABLET_TALL)

    page.get_by_role("button", name="Save these settings").click()
    page.wait_for_url("**/settings/")
    page.get_by_text("The settings are saved.").wait_for()
    assert page.get_by_label("Alliance cutoff").input_value() == "38.0"
    assert Organization.objects.get(pk=clinic.org.pk).alliance_cutoff == Decimal("38.0")
    assert AuditEntry.objects.get(action=Action.SETTINGS_CHANGED).detail == "alliance_cutoff"
    assert page.console_errors == []
