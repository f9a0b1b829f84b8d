"""Read replicas: where each query goes, on real database aliases.

The replica alias is added for each test as a mirror of the test database (what
`TEST: {"MIRROR": "default"}` gives a configured replica): on SQLite a second connection to the
same database, on PostgreSQL a second connection to the test database. The tests commit their
rows (transactional tests) so the replica's own connection sees them, as a streaming replica
sees the primary's commits.
"""

import copy
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace
from unittest import mock

import pytest
from django.core import signing
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.audit.models import AuditEntry
from alliance_app.clinic.models import TherapySession
from alliance_app.feedback.models import Rating
from alliance_app.lib import db_router
from tests import factories

REPLICA = "replica1"
ROUTER = "alliance_app.lib.db_router.ReplicaRouter"
PIN = "alliance_app.lib.db_router.ReplicaPinMiddleware"
SCORES = {"personal": "4.2", "relationships": "6.0", "social": "5.5", "overall": "5.1"}


def add_replica(settings, **changes) -> None:
    """The replica's connection, made here rather than at start-up: Django lets a test use a
    connection it creates itself, not one the test database set-up did not know of."""
    primary = connections[DEFAULT_DB_ALIAS].settings_dict
    replica = copy.deepcopy(primary)
    replica.update(changes)
    replica["TEST"] = {**replica["TEST"], "MIRROR": DEFAULT_DB_ALIAS}
    connections[REPLICA] = load_backend(replica["ENGINE"]).DatabaseWrapper(replica, REPLICA)
    settings.DATABASE_REPLICAS = [REPLICA]
    settings.DATABASE_ROUTERS = [ROUTER]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, PIN]


@pytest.fixture
def replica(transactional_db, settings):
    """A working replica: the same data through its own connection."""
    add_replica(settings)
    yield REPLICA
    remove_replica()


def remove_replica() -> None:
    connections[REPLICA].close()
    del connections[REPLICA]
    db_router._down_until.clear()


@pytest.fixture
def broken_replica(transactional_db, settings, tmp_path):
    """A replica that does not answer: a closed port on PostgreSQL, a file that cannot be opened
    on SQLite."""
    if connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
        from bench.server import free_port

        add_replica(settings, PORT=free_port(), OPTIONS={"connect_timeout": 2})
    else:
        add_replica(settings, NAME=str(tmp_path / "no-such-folder" / "replica.sqlite3"))
    yield REPLICA
    remove_replica()


@pytest.fixture
def therapist_client(client, therapist):
    client.force_login(therapist)
    return client


def queries(alias: str, captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries]


def capture(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


def on_table(sql: list[str], table: str) -> list[str]:
    return [query for query in sql if f'"{table}"' in query]


def get_logged(http, url: str):
    with capture(DEFAULT_DB_ALIAS) as primary, capture(REPLICA) as replica:
        response = http.get(url)
    return response, queries(DEFAULT_DB_ALIAS, primary), queries(REPLICA, replica)


def test_a_dashboard_reads_from_the_replica(replica, therapist_client, adult):
    response, primary, from_replica = get_logged(therapist_client, reverse("caseload"))
    assert response.status_code == 200
    assert adult.code in response.content.decode()
    assert on_table(from_replica, "clinic_client")
    assert not on_table(primary, "clinic_client")
    assert all(query.lstrip().upper().startswith("SELECT") for query in from_replica)


def test_the_audit_entry_of_a_chart_read_from_the_replica_is_written_to_the_primary(
    replica, therapist_client, adult
):
    response, primary, from_replica = get_logged(
        therapist_client, reverse("client_detail", args=[adult.pk])
    )
    assert response.status_code == 200
    assert on_table(from_replica, "clinic_client")
    assert [q for q in on_table(primary, "audit_auditentry") if q.startswith("INSERT")]
    assert not [q for q in from_replica if not q.lstrip().upper().startswith("SELECT")]
    assert AuditEntry.objects.filter(object_id=str(adult.pk)).exists()


def test_pages_not_marked_replica_safe_read_from_the_primary(replica, therapist_client, adult):
    response, primary, from_replica = get_logged(
        therapist_client, reverse("client_edit", args=[adult.pk])
    )
    assert response.status_code == 200
    assert from_replica == []
    assert on_table(primary, "clinic_client")


def test_the_therapist_sees_the_rating_just_given_from_the_primary(
    replica, therapist_client, adult
):
    therapist_client.post(reverse("session_start", args=[adult.pk]), {"format": "individual"})
    session = TherapySession.objects.get(episode__client=adult)
    therapist_client.post(reverse("hand_over", args=[session.pk]), {"scale": "outcome"})
    page = therapist_client.get(reverse("client_rate")).content.decode()
    action = page.split('id="rating-form"', 1)[1].split('action="', 1)[1].split('"', 1)[0]
    key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    stored = therapist_client.post(
        action, {**SCORES, "idempotency_key": key}, HTTP_ACCEPT="application/json"
    )
    assert stored.status_code == 201
    therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})

    response, primary, from_replica = get_logged(
        therapist_client, reverse("client_detail", args=[adult.pk])
    )
    assert response.status_code == 200
    assert from_replica == []
    assert on_table(primary, "feedback_rating")
    assert Rating.objects.filter(session=session).count() == 1


def test_the_pin_to_the_primary_ends_after_replica_pin_seconds(replica, therapist_client, adult):
    therapist_client.post(reverse("language_setting"), {"language": "en"})
    _response, _primary, from_replica = get_logged(therapist_client, reverse("caseload"))
    assert from_replica == []
    now = time.time()
    # The caseload's rows are cached per data version (accounts.cached): emptied, so that the
    # second visit reads them again and shows where it reads from.
    cache.clear()
    # The cookie's signature carries its time: six seconds on, it is too old to count.
    with mock.patch.object(signing, "time", SimpleNamespace(time=lambda: now + 6)):
        _response, primary, from_replica = get_logged(therapist_client, reverse("caseload"))
    assert on_table(from_replica, "clinic_client")
    assert on_table(from_replica, "accounts_dataversion")
    assert not on_table(primary, "clinic_client")


def test_a_write_sets_the_pin_only_when_replicas_are_configured(
    transactional_db, settings, therapist_client
):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, PIN]
    settings.DATABASE_REPLICAS = []
    response = therapist_client.post(reverse("language_setting"), {"language": "en"})
    assert response.status_code == 302
    assert db_router.PIN_COOKIE not in response.cookies


def test_a_write_sets_a_signed_pin_that_lasts_replica_pin_seconds(replica, therapist_client):
    response = therapist_client.post(reverse("language_setting"), {"language": "en"})
    pin = response.cookies[db_router.PIN_COOKIE]
    assert pin["max-age"] == 5 and pin["httponly"] and pin["samesite"] == "Lax"
    therapist_client.cookies[db_router.PIN_COOKIE] = "1"  # not signed: counts for nothing
    _response, _primary, from_replica = get_logged(therapist_client, reverse("caseload"))
    assert on_table(from_replica, "clinic_client")


def test_a_replica_that_does_not_answer_degrades_to_the_primary(
    broken_replica, therapist_client, adult
):
    with capture(DEFAULT_DB_ALIAS) as primary:
        response = therapist_client.get(reverse("caseload"))
    assert response.status_code == 200
    assert adult.code in response.content.decode()
    assert on_table(queries(DEFAULT_DB_ALIAS, primary), "clinic_client")
    assert db_router.is_down(REPLICA)


def test_a_replica_failing_during_the_page_is_left_and_the_page_read_from_the_primary(
    replica, therapist_client, adult
):
    connection = connections[REPLICA]
    gone = []
    connect = connection.get_new_connection

    def failing(execute, sql, params, many, context):
        gone.append(sql)
        raise OperationalError("the replica went away")

    def refused(params):
        if gone:
            raise OperationalError("connection refused")
        return connect(params)

    with (
        connection.execute_wrapper(failing),
        mock.patch.object(connection, "is_usable", lambda: not gone),
        mock.patch.object(connection, "get_new_connection", refused),
        capture(DEFAULT_DB_ALIAS) as primary,
    ):
        response = therapist_client.get(reverse("caseload"))
    assert response.status_code == 200
    assert adult.code in response.content.decode()
    assert on_table(queries(DEFAULT_DB_ALIAS, primary), "clinic_client")
    assert db_router.is_down(REPLICA)


def test_a_failing_query_on_a_replica_that_still_answers_is_not_hidden(
    replica, therapist_client, adult
):
    def failing(execute, sql, params, many, context):
        raise OperationalError("a real error")

    with connections[REPLICA].execute_wrapper(failing), capture(DEFAULT_DB_ALIAS) as primary:
        response = therapist_client.get(reverse("caseload"))
    assert response.status_code == 503
    assert not on_table(queries(DEFAULT_DB_ALIAS, primary), "clinic_client")
    assert not db_router.is_down(REPLICA)


def test_writes_and_migrations_go_to_the_primary_only(replica):
    router = db_router.ReplicaRouter()
    token = db_router._reads_from.set(REPLICA)
    try:
        assert router.db_for_read(Rating) == REPLICA
        assert router.db_for_write(Rating) == DEFAULT_DB_ALIAS
    finally:
        db_router._reads_from.reset(token)
    assert router.db_for_read(Rating) == DEFAULT_DB_ALIAS
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "feedback") is True
    assert router.allow_migrate(REPLICA, "feedback") is False


def test_healthz_reports_the_replicas_beside_the_primary(replica, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "replicas": {REPLICA: "ok"}}


def test_healthz_stays_200_when_only_a_replica_is_down(broken_replica, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "replicas": {REPLICA: "error"}}


# What Django makes of the settings module, as a fresh process with the given environment sees it.
PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "replicas": settings.DATABASE_REPLICAS,
    "routers": settings.DATABASE_ROUTERS,
    "pin_middleware": "alliance_app.lib.db_router.ReplicaPinMiddleware" in settings.MIDDLEWARE,
    "pin_seconds": settings.REPLICA_PIN_SECONDS,
    "databases": {
        alias: [db["HOST"], db["PORT"], db["NAME"], db["TEST"].get("MIRROR")]
        for alias, db in settings.DATABASES.items() if alias != "default"
    },
}))
"""
PRIMARY_URL = "postgres://postgres@127.0.0.1:5432/alliance"


def settings_with(**env) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REPLICA_"))
    }
    environment.update(DEBUG="true", DJANGO_SETTINGS_MODULE="alliance_app.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=False
    )


def test_without_replica_urls_there_is_no_router_and_no_pin():
    found = json.loads(settings_with(DATABASE_URL=PRIMARY_URL).stdout)
    assert found == {
        "replicas": [],
        "routers": [],
        "pin_middleware": False,
        "pin_seconds": 5,
        "databases": {},
    }


def test_each_replica_url_is_an_alias_mirroring_the_primary_in_tests():
    found = json.loads(
        settings_with(
            DATABASE_URL=PRIMARY_URL,
            DATABASE_REPLICA_URLS="postgres://postgres@10.0.0.2:5432/alliance, "
            "postgres://postgres@10.0.0.3:5433/alliance",
            REPLICA_PIN_SECONDS="8",
        ).stdout
    )
    assert found == {
        "replicas": ["replica1", "replica2"],
        "routers": [ROUTER],
        "pin_middleware": True,
        "pin_seconds": 8,
        "databases": {
            "replica1": ["10.0.0.2", 5432, "alliance", "default"],
            "replica2": ["10.0.0.3", 5433, "alliance", "default"],
        },
    }


def test_a_replica_of_another_kind_of_database_stops_the_start():
    refused = settings_with(
        DATABASE_URL=PRIMARY_URL, DATABASE_REPLICA_URLS="sqlite:////tmp/replica.sqlite3"
    )
    assert refused.returncode != 0
    assert "is not the same kind of database as DATABASE_URL" in refused.stderr
