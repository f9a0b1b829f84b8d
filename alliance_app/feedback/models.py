import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from alliance_app.clinic.models import Episode, TherapySession
from alliance_app.lib.choices import choices_from
from alliance_app.measures import Finding, FlagKind, Scale, Severity

ITEM_MIN = Decimal("0.0")
ITEM_MAX = Decimal("10.0")
ITEM_FIELDS = ("item_1", "item_2", "item_3", "item_4")


ScaleChoice = choices_from(
    Scale, {Scale.OUTCOME: _("Outcome rating"), Scale.SESSION: _("Session rating")}
)


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


def rater_key(rater: str, label: str) -> str:
    """Who rated, as one key ("client", "partner:Sam"): ratings are compared only within the
    same rater."""
    return f"{rater}:{label}" if label else rater


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
        return rater_key(self.rater, self.rater_label)

    @property
    def rater_display(self) -> str:
        label = self.get_rater_display()
        return f"{label} ({self.rater_label})" if self.rater_label else str(label)


FlagKindChoice = choices_from(
    FlagKind,
    {
        FlagKind.LOW_ALLIANCE: _("Low alliance"),
        FlagKind.ALLIANCE_DROP: _("Alliance drop"),
        FlagKind.LOW_ITEM: _("Low item"),
        FlagKind.DETERIORATION: _("Deterioration"),
        FlagKind.NO_CHANGE: _("No reliable change"),
    },
)

# Stored as the clinical core's number, so that lists sort by need in the database.
SeverityChoice = choices_from(
    Severity, {Severity.LOW: _("Low"), Severity.MEDIUM: _("Medium"), Severity.HIGH: _("High")}
)


class FlagStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


# A flag still asking for attention: not yet resolved.
OPEN_STATUSES = (FlagStatus.OPEN, FlagStatus.ACKNOWLEDGED)


class Flag(models.Model):
    """A signal that asks for a conversation, raised when a rating is stored. Never deleted."""

    client = models.ForeignKey(
        "clinic.Client", on_delete=models.CASCADE, related_name="flags", verbose_name=_("client")
    )
    rating = models.ForeignKey(
        Rating, on_delete=models.CASCADE, related_name="flags", verbose_name=_("rating")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=FlagKindChoice.choices)
    item = models.CharField(
        _("item"), max_length=40, blank=True, help_text=_("The item a low-item flag is about.")
    )
    severity = models.PositiveSmallIntegerField(_("severity"), choices=SeverityChoice.choices)
    explanation = models.TextField(_("explanation"))
    status = models.CharField(
        _("status"), max_length=20, choices=FlagStatus.choices, default=FlagStatus.OPEN
    )
    created_at = models.DateTimeField(_("raised at"), default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_note = models.TextField(_("acknowledgement note"), blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_note = models.TextField(_("resolution note"), blank=True)

    class Meta:
        verbose_name = _("flag")
        verbose_name_plural = _("flags")
        ordering = ["-severity", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=FlagKindChoice.values), name="flag_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(severity__in=SeverityChoice.values), name="flag_severity_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=FlagStatus.values), name="flag_status_valid"
            ),
            models.UniqueConstraint(fields=["rating", "kind", "item"], name="flag_once_per_rating"),
            # A resolved flag says who resolved it, when and what came of it.
            models.CheckConstraint(
                condition=~Q(status="resolved")
                | (Q(resolved_at__isnull=False) & ~Q(resolved_note="")),
                name="flag_resolved_with_note",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "status"], name="flag_client_status"),
            # The inbox and caseload read only flags still needing attention, a small share of
            # all flags once an organisation has used Alliance for a while.
            models.Index(
                fields=["-status", "-severity", "created_at"],
                condition=Q(status__in=["open", "acknowledged"]),
                name="flag_needing_attention",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.client}"

    @classmethod
    def from_finding(cls, finding: Finding, *, client, rating: Rating) -> "Flag":
        """The unsaved flag for a clinical rules' finding, explained in the active language."""
        return cls(
            client=client,
            rating=rating,
            kind=finding.kind.value,
            item=finding.item,
            severity=finding.severity,
            explanation=gettext(finding.message) % finding.params,
            created_at=rating.created_at,
        )


class RemoteLink(models.Model):
    """A one-time link for a client to rate a session on their own device.

    The URL carries a signed token holding this row's id and a random nonce; only the nonce's
    SHA-256 is stored, so the database alone cannot rebuild a working link.
    """

    session = models.ForeignKey(
        TherapySession,
        on_delete=models.CASCADE,
        related_name="remote_links",
        verbose_name=_("therapy session"),
    )
    instrument = models.CharField(_("instrument"), max_length=64)
    rater = models.CharField(_("rater"), max_length=20, choices=Rater.choices, default=Rater.CLIENT)
    rater_label = models.CharField(_("rater label"), max_length=60, blank=True)
    nonce_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    rating = models.OneToOneField(
        Rating,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="remote_link",
        verbose_name=_("rating"),
    )

    class Meta:
        verbose_name = _("remote link")
        verbose_name_plural = _("remote links")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")),
                name="remote_link_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(used_at__isnull=False),
                name="remote_link_rating_only_when_used",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} · {self.session}"

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at


class OutcomeEnds(models.Model):
    """An episode's first and latest outcome rating by the client (rater "client", no label).

    Kept up to date in each rating's transaction (`feedback.rollups`), so the team and
    organisation pages read one row per episode instead of searching its ratings. Ratings never
    change once stored, so their session numbers, totals and the first one's instrument are
    copied here: concurrent ratings move the ends with one conditional update each, and the
    pages need no join to the ratings. The episode's client and therapist are copied too, so
    that a team's episodes are read from one index and nothing else; the admin rebuilds the row
    when either changes.
    """

    episode = models.OneToOneField(
        Episode,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="outcome_ends",
        verbose_name=_("episode"),
    )
    client = models.ForeignKey(
        "clinic.Client",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # read through the episode or the therapist, never by client
        verbose_name=_("client"),
    )
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("therapist"),
    )
    first = models.ForeignKey(
        Rating, on_delete=models.CASCADE, related_name="+", verbose_name=_("first rating")
    )
    first_number = models.PositiveSmallIntegerField(_("first rating's session"))
    first_total = models.DecimalField(_("first rating's total"), max_digits=3, decimal_places=1)
    instrument = models.CharField(_("first rating's instrument"), max_length=64)
    latest = models.ForeignKey(
        Rating, on_delete=models.CASCADE, related_name="+", verbose_name=_("latest rating")
    )
    latest_number = models.PositiveSmallIntegerField(_("latest rating's session"))
    latest_total = models.DecimalField(_("latest rating's total"), max_digits=3, decimal_places=1)

    class Meta:
        verbose_name = _("episode outcome ends")
        verbose_name_plural = _("episode outcome ends")
        constraints = [
            models.CheckConstraint(
                condition=Q(first_number__lte=F("latest_number")),
                name="outcome_ends_in_session_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.episode}: sessions {self.first_number} to {self.latest_number}"


class AllianceMonth(models.Model):
    """The client's own session ratings in one episode and calendar month, summed.

    `concerns` counts those below their instrument's cut-off when they were stored, as the flags
    were raised. The episode's therapist is copied here so that a team's months are read from
    one index; the admin rebuilds an episode's rows when its therapist changes. Kept up to date
    in each rating's transaction (`feedback.rollups`).
    """

    episode = models.ForeignKey(
        Episode,
        on_delete=models.CASCADE,
        related_name="alliance_months",
        verbose_name=_("episode"),
    )
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # alliance_month_therapist leads with it
        verbose_name=_("therapist"),
    )
    month = models.DateField(_("month"), help_text=_("The month's first day."))
    total_sum = models.DecimalField(_("sum of totals"), max_digits=9, decimal_places=1)
    count = models.PositiveIntegerField(_("ratings"))
    concerns = models.PositiveIntegerField(_("ratings below the cut-off"))

    class Meta:
        verbose_name = _("monthly alliance sum")
        verbose_name_plural = _("monthly alliance sums")
        constraints = [
            models.UniqueConstraint(fields=["episode", "month"], name="alliance_month_once"),
            models.CheckConstraint(
                condition=Q(concerns__lte=F("count")), name="alliance_month_concerns_counted"
            ),
        ]
        indexes = [models.Index(fields=["therapist", "month"], name="alliance_month_therapist")]

    def __str__(self) -> str:
        return f"{self.episode}: {self.month:%Y-%m}"


class UnlockAttempts(models.Model):
    """The passwords tried on the unlock page during one hand-over of the tablet.

    Counted in the database, one row per hand-over, so that parallel requests cannot each read
    the same count (`feedback.client_mode`). The row goes when client mode ends.
    """

    hand_over = models.UUIDField(_("hand-over"), unique=True)
    attempts = models.PositiveSmallIntegerField(_("passwords tried"), default=0)
    counted_at = models.DateTimeField(_("count last changed"))

    class Meta:
        verbose_name = _("unlock attempts")
        verbose_name_plural = _("unlock attempts")

    def __str__(self) -> str:
        return f"{self.hand_over}: {self.attempts}"
