"""Alliance on a tablet in portrait (820 × 1180) and on a phone: the caseload fits, every control
is a finger's width, an unmarked form is met calmly, the client sees their own progress, and the
link page copies its link.

`SCREENSHOTS_DIR=docs/screenshots` keeps the pictures for the README; otherwise they go to a
temporary folder.
"""

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import log_in, tap_line

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET_TALL = {"width": 820, "height": 1180}
TABLET = {"width": 768, "height": 1024}
PHONE = {"width": 390, "height": 844}
FINGER = 44  # px: the smallest touch target (WCAG 2.5.5, Apple's and Google's guides)


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def tall(page):
    page.set_viewport_size(TABLET_TALL)
    return page


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def height(locator) -> float:
    return locator.bounding_box()["height"]


def test_the_caseload_fits_a_tablet_in_portrait(tall, shots):
    call_command("seed_demo", stdout=StringIO())
    log_in(tall, "therapist3", "alliance-demo")
    tall.wait_for_url("**/caseload/")
    for name, viewport in (("portrait-tablet", TABLET_TALL), ("768", TABLET)):
        tall.set_viewport_size(viewport)
        table = tall.get_by_role("table")
        headers = table.get_by_role("columnheader")
        shown = [header for header in headers.all() if header.is_visible()]
        assert [header.inner_text().split("\n")[0] for header in shown] == [
            "Client",
            "Sessions",
            "Outcome",
            "Alliance",
            "Status",
        ], name
        for cell in [*shown, *table.locator("tbody td:visible").all()]:
            box = cell.bounding_box()
            assert box["x"] + box["width"] <= viewport["width"], (name, cell.inner_text())
        assert fits(tall), name
        rows = [height(row) for row in table.locator("tbody tr").all()]
        assert len(rows) >= 8 and max(rows) - min(rows) < 1, (name, rows)
        # Still one table: each row's header cell names the client for a screen reader.
        assert table.get_by_role("rowheader").count() == len(rows)
        tall.screenshot(path=shots / f"caseload-{name}.png", full_page=True)
    tall.set_viewport_size(PHONE)
    tall.screenshot(path=shots / "caseload-phone.png", full_page=True)
    tall.set_viewport_size({"width": 1024, "height": 768})  # wide: a column for each fact
    assert tall.get_by_role("table").get_by_role("columnheader").count() == 8
    assert tall.get_by_role("columnheader", name="Open flags", exact=True).is_visible()


@pytest.fixture
def journey(tall):
    """A client with two earlier outcome ratings and one flag; the therapist logged in."""
    org = factories.organization()
    therapist = factories.user(org, username="tala")
    client = factories.client(org, therapist, code="T-8")
    episode = factories.episode(client)
    factories.rate(factories.therapy_session(episode, number=1), "outcome-adult", "3 4 4 4")
    second = factories.therapy_session(episode, number=2)
    factories.rate(second, "outcome-adult", "5 5 5 5")
    factories.rate(second, "session-adult", "8 8 8 8")  # low alliance
    log_in(tall, "tala", factories.PASSWORD)
    return client


def test_every_control_is_a_fingers_width(tall, journey, shots):
    tall.goto(f"/clients/{journey.pk}/")
    flag = tall.get_by_test_id("flag").first
    for control in (
        flag.get_by_label("Note (optional)"),
        flag.get_by_role("button", name="Acknowledge"),
        flag.get_by_label("What came of it"),
        flag.get_by_role("button", name="Resolve"),
        tall.get_by_role("button", name="Log out"),
    ):
        assert height(control) >= FINGER, control
    assert height(tall.get_by_role("button", name="Log out")) < 2 * FINGER - 20  # one line
    tall.screenshot(path=shots / "client-flags-tablet.png", full_page=True)

    tall.get_by_role("button", name="Start today's session").click()
    tall.get_by_role("button", name="Hand to client: outcome rating").click()
    tall.wait_for_url("**/rate/")
    for track in tall.locator(".vas-track").all():
        tap_line(tall, track, 0.7)
    tall.locator("#rating-submit").click()
    tall.wait_for_url("**/rate/thanks/")
    for name in ("Therapist: unlock the tablet", "See your ratings so far"):
        assert height(tall.get_by_role("link", name=name)) >= FINGER, name
    tall.get_by_role("link", name="Therapist: unlock the tablet").click()
    assert height(tall.get_by_role("link", name="Back to the form")) >= FINGER
    tall.get_by_label("Therapist's password").fill(factories.PASSWORD)
    tall.get_by_role("button", name="Unlock").click()
    tall.wait_for_url("**/ratings/*/")
    assert height(tall.get_by_role("link", name="← Client T-8")) >= FINGER
    intake = tall.get_by_text("Intake 15.0 at session 1.")
    assert height(intake) < 30  # one line
    tall.screenshot(path=shots / "result-tablet.png", full_page=True)


def test_the_client_sees_their_own_progress_in_a_light_page(tall, journey, shots):
    tall.goto(f"/clients/{journey.pk}/")
    tall.get_by_role("button", name="Start today's session").click()
    tall.get_by_role("button", name="Hand to client: outcome rating").click()
    tall.wait_for_url("**/rate/")
    for track in tall.locator(".vas-track").all():
        tap_line(tall, track, 0.8)
    tall.locator("#rating-submit").click()
    tall.wait_for_url("**/rate/thanks/")
    sizes = []

    def weigh(response):
        sizes.append(len(response.body()))

    tall.on("response", weigh)
    tall.get_by_role("link", name="See your ratings so far").click()
    tall.wait_for_url("**/rate/progress/")
    tall.wait_for_load_state("networkidle")
    tall.remove_listener("response", weigh)
    assert 0 < sum(sizes) < 100_000  # the client page's budget, uncompressed
    assert tall.evaluate("document.scripts.length") == 0
    chart = tall.get_by_role("img", name="Your ratings of how things have been going")
    assert chart.locator("circle").count() == 3
    assert chart.bounding_box()["width"] > 600
    assert fits(tall)
    tall.screenshot(path=shots / "client-progress.png", full_page=True)
    tall.set_viewport_size(PHONE)
    assert fits(tall)
    tall.screenshot(path=shots / "client-progress-phone.png", full_page=True)
    tall.set_viewport_size(TABLET_TALL)
    tall.goto("/caseload/")  # still locked: back to the thanks, the rating being given
    assert tall.url.endswith("/rate/thanks/")
    tall.goto("/rate/progress/")
    back = tall.get_by_role("link", name="Back")
    assert height(back) >= 60
    back.click()
    tall.wait_for_url("**/rate/thanks/")
    assert tall.console_errors == []


def test_an_empty_submit_is_met_calmly(tall, journey, shots):
    tall.goto(f"/clients/{journey.pk}/")
    tall.get_by_role("button", name="Start today's session").click()
    tall.get_by_role("button", name="Hand to client: outcome rating").click()
    tall.wait_for_url("**/rate/")
    tall.wait_for_selector("form[data-vas-ready]")
    tall.locator("#rating-submit").click()
    assert tall.locator(".vas.is-missing").count() == 4
    assert tall.locator(".vas.has-error").count() == 0
    assert tall.locator(".vas-error:visible").count() == 0
    status = tall.locator("#rating-status")
    assert status.inner_text() == "Four lines still need a mark."
    frame = tall.locator(".vas").first.evaluate("e => getComputedStyle(e).borderTopStyle")
    assert frame == "dashed"
    tall.screenshot(path=shots / "client-mode-empty-submit-tablet.png", full_page=True)
    for track in tall.locator(".vas-track").all()[:3]:
        tap_line(tall, track, 0.5)
    assert tall.locator(".vas.is-missing").count() == 1
    assert tall.locator(".vas-error:visible").all_inner_texts() == [
        "Please mark the line “All in all”."
    ]
    tall.set_viewport_size(PHONE)
    tall.locator("#rating-submit").click()
    tall.screenshot(path=shots / "client-mode-one-missing-phone.png", full_page=True)


def test_the_link_page_copies_the_whole_link(tall, journey, context, shots):
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    tall.goto(f"/clients/{journey.pk}/")
    tall.get_by_role("button", name="Start today's session").click()
    tall.get_by_text("Telehealth: send a one-time link instead").click()
    tall.get_by_role("button", name="Create link").click()
    tall.wait_for_url("**/links/*/")
    field = tall.get_by_test_id("link-url")
    url = field.input_value()
    assert field.evaluate("e => e.scrollHeight <= e.clientHeight")  # the whole link in view
    assert ".." not in tall.locator("main").inner_text()
    tall.get_by_role("button", name="Copy link").click()
    # The clipboard answers asynchronously: wait for the status to say so.
    expect(tall.get_by_role("status").filter(has_text="Link copied")).to_be_visible()
    assert tall.evaluate("navigator.clipboard.readText()") == url
    assert fits(tall)
    tall.screenshot(path=shots / "link-tablet.png", full_page=True)
    tall.set_viewport_size(PHONE)
    assert fits(tall)
    tall.screenshot(path=shots / "link-phone.png", full_page=True)
