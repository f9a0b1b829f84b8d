"""Where e-mail goes: EMAIL_URL, EMAIL_FROM and SITE_URL from the environment, failing loudly."""

import json
import os
import subprocess
import sys

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.utils import translation

from alliance_app.accounts.mail import absolute_url, send_to_address, send_to_user
from alliance_app.lib.email_url import parse_email_url
from tests.smtp import first_url

SMTP = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE = "django.core.mail.backends.console.EmailBackend"
NAMES = [
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "DEFAULT_FROM_EMAIL",
    "SITE_URL",
    "INVITATION_DAYS",
]


def email_settings(**env) -> dict:
    """The e-mail settings a fresh process configures from `env` (after Django's defaults)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "EMAIL_URL", "EMAIL_FROM", "SITE_URL", "DJANGO_SETTINGS_MODULE")
    }
    environment.update(env, DJANGO_SETTINGS_MODULE="alliance_app.settings")
    script = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {NAMES!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise ImproperlyConfigured(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp+tls://alerts%40clinic.example:p%40ss%2Fw0rd@mail.example.org:587",
            {
                "EMAIL_HOST": "mail.example.org",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "alerts@clinic.example",
                "EMAIL_HOST_PASSWORD": "p@ss/w0rd",
                "EMAIL_USE_TLS": True,
                "EMAIL_USE_SSL": False,
            },
        ),
        (
            "smtp+ssl://user:secret@mail.example.org",
            {"EMAIL_PORT": 465, "EMAIL_USE_TLS": False, "EMAIL_USE_SSL": True},
        ),
        (
            "smtp://localhost:25",
            {"EMAIL_HOST": "localhost", "EMAIL_HOST_USER": "", "EMAIL_USE_TLS": False},
        ),
        ("smtp+tls://relay.example", {"EMAIL_PORT": 587, "EMAIL_HOST": "relay.example"}),
        ("smtp://relay.example:2525", {"EMAIL_PORT": 2525, "EMAIL_USE_SSL": False}),
    ],
)
def test_an_smtp_url_gives_host_port_credentials_and_encryption(url, expected):
    parsed = parse_email_url(url)
    assert parsed["EMAIL_BACKEND"] == SMTP
    assert {name: parsed[name] for name in expected} == expected


def test_console_prints_messages():
    assert parse_email_url("console:") == {"EMAIL_BACKEND": CONSOLE}


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("smtps://mail.example.org", "must start with smtp://"),
        ("mail.example.org:587", "must start with smtp://"),
        ("smtp+tls://mail.example.org:tls", "port"),
        ("smtp+tls://:587", "host"),
    ],
)
def test_a_mistyped_url_stops_the_start_in_words(url, complaint):
    with pytest.raises(ImproperlyConfigured, match=complaint):
        parse_email_url(url)


def test_the_environment_configures_django():
    configured = email_settings(
        SECRET_KEY="x" * 50,
        EMAIL_URL="smtp+tls://me:pw@mail.example.org:587",
        EMAIL_FROM="Clinic North <feedback@north.example>",
        SITE_URL="https://alliance.north.example/",
    )
    assert configured["EMAIL_BACKEND"] == SMTP
    assert (configured["EMAIL_HOST"], configured["EMAIL_PORT"]) == ("mail.example.org", 587)
    assert configured["EMAIL_USE_TLS"] is True
    assert configured["DEFAULT_FROM_EMAIL"] == "Clinic North <feedback@north.example>"
    assert configured["SITE_URL"] == "https://alliance.north.example"
    assert configured["INVITATION_DAYS"] == 7


def test_without_email_url_debug_prints_and_production_uses_the_local_relay():
    debugging = email_settings(DEBUG="true")
    assert debugging["EMAIL_BACKEND"] == CONSOLE
    assert debugging["DEFAULT_FROM_EMAIL"] == "Alliance <alliance@localhost>"
    assert debugging["SITE_URL"] == "http://127.0.0.1:8000"
    production = email_settings(SECRET_KEY="x" * 50)
    assert production["EMAIL_BACKEND"] == SMTP
    assert (production["EMAIL_HOST"], production["EMAIL_PORT"]) == ("localhost", 25)


def test_a_bad_email_url_or_site_url_stops_the_start():
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL must start with"):
        email_settings(DEBUG="true", EMAIL_URL="smtps://mail.example.org")
    with pytest.raises(ImproperlyConfigured, match="SITE_URL must start with"):
        email_settings(DEBUG="true", SITE_URL="alliance.example")


@pytest.fixture
def mail_templates(settings):
    """Two templates that say which language they were rendered in."""
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {
                            "subject.txt": "{% get_current_language as lang %}{{ lang }}:\nTest",
                            "body.txt": "{% autoescape off %}Go to {{ url }}{% endautoescape %}",
                        },
                    )
                ],
                "builtins": ["django.templatetags.i18n"],
            },
        }
    ]


def test_links_without_a_request_start_from_site_url(settings, rf):
    settings.SITE_URL = "https://alliance.example"
    assert absolute_url("/r/abc/") == "https://alliance.example/r/abc/"
    settings.ALLOWED_HOSTS = ["alliance.clinic.example"]
    request = rf.get("/", HTTP_HOST="alliance.clinic.example:8443", secure=True)
    assert absolute_url("/r/abc/", request) == "https://alliance.clinic.example:8443/r/abc/"


@pytest.mark.django_db
def test_a_message_reaches_the_smtp_server_in_the_recipients_language(
    smtp_server, therapist, mail_templates
):
    therapist.email, therapist.language = "tom@clinic.example", "nb"
    therapist.save()
    with translation.override("es"):
        sent = send_to_user(
            therapist,
            subject_template="subject.txt",
            body_template="body.txt",
            context={"url": "http://127.0.0.1:8000/somewhere/?a=1&b=2"},
        )
    assert sent == 1
    (message,) = smtp_server.messages
    assert message["To"] == "tom@clinic.example"
    assert message["From"] == "Alliance <alliance@localhost>"
    assert message["Subject"] == "nb: Test"
    assert first_url(message) == "http://127.0.0.1:8000/somewhere/?a=1&b=2"


def test_an_address_gets_the_language_asked_for_and_html_alongside(settings, mail_templates):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_to_address(
        "client@example.org",
        "es",
        subject_template="subject.txt",
        body_template="body.txt",
        html_template="body.txt",
        context={"url": "https://x.example/"},
    )
    (message,) = mail.outbox
    assert message.subject == "es: Test"
    assert message.alternatives[0].mimetype == "text/html"
