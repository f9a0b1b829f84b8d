from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TrainingKind(models.TextChoices):
    WORKSHOP = "workshop", _("Workshop")
    COURSE = "course", _("Course over several meetings")
    GROUP_SUPERVISION = "group_supervision", _("Group supervision on ruptures")
    VIDEO_REVIEW = "video_review", _("Review of session recordings")
    OTHER = "other", _("Other")


class Training(models.Model):
    """A training the organisation held: who attended, and when (DESIGN.md §5, training)."""

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="trainings",
        verbose_name=_("organisation"),
    )
    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=TrainingKind.choices)
    date = models.DateField(_("date"), help_text=_("The day it ended."))
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="trainings_attended",
        verbose_name=_("therapists who attended"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("training")
        verbose_name_plural = _("trainings")
        ordering = ["-date", "title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=TrainingKind.values), name="training_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["organization", "date"], name="training_org_date")]

    def __str__(self) -> str:
        return f"{self.title} ({self.date:%Y-%m-%d})"


class AnalysisStatus(models.TextChoices):
    FITTED = "fitted", _("Fitted")
    TOO_FEW = "too_few", _("Too few data")
    FAILED = "failed", _("The model did not converge")


class AllianceOutcomeFit(models.Model):
    """The alliance-outcome model last fitted for an organisation, or one of its teams: fitted by
    `manage.py fit_alliance_outcome`, never in a request, and read by the analysis page."""

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("organisation"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("team"),
        help_text=_("Blank: the whole organisation."),
    )
    fitted_at = models.DateTimeField(_("fitted at"), default=timezone.now)
    status = models.CharField(_("status"), max_length=10, choices=AnalysisStatus.choices)
    clients = models.PositiveIntegerField(_("clients"))
    sessions = models.PositiveIntegerField(_("session pairs"))
    results = models.JSONField(
        _("results"), default=dict, help_text=_("Estimates, intervals and the model's terms.")
    )

    class Meta:
        verbose_name = _("alliance-outcome analysis")
        verbose_name_plural = _("alliance-outcome analyses")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "team"], name="alliance_outcome_fit_once"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(team__isnull=True),
                name="alliance_outcome_fit_once_per_organization",
            ),
            models.CheckConstraint(
                condition=Q(status__in=AnalysisStatus.values),
                name="alliance_outcome_fit_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} · {self.team or '—'} · {self.fitted_at:%Y-%m-%d}"
