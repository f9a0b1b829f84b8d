"""Where a `next` parameter may send the browser."""

from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest, default: str = "home") -> str:
    """The `next` target if it stays on this site (and on HTTPS when the request came over it).

    Django's check, not a prefix test: browsers read `/\\evil.example` as `//evil.example`.
    """
    target = request.POST.get("next") or request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(default)
