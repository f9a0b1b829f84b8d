"""EMAIL_URL: where e-mail goes, in one environment variable.

    smtp://host:25                 plain SMTP (a relay on the same machine or network)
    smtp+tls://user:pass@host:587  STARTTLS after connecting (port 587 unless given)
    smtp+ssl://user:pass@host:465  TLS from the first byte (port 465 unless given)
    console:                       print each message on standard output

The user name and password are percent-decoded, so a password may hold any character written
as %XX. Any other scheme stops the start-up: a mistyped scheme must not fall back to sending
passwords unencrypted.
"""

from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Scheme -> (EMAIL_USE_TLS, EMAIL_USE_SSL, default port).
SMTP_SCHEMES = {
    "smtp": (False, False, 25),
    "smtp+tls": (True, False, 587),
    "smtp+ssl": (False, True, 465),
}


def parse_email_url(url: str) -> dict[str, object]:
    """Django's EMAIL_* settings for `url`; ImproperlyConfigured for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme == "console":
        return {"EMAIL_BACKEND": CONSOLE_BACKEND}
    if parts.scheme not in SMTP_SCHEMES:
        raise ImproperlyConfigured(
            "EMAIL_URL must start with smtp://, smtp+tls://, smtp+ssl:// or console:, "
            f"not {parts.scheme + ':' if parts.scheme else url!r}"
        )
    use_tls, use_ssl, default_port = SMTP_SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ImproperlyConfigured("EMAIL_URL has a port that is not a number") from None
    if not parts.hostname:
        raise ImproperlyConfigured("EMAIL_URL names no mail server host")
    return {
        "EMAIL_BACKEND": SMTP_BACKEND,
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
    }
