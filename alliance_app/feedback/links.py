"""Remote links: signed, unguessable, expiring, usable once."""

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from alliance_app.accounts.models import User
from alliance_app.clinic.models import TherapySession

from .instruments import catalogue
from .models import Channel, Rater, Rating, RemoteLink
from .services import (
    SubmitResult,
    already_rated,
    instrument_for_client,
    rating_submit,
    read_submission,
    read_tension,
)

SALT = "alliance.feedback.remote-link"


class LinkRefused(Exception):
    """The link cannot be used; `message` says why in calm words for the person holding it,
    in the client's `language` when the link is genuine (None: the token names no link)."""

    def __init__(self, reason: str, message: str, language: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.language = language


def link_language(link: RemoteLink) -> str:
    """A link is for the client: its pages speak the client's language, whatever the
    therapist's."""
    return link.session.episode.client.language


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedLink:
    link: RemoteLink
    token: str


def remote_link_create(
    *,
    session: TherapySession,
    scale: str,
    created_by: User,
    rater: str = Rater.CLIENT,
    rater_label: str = "",
    hours: int | None = None,
) -> CreatedLink:
    instrument = instrument_for_client(session.episode.client, scale)
    if already_rated(session, instrument.scale, rater, rater_label.strip()):
        raise ValidationError(
            _("This rating has already been given in this session: no link is needed for it.")
        )
    nonce = secrets.token_urlsafe(24)
    now = timezone.now()
    link = RemoteLink.objects.create(
        session=session,
        instrument=instrument.code,
        rater=rater,
        rater_label=rater_label.strip(),
        nonce_hash=_digest(nonce),
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(hours=hours or settings.REMOTE_LINK_HOURS),
    )
    token = signing.dumps([link.pk, nonce], salt=SALT, compress=True)
    return CreatedLink(link, token)


def links_created_last_hour(user: User) -> int:
    """How many links this user made in the past hour: link creation is rate-limited."""
    return RemoteLink.objects.filter(
        created_by=user, created_at__gte=timezone.now() - timedelta(hours=1)
    ).count()


def remote_link_open(token: str) -> RemoteLink:
    """The link a token names, if it is genuine, unexpired and unused; LinkRefused otherwise."""
    link = _genuine(token)
    _ensure_usable(link)
    return link


def _ensure_usable(link: RemoteLink) -> None:
    language = link_language(link)
    with translation.override(language):
        if link.used_at is not None:
            raise LinkRefused(
                "used",
                _("This link has already been used. Thank you, your answers arrived."),
                language,
            )
        if link.is_expired():
            raise LinkRefused(
                "expired",
                _("This link has expired. Please ask your therapist for a new one."),
                language,
            )
        # Given meanwhile on the tablet or through another link: the form could not be stored.
        scale = catalogue().get(link.instrument).scale
        if already_rated(link.session, scale, link.rater, link.rater_label):
            raise LinkRefused(
                "rated",
                _("You have already given this rating for this session. Thank you."),
                language,
            )


def remote_link_submit(*, token: str, data: Mapping[str, str]) -> SubmitResult:
    """Store the rating and use up the link in one transaction: both happen, or neither.

    A replay of the submission that used the link (same idempotency key) answers as the first did.
    """
    with transaction.atomic():
        link = _genuine(token, for_update=True)
        instrument = catalogue().get(link.instrument)
        scores, idempotency_key = read_submission(data, instrument)
        tension = read_tension(data, instrument)
        replayed = link.rating is not None and link.rating.idempotency_key == idempotency_key
        if replayed:
            return SubmitResult(link.rating, created=False)
        _ensure_usable(link)
        if Rating.objects.filter(idempotency_key=idempotency_key).exists():
            # The key belongs to a submission made elsewhere (another link, the tablet).
            raise ValidationError(_("This form has already been used for another rating."))
        result = rating_submit(
            session=link.session,
            instrument_code=link.instrument,
            scores=scores,
            idempotency_key=idempotency_key,
            rater=link.rater,
            rater_label=link.rater_label,
            channel=Channel.REMOTE,
            tension=tension,
        )
        link.used_at = timezone.now()
        link.rating = result.rating
        link.save(update_fields=["used_at", "rating"])
        return result


def remote_link_language(token: str) -> str | None:
    """The language of the client a token's link is for, used or not; None if it names none."""
    try:
        return link_language(_genuine(token))
    except LinkRefused:
        return None


def _genuine(token: str, for_update: bool = False) -> RemoteLink:
    invalid = LinkRefused(
        "invalid",
        _("This link is not valid. Please check it, or ask your therapist for a new one."),
    )
    try:
        pk, nonce = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise invalid from None
    if not isinstance(pk, int) or not isinstance(nonce, str):
        raise invalid
    links = RemoteLink.objects.select_related("session__episode__client", "rating")
    if for_update:
        links = links.select_for_update(of=("self",))
    link = links.filter(pk=pk).first()
    if link is None or not secrets.compare_digest(link.nonce_hash, _digest(str(nonce))):
        raise invalid
    return link
