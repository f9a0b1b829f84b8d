"""PostgreSQL binds parameters itself and prepares what a connection repeats (settings:
DATABASE_PREPARED_STATEMENTS), for the primary and every replica; SQLite is left as it is."""

import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from alliance_app.accounts.models import Organization

PROBE = """
import json
from django.conf import settings
print(json.dumps({alias: db.get("OPTIONS", {}) for alias, db in settings.DATABASES.items()}))
"""
PRIMARY = "postgres://postgres@127.0.0.1:5432/alliance"
REPLICA = "postgres://postgres@10.0.0.2:5432/alliance"
PREPARED = {"server_side_binding": True, "prepare_threshold": 5}


def options_with(**env) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    environment.update(DEBUG="true", DJANGO_SETTINGS_MODULE="alliance_app.settings", **env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_postgresql_primary_and_replicas_prepare_statements_by_default():
    found = options_with(DATABASE_URL=PRIMARY, DATABASE_REPLICA_URLS=REPLICA)
    assert found["default"] == PREPARED
    assert found["replica1"] == {"connect_timeout": 2, **PREPARED}


def test_prepared_statements_can_be_turned_off_for_a_pooler():
    found = options_with(
        DATABASE_URL=PRIMARY, DATABASE_REPLICA_URLS=REPLICA, DATABASE_PREPARED_STATEMENTS="false"
    )
    assert found == {"default": {}, "replica1": {"connect_timeout": 2}}


def test_sqlite_has_no_such_options():
    assert options_with(DATABASE_URL="sqlite:////tmp/alliance-options.sqlite3") == {"default": {}}


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepares statements")
def test_a_statement_repeated_on_a_connection_is_prepared_by_the_server():
    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['%"accounts_organization"."slug" = $1%'],
            )
            return cursor.fetchone()[0]

    before = prepared()
    for number in range(6):
        list(Organization.objects.filter(slug=f"none-{number}"))
    assert prepared() == before + 1
