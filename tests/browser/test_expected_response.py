"""The expected-response band in a browser on a tall tablet: the admin's validation page and a
client chart with the band, drawn without errors and fitting the screen."""

import pytest

from alliance_app.accounts.models import Role
from alliance_app.feedback import expected
from alliance_app.feedback.models import FitStatus
from tests import factories
from tests.browser.conftest import log_in
from tests.factories import rate
from tests.test_expected_response import closed_history

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TALL_TABLET = {"width": 820, "height": 1180}
# A client who started at 16.0 and has not improved: below the line by their fourth session.
SLIPPING = [
    ("4 4 4 4", "9.6 9.5 9.6 9.5"),
    ("4.4 4.3 4.3 4.2", "9.5 9.4 9.5 9.4"),
    ("4 3.9 3.9 3.8", "9.2 9.0 9.1 9.1"),
    ("3.8 3.7 3.7 3.6", "9.0 8.9 9.0 8.8"),
]


def fitted_clinic():
    """A clinic whose band is fitted on 160 closed episodes, with an admin, and one client of
    therapist Noor slipping below the not-on-track line."""
    org = factories.organization("Riverside Clinic")
    admin = factories.user(org, role=Role.ADMIN, username="ada-band")
    noor = factories.user(org, username="noor")
    closed_history(org, noor, 160, sessions=6, seed=11)
    job = expected.fit_start(org, by=admin)
    job.refresh_from_db()
    assert job.status == FitStatus.DONE, job.message
    org.refresh_from_db()  # the band in use, for the ratings below to be judged by
    client = factories.client(org, noor, code="C-3107")
    episode = factories.episode(client)
    for number, (outcome, alliance) in enumerate(SLIPPING, 1):
        session = factories.therapy_session(episode, number=number)
        rate(session, "outcome-adult", outcome)
        rate(session, "session-adult", alliance)
    return client


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_validation_page_and_the_band_on_a_client_chart(page):
    client = fitted_clinic()
    page.set_viewport_size(TALL_TABLET)
    log_in(page, "ada-band", factories.PASSWORD)
    page.locator("summary", has_text="Teaching").click()
    page.get_by_role("link", name="Expected response").click()
    page.locator("#calibration-chart[data-chart-ready]").wait_for()
    assert page.get_by_test_id("band-in-use").is_visible()
    assert page.get_by_test_id("signal").locator("tbody tr").count() == 3
    assert fits(page)

    page.context.clear_cookies()
    log_in(page, "noor", factories.PASSWORD)
    page.goto(f"/clients/{client.pk}/")
    chart = page.locator("#client-chart[data-chart-ready]")
    chart.wait_for()
    assert chart.get_by_text("Expected course (median)").is_visible()
    assert chart.get_by_text("Not-on-track line").is_visible()
    assert page.get_by_test_id("band-note").is_visible()
    assert page.get_by_test_id("flag").filter(has_text="Not on track").count() == 1
    assert fits(page)
    assert page.console_errors == []
