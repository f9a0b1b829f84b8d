"""Writing ratings: the one code path for the tablet, remote links, paper entry and demo data."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from alliance_app.accounts.models import User
from alliance_app.clinic.models import TherapySession
from alliance_app.measures import (
    MISSING,
    NOT_A_NUMBER,
    OUT_OF_RANGE,
    TOO_PRECISE,
    UNKNOWN_ITEM,
    RatingInvalid,
    score_rating,
)

from .instruments import catalogue
from .models import ITEM_FIELDS, Channel, Rater, Rating


def score_error_message(code: str) -> str:
    messages = {
        MISSING: _("Please mark this line."),
        NOT_A_NUMBER: _("This is not a number."),
        OUT_OF_RANGE: _("Scores run from 0.0 to 10.0."),
        TOO_PRECISE: _("Scores have at most one decimal."),
        UNKNOWN_ITEM: _("This scale has no such item."),
    }
    return messages.get(code, _("This score is not valid."))


@dataclass(frozen=True)
class SubmitResult:
    rating: Rating
    created: bool


def rating_submit(
    *,
    session: TherapySession,
    instrument_code: str,
    scores: Mapping[str, object],
    idempotency_key: uuid.UUID,
    rater: str = Rater.CLIENT,
    rater_label: str = "",
    channel: str = Channel.TABLET,
    entered_by: User | None = None,
    stored_at: datetime | None = None,
) -> SubmitResult:
    """Validate and store one rating exactly once.

    A repeat of the same idempotency key (a double tap, a retry, a replayed request) returns the
    rating already stored and stores nothing. Anything invalid raises ValidationError with a
    message per field and stores nothing.
    """
    existing = _replayed(session, instrument_code, idempotency_key)
    if existing is not None:
        return SubmitResult(existing, created=False)

    instrument = _instrument_for(session, instrument_code)
    if rater not in Rater.values:
        raise ValidationError({"rater": _("Choose who is rating.")})
    if channel not in Channel.values:
        raise ValidationError({"channel": _("Unknown way of rating.")})
    try:
        scored = score_rating(instrument, scores)
    except RatingInvalid as invalid:
        raise ValidationError(
            {key: score_error_message(code) for key, code in invalid.errors.items()}
        ) from None

    rating = Rating(
        session=session,
        instrument=instrument.code,
        scale=instrument.scale.value,
        rater=rater,
        rater_label=rater_label.strip(),
        total=scored.total,
        channel=channel,
        idempotency_key=idempotency_key,
        entered_by=entered_by,
        created_at=stored_at or timezone.now(),
        **dict(zip(ITEM_FIELDS, scored.items, strict=True)),
    )
    if _already_rated(rating):
        raise ValidationError(
            _("%(rater)s has already given the %(scale)s for this session.")
            % {"rater": rating.rater_display, "scale": rating.get_scale_display().lower()}
        )
    try:
        with transaction.atomic():
            rating.save(force_insert=True)
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its rating.
        existing = _replayed(session, instrument_code, idempotency_key)
        if existing is None:
            raise
        return SubmitResult(existing, created=False)
    return SubmitResult(rating, created=True)


def _replayed(session: TherapySession, instrument_code: str, key: uuid.UUID) -> Rating | None:
    existing = Rating.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.session_id != session.pk or existing.instrument != instrument_code:
        raise ValidationError(_("This form has already been used for another rating."))
    return existing


def _instrument_for(session: TherapySession, instrument_code: str):
    instruments = catalogue()
    if instrument_code not in instruments:
        raise ValidationError({"instrument": _("Unknown rating scale.")})
    instrument = instruments.get(instrument_code)
    age_band = session.episode.client.age_band
    if age_band not in {band.value for band in instrument.age_bands}:
        raise ValidationError(
            {"instrument": _("This scale is not meant for this client's age group.")}
        )
    if len(instrument.items) != len(ITEM_FIELDS):
        raise ValidationError({"instrument": _("Only four-item scales can be stored.")})
    return instrument


def _already_rated(rating: Rating) -> bool:
    return Rating.objects.filter(
        session=rating.session,
        scale=rating.scale,
        rater=rating.rater,
        rater_label=rating.rater_label,
    ).exists()
