import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from alliance_app.clinic.models import Episode, TherapySession
from alliance_app.lib.choices import choices_from
from alliance_app.measures import (
    FALLBACK_LANGUAGE,
    RESOLUTION_MAX,
    RESOLUTION_MIN,
    BordinDimension,
    Finding,
    FlagKind,
    RuptureStatus,
    Scale,
    Severity,
)
from alliance_app.measures.rupture import DIMENSION_CODES, dimensions_named

from .instruments import catalogue

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
        FlagKind.RUPTURE: _("Rupture"),
        FlagKind.CLIENT_REPORTED_TENSION: _("Client-reported tension"),
        FlagKind.NOT_ON_TRACK: _("Not on track"),
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


# Not a value of the message: which instrument an item flag's item belongs to (`explain`).
INSTRUMENT_PARAM = "instrument"


def explain(message: str, params: dict, item: str = "", *, fallback: str = "") -> str:
    """A flag's explanation in the active language, from its message and values.

    Item labels are the instrument's data, not the catalogue's: an item flag's label is read
    from the version of its instrument in the active language. Without a message (a flag
    stored before messages were kept), or with values the translation does not fit, the stored
    English text is shown rather than nothing.
    """
    if not message:
        return fallback
    values = dict(params)
    code = values.pop(INSTRUMENT_PARAM, None)
    tied = values.pop(DIMENSION_CODES, None)
    if tied:
        values["dimensions"] = dimensions_named(tied.split(), gettext)
    if code and item and code in catalogue():
        instrument = catalogue().translated(code, get_language() or FALLBACK_LANGUAGE)
        labels = {entry.key: entry.label for entry in instrument.items}
        values["item"] = labels.get(item, values.get("item", ""))
    try:
        return gettext(message) % values
    except (KeyError, TypeError, ValueError):
        return fallback


def explained_row(row: dict) -> dict:
    """A flag read with .values(..., "item", "message", "params", "explanation"), its
    explanation in the active language as the pages show it."""
    message, params = row.pop("message"), row.pop("params")
    row["explanation"] = explain(message, params, row["item"], fallback=row["explanation"])
    return row


class Flag(models.Model):
    """A signal that asks for a conversation, raised when a rating is stored. Never deleted."""

    client = models.ForeignKey(
        "clinic.Client", on_delete=models.CASCADE, related_name="flags", verbose_name=_("client")
    )
    rating = models.ForeignKey(
        Rating, on_delete=models.CASCADE, related_name="flags", verbose_name=_("rating")
    )
    kind = models.CharField(_("kind"), max_length=32, choices=FlagKindChoice.choices)
    item = models.CharField(
        _("item"), max_length=40, blank=True, help_text=_("The item a low-item flag is about.")
    )
    severity = models.PositiveSmallIntegerField(_("severity"), choices=SeverityChoice.choices)
    # The explanation is kept as the clinical core's message (the msgid) and its values, and
    # translated when shown (`explained`); `explanation` holds it in English, and is what flags
    # raised before messages were kept show.
    message = models.TextField(_("message"), blank=True)
    params = models.JSONField(_("message values"), default=dict, blank=True)
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
    fit = models.ForeignKey(
        "ExpectedResponseFit",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="flags",
        verbose_name=_("expected-response fit"),
        help_text=_("The fit whose boundary raised a not-on-track flag; a refit never changes it."),
    )

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
    def from_finding(cls, finding: Finding, *, client, rating: Rating, fit_id=None) -> "Flag":
        """The unsaved flag for a clinical rules' finding: its message and values, translated
        when shown. An item's flag keeps the rating's instrument too, so the item is named in
        the reader's language."""
        params = dict(finding.params)
        if finding.item:
            params[INSTRUMENT_PARAM] = rating.instrument
        return cls(
            client=client,
            rating=rating,
            fit_id=fit_id,
            kind=finding.kind.value,
            item=finding.item,
            severity=finding.severity,
            message=finding.message,
            params=params,
            explanation=finding.explain(),
            created_at=rating.created_at,
        )

    @property
    def explained(self) -> str:
        """The explanation in the active language."""
        return explain(self.message, self.params, self.item, fallback=self.explanation)


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


class LinkEmailStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class RatingLinkEmail(models.Model):
    """A rating link to be e-mailed to the client, now or at `send_at`.

    Only what the link is for is stored: the link itself is created when the e-mail is sent
    (`feedback.link_emails`), since a link's URL cannot be rebuilt from the database. The
    address is read from the client's contact at that moment and is never copied here.
    """

    session = models.ForeignKey(
        TherapySession,
        on_delete=models.CASCADE,
        related_name="link_emails",
        verbose_name=_("therapy session"),
    )
    instrument = models.CharField(_("instrument"), max_length=64)
    rater = models.CharField(_("rater"), max_length=20, choices=Rater.choices, default=Rater.CLIENT)
    rater_label = models.CharField(_("rater label"), max_length=60, blank=True)
    send_at = models.DateTimeField(_("send at"))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=LinkEmailStatus.choices,
        default=LinkEmailStatus.SCHEDULED,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("sending started at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.CharField(_("error"), max_length=200, blank=True)
    remote_link = models.OneToOneField(
        RemoteLink,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="email",
        verbose_name=_("remote link"),
    )

    class Meta:
        verbose_name = _("rating link e-mail")
        verbose_name_plural = _("rating link e-mails")
        ordering = ["-send_at", "-pk"]
        indexes = [models.Index(fields=["status", "send_at"], name="link_email_due")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=LinkEmailStatus.values), name="link_email_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=LinkEmailStatus.SENT, sent_at__isnull=False)
                | (~Q(status=LinkEmailStatus.SENT) & Q(sent_at__isnull=True)),
                name="link_email_sent_at_iff_sent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} · {self.session} · {self.status}"


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
    tensions_answered = models.PositiveIntegerField(_("tension questions answered"), default=0)
    tensions = models.PositiveIntegerField(_("tensions reported"), default=0)
    tension_resolution_sum = models.PositiveIntegerField(_("sum of tension resolutions"), default=0)

    class Meta:
        verbose_name = _("monthly alliance sum")
        verbose_name_plural = _("monthly alliance sums")
        constraints = [
            models.UniqueConstraint(fields=["episode", "month"], name="alliance_month_once"),
            models.CheckConstraint(
                condition=Q(concerns__lte=F("count")), name="alliance_month_concerns_counted"
            ),
            models.CheckConstraint(
                condition=Q(tensions__lte=F("tensions_answered"))
                & Q(tensions_answered__lte=F("count")),
                name="alliance_month_tensions_counted",
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


class TensionReport(models.Model):
    """The rater's answer to the tension question, sent with the session rating it follows
    (`measures.tension`): stored in the rating's transaction, so exactly once with it."""

    rating = models.OneToOneField(
        Rating,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="tension",
        verbose_name=_("rating"),
    )
    tension = models.BooleanField(_("felt tension"))
    resolution = models.PositiveSmallIntegerField(
        _("how far it was sorted out"),
        null=True,
        blank=True,
        help_text=_("From 1 (not at all) to 5 (completely); only after a yes."),
    )

    class Meta:
        verbose_name = _("tension report")
        verbose_name_plural = _("tension reports")
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    tension=True,
                    resolution__gte=RESOLUTION_MIN,
                    resolution__lte=RESOLUTION_MAX,
                )
                | Q(tension=False, resolution__isnull=True),
                name="tension_resolution_after_yes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rating}: {'yes' if self.tension else 'no'}"


RuptureStatusChoice = choices_from(
    RuptureStatus,
    {
        RuptureStatus.PENDING: _("Pending"),
        RuptureStatus.REPAIRED: _("Repaired"),
        RuptureStatus.UNREPAIRED: _("Unrepaired"),
    },
)

BordinChoice = choices_from(
    BordinDimension,
    {
        BordinDimension.BOND: _("Bond"),
        BordinDimension.GOALS: _("Goals"),
        BordinDimension.TASKS: _("Tasks"),
        BordinDimension.GENERAL: _("The session as a whole"),
    },
)


class RuptureSD(models.Model):
    """The SD of session totals that an organisation's rupture threshold is built on: its pooled
    within-client SD (`measures.pooled_within_sd`), or the fallback while it has too few series.
    Measured by `manage.py rebuild_ruptures`, not on every rating, so that a threshold stays put
    between two measurements and every page can say which one is in force."""

    organization = models.OneToOneField(
        "accounts.Organization",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="rupture_sd_measured",
        verbose_name=_("organisation"),
    )
    value = models.DecimalField(_("SD"), max_digits=5, decimal_places=2)
    series = models.PositiveIntegerField(_("series"))
    degrees_of_freedom = models.PositiveIntegerField(_("degrees of freedom"))
    is_fallback = models.BooleanField(_("fallback"))
    measured_at = models.DateTimeField(_("measured at"), default=timezone.now)

    class Meta:
        verbose_name = _("measured SD of session totals")
        verbose_name_plural = _("measured SDs of session totals")
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="rupture_sd_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.value}"


class Rupture(models.Model):
    """A rupture found in one rater's session ratings of one episode (`measures.ruptures_for`).

    Derived: `feedback.ruptures` rewrites an episode's rows from its ratings whenever one is
    stored, so the pages read ruptures, their repair and their part of the alliance from one
    table. The flag it raised hangs on the same rating, kind "rupture", and is never removed.
    The episode's therapist is copied, as in the other summary rows.
    """

    rating = models.OneToOneField(
        Rating,
        on_delete=models.CASCADE,
        related_name="rupture",
        verbose_name=_("rating at the rupture"),
    )
    episode = models.ForeignKey(
        Episode, on_delete=models.CASCADE, related_name="ruptures", verbose_name=_("episode")
    )
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # rupture_therapist_month leads with it
        verbose_name=_("therapist"),
    )
    rater = models.CharField(_("rater"), max_length=20, choices=Rater.choices)
    rater_label = models.CharField(_("rater label"), max_length=60, blank=True)
    session_number = models.PositiveSmallIntegerField(_("session"))
    month = models.DateField(_("month"), help_text=_("The first day of the session's month."))
    total = models.DecimalField(_("total"), max_digits=3, decimal_places=1)
    baseline = models.DecimalField(_("usual level"), max_digits=4, decimal_places=2)
    drop = models.DecimalField(_("drop"), max_digits=4, decimal_places=2)
    threshold = models.DecimalField(_("threshold"), max_digits=5, decimal_places=3)
    dimensions = models.CharField(
        _("part of the alliance"),
        max_length=40,
        help_text=_("The Bordin dimension(s) of the item(s) that fell most, space-separated."),
    )
    status = models.CharField(_("status"), max_length=12, choices=RuptureStatusChoice.choices)
    repaired_number = models.PositiveSmallIntegerField(_("repaired at session"), null=True)
    sessions_to_repair = models.PositiveSmallIntegerField(_("sessions to repair"), null=True)

    class Meta:
        verbose_name = _("rupture")
        verbose_name_plural = _("ruptures")
        ordering = ["episode", "rater", "rater_label", "session_number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RuptureStatusChoice.values), name="rupture_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(
                    status="repaired",
                    repaired_number__gt=F("session_number"),
                    sessions_to_repair__gte=1,
                )
                | (
                    ~Q(status="repaired")
                    & Q(repaired_number__isnull=True, sessions_to_repair__isnull=True)
                ),
                name="rupture_repair_recorded",
            ),
        ]
        indexes = [
            models.Index(fields=["therapist", "month"], name="rupture_therapist_month"),
        ]

    def __str__(self) -> str:
        return f"{self.episode}: session {self.session_number} ({self.status})"

    @property
    def dimension_list(self) -> list[BordinDimension]:
        return [BordinDimension(code) for code in self.dimensions.split()]

    @property
    def dimension_labels(self) -> list[str]:
        labels = dict(BordinChoice.choices)
        return [labels[code] for code in self.dimensions.split()]


class ReflectionOptionKind(models.TextChoices):
    MARKER = "marker", _("What it looked like")
    STRATEGY = "strategy", _("What the therapist did")


class ReflectionOption(models.Model):
    """One choice on the reflection form, as data so that an organisation can adapt the list.

    The built-in options (`feedback.reflections.BUILTIN`) carry a code and take their label from
    the translations; an organisation may relabel one, hide it, or add its own with a label.
    """

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="reflection_options",
        verbose_name=_("organisation"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ReflectionOptionKind.choices)
    code = models.SlugField(_("code"), max_length=40)
    label = models.CharField(
        _("label"),
        max_length=120,
        blank=True,
        help_text=_("Blank for a built-in option: its own words, in the reader's language."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(_("offered"), default=True)
    exclusive = models.BooleanField(
        _("stands alone"),
        default=False,
        help_text=_("Cannot be chosen together with another option (e.g. “nothing yet”)."),
    )

    class Meta:
        verbose_name = _("reflection option")
        verbose_name_plural = _("reflection options")
        ordering = ["organization", "kind", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "code"], name="reflection_option_once"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ReflectionOptionKind.values),
                name="reflection_option_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        from .reflections import option_label

        return option_label(self)


class Reflection(models.Model):
    """The therapist's reflection on a rupture or a reported tension (DESIGN.md §5): the marker
    (after Safran & Muran), the part of the alliance, what they did, a note, and whether the
    note may be used, without names, for teaching. One per flag; its author may revise it."""

    flag = models.OneToOneField(
        Flag, on_delete=models.CASCADE, related_name="reflection", verbose_name=_("flag")
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("written by"),
    )
    created_at = models.DateTimeField(_("written at"), default=timezone.now)
    updated_at = models.DateTimeField(_("last changed"), default=timezone.now)
    marker = models.ForeignKey(
        ReflectionOption,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": ReflectionOptionKind.MARKER},
        verbose_name=_("what it looked like"),
    )
    dimension = models.CharField(
        _("part of the alliance"),
        max_length=10,
        choices=[(c, label) for c, label in BordinChoice.choices if c != BordinDimension.GENERAL],
    )
    strategies = models.ManyToManyField(
        ReflectionOption,
        related_name="+",
        limit_choices_to={"kind": ReflectionOptionKind.STRATEGY},
        verbose_name=_("what I did"),
    )
    note = models.TextField(_("note"), blank=True, max_length=2000)
    teaching_consent = models.BooleanField(
        _("may be used, without names, for teaching"), default=False
    )

    class Meta:
        verbose_name = _("reflection")
        verbose_name_plural = _("reflections")
        constraints = [
            models.CheckConstraint(
                condition=Q(dimension__in=["bond", "goals", "tasks"]),
                name="reflection_dimension_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flag}: {self.get_dimension_display()}"


class FitStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting to start")
    RUNNING = "running", _("Fitting")
    DONE = "done", _("In use")
    TOO_FEW = "too_few", _("Too few episodes")
    FAILED = "failed", _("Failed")


class ExpectedResponseFit(models.Model):
    """One fit of the expected-response band (`measures.expected`), kept for good: versioned per
    organisation, with what it was fitted on and how well it predicted on held-out episodes.

    A finished fit's parameters are copied to `Organization.expected_response`, the fit in use;
    flags raised under it point here, so a refit never changes them. `source` is empty for a fit
    made from this organisation's episodes and describes the origin of parameters loaded from a
    file ("fitted elsewhere").
    """

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="expected_response_fits",
        verbose_name=_("organisation"),
    )
    version = models.PositiveIntegerField(_("version"))
    status = models.CharField(
        _("status"), max_length=10, choices=FitStatus.choices, default=FitStatus.QUEUED
    )
    source = models.CharField(_("fitted elsewhere"), max_length=300, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    created_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    quantile = models.DecimalField(_("boundary quantile"), max_digits=3, decimal_places=2)
    min_episodes = models.PositiveIntegerField(_("episodes needed"))
    episodes = models.PositiveIntegerField(_("closed episodes"), default=0)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    validation = models.JSONField(_("validation"), default=dict, blank=True)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)
    peak_memory_mb = models.FloatField(_("peak memory (MB)"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("expected-response fit")
        verbose_name_plural = _("expected-response fits")
        ordering = ["organization", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "version"], name="expected_fit_version_once"
            ),
            models.CheckConstraint(
                condition=Q(status__in=FitStatus.values), name="expected_fit_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} · v{self.version} · {self.get_status_display()}"

    @property
    def fitted_elsewhere(self) -> bool:
        return bool(self.source)
