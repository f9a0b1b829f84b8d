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


DEFAULT_QUESTIONS = (
    _("When did the rater's scores begin to fall, and what might the therapist have noticed?"),
    _("Which part of the alliance gave way: the bond, the goals, or the way of working?"),
    _("What could the therapist have said or asked in the session after the fall?"),
    _("Where the scores came back, what seems to have helped? Where they did not, what might?"),
    _("What would you look out for in your own sessions after reading this case?"),
)


def default_questions() -> str:
    """The questions a new case set starts with, in the language of the one who makes it."""
    return "\n".join(str(question) for question in DEFAULT_QUESTIONS)


class CaseSet(models.Model):
    """A set of ruptures, without names or dates, for teaching (DESIGN.md §5, training)."""

    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="case_sets",
        verbose_name=_("organisation"),
    )
    title = models.CharField(_("title"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("put together by"),
    )
    created_at = models.DateTimeField(_("put together at"), default=timezone.now)
    show_therapist = models.BooleanField(
        _("name the therapist"),
        default=False,
        help_text=_("Only with the therapists' agreement: otherwise each case stays anonymous."),
    )
    questions = models.TextField(
        _("discussion questions"),
        default=default_questions,
        help_text=_("One question a line."),
    )

    class Meta:
        verbose_name = _("case set")
        verbose_name_plural = _("case sets")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.title

    @property
    def question_list(self) -> list[str]:
        return [line.strip() for line in self.questions.splitlines() if line.strip()]


class Case(models.Model):
    """One rupture in a case set, at its place in the handout."""

    case_set = models.ForeignKey(
        CaseSet, on_delete=models.CASCADE, related_name="cases", verbose_name=_("case set")
    )
    rupture = models.ForeignKey(
        "feedback.Rupture",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("rupture"),
    )
    position = models.PositiveSmallIntegerField(_("position"))

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["case_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["case_set", "rupture"], name="case_once_per_set"),
        ]

    def __str__(self) -> str:
        return f"{self.case_set} · {self.position}"
