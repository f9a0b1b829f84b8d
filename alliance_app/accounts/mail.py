"""E-mail to staff and clients, each in their own language, with links that work from a mail app.

Every message is a plain-text body (and, if given, an HTML one) rendered from templates/email/
under the recipient's language. A colleague reads Alliance in the language they chose; without
one, in the language of the page that sends the message (their browser's, for a password reset
they asked for), else the site's default.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import translation

from .languages import is_offered
from .models import User


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    """`path` as a full address: from the request when there is one, else from SITE_URL (the
    scheduled-links timer sends without a request)."""
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.SITE_URL + path


def user_language(user: User) -> str:
    """The language to write to a colleague in."""
    if is_offered(user.language):
        return user.language
    return translation.get_language() or settings.LANGUAGE_CODE


def send_to_user(
    user: User,
    *,
    subject_template: str,
    body_template: str,
    context: dict,
    html_template: str | None = None,
) -> int:
    """Send one message to a colleague's address in their language; 1 once the server took it.

    A server that refuses or cannot be reached raises (smtplib.SMTPException or OSError): the
    caller says so to the person who asked.
    """
    return send_to_address(
        user.email,
        user_language(user),
        subject_template=subject_template,
        body_template=body_template,
        context={"user": user, **context},
        html_template=html_template,
    )


def send_to_address(
    address: str,
    language: str,
    *,
    subject_template: str,
    body_template: str,
    context: dict,
    html_template: str | None = None,
) -> int:
    """Send one message to `address`, written in `language` (a client's, for rating links)."""
    with translation.override(language if is_offered(language) else settings.LANGUAGE_CODE):
        # A subject is one line, whatever the template's line breaks.
        subject = " ".join(render_to_string(subject_template, context).split())
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string(body_template, context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
        )
        if html_template:
            message.attach_alternative(render_to_string(html_template, context), "text/html")
    return message.send()
