"""The audit trail: who looked at or did what, and when. Entries are only ever added.

Append-only is enforced three times: here in Python, in the admin, and by database triggers
(migration 0002), so neither a code path we forgot nor a raw SQL statement can change the record.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.models import Organization


class AuditImmutable(PermissionError):
    """An audit entry was about to be changed or deleted."""


class Action(models.TextChoices):
    CLIENT_VIEWED = "client_viewed", _("Client record viewed")
    RATING_VIEWED = "rating_viewed", _("Rating result viewed")
    REMOTE_LINK_VIEWED = "remote_link_viewed", _("Remote link viewed")
    ADMIN_RECORD_VIEWED = "admin_record_viewed", _("Client record opened in the admin")
    CLIENT_EXPORTED = "client_exported", _("Client record exported")
    CLIENT_DELETED = "client_deleted", _("Client deleted")
    EXPORT_DOWNLOADED = "export_downloaded", _("Export downloaded")
    FLAG_ACKNOWLEDGED = "flag_acknowledged", _("Flag acknowledged")
    FLAG_RESOLVED = "flag_resolved", _("Flag resolved")
    CLIENT_MODE_UNLOCKED = "client_mode_unlocked", _("Client mode unlocked")
    CLIENT_MODE_UNLOCK_FAILED = "client_mode_unlock_failed", _("Client mode unlock failed")
    REMOTE_LINK_CREATED = "remote_link_created", _("Remote link created")
    REMOTE_LINK_USED = "remote_link_used", _("Remote link used")
    LOGIN = "login", _("Logged in")
    LOGIN_FAILED = "login_failed", _("Login failed")
    LOGOUT = "logout", _("Logged out")
    AUDIT_EXPORTED = "audit_exported", _("Audit trail exported")
    REFLECTION_VIEWED = "reflection_viewed", _("Reflection on a flag viewed")
    REFLECTION_SAVED = "reflection_saved", _("Reflection on a flag saved")
    TRAINING_SAVED = "training_saved", _("Training recorded or changed")
    PAPER_IMPORT_CHECKED = "paper_import_checked", _("Paper ratings checked")
    PAPER_IMPORTED = "paper_imported", _("Paper ratings imported")
    CLIENT_PROGRESS_SHOWN = "client_progress_shown", _("Client shown their own progress")
    EXPECTED_FIT_STARTED = "expected_fit_started", _("Expected-response fit started")
    EXPECTED_PARAMETERS_LOADED = (
        "expected_parameters_loaded",
        _("Expected-response parameters loaded from a file"),
    )
    FHIR_EXPORTED = "fhir_exported", _("Client ratings exported as FHIR")
    FHIR_IMPORT_CHECKED = "fhir_import_checked", _("FHIR ratings checked")
    FHIR_IMPORTED = "fhir_imported", _("FHIR ratings imported")
    CLIENT_CREATED = "client_created", _("Client added")
    CLIENT_CHANGED = "client_changed", _("Client's code, age band or language changed")
    CLIENT_ARCHIVED = "client_archived", _("Client archived")
    CLIENT_REACTIVATED = "client_reactivated", _("Client reactivated")
    CLIENT_HANDED_OVER = "client_handed_over", _("Client handed to another therapist")
    STAFF_INVITED = "staff_invited", _("Colleague invited")
    INVITATION_ACCEPTED = "invitation_accepted", _("Invitation accepted")
    INVITATION_WITHDRAWN = "invitation_withdrawn", _("Invitation withdrawn")
    STAFF_CHANGED = "staff_changed", _("Colleague's role or teams changed")
    STAFF_DEACTIVATED = "staff_deactivated", _("Colleague deactivated")
    STAFF_REACTIVATED = "staff_reactivated", _("Colleague reactivated")
    TEAM_CREATED = "team_created", _("Team created")
    TEAM_RENAMED = "team_renamed", _("Team renamed")
    TEAMS_MERGED = "teams_merged", _("Teams merged")
    SETTINGS_CHANGED = "settings_changed", _("Organisation settings changed")
    PASSWORD_RESET_REQUESTED = "password_reset_requested", _("Password reset requested")
    PASSWORD_RESET_DONE = "password_reset_done", _("Password set from a reset link")
    CLIENT_CONTACT_CHANGED = "client_contact_changed", _("Client's e-mail address changed")
    CLIENT_CONTACT_VIEWED = "client_contact_viewed", _("Client's e-mail address viewed")
    RATING_LINK_SCHEDULED = "rating_link_scheduled", _("Rating link e-mail scheduled")
    RATING_LINK_CANCELLED = "rating_link_cancelled", _("Rating link e-mail cancelled")
    RATING_LINK_SENT = "rating_link_sent", _("Rating link e-mailed to the client")


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutable("audit entries are append-only: they cannot be updated")

    def delete(self):
        raise AuditImmutable("audit entries are append-only: they cannot be deleted")


class AuditEntry(models.Model):
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    # Null for events outside any organisation, such as a failed login of an unknown username.
    organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_entries",
        verbose_name=_("organisation"),
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_name = models.CharField(
        _("actor name"),
        max_length=150,
        blank=True,
        help_text=_("The username at the time; for a failed login, the username tried."),
    )
    action = models.CharField(_("action"), max_length=40, choices=Action.choices)
    object_type = models.CharField(_("object type"), max_length=40, blank=True)
    # Text, not a foreign key: the entry outlives the object it is about.
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    detail = models.CharField(
        _("detail"),
        max_length=300,
        blank=True,
        help_text=_("A name such as an export file or a client code; never clinical content."),
    )
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["organization", "at"], name="audit_org_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '—'} {self.action}"

    def save(self, **kwargs) -> None:
        if not self._state.adding:
            raise AuditImmutable("audit entries are append-only: a saved entry cannot change")
        # Never an UPDATE, even for a new instance given an existing primary key.
        super().save(**{**kwargs, "force_insert": True})

    def delete(self, **kwargs):
        raise AuditImmutable("audit entries are append-only: they cannot be deleted")
