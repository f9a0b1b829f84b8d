"""Production settings, headers, login hardening, rate limits, data rights."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from alliance_app.accounts import sessions
from alliance_app.accounts.models import Role
from alliance_app.audit.models import AuditEntry
from alliance_app.clinic.models import Client, Episode, TherapySession
from alliance_app.feedback.models import Flag, Rating, RemoteLink
from tests import factories
from tests.factories import rate

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k3y-" + "x7Qz9Lm2Vb8Nc4Rt6Yw1Pa5Sd3Fg7Hj0Kl9Zx2Cv4Bn6Mq8We1Rt3Yu5Io7Pa",
    "ALLOWED_HOSTS": "alliance.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://alliance.example.org",
}


# Set by the test run itself (tests/environment.py, tests/browser/conftest.py), never in production.
TEST_ONLY = (
    "SECRET_KEY",
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_COOKIES",
    "SECURE_HSTS_SECONDS",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def outside_environment() -> dict:
    """This machine's environment without what the test run adds."""
    return {k: v for k, v in os.environ.items() if k not in TEST_ONLY}


def manage(*args, **env) -> subprocess.CompletedProcess:
    environment = {**outside_environment(), **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_reports_nothing_with_the_documented_production_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.django_db
def test_every_page_carries_the_security_headers(client, therapist, session_one):
    client.force_login(therapist)
    client.post(reverse("hand_over", args=[session_one.pk]), {"scale": "outcome"})
    response = client.get(reverse("client_rate"))
    policy = response["Content-Security-Policy"]
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert "'nonce-" in script_src and "unsafe-inline" not in script_src
    nonce = script_src.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'nonce="{nonce}"' in response.content.decode()
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_no_page_of_ours_has_an_inline_script(client, therapist, session_one):
    client.force_login(therapist)
    for url in ("/caseload/", f"/clients/{session_one.episode.client_id}/", "/exports/"):
        html = client.get(url).content.decode()
        for tag in html.split("<script")[1:]:
            opening = tag.split(">", 1)[0]
            assert "src=" in opening or 'type="application/json"' in opening, (url, opening)


@pytest.mark.django_db
def test_repeated_wrong_passwords_lock_the_login(client, therapist, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post(reverse("login"), {"username": therapist.username, "password": "wrong"})
    locked = client.post(
        reverse("login"), {"username": therapist.username, "password": factories.PASSWORD}
    )
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    failures = AuditEntry.objects.filter(action="login_failed", actor_name=therapist.username)
    assert failures.count() >= 3


@pytest.mark.django_db
def test_a_weak_password_is_refused_by_the_validators():
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        validate_password("12345678")


@pytest.mark.django_db
def test_staff_sessions_end_after_30_idle_minutes(client, therapist, settings, monkeypatch):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    client.force_login(therapist)
    client.get("/caseload/")
    first_expiry = client.session.get_expiry_date()
    later = time.time() + 120
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    client.get("/caseload/")
    assert client.session.get_expiry_date() > first_expiry  # activity moved the expiry on


# Rate limits


@pytest.mark.django_db
def test_link_creation_is_rate_limited(client, therapist, session_one, settings):
    settings.REMOTE_LINKS_PER_HOUR = 2
    client.force_login(therapist)
    url = reverse("link_create", args=[session_one.pk])
    statuses = [client.post(url, {"scale": "outcome"}).status_code for _ in range(3)]
    assert statuses == [302, 302, 429]
    assert RemoteLink.objects.count() == 2


# Client data rights


@pytest.fixture
def rated(org, therapist, session_one):
    rate(session_one, "session-adult", "8 8 8 8")
    return session_one.episode.client


@pytest.mark.django_db
def test_the_admin_exports_everything_held_about_a_client(client, org, rated):
    client.force_login(factories.user(org, role=Role.ADMIN))
    response = client.get(reverse("client_export", args=[rated.pk]))
    data = json.loads(response.content)
    assert data["client"]["code"] == rated.code
    (episode,) = data["episodes"]
    (rating,) = episode["sessions"][0]["ratings"]
    assert rating["items"] == {
        "relationship": "8.0",
        "goals": "8.0",
        "approach": "8.0",
        "overall": "8.0",
    }
    assert data["flags"][0]["kind"] == "low_alliance"
    assert AuditEntry.objects.filter(action="client_exported", detail=rated.code).exists()


@pytest.mark.django_db
def test_deleting_a_client_needs_the_code_and_leaves_only_a_plain_audit_entry(client, org, rated):
    admin = factories.user(org, role=Role.ADMIN)
    client.force_login(admin)
    url = reverse("client_delete", args=[rated.pk])
    client.post(url, {"code": "wrong"})
    assert Client.objects.filter(pk=rated.pk).exists()
    client.post(url, {"code": rated.code})
    for model in (Client, Episode, TherapySession, Rating, Flag):
        assert not model.objects.exists(), model
    entry = AuditEntry.objects.get(action="client_deleted")
    assert (entry.detail, entry.object_id, entry.actor) == (rated.code, str(rated.pk), admin)
    assert "Session rating" not in entry.detail and "32.0" not in entry.detail


@pytest.mark.django_db
def test_a_therapist_cannot_delete_or_export_a_whole_client(client, therapist, rated):
    client.force_login(therapist)
    assert (
        client.post(reverse("client_delete", args=[rated.pk]), {"code": rated.code}).status_code
        == 403
    )
    assert client.get(reverse("client_export", args=[rated.pk])).status_code == 403
    assert Client.objects.filter(pk=rated.pk).exists()
