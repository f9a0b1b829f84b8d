import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance_app.clinic.models import TherapySession
from alliance_app.measures import Scale

ITEM_MIN = Decimal("0.0")
ITEM_MAX = Decimal("10.0")
ITEM_FIELDS = ("item_1", "item_2", "item_3", "item_4")


class ScaleChoice(models.TextChoices):
    OUTCOME = Scale.OUTCOME.value, _("Outcome rating")
    SESSION = Scale.SESSION.value, _("Session rating")


class Rater(models.TextChoices):
    CLIENT = "client", _("Client")
    PARTNER = "partner", _("Partner")
    PARENT = "parent", _("Parent")
    TEACHER = "teacher", _("Teacher")
    OTHER = "other", _("Other")


class Channel(models.TextChoices):
    TABLET = "tablet", _("Tablet in the room")
    REMOTE = "remote", _("Remote link")
    PAPER = "paper", _("Paper entry")


def _item_field(number: int) -> models.DecimalField:
    return models.DecimalField(
        _("item %(number)s") % {"number": number}, max_digits=3, decimal_places=1
    )


class Rating(models.Model):
    """One rater's answers to one four-item scale in one therapy session.

    Items are stored in the instrument's order (item_1 is the instrument's first item); the
    instrument definition names them.
    """

    session = models.ForeignKey(
        TherapySession,
        on_delete=models.CASCADE,
        related_name="ratings",
        verbose_name=_("therapy session"),
    )
    instrument = models.CharField(_("instrument"), max_length=64)
    scale = models.CharField(_("scale"), max_length=20, choices=ScaleChoice.choices)
    rater = models.CharField(_("rater"), max_length=20, choices=Rater.choices, default=Rater.CLIENT)
    rater_label = models.CharField(
        _("rater label"),
        max_length=60,
        blank=True,
        help_text=_("Tells raters of the same kind apart, e.g. 'Mother' and 'Father'."),
    )
    item_1 = _item_field(1)
    item_2 = _item_field(2)
    item_3 = _item_field(3)
    item_4 = _item_field(4)
    total = models.DecimalField(_("total"), max_digits=3, decimal_places=1)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    created_at = models.DateTimeField(_("stored at"), default=timezone.now)
    idempotency_key = models.UUIDField(_("idempotency key"), default=uuid.uuid4, unique=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("entered by"),
    )

    class Meta:
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")
        ordering = ["session", "scale", "rater", "rater_label"]
        constraints = [
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{name}__gte": ITEM_MIN, f"{name}__lte": ITEM_MAX}),
                    name=f"rating_{name}_in_range",
                )
                for name in ITEM_FIELDS
            ),
            models.CheckConstraint(
                condition=Q(total__gte=Decimal("0.0"), total__lte=Decimal("40.0")),
                name="rating_total_in_range",
            ),
            # SQLite keeps decimals as binary floats, so the sum is checked within half a tenth.
            models.CheckConstraint(
                condition=Q(
                    total__gte=F("item_1")
                    + F("item_2")
                    + F("item_3")
                    + F("item_4")
                    - Decimal("0.05")
                )
                & Q(
                    total__lte=F("item_1")
                    + F("item_2")
                    + F("item_3")
                    + F("item_4")
                    + Decimal("0.05")
                ),
                name="rating_total_is_sum",
            ),
            models.CheckConstraint(
                condition=Q(scale__in=ScaleChoice.values), name="rating_scale_valid"
            ),
            models.CheckConstraint(condition=Q(rater__in=Rater.values), name="rating_rater_valid"),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="rating_channel_valid"
            ),
            models.UniqueConstraint(
                fields=["session", "scale", "rater", "rater_label"],
                name="rating_one_per_rater_and_scale",
            ),
        ]
        indexes = [models.Index(fields=["session", "scale"], name="rating_session_scale")]

    def __str__(self) -> str:
        return f"{self.get_scale_display()} {self.total} · {self.rater_display}"

    @property
    def items(self) -> tuple[Decimal, ...]:
        return tuple(getattr(self, name) for name in ITEM_FIELDS)

    @property
    def rater_key(self) -> str:
        """Who rated, as one key: ratings are compared only within the same rater."""
        return f"{self.rater}:{self.rater_label}" if self.rater_label else self.rater

    @property
    def rater_display(self) -> str:
        label = self.get_rater_display()
        return f"{label} ({self.rater_label})" if self.rater_label else str(label)
