"""Read replicas: which database a query goes to.

With DATABASE_REPLICA_URLS set, settings.py adds the aliases replica1, replica2, ... and
installs this router and ReplicaPinMiddleware. Every write goes to the primary (`default`).
Reads go to a replica only inside a view marked `@replica_reads` (dashboards, statistics,
exports: pages that can show data a moment old), and never for a browser that sent a write in
the last REPLICA_PIN_SECONDS (a signed cookie), so a therapist sees the rating just given. A
replica that does not answer is left alone for REPLICA_DOWN_SECONDS and its reads go to the
primary instead of becoming an error page.
"""

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import FileResponse, HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

PIN_COOKIE = "alliance_primary"
PIN_SALT = "alliance.lib.db_router.pin"
SAFE_METHODS = ("GET", "HEAD")

# The alias this request's reads go to; None outside a replica-safe view.
_reads_from: ContextVar[str | None] = ContextVar("alliance_reads_from", default=None)
# Per process: replica alias -> time.monotonic() until which it is not asked.
_down_until: dict[str, float] = {}


def replica_aliases() -> list[str]:
    return list(getattr(settings, "DATABASE_REPLICAS", []))


def mark_down(alias: str) -> None:
    seconds = getattr(settings, "REPLICA_DOWN_SECONDS", 30)
    logger.warning("database replica %s does not answer: reading from the primary", alias)
    _down_until[alias] = time.monotonic() + seconds


def is_down(alias: str) -> bool:
    return _down_until.get(alias, 0.0) > time.monotonic()


def answers(alias: str, *, recheck: bool = False) -> bool:
    """Whether the database behind `alias` takes a connection now (opening one if needed).

    An open connection is checked once a request (Django's health check); `recheck` checks it
    again, after a query on it failed: if it no longer works, the database is taken as gone.
    """
    connection = connections[alias]
    try:
        if recheck and connection.connection is not None and not connection.is_usable():
            connection.close()
            return False
        connection.close_if_health_check_failed()
        connection.ensure_connection()
    except DatabaseError:
        return False
    return True


def replica_state() -> dict[str, str]:
    """Each replica's state for /healthz: "ok", or "error" (and marked down) when it does not
    answer."""
    state = {}
    for alias in replica_aliases():
        if answers(alias, recheck=True):
            _down_until.pop(alias, None)
            state[alias] = "ok"
        else:
            mark_down(alias)
            state[alias] = "error"
    return state


def pinned_to_primary(request: HttpRequest) -> bool:
    """This browser sent a write less than REPLICA_PIN_SECONDS ago."""
    value = request.get_signed_cookie(
        PIN_COOKIE, default=None, salt=PIN_SALT, max_age=settings.REPLICA_PIN_SECONDS
    )
    return value is not None


def replica_for(request: HttpRequest) -> str | None:
    """The replica this request may read from, or None for the primary."""
    candidates = [alias for alias in replica_aliases() if not is_down(alias)]
    if not candidates or request.method not in SAFE_METHODS or pinned_to_primary(request):
        return None
    random.shuffle(candidates)
    for alias in candidates:
        if answers(alias):
            return alias
        mark_down(alias)
    return None


def reading_from() -> str | None:
    return _reads_from.get()


def replica_reads(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Mark a view whose reads may come from a replica: a page that can be a moment behind.

    If the replica fails during the view, it is marked down and the view runs once more on the
    primary, so the page answers rather than erring. A streamed response (a CSV export) keeps
    reading from the replica while it is sent.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        alias = replica_for(request)
        if alias is None:
            return view(request, *args, **kwargs)
        token = _reads_from.set(alias)
        try:
            response = view(request, *args, **kwargs)
        except DatabaseError:
            if answers(alias, recheck=True):
                raise
            mark_down(alias)
            _reads_from.reset(token)
            token = None
            return view(request, *args, **kwargs)
        finally:
            if token is not None:
                _reads_from.reset(token)
        if response.streaming and not isinstance(response, FileResponse):
            response.streaming_content = _streamed_from(alias, response.streaming_content)
        return response

    return wrapper


def _streamed_from(alias: str, chunks) -> Iterator:
    iterator = iter(chunks)
    while True:
        token = _reads_from.set(alias)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except DatabaseError:
            if not answers(alias, recheck=True):
                mark_down(alias)
            raise
        finally:
            _reads_from.reset(token)
        yield chunk


class ReplicaRouter:
    """Reads from the replica chosen for a `@replica_reads` view, everything else the primary."""

    def db_for_read(self, model, **hints) -> str:
        return _reads_from.get() or DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        # A replica holds the primary's rows: a client read from it may be linked to a new row.
        same_data = {DEFAULT_DB_ALIAS, *replica_aliases()}
        return True if {obj1._state.db, obj2._state.db} <= same_data else None

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


class ReplicaPinMiddleware:
    """After a write (any request but GET or HEAD), this browser's reads go to the primary for
    REPLICA_PIN_SECONDS: a signed cookie that expires by itself, nothing stored."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method not in SAFE_METHODS and replica_aliases():
            response.set_signed_cookie(
                PIN_COOKIE,
                "1",
                salt=PIN_SALT,
                max_age=settings.REPLICA_PIN_SECONDS,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
