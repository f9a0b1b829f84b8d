import time

from django.conf import settings

TOUCHED_KEY = "alliance_touched"
# Renewing the idle window costs a database write: once a minute is precise enough.
RENEW_AFTER_SECONDS = 60


class IdleTimeoutMiddleware:
    """A login session ends after SESSION_COOKIE_AGE seconds without a request.

    Django sets a session's expiry when it saves it; marking the session modified at most once
    a minute moves the expiry on without writing the session on every request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and request.user.is_authenticated:
            now = time.time()
            if now - session.get(TOUCHED_KEY, 0) > min(
                RENEW_AFTER_SECONDS, settings.SESSION_COOKIE_AGE
            ):
                session[TOUCHED_KEY] = now
        return self.get_response(request)
