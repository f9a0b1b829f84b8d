"""Screenshots of client mode, the therapist's result and the dashboards.

`make screenshots` runs this with SCREENSHOTS_DIR=docs/screenshots for the README; in the normal
suite the pictures go to a temporary folder and the test checks every page fits its screen.
"""

import os
from datetime import date, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from alliance_app.accounts.models import User
from alliance_app.feedback.models import Flag, Rupture
from alliance_app.research.models import Training, TrainingKind
from tests import factories
from tests.browser.conftest import log_in, tap_line
from tests.browser.test_expected_response import fitted_clinic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {
    "portrait": (768, 1024),
    "landscape": (1024, 768),
    "tablet-tall": (820, 1180),
    "phone": (390, 844),
}


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("age_band", ["adult", "child"])
def test_client_mode_at_every_size(page, shots, age_band):
    org = factories.organization()
    therapist = factories.user(org, username=f"shots-{age_band}")
    client = factories.client(org, therapist, age_band=age_band)
    log_in(page, therapist.username, factories.PASSWORD)
    page.goto(f"/clients/{client.pk}/")
    page.get_by_role("button", name="Start today's session").click()
    scale = "outcome" if age_band == "adult" else "session"
    page.get_by_role("button", name=f"Hand to client: {scale} rating").click()
    page.wait_for_url("**/rate/")
    tracks = page.locator(".vas-track").all()
    for track, fraction in zip(tracks[:2], (0.35, 0.8), strict=True):
        tap_line(page, track, fraction)
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        assert fits(page), name
        page.screenshot(path=shots / f"client-mode-{age_band}-{name}.png")
    if age_band == "adult":
        page.set_viewport_size({"width": 768, "height": 1024})
        page.locator("#rating-submit").click()
        page.screenshot(path=shots / "client-mode-unmarked-line.png")


def test_the_therapists_result(page, shots):
    org = factories.organization()
    therapist = factories.user(org, username="shots-result")
    client = factories.client(org, therapist, code="C-2041")
    episode = factories.episode(client)
    first, second, third = (factories.therapy_session(episode, number=n) for n in (1, 2, 3))
    factories.rate(first, "session-adult", "9.8 9.7 9.6 9.7")
    factories.rate(second, "session-adult", "9.6 9.5 9.5 9.6")
    rating = factories.rate(third, "session-adult", "9.0 9.1 8.6 8.9").rating
    log_in(page, therapist.username, factories.PASSWORD)
    page.goto(f"/ratings/{rating.pk}/")
    assert page.get_by_test_id("flag").count() == 2  # low alliance and a drop
    assert fits(page)
    page.screenshot(path=shots / "therapist-result.png", full_page=True)


def test_the_dashboards_on_demo_data(browser, live_server, shots):
    call_command("seed_demo", stdout=StringIO())
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1024, "height": 768})
    page = context.new_page()
    log_in(page, "therapist3", "alliance-demo")
    assert fits(page)
    page.screenshot(path=shots / "caseload.png", full_page=True)
    flagged = Flag.objects.filter(
        kind="alliance_drop", status="open", client__primary_therapist__username="therapist3"
    ).first()
    page.goto(f"/clients/{flagged.client_id}/")
    page.locator("#client-chart[data-chart-ready]").wait_for()
    page.screenshot(path=shots / "client-chart.png", full_page=True)
    # therapist1's client near 39.5 whose rupture at 36.5 was repaired at the next session.
    context.clear_cookies()
    log_in(page, "therapist1", "alliance-demo")
    repaired = Rupture.objects.get(episode__client__code="C-1001", status="repaired")
    page.goto(f"/clients/{repaired.episode.client_id}/")
    page.locator("#client-chart[data-chart-ready]").wait_for()
    assert page.get_by_text(f"Repaired at session {repaired.repaired_number}").first.is_visible()
    page.locator("#client-chart").screenshot(path=shots / "rupture-chart.png")
    context.clear_cookies()
    log_in(page, "supervisor1", "alliance-demo")
    page.screenshot(path=shots / "supervisor-inbox.png", full_page=True)
    page.goto("/team/")
    page.locator("#monthly-chart[data-chart-ready]").wait_for()
    page.screenshot(path=shots / "team-statistics.png", full_page=True)
    page.goto(f"/supervision/{repaired.therapist_id}/")
    page.locator("[data-chart-ready]").first.wait_for()
    assert fits(page)
    page.screenshot(path=shots / "supervision.png", full_page=True)
    # A workshop three months ago for two of the demo therapists, and its evaluation.
    organization = repaired.episode.client.organization
    workshop = Training.objects.create(
        organization=organization,
        title="Noticing withdrawal ruptures",
        kind=TrainingKind.WORKSHOP,
        date=date.today() - timedelta(days=92),
    )
    workshop.attendees.set(User.objects.filter(username__in=["therapist1", "therapist2"]))
    page.goto(f"/trainings/{workshop.pk}/evaluation/")
    page.locator("[data-chart-ready]").first.wait_for()
    assert fits(page)
    page.screenshot(path=shots / "training-evaluation.png", full_page=True)
    context.close()


def test_client_mode_in_norwegian(page, shots):
    """The README's picture of a client who reads Norwegian, handed the tablet by a therapist
    who reads English: the form and its scale in the client's language."""
    org = factories.organization()
    therapist = factories.user(org, username="shots-nb")
    client = factories.client(org, therapist, code="N-12")
    client.language = "nb"
    client.save()
    log_in(page, therapist.username, factories.PASSWORD)
    page.goto(f"/clients/{client.pk}/")
    page.get_by_role("button", name="Start today's session").click()
    page.get_by_role("button", name="Hand to client: outcome rating").click()
    page.wait_for_url("**/rate/")
    page.set_viewport_size({"width": 820, "height": 1180})
    assert page.get_by_role("heading", name="Hvordan det har gått").is_visible()
    tracks = page.locator(".vas-track").all()
    for track, fraction in zip(tracks[:2], (0.4, 0.75), strict=True):
        tap_line(page, track, fraction)
    assert fits(page)
    page.screenshot(path=shots / "client-mode-norwegian.png")


def test_the_expected_response_band(browser, live_server, shots):
    """The README's pictures of the band: a client slipping below the not-on-track line on their
    chart, and the admin's validation page, on a clinic with a band fitted on its own episodes."""
    client = fitted_clinic()
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1024, "height": 768})
    page = context.new_page()
    log_in(page, "noor", factories.PASSWORD)
    page.goto(f"/clients/{client.pk}/")
    page.locator("#client-chart[data-chart-ready]").wait_for()
    assert fits(page)
    page.locator("#chart").screenshot(path=shots / "expected-band-chart.png")
    context.clear_cookies()
    log_in(page, "ada-band", factories.PASSWORD)
    page.goto("/expected-response/")
    page.locator("#calibration-chart[data-chart-ready]").wait_for()
    assert fits(page)
    page.screenshot(path=shots / "expected-response.png", full_page=True)
    context.close()


def test_the_admins_pages_on_demo_data(browser, live_server, shots):
    """The README's pictures of running a clinic: the staff page and the settings preview, on a
    tablet in portrait."""
    call_command("seed_demo", stdout=StringIO())
    context = browser.new_context(base_url=live_server.url, viewport={"width": 820, "height": 1180})
    page = context.new_page()
    log_in(page, "admin", "alliance-demo")
    page.goto("/staff/")
    assert fits(page)
    page.screenshot(path=shots / "staff.png", full_page=True)
    page.goto("/settings/")
    page.get_by_label("Alliance cutoff").fill("38")
    page.get_by_role("button", name="Show what this would change").click()
    page.get_by_test_id("settings-preview").wait_for()
    assert fits(page)
    page.get_by_test_id("settings-preview").scroll_into_view_if_needed()
    page.screenshot(path=shots / "settings-preview.png")
    context.close()
