"""Django choices made from the clinical core's enums: each set of values is defined once."""

from collections.abc import Mapping
from enum import Enum, IntEnum

from django.db import models


def choices_from(enum: type[Enum], labels: Mapping[Enum, str]) -> type[models.Choices]:
    """A `TextChoices` (or, for an `IntEnum`, `IntegerChoices`) with `enum`'s members and values.

    The members come from `enum` alone; `labels` only names them for people, and must name every
    member and nothing else, so a member added to the clinical core cannot go unlabelled.
    """
    if set(labels) != set(enum):
        missing = [member.name for member in enum if member not in labels]
        extra = [str(key) for key in labels if key not in set(enum)]
        raise ValueError(f"labels for {enum.__name__}: missing {missing}, unknown {extra}")
    base = models.IntegerChoices if issubclass(enum, IntEnum) else models.TextChoices
    members = [(member.name, (member.value, labels[member])) for member in enum]
    return base(f"{enum.__name__}Choice", members)
