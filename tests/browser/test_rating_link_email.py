"""A therapist on a tablet in portrait (820 × 1180) keeps their client's e-mail address, e-mails
today's session rating link, and the client opens it from the message that arrived at the local
SMTP server."""

import pytest

from alliance_app.feedback.models import LinkEmailStatus, RatingLinkEmail
from tests import factories
from tests.browser.conftest import log_in
from tests.smtp import first_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET_TALL = {"width": 820, "height": 1180}
ADDRESS = "kim.client@example.org"


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_therapist_emails_the_link_and_the_client_opens_the_form(page, smtp_server, browser):
    page.set_viewport_size(TABLET_TALL)
    org = factories.organization()
    org.client_email = True
    org.save()
    therapist = factories.user(org, username="nora")
    client = factories.client(org, therapist, code="K-7")
    log_in(page, "nora", factories.PASSWORD)
    page.wait_for_url("**/caseload/")
    page.goto(f"/clients/{client.pk}/")
    page.get_by_role("button", name="Start today's session").click()

    page.get_by_test_id("client-contact").click()
    page.wait_for_url(f"**/clients/{client.pk}/contact/")
    assert fits(page)
    page.get_by_label("E-mail address").fill(ADDRESS)
    page.get_by_role("button", name="Save the address").click()
    assert page.get_by_text("The e-mail address is saved.").is_visible()

    page.get_by_role("link", name="Client K-7").click()
    page.get_by_text("Telehealth: send a one-time link instead").click()
    page.get_by_test_id("email-link").click()
    page.wait_for_url("**/link-emails/")
    assert fits(page)
    assert page.get_by_test_id("address").get_by_text(ADDRESS).is_visible()
    page.get_by_label("Scale").select_option("session")
    page.get_by_label("Now").check()
    page.get_by_test_id("email-send").click()
    assert page.get_by_text("The link is e-mailed to the client.").is_visible()
    assert page.get_by_test_id("email").get_attribute("data-status") == "sent"
    assert RatingLinkEmail.objects.get().status == LinkEmailStatus.SENT

    [message] = smtp_server.to(ADDRESS)
    phone = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    form = phone.new_page()
    form.goto(first_url(message))
    assert form.get_by_role("heading", name="How this session went").is_visible()
    assert form.locator(".vas-track").count() == 4
    phone.close()
    assert page.console_errors == []
