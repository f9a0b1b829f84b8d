"""A small HTTP client on the standard library: cookies, a login with its CSRF token, raw bytes.

Raw on purpose: the page-weight figure needs the bodies as sent (compressed or not), and the
no-loss driver needs to see every connection error itself rather than have a library retry.
Only loopback addresses are accepted.
"""

import http.client
import re
import urllib.parse
from dataclasses import dataclass, field

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


class LoginFailed(RuntimeError):
    pass


def loopback(base_url: str) -> tuple[str, int]:
    """Host and port of a http://127.0.0.1:PORT base; anything off this machine is refused."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.port is None:
        raise ValueError(f"the benchmark only targets http://127.0.0.1:PORT, not {base_url!r}")
    return parts.hostname, parts.port


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    reason: str = ""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def transferred(self) -> int:
        """Bytes on the wire: status line, headers and body as sent (compressed if it was)."""
        return header_bytes(self.status, self.reason, self.headers) + len(self.body)


def header_bytes(status: int, reason: str, headers: list[tuple[str, str]]) -> int:
    """An HTTP/1.1 answer's head: `HTTP/1.1 200 OK`, each `Name: value`, CRLF after each, and
    the empty line."""
    status_line = len(f"HTTP/1.1 {status} {reason}".encode()) + 2
    return status_line + sum(len(f"{k}: {v}".encode()) + 2 for k, v in headers) + 2


@dataclass
class Browser:
    """One login's cookies against one app server."""

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    username: str = ""

    def request(
        self, method: str, path: str, *, form: dict | None = None, headers: dict | None = None
    ) -> Response:
        host, port = loopback(self.base_url)
        sent = {"Host": f"{host}:{port}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = self.cookie_header()
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            if "csrftoken" in self.cookies:
                sent["X-CSRFToken"] = self.cookies["csrftoken"]
        connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=sent)
            answer = connection.getresponse()
            response = Response(answer.status, answer.getheaders(), answer.read(), answer.reason)
        finally:
            connection.close()
        for key, value in response.headers:
            if key.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, form: dict, **kwargs) -> Response:
        return self.request("POST", path, form=form, **kwargs)

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items() if value)

    def login(self, username: str, password: str) -> "Browser":
        page = self.get("/login/")
        token = CSRF_INPUT.search(page.body)
        if page.status != 200 or token is None:
            raise LoginFailed(f"/login/ answered {page.status} without a CSRF token")
        answer = self.post(
            "/login/",
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token.group(1).decode(),
            },
        )
        if answer.status != 302 or "sessionid" not in self.cookies:
            raise LoginFailed(
                f"logging in as {username!r} answered {answer.status}; wrong password? "
                "(set it with --password)"
            )
        self.username = username
        return self
