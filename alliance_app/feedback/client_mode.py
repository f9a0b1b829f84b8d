"""Client mode: the tablet belongs to the client until the therapist's password unlocks it.

The state lives in the login session, so every worker process sees it. While it is on, the
middleware sends every request for a view not marked `allowed_in_client_mode` back to the
client page. The passwords tried on the unlock page are counted in the database instead
(`UnlockAttempts`): the login session is read at a request's start and written at its end, so
parallel requests would each see the same count.

While the tablet is handed over it speaks the client's language, whatever the therapist's; the
unlock page, which the therapist reads, speaks theirs. Unlocking ends client mode, and with it
the client's language.
"""

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.shortcuts import redirect
from django.utils import timezone, translation

from alliance_app.measures import FALLBACK_LANGUAGE

from .models import UnlockAttempts

SESSION_KEY = "alliance_client_mode"
# A hand-over whose count nobody has touched for this long was abandoned: the login session
# ended with the tablet still locked.
ABANDONED_AFTER = timedelta(days=1)


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
    language: str = FALLBACK_LANGUAGE  # the client's


def client_mode_of(request) -> ClientMode | None:
    data = request.session.get(SESSION_KEY)
    return ClientMode(**data) if data else None


def client_mode_start(request, mode: ClientMode) -> None:
    request.session[SESSION_KEY] = asdict(mode)
    UnlockAttempts.objects.create(hand_over=mode.idempotency_key, counted_at=timezone.now())


def client_mode_record(request, rating_id: int) -> None:
    mode = client_mode_of(request)
    if mode is not None:
        request.session[SESSION_KEY] = {**asdict(mode), "rating": rating_id}


def client_mode_end(request) -> ClientMode | None:
    mode = client_mode_of(request)
    request.session.pop(SESSION_KEY, None)
    if mode is not None:
        UnlockAttempts.objects.filter(hand_over=mode.idempotency_key).delete()
    UnlockAttempts.objects.filter(counted_at__lt=timezone.now() - ABANDONED_AFTER).delete()
    return mode


def _window_start():
    return timezone.now() - timedelta(seconds=settings.UNLOCK_WINDOW_SECONDS)


def unlock_attempts_left(mode: ClientMode) -> int:
    """Passwords the unlock page may still check: the count starts again once it has checked
    none for UNLOCK_WINDOW_SECONDS."""
    attempts = (
        UnlockAttempts.objects.filter(
            hand_over=mode.idempotency_key, counted_at__gte=_window_start()
        )
        .values_list("attempts", flat=True)
        .first()
    )
    return max(0, settings.UNLOCK_MAX_ATTEMPTS - (attempts or 0))


def unlock_attempt_take(mode: ClientMode) -> bool:
    """Take one of the hand-over's attempts before a password is checked; False if none is left.

    Each step is a single UPDATE, and the database applies its WHERE to the row as the
    previous writer left it: however many requests arrive at once, at most
    UNLOCK_MAX_ATTEMPTS of them get an attempt within the window.
    """
    now = timezone.now()
    # Made at the hand-over; a hand-over from before the count was kept here has no row yet.
    UnlockAttempts.objects.get_or_create(
        hand_over=mode.idempotency_key, defaults={"counted_at": now}
    )
    row = UnlockAttempts.objects.filter(hand_over=mode.idempotency_key)
    row.filter(counted_at__lt=_window_start()).update(attempts=0)
    taken = row.filter(attempts__lt=settings.UNLOCK_MAX_ATTEMPTS).update(
        attempts=F("attempts") + 1, counted_at=now
    )
    return taken == 1


def in_staff_language(view):
    """Mark a client-mode view the therapist reads (the unlock page): it keeps their language."""
    view.in_staff_language = True
    return view


class ClientModeLockMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not hasattr(request, "session") or SESSION_KEY not in request.session:
            return None
        if not getattr(view_func, "allowed_in_client_mode", False):
            return redirect("client_rate")
        if not getattr(view_func, "in_staff_language", False):
            # Reset by LocaleMiddleware at the next request's start, like any activation.
            language = client_mode_of(request).language
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return None
