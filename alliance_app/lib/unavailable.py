"""While the database does not answer, every page is a plain 503 with Retry-After.

A restart of PostgreSQL (or a network cut to it) surfaces as OperationalError or InterfaceError
wherever the next query runs: in a view, or in a middleware loading the login session. Either
way the browser gets a short page saying to try again in a moment, a tablet's JSON submission
a JSON answer it retries with the same key, and the load balancer the 503 /healthz gives too:
never a stack trace, and never a 500 that reads as a bug.
"""

import logging
import sys

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)
_MARK = "_alliance_database_unavailable"


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """The 503 answer. It reads nothing from the database, the page not even the user."""
    if "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse(
            {"status": "unavailable", "detail": _("The database is not available. Try again.")},
            status=503,
        )
    else:
        html = render_to_string("503.html", {"retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _note_database_error(sender, request=None, **kwargs) -> None:
    """An error raised in a middleware reaches no process_exception: note it on the request,
    while Django handles it, for DatabaseUnavailableMiddleware to answer."""
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, UNAVAILABLE_ERRORS):
        setattr(request, _MARK, True)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        got_request_exception.connect(_note_database_error, dispatch_uid=__name__)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, _MARK, False):
            return database_unavailable(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, UNAVAILABLE_ERRORS):
            logger.error("database unavailable: %s", exception, exc_info=True)
            return database_unavailable(request)
        return None
