"""Rating links e-mailed to the client, now or at a chosen time.

A row of `RatingLinkEmail` says what the link is for; the link itself is created when the e-mail
goes out, because a link's URL cannot be rebuilt from the database later.
Sending claims the row with one conditional UPDATE (scheduled or failed -> sending): of two
senders that overlap, on SQLite or PostgreSQL, exactly one gets the row, so each e-mail goes out
once. The request's "send now" and the timer (`manage.py send_rating_links`) share this path.
"""

import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from alliance_app.accounts.mail import absolute_url, send_to_address
from alliance_app.accounts.models import User
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.contacts import contact_email
from alliance_app.clinic.models import TherapySession

from .instruments import catalogue
from .links import remote_link_create
from .models import LinkEmailStatus, RatingLinkEmail
from .services import already_rated, instrument_for_client

# A failed e-mail is tried again on the timer's later runs, up to this many attempts in all.
MAX_ATTEMPTS = 3
# A row left "sending" this long was being sent by a run that died (`stuck`).
STUCK_AFTER = timedelta(minutes=15)
# How far ahead an e-mail may be scheduled.
LATEST_AHEAD = timedelta(days=14)


def link_email_schedule(
    *,
    session: TherapySession,
    scale: str,
    created_by: User,
    rater: str,
    rater_label: str = "",
    send_at: datetime | None = None,
) -> RatingLinkEmail:
    """An e-mail with a rating link for this session, to go out at `send_at` (None: now).

    Refused in words, storing nothing: no address kept for the client (or the organisation keeps
    none), a time in the past or too far ahead, a rating already given, the same e-mail already
    waiting."""
    client = session.episode.client
    now = timezone.now()
    instrument = instrument_for_client(client, scale)
    if not client.organization.client_email:
        raise ValidationError(
            _(
                "Your organisation does not keep clients' e-mail addresses: links cannot be "
                "e-mailed."
            )
        )
    if not contact_email(client):
        raise ValidationError(_("No e-mail address is kept for this client: add one first."))
    if send_at is not None and send_at < now:
        raise ValidationError(_("This time has passed: choose a later one, or send the link now."))
    if send_at is not None and send_at > now + LATEST_AHEAD:
        raise ValidationError(_("An e-mail can be scheduled at most 14 days ahead."))
    if already_rated(session, instrument.scale, rater, rater_label):
        raise ValidationError(
            _("This rating has already been given in this session: no link is needed for it.")
        )
    waiting = RatingLinkEmail.objects.filter(
        Q(status=LinkEmailStatus.SCHEDULED)
        | Q(status=LinkEmailStatus.SENDING, claimed_at__gte=now - STUCK_AFTER),
        session=session,
        rater=rater,
        rater_label=rater_label,
    )
    if any(catalogue().get(code).scale == instrument.scale for code in _instruments(waiting)):
        raise ValidationError(
            _("An e-mail with this rating is already waiting to be sent: cancel it first.")
        )
    return RatingLinkEmail.objects.create(
        session=session,
        instrument=instrument.code,
        rater=rater,
        rater_label=rater_label,
        send_at=send_at or now,
        created_by=created_by,
        created_at=now,
    )


def _instruments(emails: QuerySet[RatingLinkEmail]) -> set[str]:
    return set(emails.values_list("instrument", flat=True))


def link_email_cancel(*, email: RatingLinkEmail) -> bool:
    """Stop a scheduled e-mail, or a failed one waiting to be tried again; False when it is
    being sent or already went out."""
    cancelled = RatingLinkEmail.objects.filter(pk=email.pk, status__in=_retryable()).update(
        status=LinkEmailStatus.CANCELLED
    )
    email.refresh_from_db()
    return cancelled == 1


def _retryable() -> list[str]:
    return [LinkEmailStatus.SCHEDULED, LinkEmailStatus.FAILED]


def due(now: datetime) -> QuerySet[RatingLinkEmail]:
    """The e-mails to send now: scheduled ones whose time has come, and failed ones with attempts
    left."""
    return RatingLinkEmail.objects.filter(
        Q(status=LinkEmailStatus.SCHEDULED)
        | Q(status=LinkEmailStatus.FAILED, attempts__lt=MAX_ATTEMPTS),
        send_at__lte=now,
    ).order_by("send_at", "pk")


def stuck(now: datetime) -> QuerySet[RatingLinkEmail]:
    """E-mails a sending run claimed and never finished: it may have died before or after the
    mail server took the message, so they are reported, not sent again."""
    return RatingLinkEmail.objects.filter(
        status=LinkEmailStatus.SENDING, claimed_at__lt=now - STUCK_AFTER
    ).order_by("claimed_at")


def _claim(pk: int, now: datetime) -> bool:
    """Take the row for this sender: one UPDATE whose condition only one sender can meet, since
    it changes the status the condition asks for (PostgreSQL re-checks it after waiting for the
    other sender's row lock; SQLite runs one write at a time)."""
    return (
        RatingLinkEmail.objects.filter(
            Q(status=LinkEmailStatus.SCHEDULED)
            | Q(status=LinkEmailStatus.FAILED, attempts__lt=MAX_ATTEMPTS),
            pk=pk,
            send_at__lte=now,
        ).update(
            status=LinkEmailStatus.SENDING,
            claimed_at=now,
            attempts=F("attempts") + 1,
            error="",
        )
        == 1
    )


def link_email_deliver(
    pk: int, *, request: HttpRequest | None = None, now: datetime | None = None
) -> RatingLinkEmail | None:
    """Send one e-mail if this caller claims it; the row as it ends, or None if another sender
    has it (or it is not due). The link's address comes from `request` when there is one, else
    from SITE_URL.

    The link is created just before the e-mail is handed to the mail server, and deleted again if
    the server does not take it; no transaction is held open while the server answers, since on
    SQLite that would hold every other write for as long. What no retry can mend (the address or
    the organisation's consent gone, the rating given meanwhile) cancels the e-mail with the
    reason."""
    now = now or timezone.now()
    if not _claim(pk, now):
        return None
    email = RatingLinkEmail.objects.select_related(
        "session__episode__client__organization", "created_by"
    ).get(pk=pk)
    client = email.session.episode.client
    address = contact_email(client)
    reason = _not_sendable(email, address)
    if reason:
        return _finish(email, status=LinkEmailStatus.CANCELLED, error=reason)
    try:
        created = remote_link_create(
            session=email.session,
            scale=catalogue().get(email.instrument).scale,
            created_by=email.created_by,
            rater=email.rater,
            rater_label=email.rater_label,
        )
    except ValidationError as refused:
        return _finish(email, status=LinkEmailStatus.CANCELLED, error=" ".join(refused.messages))
    url = absolute_url(reverse("remote_rate", args=[created.token]), request)
    try:
        _send_mail(address, client.language, url, created.link.expires_at, client.organization)
    except (smtplib.SMTPException, OSError) as failure:
        # Nobody holds this link's token: it goes with the failure, and a retry makes a new one.
        created.link.delete()
        return _finish(email, status=LinkEmailStatus.FAILED, error=_failure_words(failure))
    email.remote_link = created.link
    _finish(email, status=LinkEmailStatus.SENT, sent_at=timezone.now())
    audit_record(
        None,
        action=Action.RATING_LINK_SENT,
        organization=client.organization,
        obj=email,
        detail=client.code,
    )
    return email


def _not_sendable(email: RatingLinkEmail, address: str) -> str:
    client = email.session.episode.client
    if not client.organization.client_email:
        return _("Not sent: the organisation no longer keeps clients' e-mail addresses.")
    if not address:
        return _("Not sent: no e-mail address is kept for the client any more.")
    scale = catalogue().get(email.instrument).scale
    if already_rated(email.session, scale, email.rater, email.rater_label):
        return _("Not sent: the rating was given meanwhile.")
    return ""


def _failure_words(failure: Exception) -> str:
    """Why sending failed, without the server's own text: it may quote the address."""
    code = getattr(failure, "smtp_code", None)
    kind = type(failure).__name__ + (f" {code}" if code else "")
    return _("The mail server did not take the e-mail (%(kind)s).") % {"kind": kind}


def _finish(email: RatingLinkEmail, **changes) -> RatingLinkEmail:
    if "error" in changes:
        changes["error"] = changes["error"][:200]
    for name, value in changes.items():
        setattr(email, name, value)
    email.save(update_fields=[*changes, "remote_link"])
    return email


def _send_mail(address: str, language: str, url: str, expires_at: datetime, organization) -> None:
    """The e-mail, in the client's language: the link and when it expires, nothing clinical."""
    expires = timezone.localtime(expires_at, ZoneInfo(organization.time_zone))
    with translation.override(language):
        # The date in the client's language's format, as the body will be written in it.
        expires_text = date_format(expires, "DATETIME_FORMAT")
    send_to_address(
        address,
        language,
        subject_template="email/rating_link_subject.txt",
        body_template="email/rating_link_body.txt",
        context={"url": url, "expires": expires_text},
    )


@dataclass
class DeliveryReport:
    """What one run of the timer did."""

    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    taken_by_another: int = 0
    stuck: list[RatingLinkEmail] = field(default_factory=list)


def send_due(*, now: datetime | None = None) -> DeliveryReport:
    """Send every due e-mail this run can claim; report those stuck in a dead run."""
    now = now or timezone.now()
    report = DeliveryReport(stuck=list(stuck(now).select_related("session__episode__client")))
    for pk in list(due(now).values_list("pk", flat=True)):
        email = link_email_deliver(pk, now=now)
        if email is None:
            report.taken_by_another += 1
        elif email.status == LinkEmailStatus.SENT:
            report.sent += 1
        elif email.status == LinkEmailStatus.FAILED:
            report.failed += 1
        else:
            report.cancelled += 1
    return report
