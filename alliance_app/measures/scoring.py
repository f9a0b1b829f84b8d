"""Turning what a client marked into exact scores.

Each item is a 10 cm line read to the millimetre (DESIGN.md §2): 0.0 to 10.0 in steps of 0.1. Scores
are Decimals so that totals such as 25.0 or 35.9 compare exactly against the cut-offs. Errors are
codes, not sentences: the Django layer maps them to translated messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from .instruments import Instrument

MISSING = "missing"
NOT_A_NUMBER = "not_a_number"
OUT_OF_RANGE = "out_of_range"
TOO_PRECISE = "too_precise"
UNKNOWN_ITEM = "unknown_item"

ONE_DECIMAL = Decimal("0.1")

# Plain decimal notation only: exponents, underscores and non-ASCII digits are not something a
# slider or a paper form produces, so accepting them would only hide a bug upstream.
_PLAIN_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class ScoreError(ValueError):
    """One item score is unusable; `code` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class RatingInvalid(ValueError):
    """A whole rating is unusable; `errors` maps every bad item key to its code, all at once."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(", ".join(f"{key}: {code}" for key, code in sorted(self.errors.items())))


def parse_item_score(value: object, item_max: Decimal = Decimal("10.0")) -> Decimal:
    """One item's score as an exact Decimal with one decimal place, or ScoreError.

    "5.50" is accepted (the extra digit is zero), "5.55" is not: the scale has millimetre
    resolution, and rounding silently would store a score the client never gave.
    """
    number = _to_decimal(value)
    if not number.is_finite():
        raise ScoreError(NOT_A_NUMBER)
    if number < 0 or number > item_max:
        raise ScoreError(OUT_OF_RANGE)
    if number != number.quantize(ONE_DECIMAL):
        raise ScoreError(TOO_PRECISE)
    # copy_abs turns "-0.0" into 0.0, the only negative-looking value inside the range.
    return number.quantize(ONE_DECIMAL).copy_abs()


def _to_decimal(value: object) -> Decimal:
    # bool is an int subclass, but True is a checkbox, not a score of 1.
    if value is None or isinstance(value, bool):
        raise ScoreError(MISSING if value is None else NOT_A_NUMBER)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # str() gives the shortest repr, so 5.5 becomes Decimal("5.5"), not 5.4999999...
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ScoreError(MISSING)
        if not _PLAIN_NUMBER_RE.fullmatch(text):
            raise ScoreError(NOT_A_NUMBER)
        return Decimal(text)
    raise ScoreError(NOT_A_NUMBER)


@dataclass(frozen=True)
class ScoredRating:
    """A valid rating: item scores in instrument order and their exact total."""

    instrument_code: str
    items: tuple[Decimal, ...]
    total: Decimal
    item_keys: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.items) != len(self.item_keys):
            raise ValueError("items and item_keys differ in length")
        if self.total != sum(self.items, Decimal("0.0")):
            raise ValueError("total is not the sum of the items")

    def as_dict(self) -> dict[str, Decimal]:
        return dict(zip(self.item_keys, self.items, strict=True))


def score_rating(instrument: Instrument, values: Mapping[str, object]) -> ScoredRating:
    """Score every item of `instrument` from `values`, reporting all problems in one RatingInvalid.

    A client who left two lines unmarked should hear about both at once, not one per submit.
    """
    errors: dict[str, str] = {}
    items: list[Decimal] = []
    for key in instrument.item_keys:
        try:
            items.append(parse_item_score(values.get(key), instrument.item_max))
        except ScoreError as exc:
            errors[key] = exc.code
    for key in values:
        if key not in instrument.item_keys:
            errors[str(key)] = UNKNOWN_ITEM
    if errors:
        raise RatingInvalid(errors)
    return ScoredRating(
        instrument_code=instrument.code,
        items=tuple(items),
        total=sum(items, Decimal("0.0")),
        item_keys=instrument.item_keys,
    )
