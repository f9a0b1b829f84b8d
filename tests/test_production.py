"""The production run: collectstatic with hashed names, gunicorn, whitenoise, TLS at a proxy."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.test_security import PRODUCTION, ROOT, manage, outside_environment

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str, headers: dict) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 -- http://127.0.0.1
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_gunicorn_serves_the_app_and_its_static_files(tmp_path: Path):
    env = {
        **PRODUCTION,
        "STATIC_ROOT": str(tmp_path / "static"),
        "BEHIND_TLS_PROXY": "true",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": _database_url(tmp_path),
    }
    collected = manage("collectstatic", "--noinput", **env)
    assert collected.returncode == 0, collected.stderr
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())["paths"]
    assert {
        "plotly/plotly.min.js",
        "bootstrap/css/bootstrap.min.css",
        "js/client-rating.js",
    } <= set(manifest)

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "alliance_app.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env={**outside_environment(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                status, body, _headers = fetch(f"{base}/healthz", {})
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200, (status, body[:300], server.stderr and server.poll())
        assert json.loads(body)["status"] == "ok"  # no HTTPS redirect for probes

        status, _body, headers = fetch(f"{base}/login/", {})
        assert status == 301 and headers["Location"].startswith("https://")  # plain HTTP is moved

        proxied = {"X-Forwarded-Proto": "https"}
        status, body, headers = fetch(f"{base}/login/", proxied)
        assert status == 200
        assert "max-age=31536000" in headers["Strict-Transport-Security"]
        assert "Secure" in headers["Set-Cookie"]
        hashed = manifest["css/alliance.css"]
        assert f"/static/{hashed}".encode() in body
        status, _body, headers = fetch(
            f"{base}/static/{hashed}", {**proxied, "Accept-Encoding": "gzip"}
        )
        assert status == 200 and "immutable" in headers["Cache-Control"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def _database_url(tmp_path: Path) -> str:
    """The test database on PostgreSQL; on SQLite (kept in memory there) a migrated file."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor != "sqlite":
        return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    url = f"sqlite:///{tmp_path / 'production.sqlite3'}"
    migrated = manage("migrate", "--noinput", DATABASE_URL=url, DEBUG="true")
    assert migrated.returncode == 0, migrated.stderr
    return url


def test_the_wsgi_application_keeps_its_own_objects_out_of_the_garbage_collectors_walks():
    # Loaded as gunicorn loads it: every view imported, and what is loaded frozen, so that a full
    # collection in the middle of a request walks only what requests made.
    probe = (
        "import gc, sys\n"
        "from alliance_app.wsgi import application\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()),"
        " 'alliance_app.dashboards.views' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**outside_environment(), **PRODUCTION},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    frozen, tracked, views_loaded = done.stdout.split()
    assert int(frozen) > 100_000
    assert int(tracked) < 1_000
    assert views_loaded == "True"
