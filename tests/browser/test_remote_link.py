from datetime import timedelta

import pytest
from django.utils import timezone

from alliance_app.feedback.links import remote_link_create
from alliance_app.feedback.models import Rating, RemoteLink
from tests import factories
from tests.browser.conftest import tap_line

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def token():
    org = factories.organization()
    therapist = factories.user(org)
    session = factories.therapy_session(factories.episode(factories.client(org, therapist)))
    return remote_link_create(session=session, scale="session", created_by=therapist).token


def fill_and_send(page) -> None:
    """Mark the lines, then decline the tension question that follows the session scale."""
    for track in page.locator(".vas-track").all():
        tap_line(page, track, 0.9)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="I’d rather not answer").click()


def test_a_remote_link_works_once_on_a_phone(browser, live_server, token):
    phone = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, has_touch=True
    )
    page = phone.new_page()
    page.goto(f"/r/{token}/")
    assert page.get_by_role("heading", name="How this session went").is_visible()
    fill_and_send(page)
    page.wait_for_url("**/r-done/**")
    assert page.get_by_text("Thank you, your answers arrived").is_visible()
    assert Rating.objects.get().channel == "remote"

    page.goto(f"/r/{token}/")
    assert page.get_by_text("This link has already been used").is_visible()
    assert page.locator(".vas-track").count() == 0
    assert Rating.objects.count() == 1
    phone.close()


def test_an_expired_link_says_so_and_shows_no_form(page, token):
    RemoteLink.objects.update(
        created_at=timezone.now() - timedelta(days=4),
        expires_at=timezone.now() - timedelta(hours=1),
    )
    page.goto(f"/r/{token}/")
    assert page.get_by_text("This link has expired").is_visible()
    assert page.locator(".vas-track").count() == 0


def test_a_link_used_on_another_device_meanwhile_is_refused_on_submit(page, token, client):
    page.goto(f"/r/{token}/")
    from django.urls import reverse

    client.post(
        reverse("remote_rate", args=[token]),
        {
            "relationship": "9",
            "goals": "9",
            "approach": "9",
            "overall": "9",
            "idempotency_key": str(factories.key()),
        },
    )
    fill_and_send(page)
    page.locator("#rating-status").get_by_text("already been used").wait_for()
    assert Rating.objects.count() == 1
