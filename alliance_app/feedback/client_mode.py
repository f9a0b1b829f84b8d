"""Client mode: the tablet belongs to the client until the therapist's password unlocks it.

The state lives in the login session, so every worker process sees it. While it is on, the
middleware sends every request for a view not marked `allowed_in_client_mode` back to the
client page.
"""

import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.shortcuts import redirect

SESSION_KEY = "alliance_client_mode"
ATTEMPTS_KEY = "alliance_unlock_failures"


@dataclass(frozen=True)
class ClientMode:
    session: int
    instrument: str
    rater: str
    rater_label: str
    # One key per hand-over: a reload while answers wait offline renders the same form again,
    # so the answers saved on the tablet still match it.
    idempotency_key: str
    rating: int | None = None  # the rating stored while the tablet was handed over


def client_mode_of(request) -> ClientMode | None:
    data = request.session.get(SESSION_KEY)
    return ClientMode(**data) if data else None


def client_mode_start(request, mode: ClientMode) -> None:
    request.session[SESSION_KEY] = asdict(mode)
    request.session.pop(ATTEMPTS_KEY, None)


def client_mode_record(request, rating_id: int) -> None:
    mode = client_mode_of(request)
    if mode is not None:
        request.session[SESSION_KEY] = {**asdict(mode), "rating": rating_id}


def client_mode_end(request) -> ClientMode | None:
    mode = client_mode_of(request)
    request.session.pop(SESSION_KEY, None)
    request.session.pop(ATTEMPTS_KEY, None)
    return mode


def _recent_failures(request) -> list[float]:
    window_start = time.time() - settings.UNLOCK_WINDOW_SECONDS
    return [t for t in request.session.get(ATTEMPTS_KEY, []) if t > window_start]


def unlock_attempts_left(request) -> int:
    return max(0, settings.UNLOCK_MAX_ATTEMPTS - len(_recent_failures(request)))


def unlock_failed(request) -> None:
    request.session[ATTEMPTS_KEY] = [*_recent_failures(request), time.time()]


class ClientModeLockMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "allowed_in_client_mode", False):
            return None
        if not hasattr(request, "session") or SESSION_KEY not in request.session:
            return None
        return redirect("client_rate")
