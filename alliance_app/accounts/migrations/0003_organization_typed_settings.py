# The no-change checkpoints were free text parsed at every outcome rating; they become a JSON
# list of session numbers. A text that never parsed ("3,six") made every outcome rating fail, so
# it falls back to the default checkpoints; a time zone that is no IANA name falls back to the
# server's TIME_ZONE, the zone such an organisation's dates used until now.

from zoneinfo import available_timezones

import django.core.validators
from django.conf import settings
from django.db import migrations, models

import alliance_app.accounts.fields
import alliance_app.accounts.models

DEFAULT_CHECKPOINTS = [3, 6]


def checkpoints_from_text(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) >= 1 for part in parts):
        return DEFAULT_CHECKPOINTS
    return sorted({int(part) for part in parts})


def to_typed(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    zones = available_timezones()
    for organization in Organization.objects.all():
        organization.no_change_checkpoints = checkpoints_from_text(
            organization.no_change_sessions
        )
        if organization.time_zone not in zones:
            organization.time_zone = settings.TIME_ZONE
        organization.save(update_fields=["no_change_checkpoints", "time_zone"])


def to_text(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    for organization in Organization.objects.all():
        organization.no_change_sessions = ",".join(
            str(number) for number in organization.no_change_checkpoints
        )
        organization.save(update_fields=["no_change_sessions"])


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_organization_require_two_factor"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="no_change_every",
            field=models.PositiveSmallIntegerField(
                default=3,
                help_text="Sessions between further reviews after the last listed session, for as long as the client has not improved reliably.",
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="then no-change review every",
            ),
        ),
        migrations.AddField(
            model_name="organization",
            name="no_change_checkpoints",
            field=alliance_app.accounts.fields.SessionNumbersField(
                default=alliance_app.accounts.models.default_no_change_sessions,
            ),
        ),
        migrations.RunPython(to_typed, to_text),
        migrations.RemoveField(
            model_name="organization",
            name="no_change_sessions",
        ),
        migrations.RenameField(
            model_name="organization",
            old_name="no_change_checkpoints",
            new_name="no_change_sessions",
        ),
        migrations.AlterField(
            model_name="organization",
            name="no_change_sessions",
            field=alliance_app.accounts.fields.SessionNumbersField(
                default=alliance_app.accounts.models.default_no_change_sessions,
                help_text="Session numbers, separated by commas, at which a lack of reliable improvement is flagged.",
                verbose_name="no-change review at sessions",
            ),
        ),
        migrations.AlterField(
            model_name="organization",
            name="time_zone",
            field=models.CharField(
                default="UTC",
                help_text="An IANA name such as Europe/Berlin. Dates and times are shown in this zone, and “today's session” is dated by it.",
                max_length=64,
                validators=[alliance_app.accounts.fields.validate_time_zone],
                verbose_name="time zone",
            ),
        ),
        migrations.AddConstraint(
            model_name="organization",
            constraint=models.CheckConstraint(
                condition=models.Q(("no_change_every__gte", 1)),
                name="organization_no_change_every_positive",
            ),
        ),
    ]
