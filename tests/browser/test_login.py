import pytest

from tests import factories
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_therapist_logs_in_on_a_tablet_and_sees_their_role(page):
    org = factories.organization(name="Harbour Clinic")
    therapist = factories.user(org, username="robin")

    log_in(page, therapist.username, factories.PASSWORD)

    assert page.get_by_test_id("organization").inner_text() == "Harbour Clinic"
    assert page.get_by_test_id("role").inner_text() == "Therapist"
    # Bootstrap came from our static files: the styled button has Bootstrap's padding.
    log_out = page.get_by_role("button", name="Log out")
    padding = log_out.evaluate("el => getComputedStyle(el).paddingLeft")
    assert padding != "0px"
    assert page.console_errors == []


def test_a_wrong_password_keeps_the_user_out(page):
    org = factories.organization()
    factories.user(org, username="kim")
    log_in(page, "kim", "not-the-password")
    assert page.get_by_text("Please enter a correct username and password").is_visible()
    assert page.url.endswith("/login/")
