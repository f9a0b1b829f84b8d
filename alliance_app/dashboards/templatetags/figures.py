"""Showing statistics: a missing figure is a dash, never a misleading zero."""

from django import template
from django.utils.formats import number_format

register = template.Library()

MISSING = "—"


@register.filter
def percent(share: float | None) -> str:
    return MISSING if share is None else f"{number_format(share * 100, 0)}%"


@register.filter
def figure(value, places: int = 1) -> str:
    return MISSING if value is None else number_format(value, places)


@register.filter
def signed(value) -> str:
    if value is None:
        return MISSING
    return f"+{number_format(value, 1)}" if value > 0 else number_format(value, 1)
