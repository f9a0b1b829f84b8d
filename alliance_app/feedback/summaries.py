"""What the therapist sees about one rating when the tablet comes back."""

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import get_language

from alliance_app.measures import ChangeDirection, FlagRules, Instrument, Item, Scale, Thresholds

from .instruments import catalogue
from .models import Flag, Rating


@dataclass(frozen=True)
class RatingSummary:
    rating: Rating
    instrument: Instrument
    thresholds: Thresholds  # the organisation's, as its flags use them
    items: list[tuple[Item, Decimal]]
    is_clinical: bool  # outcome: in the clinical range; session: an alliance concern
    intake: Rating | None
    change: Decimal | None
    direction: ChangeDirection | None
    flags: list[Flag]

    @property
    def is_outcome(self) -> bool:
        return self.instrument.scale == Scale.OUTCOME


def rating_summary(rating: Rating, *, rules: FlagRules) -> RatingSummary:
    """The rating judged by its organisation's `rules`, as its flags were, its items named in
    the reader's language (the client may have rated in another)."""
    instrument = catalogue().translated(rating.instrument, get_language())
    thresholds = rules.thresholds(instrument)
    intake = change = direction = None
    if instrument.scale == Scale.OUTCOME:
        intake = (
            Rating.objects.filter(
                session__episode=rating.session.episode,
                scale=rating.scale,
                rater=rating.rater,
                rater_label=rating.rater_label,
                session__number__lt=rating.session.number,
            )
            .order_by("session__number")
            .first()
        )
        if intake is not None:
            change = rating.total - intake.total
            direction = thresholds.direction(intake.total, rating.total)
    return RatingSummary(
        rating=rating,
        instrument=instrument,
        thresholds=thresholds,
        items=list(zip(instrument.items, rating.items, strict=True)),
        is_clinical=thresholds.is_clinical(rating.total),
        intake=intake,
        change=change,
        direction=direction,
        flags=list(
            rating.flags.select_related("rating__rupture", "reflection__marker")
            .prefetch_related("reflection__strategies")
            .order_by("-severity", "kind", "item")
        ),
    )
