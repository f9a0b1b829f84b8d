"""The client's address behind the reverse proxies: the login lockout and the audit trail both
take it from X-Forwarded-For, as many entries from the right as TRUSTED_PROXY_COUNT says, and
from REMOTE_ADDR alone when it is 0."""

import os
import subprocess
import sys

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from alliance_app.audit.models import Action, AuditEntry
from alliance_app.lib.client_address import client_address
from tests import factories

PROXY = "10.0.0.2"
ALICE = "198.51.100.7"  # two people at different places, logging in as the same user
BOB = "203.0.113.9"


def log_in(username: str, password: str, remote_addr: str, forwarded_for: str | None = None):
    meta = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return Client().post(reverse("login"), {"username": username, "password": password}, **meta)


def address(remote_addr: str, forwarded_for: str | None = None) -> str | None:
    meta = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client_address(RequestFactory().get("/", **meta))


@pytest.mark.django_db
def test_behind_the_proxy_each_client_is_locked_out_on_its_own(therapist, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(5):
        # Alice claims Bob's address; the proxy appends the one it saw.
        log_in(therapist.username, "wrong", PROXY, f"{BOB}, {ALICE}")
    assert log_in(therapist.username, factories.PASSWORD, PROXY, ALICE).status_code == 429
    assert log_in(therapist.username, factories.PASSWORD, PROXY, BOB).status_code == 302


@pytest.mark.django_db
def test_behind_the_proxy_the_audit_trail_records_the_client(therapist, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    log_in(therapist.username, "wrong", PROXY, f"{BOB}, {ALICE}")
    log_in(therapist.username, factories.PASSWORD, PROXY, BOB)
    entries = AuditEntry.objects.filter(action__in=[Action.LOGIN_FAILED, Action.LOGIN])
    assert sorted(entries.values_list("action", "ip")) == [
        (Action.LOGIN, BOB),
        (Action.LOGIN_FAILED, ALICE),
    ]


@pytest.mark.django_db
def test_without_a_proxy_a_forged_forwarded_for_is_ignored(therapist, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.AXES_FAILURE_LIMIT = 5
    for n in range(5):
        log_in(therapist.username, "wrong", ALICE, f"192.0.2.{n}")
    assert log_in(therapist.username, factories.PASSWORD, ALICE, BOB).status_code == 429
    failed = AuditEntry.objects.filter(action=Action.LOGIN_FAILED)
    assert set(failed.values_list("ip", flat=True)) == {ALICE}


def test_each_trusted_proxy_counts_one_entry_from_the_right(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert address(PROXY, f"{BOB}, {ALICE}, 10.0.0.3") == ALICE
    assert address(PROXY, f"junk, {BOB}, {ALICE}, 10.0.0.3") == ALICE
    assert address(PROXY, "2001:db8::7, 10.0.0.3") == "2001:db8::7"


def test_a_request_that_did_not_pass_every_proxy_keeps_remote_addr(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert address(PROXY, ALICE) == PROXY
    assert address(PROXY) == PROXY
    settings.TRUSTED_PROXY_COUNT = 1
    assert address(PROXY, "not an address") == PROXY
    assert address("not an address") is None


def load_settings(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG",)} | env
    return subprocess.run(
        [sys.executable, "-c", "import alliance_app.settings"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_negative_proxy_count_stops_the_start():
    loaded = load_settings(TRUSTED_PROXY_COUNT="-1")
    assert loaded.returncode != 0
    assert "TRUSTED_PROXY_COUNT must be 0 or more" in loaded.stderr


def test_the_old_audit_switch_stops_the_start_and_names_its_replacement():
    loaded = load_settings(AUDIT_TRUST_FORWARDED_FOR="true")
    assert loaded.returncode != 0
    assert "set TRUSTED_PROXY_COUNT" in loaded.stderr
    assert load_settings(TRUSTED_PROXY_COUNT="1").returncode == 0
