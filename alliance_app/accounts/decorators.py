"""View markers that the middleware of higher layers read."""

from functools import wraps


def allowed_in_client_mode(view):
    """Mark a view as one the client may reach while holding the tablet.

    The mark lives here, at the bottom of the stack, so that any app's views can carry it; the
    client-mode lock (`feedback.client_mode`) reads it.
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        return view(*args, **kwargs)

    wrapper.allowed_in_client_mode = True
    return wrapper
