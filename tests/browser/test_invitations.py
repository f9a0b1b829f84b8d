"""On a tablet in portrait (820 × 1180): an admin invites a therapist, who sets a password from
the e-mail that reached the local SMTP server and finds an empty caseload; a therapist with an
authenticator resets a forgotten password and is still asked for the code."""

import pytest

from alliance_app.accounts.models import Role, User
from tests import factories
from tests.browser.conftest import log_in
from tests.smtp import first_url
from tests.test_two_factor import code_for, confirmed_device

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET_TALL = {"width": 820, "height": 1180}
NEW_PASSWORD = "amber-quarry-seventeen-5"


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_admin_invites_a_therapist_who_logs_in(page, smtp_server, live_server):
    page.set_viewport_size(TABLET_TALL)
    org = factories.organization("Fjord Clinic")
    north = factories.team(org, "North")
    factories.user(org, role=Role.ADMIN, username="ada")
    log_in(page, "ada", factories.PASSWORD)
    page.wait_for_url("**/")
    page.goto("/staff/invite/")
    assert fits(page)
    page.get_by_label("E-mail address").fill("nina@fjord.example")
    page.get_by_label("First name").fill("Nina")
    page.get_by_label("Last name").fill("Berg")
    page.get_by_label("Therapist").check()
    page.get_by_label("Team", exact=True).select_option(str(north.pk))
    page.get_by_role("button", name="Send the invitation").click()
    page.wait_for_url("**/staff/")
    assert page.get_by_text("nina@fjord.example is invited.").is_visible()

    (message,) = smtp_server.to("nina@fjord.example")
    url = first_url(message)
    assert url.startswith(live_server.url + "/invitation/")
    page.context.clear_cookies()
    page.goto(url)
    assert page.get_by_test_id("invitation").get_by_text("Fjord Clinic").is_visible()
    assert fits(page)
    page.locator("#id_new_password1").fill(NEW_PASSWORD)
    page.locator("#id_new_password2").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set my password and log in").click()
    page.wait_for_url("**/caseload/")
    assert page.get_by_role("link", name="Add your first client").is_visible()

    page.context.clear_cookies()
    log_in(page, "nina@fjord.example", NEW_PASSWORD)
    page.wait_for_url("**/caseload/")
    nina = User.objects.get(username="nina@fjord.example")
    assert nina.is_active and nina.membership.team == north
    assert page.console_errors == []


def test_a_password_reset_keeps_two_factor_login(page, smtp_server, live_server, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    page.set_viewport_size(TABLET_TALL)
    org = factories.organization()
    tom = factories.user(org, username="tom")
    tom.email = "tom@clinic.example"
    tom.save()
    device = confirmed_device(tom)

    page.goto("/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url("**/account/password-reset/")
    assert fits(page)
    page.get_by_label("E-mail address").fill("tom@clinic.example")
    page.get_by_role("button", name="Send the link").click()
    page.wait_for_url("**/account/password-reset/sent/")
    assert page.get_by_role("heading", name="Check your e-mail").is_visible()

    (message,) = smtp_server.to("tom@clinic.example")
    page.goto(first_url(message))
    page.locator("#id_new_password1").fill(NEW_PASSWORD)
    page.locator("#id_new_password2").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    page.wait_for_url("**/account/reset/done/")
    page.get_by_role("link", name="Log in").last.click()

    page.get_by_label("Username").fill("tom")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/account/two-factor/verify/**")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(code_for(device))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/caseload/")
    assert page.console_errors == []
