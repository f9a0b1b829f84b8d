from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.models import Organization
from alliance_app.lib.choices import choices_from
from alliance_app.measures import AgeBand

AgeBandChoice = choices_from(
    AgeBand,
    {
        AgeBand.ADULT: _("Adult (18+)"),
        AgeBand.ADOLESCENT: _("Adolescent (13–17)"),
        AgeBand.CHILD: _("Child (6–12)"),
    },
)


class Client(models.Model):
    """A person in therapy, known to Alliance only by a pseudonymous code."""

    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        related_name="clients",
        verbose_name=_("organisation"),
    )
    code = models.CharField(
        _("client code"),
        max_length=32,
        help_text=_("A pseudonymous code, unique in the organisation. No names are needed."),
    )
    age_band = models.CharField(
        _("age band"),
        max_length=20,
        choices=AgeBandChoice.choices,
        help_text=_("Picks the adult, adolescent or child scales."),
    )
    primary_therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="primary_clients",
        verbose_name=_("primary therapist"),
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        default=settings.LANGUAGE_CODE,
        help_text=_(
            "Client mode and remote links speak this language, whatever the therapist's, and "
            "ask the scales worded in it where they are translated."
        ),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"], name="client_unique_code_per_org"
            ),
            models.CheckConstraint(
                condition=Q(age_band__in=AgeBandChoice.values), name="client_age_band_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Closure(models.TextChoices):
    PLANNED = "planned", _("Planned ending")
    UNPLANNED = "unplanned", _("Unplanned ending (dropout)")
    TRANSFERRED = "transferred", _("Transferred")


class Episode(models.Model):
    """One course of care for a client, from first session to closure."""

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="episodes", verbose_name=_("client")
    )
    therapist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="episodes",
        verbose_name=_("therapist"),
    )
    opened = models.DateField(_("opened"))
    closed = models.DateField(_("closed"), null=True, blank=True)
    closure = models.CharField(_("closure"), max_length=20, choices=Closure.choices, blank=True)

    class Meta:
        verbose_name = _("episode of care")
        verbose_name_plural = _("episodes of care")
        ordering = ["-opened"]
        constraints = [
            models.UniqueConstraint(
                fields=["client"],
                condition=Q(closed__isnull=True),
                name="episode_one_open_per_client",
            ),
            models.CheckConstraint(
                condition=Q(closed__isnull=True) | Q(closed__gte=F("opened")),
                name="episode_closed_after_opened",
            ),
            # A closed episode says how it ended; an open one has no closure yet.
            models.CheckConstraint(
                condition=(Q(closed__isnull=True) & Q(closure=""))
                | (Q(closed__isnull=False) & Q(closure__in=Closure.values)),
                name="episode_closure_iff_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client} · {self.opened:%Y-%m-%d}"

    @property
    def is_open(self) -> bool:
        return self.closed is None


class SessionFormat(models.TextChoices):
    INDIVIDUAL = "individual", _("Individual")
    COUPLE = "couple", _("Couple")
    FAMILY = "family", _("Family")
    GROUP = "group", _("Group")


class TherapySession(models.Model):
    episode = models.ForeignKey(
        Episode, on_delete=models.CASCADE, related_name="sessions", verbose_name=_("episode")
    )
    number = models.PositiveSmallIntegerField(_("session number"))
    date = models.DateField(_("date"))
    format = models.CharField(
        _("format"), max_length=20, choices=SessionFormat.choices, default=SessionFormat.INDIVIDUAL
    )

    class Meta:
        verbose_name = _("therapy session")
        verbose_name_plural = _("therapy sessions")
        ordering = ["episode", "number"]
        constraints = [
            models.UniqueConstraint(fields=["episode", "number"], name="session_unique_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="session_number_positive"),
            models.CheckConstraint(
                condition=Q(format__in=SessionFormat.values), name="session_format_valid"
            ),
        ]

    def __str__(self) -> str:
        return _("Session %(number)s on %(date)s") % {"number": self.number, "date": self.date}


class ClientContact(models.Model):
    """The address rating links are e-mailed to, kept apart from the pseudonymous record.

    Stored only while the organisation keeps clients' e-mail addresses (`client_email`), shown
    only to the client's own therapists, erased with the client, and in no export (the services
    in `clinic.contacts`).
    """

    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, related_name="contact", verbose_name=_("client")
    )
    email = models.EmailField(_("e-mail address"), max_length=254)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("client's e-mail address")
        verbose_name_plural = _("clients' e-mail addresses")

    def __str__(self) -> str:
        # Never the address: this may end up in a log or an admin list.
        return _("E-mail address of %(client)s") % {"client": self.client}
