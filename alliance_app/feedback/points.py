"""Stored ratings as the clinical rules see them."""

from alliance_app.measures import Instrument, RatingPoint

from .instruments import catalogue
from .models import Rating


def as_point(rating: Rating, instrument: Instrument | None = None) -> RatingPoint:
    """A stored rating as the clinical rules see it; `rating.session` is read."""
    return RatingPoint(
        session_number=rating.session.number,
        rater=rating.rater_key,
        instrument=instrument or catalogue().get(rating.instrument),
        items=rating.items,
        total=rating.total,
    )
