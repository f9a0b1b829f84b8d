"""A forgotten password is reset by e-mail on Django's own views: the same answer for any
address, the message in the user's language, each step audited, and two-factor login kept."""

import pytest
from django.core.mail import EmailMessage
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import translation

from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.views_password_reset import RESETS_PER_ACCOUNT_HOUR
from tests import factories
from tests.smtp import first_url
from tests.test_two_factor import allow_code_again, code_for, confirmed_device

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "copper-meadow-violin-77"


@pytest.fixture
def known(therapist):
    therapist.email = "tom@clinic.example"
    therapist.save()
    return therapist


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def ask(email: str, http: HttpClient | None = None):
    return (http or HttpClient()).post(reverse("password_reset"), {"email": email})


def set_new_password(url: str) -> HttpClient:
    http = HttpClient()
    form = http.get(url, follow=True)
    assert "Choose a new password" in form.text
    saved = http.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert saved.status_code == 302 and saved["Location"] == reverse("password_reset_complete")
    return http


def log_in(username: str, password: str) -> HttpClient:
    http = HttpClient()
    response = http.post(reverse("login"), {"username": username, "password": password})
    assert response.status_code == 302
    return http


def test_the_login_page_offers_a_reset(client):
    assert reverse("password_reset") in client.get(reverse("login")).text


def test_a_reset_keeps_two_factor_login(smtp_server, known):
    device = confirmed_device(known)
    response = ask("TOM@clinic.example")
    assert response["Location"] == reverse("password_reset_done")

    (message,) = smtp_server.messages
    assert message["To"] == "tom@clinic.example"
    url = first_url(message)
    assert url.startswith("http://testserver/account/reset/")
    http = set_new_password(url)
    # The link logged nobody in.
    assert http.get("/caseload/")["Location"].startswith(reverse("login"))

    http = log_in(known.username, NEW_PASSWORD)
    asked = http.get("/caseload/")
    assert asked["Location"].startswith(reverse("two_factor_verify"))
    http.post(reverse("two_factor_verify"), {"token": code_for(device)})
    allow_code_again(device)
    assert http.get("/caseload/").status_code == 200
    assert device.__class__.objects.filter(pk=device.pk, confirmed=True).exists()

    actions = list(
        AuditEntry.objects.filter(actor=known).order_by("pk").values_list("action", flat=True)
    )
    assert actions[:2] == [Action.PASSWORD_RESET_REQUESTED, Action.PASSWORD_RESET_DONE]


def test_a_link_works_once(smtp_server, known):
    ask(known.email)
    url = first_url(smtp_server.messages[0])
    set_new_password(url)
    again = HttpClient().get(url, follow=True)
    assert "This link does not work" in again.text


def test_an_unknown_address_gets_the_same_answer_and_no_mail(smtp_server, known):
    known_answer, unknown_answer = ask(known.email), ask("nobody@clinic.example")
    assert (unknown_answer.status_code, unknown_answer["Location"]) == (
        known_answer.status_code,
        known_answer["Location"],
    )
    assert [m["To"] for m in smtp_server.messages] == ["tom@clinic.example"]
    assert AuditEntry.objects.filter(action=Action.PASSWORD_RESET_REQUESTED).count() == 1


def test_the_message_is_written_in_the_users_language(known, mailoutbox, monkeypatch):
    known.language = "nb"
    known.save()
    languages = []
    send = EmailMessage.send
    monkeypatch.setattr(
        EmailMessage,
        "send",
        lambda message, *args, **kwargs: (
            languages.append(translation.get_language()) or send(message, *args, **kwargs)
        ),
    )
    ask(known.email, HttpClient(HTTP_ACCEPT_LANGUAGE="es"))
    assert languages == ["nb"] and len(mailoutbox) == 1


def test_more_requests_than_the_limit_send_nothing_more(known, mailoutbox):
    answers = {ask(known.email)["Location"] for _n in range(RESETS_PER_ACCOUNT_HOUR + 2)}
    assert answers == {reverse("password_reset_done")}
    assert len(mailoutbox) == RESETS_PER_ACCOUNT_HOUR


def test_the_pages_answer_in_words(client):
    assert "Forgot your password?" in client.get(reverse("password_reset")).text
    assert "Check your e-mail" in client.get(reverse("password_reset_done")).text
    assert "Password saved" in client.get(reverse("password_reset_complete")).text
    bad = client.get(reverse("password_reset_confirm", args=["MQ", "nothing-here"]))
    assert "This link does not work" in bad.text


def test_an_inactive_colleague_gets_no_link(org, mailoutbox):
    gone = factories.user(org, username="gone")
    gone.email, gone.is_active = "gone@clinic.example", False
    gone.save()
    ask("gone@clinic.example")
    assert mailoutbox == []
