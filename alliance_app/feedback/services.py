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
from alliance_app.clinic.models import Client, Closure, Episode, TherapySession
from alliance_app.measures import (
    LASTING_KINDS,
    MISSING,
    NOT_A_NUMBER,
    OUT_OF_RANGE,
    RESOLUTION_MAX,
    RESOLUTION_MIN,
    TOO_PRECISE,
    UNKNOWN_ITEM,
    AgeBand,
    FlagKind,
    FlagRules,
    Instrument,
    RatingInvalid,
    Scale,
    TensionAnswer,
    flags_for,
    flags_to_raise,
    score_rating,
    tension_finding,
)
from alliance_app.measures.expected import ExpectedResponse, not_on_track_for

from . import rollups, ruptures, statements
from .instruments import catalogue
from .models import (
    ITEM_FIELDS,
    OPEN_STATUSES,
    Channel,
    Flag,
    FlagStatus,
    Rater,
    Rating,
    TensionReport,
    rater_key,
)
from .points import as_point


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

    @property
    def flags(self) -> list[Flag]:
        return list(self.rating.flags.order_by("-severity", "kind", "item"))


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
    tension: TensionAnswer | None = None,
) -> SubmitResult:
    """Validate and store one rating exactly once, and raise its flags in the same transaction.

    A repeat of the same idempotency key (a double tap, a retry, a replayed request) returns the
    rating already stored and stores nothing. Anything invalid raises ValidationError with a
    message per field and stores nothing.

    `tension` is the rater's answer to the tension question after a session scale
    (`measures.tension`): it is stored with the rating, in its transaction, or not at all.
    """
    instrument = _instrument_for(session, instrument_code)
    organization = session.episode.client.organization
    rules = organization.flag_rules()
    if tension is not None and instrument.scale is not Scale.SESSION:
        raise ValidationError({"tension": _("The tension question follows the session scale.")})
    if tension is not None and not organization.ask_tension:
        raise ValidationError({"tension": _("This clinic does not ask the tension question.")})
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
        rater_label=rater_label_for(session.episode, rater, rater_label),
        total=scored.total,
        channel=channel,
        idempotency_key=idempotency_key,
        entered_by=entered_by,
        created_at=stored_at or timezone.now(),
        **dict(zip(ITEM_FIELDS, scored.items, strict=True)),
    )
    # Insert first and let the unique constraints catch a repeat: the common case, a new
    # rating, then costs no lookups beforehand.
    try:
        with transaction.atomic():
            rating.save(force_insert=True)
            # The episode's ratings of this scale, this one with them, read once for both the
            # rupture rule (this rater's series) and the flags (every earlier rating).
            scale_ratings = statements.episode_ratings(session.episode_id, rating.scale)
            ruptured = set()
            if instrument.scale is Scale.SESSION:
                ruptured = ruptures.series_update(
                    session.episode,
                    rating.rater,
                    rating.rater_label,
                    rules=organization.rupture_rules(),
                    s=ruptures.sd_in_force(organization).value,
                    flag_rules=rules,
                    session_ratings=scale_ratings,
                )
            _raise_flags(
                rating,
                instrument,
                rules,
                ruptured=rating.pk in ruptured,
                expected=organization.expected_response_model(),
                earlier=[other for other in scale_ratings if other.pk != rating.pk],
            )
            if tension is not None:
                _store_tension(rating, tension, rules)
            rollups.rating_stored(rating, rules.thresholds(instrument), tension)
    except IntegrityError:
        # The same key again (a double tap, a retry, or a concurrent request that won the
        # race): answer with the rating stored. Or this rater has rated this session already.
        existing = _replayed(session, instrument_code, idempotency_key)
        if existing is not None:
            return SubmitResult(existing, created=False)
        if already_rated(session, rating.scale, rating.rater, rating.rater_label):
            raise ValidationError(
                _("%(rater)s has already given the %(scale)s for this session.")
                % {"rater": rating.rater_display, "scale": rating.get_scale_display().lower()}
            ) from None
        raise
    return SubmitResult(rating, created=True)


def read_submission(data: Mapping[str, str], instrument: Instrument) -> tuple[dict, uuid.UUID]:
    """The item scores and idempotency key of a submitted form; other fields are ignored.

    A field sent twice is refused rather than read as its last value: the form never does it.
    """
    names = ("idempotency_key", *instrument.item_keys)
    repeated = [name for name in names if len(getattr(data, "getlist", lambda n: [])(name)) > 1]
    if repeated:
        raise ValidationError({name: _("Give one answer for this line.") for name in repeated})
    try:
        key = uuid.UUID(str(data.get("idempotency_key", "")))
    except ValueError:
        raise ValidationError(
            _("This form is incomplete. Please reload the page and try again.")
        ) from None
    return {name: data.get(name) for name in instrument.item_keys}, key


def read_tension(data: Mapping[str, str], instrument: Instrument) -> TensionAnswer | None:
    """The tension answer of a submitted form: None when the question was not answered.

    "tension" is "yes" or "no"; after a yes, "tension_resolution" is 1 to 5.
    """
    answer = data.get("tension", "")
    resolution = data.get("tension_resolution", "")
    if answer in ("", None) and resolution in ("", None):
        return None
    if instrument.scale is not Scale.SESSION:
        raise ValidationError({"tension": _("The tension question follows the session scale.")})
    if answer == "no":
        if resolution not in ("", None):
            raise ValidationError(
                {"tension_resolution": _("After a no there is nothing to sort out.")}
            )
        return TensionAnswer(tension=False)
    if answer != "yes":
        raise ValidationError({"tension": _("Answer yes or no.")})
    try:
        level = int(str(resolution))
    except ValueError:
        level = None
    if level is None or not RESOLUTION_MIN <= level <= RESOLUTION_MAX:
        raise ValidationError(
            {"tension_resolution": _("Choose how far it was sorted out, from 1 to 5.")}
        )
    return TensionAnswer(tension=True, resolution=level)


def _store_tension(rating: Rating, answer: TensionAnswer, rules: FlagRules) -> None:
    TensionReport.objects.create(
        rating=rating, tension=answer.tension, resolution=answer.resolution
    )
    finding = tension_finding(answer, rules)
    if finding is not None:
        Flag.from_finding(finding, client=rating.session.episode.client, rating=rating).save()


def _replayed(session: TherapySession, instrument_code: str, key: uuid.UUID) -> Rating | None:
    existing = Rating.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.session_id != session.pk or existing.instrument != instrument_code:
        raise ValidationError(_("This form has already been used for another rating."))
    return existing


def _instrument_for(session: TherapySession, instrument_code: str) -> Instrument:
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


def _raise_flags(
    rating: Rating,
    instrument: Instrument,
    rules: FlagRules,
    *,
    ruptured: bool = False,
    expected: ExpectedResponse | None = None,
    earlier: list[Rating],
) -> list[Flag]:
    """Store the flags of DESIGN.md §3 that this rating raises, explained in the active language.

    A rating that is a rupture against the rater's own level (`ruptures`) has its rupture flag,
    which says more than a drop from the previous session: the drop flag is then not raised.
    The client's own outcome rating is held against the organisation's expected-response band in
    use (`expected`), and a not-on-track flag remembers the fit that raised it. `earlier` are the
    episode's other ratings of the same scale, with their sessions.
    """
    episode = rating.session.episode
    history = [as_point(other) for other in earlier]
    point = as_point(rating, instrument)
    findings = flags_for(point, history, rules)
    off_track = not_on_track_for(
        point,
        history,
        model=expected,
        band=episode.client.age_band,
        rules=rules,
        client=Rater.CLIENT,
    )
    if off_track is not None:
        findings.append(off_track)
    if ruptured:
        findings = [finding for finding in findings if finding.kind is not FlagKind.ALLIANCE_DROP]
    # Only a rating that finds a lasting state needs to ask which are waiting unacknowledged.
    lasting = {finding.kind for finding in findings} & LASTING_KINDS
    if lasting:
        waiting = Flag.objects.filter(
            rating__session__episode=episode, kind__in=lasting, status=FlagStatus.OPEN
        ).values_list("kind", "rating__rater", "rating__rater_label")
        findings = flags_to_raise(
            findings,
            rater=point.rater,
            unacknowledged=[(kind, rater_key(rater, label)) for kind, rater, label in waiting],
        )
    fit_id = expected.fit_id if expected is not None else None
    return Flag.objects.bulk_create(
        Flag.from_finding(
            finding,
            client=episode.client,
            rating=rating,
            fit_id=fit_id if finding.kind is FlagKind.NOT_ON_TRACK else None,
        )
        for finding in findings
    )


def instrument_for_client(client: Client, scale: str) -> Instrument:
    """The scale this client rates, chosen by their age band and worded in their language."""
    return catalogue().for_client(Scale(scale), AgeBand(client.age_band), client.language)


def rater_label_for(episode: Episode, rater: str, label: str) -> str:
    """The label as this episode already spells it for this kind of rater, if it does.

    "sam " after "Sam" is the same partner: written differently it would start a second series
    on the chart and be compared with nobody. Case and spacing do not tell raters apart.
    """
    label = " ".join(label.split())
    if not label:
        return ""
    known = (
        Rating.objects.filter(session__episode=episode, rater=rater)
        .exclude(rater_label="")
        .order_by("rater_label")
        .values_list("rater_label", flat=True)
        .distinct()
    )
    return next((used for used in known if used.casefold() == label.casefold()), label)


def already_rated(session: TherapySession, scale: str, rater: str, rater_label: str) -> bool:
    """Whether this rater has given this scale in this session (one rating each, by constraint)."""
    return Rating.objects.filter(
        session=session, scale=scale, rater=rater, rater_label=rater_label
    ).exists()


def flag_acknowledge(*, flag: Flag, by: User, note: str = "") -> Flag:
    """Someone has seen the flag and will take it up. A resolved flag stays resolved."""
    if flag.status != FlagStatus.OPEN:
        raise ValidationError(_("Only an open flag can be acknowledged."))
    flag.status = FlagStatus.ACKNOWLEDGED
    flag.acknowledged_by = by
    flag.acknowledged_at = timezone.now()
    flag.acknowledged_note = note.strip()
    flag.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "acknowledged_note"])
    return flag


def flag_resolve(*, flag: Flag, by: User, note: str) -> Flag:
    """The conversation has happened; the note says what came of it. Nothing is deleted."""
    if flag.status == FlagStatus.RESOLVED:
        raise ValidationError(_("This flag is already resolved."))
    if not note.strip():
        raise ValidationError({"note": _("Say in a few words what came of it.")})
    now = timezone.now()
    fields = ["status", "resolved_by", "resolved_at", "resolved_note"]
    if flag.acknowledged_at is None:
        flag.acknowledged_by, flag.acknowledged_at = by, now
        fields += ["acknowledged_by", "acknowledged_at"]
    flag.status = FlagStatus.RESOLVED
    flag.resolved_by = by
    flag.resolved_at = now
    flag.resolved_note = note.strip()
    flag.save(update_fields=fields)
    return flag


def episode_close(*, episode: Episode, closure: str, by: User) -> int:
    """End the episode of care today; a client with no open episode leaves the caseload.

    The episode's flags still waiting are resolved with it, saying so: they asked about a course of
    care that has ended, and left open they would sit in the inbox for good. Returns how many.
    """
    if not episode.is_open:
        raise ValidationError(_("This episode is already closed."))
    if closure not in Closure.values:
        raise ValidationError({"closure": _("Say how the episode ended.")})
    now = timezone.now()
    note = _("Resolved with the episode of care: %(closure)s.") % {
        "closure": Closure(closure).label
    }
    with transaction.atomic():
        episode.closed = max(timezone.localdate(), episode.opened)
        episode.closure = closure
        episode.save(update_fields=["closed", "closure"])
        episode.client.active = False
        episode.client.save(update_fields=["active"])
        waiting = Flag.objects.filter(rating__session__episode=episode, status__in=OPEN_STATUSES)
        waiting.filter(acknowledged_at__isnull=True).update(acknowledged_by=by, acknowledged_at=now)
        resolved = waiting.update(
            status=FlagStatus.RESOLVED, resolved_by=by, resolved_at=now, resolved_note=note
        )
        # A rupture still waiting for its repair ends unrepaired with the episode.
        ruptures.episode_update(episode)
        return resolved
