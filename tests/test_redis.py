"""With REDIS_URL set, login sessions are cached in Redis and still stored in the database;
without it, nothing needs Redis.

The tests against a live server run only where REDIS_URL names one (CI's Redis job). Each run
writes under its own key prefix and deletes its keys afterwards.
"""

import json
import os
import pickle
import subprocess
import sys
import uuid

import pytest
import redis
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.urls import reverse

from tests import factories

LIVE_REDIS_URL = os.environ.get("REDIS_URL", "").strip()
needs_redis = pytest.mark.skipif(not LIVE_REDIS_URL, reason="REDIS_URL is not set")


# What Django makes of the settings module, as a fresh process started with the given
# environment sees it.
PROBE = """
import json
from django.conf import settings
cache = settings.CACHES["default"]
print(json.dumps({
    "cache": cache["BACKEND"],
    "location": cache.get("LOCATION", ""),
    "prefix": cache.get("KEY_PREFIX", ""),
    "sessions": settings.SESSION_ENGINE,
}))
"""


def settings_with(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    environment.update(DEBUG="true", DJANGO_SETTINGS_MODULE="alliance_app.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=False
    )


def test_without_redis_url_the_cache_is_in_memory_and_sessions_in_the_database():
    assert json.loads(settings_with(REDIS_URL="").stdout) == {
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "location": "",
        "prefix": "",
        "sessions": "django.contrib.sessions.backends.db",
    }


def test_redis_url_puts_the_cache_and_sessions_in_redis():
    assert json.loads(settings_with(REDIS_URL="redis://127.0.0.1:6379/3").stdout) == {
        "cache": "django.core.cache.backends.redis.RedisCache",
        "location": "redis://127.0.0.1:6379/3",
        "prefix": "alliance",
        "sessions": "django.contrib.sessions.backends.cached_db",
    }


def test_each_deployment_on_a_shared_redis_may_name_its_own_prefix():
    chosen = settings_with(REDIS_URL="redis://127.0.0.1:6379/0", REDIS_KEY_PREFIX="clinic-b")
    assert json.loads(chosen.stdout)["prefix"] == "clinic-b"


def test_a_redis_url_without_a_scheme_stops_the_start():
    refused = settings_with(REDIS_URL="127.0.0.1:6379")
    assert refused.returncode != 0
    assert "REDIS_URL must start with redis://, rediss:// or unix://" in refused.stderr


@pytest.fixture
def redis_sessions(settings):
    """Sessions in the live Redis under a key prefix of this test's own; its keys go afterwards."""
    prefix = f"alliance-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": LIVE_REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    server = redis.Redis.from_url(LIVE_REDIS_URL)
    yield server, prefix
    for key in server.scan_iter(match=f"{prefix}:*"):
        server.delete(key)
    server.close()


def log_in(client, user) -> str:
    response = client.post(
        reverse("login"), {"username": user.username, "password": factories.PASSWORD}
    )
    assert response.status_code == 302
    return client.cookies["sessionid"].value


@needs_redis
@pytest.mark.django_db
def test_a_login_session_is_kept_in_redis_and_in_the_database(client, therapist, redis_sessions):
    server, prefix = redis_sessions
    session_key = log_in(client, therapist)

    cache_key = cache.make_key(f"django.contrib.sessions.cached_db{session_key}")
    assert cache_key.startswith(f"{prefix}:")
    in_redis = pickle.loads(server.get(cache_key))  # noqa: S301 - our own test's value
    in_database = Session.objects.get(session_key=session_key).get_decoded()
    assert in_redis["_auth_user_id"] == str(therapist.pk)
    assert in_database["_auth_user_id"] == str(therapist.pk)
    assert 0 < server.ttl(cache_key) <= 30 * 60  # the idle timeout, not the cache's default


@needs_redis
@pytest.mark.django_db
def test_a_login_outlives_an_emptied_redis(client, therapist, redis_sessions):
    server, prefix = redis_sessions
    log_in(client, therapist)
    for key in server.scan_iter(match=f"{prefix}:*"):
        server.delete(key)

    assert client.get(reverse("caseload")).status_code == 200
    assert list(server.scan_iter(match=f"{prefix}:*"))  # read back from the database, cached again


@needs_redis
@pytest.mark.django_db
def test_logging_out_removes_the_session_from_redis_and_the_database(
    client, therapist, redis_sessions
):
    server, prefix = redis_sessions
    session_key = log_in(client, therapist)
    client.post(reverse("logout"))

    assert not Session.objects.filter(session_key=session_key).exists()
    assert not list(server.scan_iter(match=f"{prefix}:*cached_db{session_key}"))


@needs_redis
@pytest.mark.django_db
def test_a_dashboards_cached_result_lives_in_redis(client, admin, redis_sessions):
    server, prefix = redis_sessions
    client.force_login(admin)
    first = client.get(reverse("overview"))
    (key,) = server.scan_iter(match=f"{prefix}:*result:overview:*")
    stored = pickle.loads(server.get(key))  # noqa: S301 - our own test's value
    assert stored["totals"] == first.context["totals"]
    assert 0 < server.ttl(key) <= 60 * 60
    assert client.get(reverse("overview")).context["totals"] == stored["totals"]
