"""Typed organisation settings: an IANA time zone and a list of session numbers."""

import re
from functools import cache
from itertools import pairwise
from zoneinfo import available_timezones

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


@cache
def time_zone_names() -> frozenset[str]:
    # available_timezones() walks the zone files on disk: once per process is enough.
    return frozenset(available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            _("“%(value)s” is not a time zone. Use a name such as Europe/Berlin or UTC."),
            code="invalid_time_zone",
            params={"value": value},
        )


def validate_session_numbers(value) -> None:
    """One or more session numbers from 1 up, increasing, each once: the stored form."""
    if not (
        isinstance(value, list)
        and value
        and all(type(number) is int and number >= 1 for number in value)
    ):
        raise ValidationError(
            _("Give one or more session numbers from 1 up."), code="invalid_session_numbers"
        )
    if any(later <= earlier for earlier, later in pairwise(value)):
        raise ValidationError(
            _("Give the session numbers in increasing order, each once."),
            code="unordered_session_numbers",
        )


SESSION_NUMBERS = re.compile(r"\s*\d+\s*(,\s*\d+\s*)*,?\s*")


class SessionNumbersFormField(forms.CharField):
    """Session numbers typed as "3, 6, 12"; cleaned to the sorted list of distinct numbers."""

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return None
        if not SESSION_NUMBERS.fullmatch(text):
            raise ValidationError(
                _("Enter session numbers separated by commas, such as 3, 6."),
                code="invalid_session_numbers",
            )
        return sorted({int(part) for part in text.split(",") if part.strip()})

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(number) for number in value)
        return value


class SessionNumbersField(models.JSONField):
    """A list of session numbers, stored as JSON so it is typed on SQLite and PostgreSQL alike."""

    default_validators = [validate_session_numbers]

    def formfield(self, **kwargs):
        # Not JSONField's form field: people type "3, 6", not JSON.
        return models.Field.formfield(self, **{"form_class": SessionNumbersFormField, **kwargs})
