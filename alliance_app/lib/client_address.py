"""The address a request came from: what the login lockout keys on and the audit trail records."""

from django.conf import settings
from django.http import HttpRequest
from ipware import get_client_ip


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT reverse proxies the address the outermost one
    was reached from.

    Each proxy appends the address it was reached from to X-Forwarded-For, and the innermost one
    is REMOTE_ADDR itself: the client is the TRUSTED_PROXY_COUNT-th entry from the header's right
    end, and whatever stands further left the client wrote itself. A request that did not pass
    every proxy (a health check from inside the network) keeps REMOTE_ADDR.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        address, _routable = get_client_ip(
            request,
            proxy_count=proxies - 1,  # ipware counts only the proxies named in the header
            request_header_order=["HTTP_X_FORWARDED_FOR"],
            strict=False,  # a longer header is expected: the client may send one of its own
        )
        if address is not None:
            return address
    address, _routable = get_client_ip(request, request_header_order=["REMOTE_ADDR"])
    return address
