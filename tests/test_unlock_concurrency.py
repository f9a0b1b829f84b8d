"""Wrong unlock passwords sent all at once, from one login session: no more of them are checked
than the limit allows, and the tablet stays locked."""

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from alliance_app.accounts.models import User
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import TherapySession
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = 24


@pytest.fixture
def tablet(therapist, adult) -> Client:
    """A therapist's login session with the tablet handed over to the client."""
    http = Client()
    http.force_login(therapist)
    http.post(reverse("session_start", args=[adult.pk]), {"format": "individual"})
    session = TherapySession.objects.get(episode__client=adult)
    http.post(reverse("hand_over", args=[session.pk]), {"scale": "outcome"})
    assert http.get("/").url == reverse("client_rate")
    return http


@pytest.fixture
def checked_passwords(monkeypatch) -> list[str]:
    checked = []
    check_password = User.check_password

    def counting(user, raw_password):
        checked.append(raw_password)
        return check_password(user, raw_password)

    monkeypatch.setattr(User, "check_password", counting)
    return checked


@pytest.fixture
def database_for_threads(tmp_path):
    """Lets each thread open the test database, as the app's workers each do.

    SQLite's in-memory test database cannot be shared that way: other connections reach it
    only through table locks that fail at once instead of waiting, and sharing this thread's
    connection would mix up the threads' row counts. So on SQLite the test runs on a copy in
    a file, this thread included; other databases are used as they are.
    """
    connection = connections["default"]
    if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
        yield lambda: None
        return
    path = tmp_path / "db.sqlite3"
    connection.ensure_connection()
    with sqlite3.connect(path) as copy:
        connection.connection.backup(copy)
    settings_dict = {**connection.settings_dict, "NAME": str(path)}

    def use():
        connections["default"] = connection.__class__(settings_dict)

    use()
    yield use
    connections["default"].close()
    connections["default"] = connection


def test_parallel_wrong_passwords_check_no_more_than_the_limit(
    tablet, checked_passwords, database_for_threads, settings
):
    settings.UNLOCK_MAX_ATTEMPTS = 5
    start = threading.Barrier(PARALLEL)

    def guess(number: int) -> int:
        database_for_threads()
        http = Client()
        http.cookies = tablet.cookies
        try:
            start.wait()
            return http.post(reverse("unlock"), {"password": f"guess {number}"}).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(PARALLEL) as pool:
        statuses = list(pool.map(guess, range(PARALLEL)))

    assert len(checked_passwords) == 5
    assert AuditEntry.objects.filter(action=Action.CLIENT_MODE_UNLOCK_FAILED).count() == 5
    assert set(statuses) <= {400, 429} and 429 in statuses
    assert tablet.post(reverse("unlock"), {"password": factories.PASSWORD}).status_code == 429
    assert len(checked_passwords) == 5
    assert tablet.get("/").url == reverse("client_rate")
