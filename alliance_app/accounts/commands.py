"""What the management commands share."""

from django.core.management.base import CommandError
from django.db.models import QuerySet

from .models import Organization


def organizations_named(slug: str | None) -> QuerySet[Organization]:
    """Every organisation in slug order, or the one with this slug; an unknown slug is refused."""
    organizations = Organization.objects.order_by("slug")
    if slug:
        organizations = organizations.filter(slug=slug)
        if not organizations.exists():
            raise CommandError(f"no organisation {slug!r}")
    return organizations
