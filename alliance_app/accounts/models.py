from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance_app.measures import FlagRules, RuptureRules
from alliance_app.measures.expected import (
    DEFAULT_MIN_EPISODES,
    DEFAULT_QUANTILE,
    ExpectedResponse,
)

from .fields import SessionNumbersField, validate_time_zone


def default_no_change_sessions() -> list[int]:
    return list(FlagRules.no_change_sessions)


# A scale's total runs from 0.0 to 40.0: thresholds outside it could never be judged.
TOTAL_MIN, TOTAL_MAX = Decimal("0.0"), Decimal("40.0")


class Organization(models.Model):
    """A clinic or agency: the boundary of everything anyone may see."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("short name"), unique=True)
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text=_(
            "An IANA name such as Europe/Berlin. Dates and times are shown in this zone, and "
            "“today's session” is dated by it."
        ),
    )
    # Flag thresholds (DESIGN.md §3). Blank alliance cutoff and reliable change mean "the
    # instrument's own value", so a child scale keeps its own numbers.
    alliance_cutoff = models.DecimalField(
        _("alliance cutoff"),
        max_digits=3,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(TOTAL_MIN), MaxValueValidator(TOTAL_MAX)],
        help_text=_(
            "Session totals below this raise a low-alliance flag. Blank: the scale's own cutoff."
        ),
    )
    alliance_drop = models.DecimalField(
        _("alliance drop"),
        max_digits=3,
        decimal_places=1,
        default=Decimal("1.0"),
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(TOTAL_MAX)],
        help_text=_("A fall of this many points from the previous session rating raises a flag."),
    )
    low_item = models.DecimalField(
        _("low item score"),
        max_digits=3,
        decimal_places=1,
        default=Decimal("9.0"),
        validators=[MinValueValidator(Decimal("0.0")), MaxValueValidator(Decimal("10.0"))],
        help_text=_("A session item below this raises a flag even when the total is fine."),
    )
    reliable_change = models.DecimalField(
        _("reliable change"),
        max_digits=3,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(TOTAL_MAX)],
        help_text=_(
            "Points of outcome change that count as reliable. Blank: the scale's own value."
        ),
    )
    require_two_factor = models.BooleanField(
        _("require two-factor login"),
        default=False,
        help_text=_("Every member must confirm logins with an authenticator app."),
    )
    no_change_sessions = SessionNumbersField(
        _("no-change review at sessions"),
        default=default_no_change_sessions,
        help_text=_(
            "Session numbers, separated by commas, at which a lack of reliable improvement is "
            "flagged."
        ),
    )
    no_change_every = models.PositiveSmallIntegerField(
        _("then no-change review every"),
        default=FlagRules.no_change_every,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Sessions between further reviews after the last listed session, for as long as "
            "the client has not improved reliably."
        ),
    )
    # Rupture and repair (measures.rupture, DESIGN.md §5).
    rupture_k = models.DecimalField(
        _("rupture threshold in SDs (k)"),
        max_digits=2,
        decimal_places=1,
        default=RuptureRules.k,
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("3.0"))],
        help_text=_(
            "A session total this many within-client SDs below the rater's usual level is a "
            "rupture: 1 follows Strauss et al. 2006, 2 the stricter rule of Stiles et al. 2004."
        ),
    )
    rupture_min_drop = models.DecimalField(
        _("rupture minimum drop"),
        max_digits=3,
        decimal_places=1,
        default=RuptureRules.min_drop,
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(TOTAL_MAX)],
        help_text=_("However steady a client, a fall of fewer points is never a rupture."),
    )
    rupture_baseline_window = models.PositiveSmallIntegerField(
        _("usual level: previous sessions"),
        default=RuptureRules.baseline_window,
        validators=[MinValueValidator(2), MaxValueValidator(10)],
        help_text=_("The rater's usual level is the mean of up to this many previous totals."),
    )
    rupture_repair_window = models.PositiveSmallIntegerField(
        _("repair within sessions"),
        default=RuptureRules.repair_window,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_(
            "A rupture is repaired when the total comes back within this many sessions, "
            "and unrepaired after them."
        ),
    )
    rupture_sd = models.DecimalField(
        _("fixed SD of session totals"),
        max_digits=3,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.10")), MaxValueValidator(Decimal("9.99"))],
        help_text=_(
            "Blank: measured from this organisation's own ratings (the pooled within-client SD)."
        ),
    )
    ask_tension = models.BooleanField(
        _("ask clients about tension"),
        default=True,
        help_text=_(
            "After the session scale, ask whether there was a moment of tension with the "
            "therapist and how far it was sorted out."
        ),
    )
    client_email = models.BooleanField(
        _("keep clients' e-mail addresses"),
        default=False,
        help_text=_(
            "Lets therapists store a client's e-mail address, apart from the pseudonymous record, "
            "to send rating links. Off: no address is stored, and turning it off erases them."
        ),
    )

    expected_quantile = models.DecimalField(
        _("expected response: boundary quantile"),
        max_digits=3,
        decimal_places=2,
        default=Decimal(str(DEFAULT_QUANTILE)),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("0.40"))],
        help_text=_(
            "The not-on-track line: a client below it is doing worse than this share of clients "
            "who started alike (0.10: worse than nine in ten)."
        ),
    )
    expected_min_episodes = models.PositiveIntegerField(
        _("expected response: closed episodes needed"),
        default=DEFAULT_MIN_EPISODES,
        validators=[MinValueValidator(20), MaxValueValidator(100000)],
        help_text=_(
            "Below this many closed episodes with three outcome ratings, no band is fitted."
        ),
    )
    expected_response = models.JSONField(
        _("expected response in use"),
        default=dict,
        blank=True,
        editable=False,
        help_text=_("The parameters of the fit in use, copied from it when it finished."),
    )

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(alliance_drop__gt=0), name="organization_alliance_drop_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(no_change_every__gte=1),
                name="organization_no_change_every_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(alliance_cutoff__isnull=True)
                | models.Q(alliance_cutoff__gte=TOTAL_MIN, alliance_cutoff__lte=TOTAL_MAX),
                name="organization_alliance_cutoff_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(reliable_change__isnull=True)
                | models.Q(reliable_change__gt=0, reliable_change__lte=TOTAL_MAX),
                name="organization_reliable_change_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(low_item__gte=0, low_item__lte=Decimal("10.0")),
                name="organization_low_item_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(rupture_k__gte=Decimal("0.5"), rupture_k__lte=Decimal("3.0")),
                name="organization_rupture_k_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(rupture_min_drop__gt=0, rupture_min_drop__lte=TOTAL_MAX),
                name="organization_rupture_min_drop_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(rupture_baseline_window__gte=2, rupture_baseline_window__lte=10),
                name="organization_rupture_baseline_window_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(rupture_repair_window__gte=1, rupture_repair_window__lte=10),
                name="organization_rupture_repair_window_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(rupture_sd__isnull=True) | models.Q(rupture_sd__gt=0),
                name="organization_rupture_sd_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    expected_quantile__gte=Decimal("0.01"), expected_quantile__lte=Decimal("0.40")
                ),
                name="organization_expected_quantile_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def flag_rules(self) -> FlagRules:
        return FlagRules(
            alliance_cutoff=self.alliance_cutoff,
            alliance_drop=self.alliance_drop,
            low_item=self.low_item,
            reliable_change=self.reliable_change,
            no_change_sessions=tuple(self.no_change_sessions),
            no_change_every=self.no_change_every,
        )

    def expected_response_model(self) -> ExpectedResponse | None:
        """The expected-response band in use, or None while there is none."""
        if not self.expected_response:
            return None
        return ExpectedResponse.from_json(self.expected_response)

    def rupture_rules(self) -> RuptureRules:
        return RuptureRules(
            baseline_window=self.rupture_baseline_window,
            k=self.rupture_k,
            min_drop=self.rupture_min_drop,
            repair_window=self.rupture_repair_window,
        )


class Team(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="teams", verbose_name=_("organisation")
    )
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="team_unique_name_per_org"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A member of staff. Clients never have accounts: they are pseudonymous codes."""

    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("Blank: the language the browser asks for, else English."),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class Role(models.TextChoices):
    ADMIN = "admin", _("Organisation admin")
    SUPERVISOR = "supervisor", _("Supervisor")
    THERAPIST = "therapist", _("Therapist")


class Membership(models.Model):
    """A user's place in one organisation: their role, their team, the teams they supervise."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="membership", verbose_name=_("user")
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="memberships",
        verbose_name=_("organisation"),
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("team"),
        help_text=_("The team whose clients this person sees as a therapist."),
    )
    supervised_teams = models.ManyToManyField(
        Team, blank=True, related_name="supervisors", verbose_name=_("supervised teams")
    )

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.organization}"


def default_invitation_expiry():
    return timezone.now() + timedelta(days=settings.INVITATION_DAYS)


class Invitation(models.Model):
    """A one-time link e-mailed to a new colleague, to set their password.

    The invited user exists from the start, inactive and without a usable password, so the
    staff page lists them with their role and teams. Only the token's hash is stored: the
    token itself is in the e-mail alone.
    """

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="invitations",
        verbose_name=_("organisation"),
    )
    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="invitation", verbose_name=_("user")
    )
    email = models.EmailField(_("e-mail address"))
    invited_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("sent at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), default=default_invitation_expiry)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(withdrawn_at__isnull=True),
                name="invitation_not_accepted_and_withdrawn",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def is_open(self, now=None) -> bool:
        """Whether the link still sets a password: not accepted, not withdrawn, not expired."""
        now = now or timezone.now()
        return self.accepted_at is None and self.withdrawn_at is None and now < self.expires_at


class DataVersion(models.Model):
    """One row whose counter rises after every committed write the dashboards may read
    (`accounts.data_version`): cached results are keyed by it."""

    counter = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.counter)
