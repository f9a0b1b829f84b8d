"""The therapist records a reflection on a rupture from the client page, in Chromium at tablet
size, and sees it there; the form and the page fit a tablet and a phone."""

import os
from pathlib import Path

import pytest

from alliance_app.feedback.models import FlagStatus, Reflection
from tests import factories
from tests.browser.conftest import log_in
from tests.factories import rate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET_TALL = {"width": 820, "height": 1180}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def rupture():
    """Therapist Rosa's client V-3 rated 39.6 twice, then 36.6 with the approach item lowest."""
    org = factories.organization()
    rosa = factories.user(org, username="rosa")
    client = factories.client(org, rosa, code="V-3")
    episode = factories.episode(client)
    for number, items in enumerate(["9.9 9.9 9.9 9.9", "9.9 9.9 9.9 9.9", "9.2 9.2 9.0 9.2"], 1):
        rate(factories.therapy_session(episode, number=number), "session-adult", items)
    return client


FITS = "document.documentElement.scrollWidth <= window.innerWidth"


def fits(page) -> bool:
    return page.evaluate(FITS)


def refits(page, viewport) -> None:
    """Resize, and wait for the page to fit again: the chart redraws itself after a resize."""
    page.set_viewport_size(viewport)
    page.wait_for_function(f"() => {FITS}")


def test_the_therapist_records_a_reflection_and_sees_it_on_the_client_page(page, rupture, shots):
    page.set_viewport_size(TABLET_TALL)
    log_in(page, "rosa", factories.PASSWORD)
    page.goto(f"/clients/{rupture.pk}/")
    flag = page.get_by_test_id("flag").filter(has_text="Rupture")
    assert flag.get_by_test_id("rupture-state").inner_text() == "Waiting for the next sessions"
    flag.get_by_role("link", name="Reflect on this").click()

    page.wait_for_url(f"**/flags/{flag_pk(rupture)}/reflection/**")
    assert page.get_by_label("Tasks").is_checked()  # the part the rupture points to
    assert page.get_by_label("Mark the flag acknowledged").is_checked()
    assert fits(page)
    page.screenshot(path=shots / "reflection-form-tablet.png", full_page=True)
    page.set_viewport_size(PHONE)
    assert fits(page)
    page.screenshot(path=shots / "reflection-form-phone.png", full_page=True)
    page.set_viewport_size(TABLET_TALL)

    page.get_by_label("Withdrawal").check()
    page.get_by_label("Changed the task or the goal").check()
    page.get_by_label("Invited the client to talk about what happened between us").check()
    page.get_by_label("Note (optional)").fill("He agreed to everything and went quiet.")
    page.get_by_label("May be used, without names, for teaching").check()
    page.get_by_role("button", name="Save the reflection").click()

    page.wait_for_url(f"**/clients/{rupture.pk}/")
    assert page.get_by_text("Reflection saved; the flag is acknowledged.").is_visible()
    flag = page.get_by_test_id("flag").filter(has_text="Rupture")
    assert flag.get_attribute("data-flag-status") == "acknowledged"
    summary = flag.get_by_test_id("reflection-summary").inner_text()
    assert "Withdrawal" in summary and "Tasks" in summary
    assert "Changed the task or the goal; Invited the client" in summary
    assert flag.get_by_role("link", name="Edit reflection").is_visible()
    assert fits(page)
    flag.scroll_into_view_if_needed()
    page.screenshot(path=shots / "reflection-client-page-tablet.png", full_page=True)
    refits(page, PHONE)
    page.screenshot(path=shots / "reflection-client-page-phone.png", full_page=True)
    assert page.console_errors == []

    reflection = Reflection.objects.get()
    assert (reflection.marker.code, reflection.dimension, reflection.teaching_consent) == (
        "withdrawal",
        "tasks",
        True,
    )
    assert reflection.flag.status == FlagStatus.ACKNOWLEDGED


def test_a_refused_answer_is_shown_and_nothing_is_stored(page, rupture):
    page.set_viewport_size(TABLET_TALL)
    log_in(page, "rosa", factories.PASSWORD)
    page.goto(f"/flags/{flag_pk(rupture)}/reflection/")
    page.get_by_label("Confrontation").check()
    page.get_by_label("Nothing yet").check()
    page.get_by_label("Validated the client's reaction").check()
    page.get_by_role("button", name="Save the reflection").click()
    assert page.get_by_text("Nothing was saved.").is_visible()
    assert page.get_by_text("cannot be ticked together with something you did").is_visible()
    assert page.get_by_label("Confrontation").is_checked()  # the answers are kept
    assert not Reflection.objects.exists()


def flag_pk(client) -> int:
    return client.flags.get(kind="rupture").pk
