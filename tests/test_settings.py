"""Settings come from the environment and fail loudly on a bad value."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from alliance_app.settings import envbool, envint, envlist


def load_settings(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    environment.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import alliance_app.settings as s; print(s.DATABASES['default']['ENGINE'])",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("FALSE", False), ("1", True), ("", False)]
)
def test_envbool_reads_true_and_false(monkeypatch, raw, value):
    monkeypatch.setenv("FLAG", raw)
    assert envbool("FLAG", False) is value


def test_envbool_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be true or false"):
        envbool("FLAG", False)


def test_envint_and_envlist(monkeypatch):
    monkeypatch.setenv("N", "12")
    monkeypatch.setenv("HOSTS", "a.example, b.example,")
    assert envint("N", 1) == 12
    assert envlist("HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.setenv("N", "twelve")
    with pytest.raises(ImproperlyConfigured):
        envint("N", 1)


def test_a_secret_key_is_required_unless_debugging():
    assert "SECRET_KEY is required" in load_settings().stderr
    assert load_settings(DEBUG="true").returncode == 0
    assert load_settings(SECRET_KEY="x" * 50).returncode == 0


def test_a_bad_time_zone_or_debug_value_stops_the_start():
    assert "TIME_ZONE" in load_settings(DEBUG="true", TIME_ZONE="Mars/Olympus").stderr
    assert "DEBUG must be true or false" in load_settings(DEBUG="sometimes").stderr


def test_database_url_chooses_the_engine():
    sqlite = load_settings(DEBUG="true", DATABASE_URL="")
    postgres = load_settings(DEBUG="true", DATABASE_URL="postgres://u@127.0.0.1:5432/alliance")
    assert sqlite.stdout.strip() == "django.db.backends.sqlite3"
    assert postgres.stdout.strip() == "django.db.backends.postgresql"
