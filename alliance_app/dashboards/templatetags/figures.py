"""Showing statistics: a missing figure is a dash, never a misleading zero."""

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from alliance_app.measures import score_shown as shown

register = template.Library()

MISSING = "—"


@register.filter
def percent(share: float | None, places: int = 0) -> str:
    return MISSING if share is None else f"{number_format(share * 100, places)}%"


@register.filter
def figure(value, places: int = 1) -> str:
    return MISSING if value is None else number_format(value, places)


@register.filter
def signed(value) -> str:
    if value is None:
        return MISSING
    return f"+{number_format(value, 1)}" if value > 0 else number_format(value, 1)


@register.filter
def estimate(value, style: str = "1") -> str:
    """A `dashboards.ruptures.Estimate` as a percentage ("percent") or a number with `style`
    decimals; below its minimum, why there is no number ("fewer than 20 rated sessions")."""
    if value is None:
        return MISSING
    if not value.enough:
        return value.shortfall
    if value.value is None:
        return MISSING
    return percent(value.value) if style == "percent" else figure(value.value, int(style))


@register.filter
def estimate_short(value, style: str = "1") -> str:
    """As `estimate`, for a table cell: a dash without data, "too few" below the minimum (the
    table's note says how few)."""
    if value is None or not value.basis:
        return MISSING
    if not value.enough:
        return _("too few")
    return estimate(value, style)


@register.filter
def points(value) -> str:
    """A score or a fall in points, one decimal, two where the hundredth matters (39.05)."""
    return MISSING if value is None else shown(value)
