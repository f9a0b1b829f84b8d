"""A real SMTP server on 127.0.0.1 for the tests: Django sends through its SMTP backend, the
tests read what arrived.

    def test_it(smtp_server):
        ...                                 # something that sends
        message = smtp_server.messages[0]   # an email.message.EmailMessage
        url = first_url(message)            # the first link in its plain-text body

aiosmtpd runs in a thread of its own, so pages served by `live_server` (another thread) deliver
to it as well. Django's send returns once the server has answered the message with 250, by
which time the message is in `messages`.
"""

import logging
import re
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

# aiosmtpd logs every SMTP command at INFO: too much beside a failing test's own output.
logging.getLogger("mail.log").setLevel(logging.WARNING)

URL = re.compile(r"https?://[^\s<>\"']+")


def first_url(message: EmailMessage) -> str:
    """The first http(s) address in the message's plain-text body; AssertionError if none."""
    body = message.get_body(preferencelist=("plain",)).get_content()
    found = URL.search(body)
    assert found is not None, f"no link in the message:\n{body}"
    return found.group(0)


class SMTPServer:
    """What the local SMTP server received, in order; also its aiosmtpd handler."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages sent to `address`."""
        return [m for m in self.messages if address in m["To"]]

    def first_url(self, index: int = -1) -> str:
        """The first link in message `index` (the latest by default)."""
        assert self.messages, "no message arrived"
        return first_url(self.messages[index])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    """Start an SMTP server on a free local port and point Django's SMTP backend at it."""
    received = SMTPServer()
    controller = Controller(received, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = controller.hostname, controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        yield received
    finally:
        controller.stop()
