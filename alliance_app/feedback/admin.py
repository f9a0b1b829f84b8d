"""The admin of clients and everything recorded about them.

The clinic's models are registered here rather than in `clinic`: saving them in the admin rebuilds
the summary rows, which live in this app, and the layers only import downwards. For the same reason
the organisation's admin is extended here: a new alliance cutoff recounts the concerns in the
summary rows. Opening one of these records in the admin is recorded in the audit trail, as opening
the client's page is.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.admin import OrganizationAdmin as AccountsOrganizationAdmin
from alliance_app.accounts.admin import (
    OrganizationScopedAdmin,
    ReadOnlyAdmin,
    ScopedTabularInline,
)
from alliance_app.accounts.models import Organization
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.models import Client, Episode, TherapySession

from . import expected, rollups, ruptures
from .models import ExpectedResponseFit, Flag, Rating, ReflectionOption, RemoteLink


def _rollups_rebuild(*episode_ids) -> None:
    """What is changed here can move ratings between months (a session's date), reorder them
    (its number) or hand them to another therapist (the episode's): the episodes' summary rows
    are made again from their ratings."""
    rollups.rebuild(Episode.objects.filter(pk__in=[pk for pk in episode_ids if pk]))


RUPTURE_SETTINGS = {
    "rupture_k",
    "rupture_min_drop",
    "rupture_baseline_window",
    "rupture_repair_window",
    "rupture_sd",
}


class OrganizationAdmin(AccountsOrganizationAdmin):
    actions = ["ruptures_measure", "expected_response_fit"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [
            *fieldsets,
            (_("SD of session totals in force"), {"fields": ["rupture_sd_in_force"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "rupture_sd_in_force"]

    @admin.display(description=_("SD in force"))
    def rupture_sd_in_force(self, obj) -> str:
        sd = ruptures.sd_in_force(obj)
        threshold = obj.rupture_rules().threshold(sd.value)
        source = {
            ruptures.SDSource.FIXED: _("fixed above"),
            ruptures.SDSource.MEASURED: _(
                "measured from %(series)s series (%(df)s degrees of freedom)"
            )
            % {"series": sd.series, "df": sd.degrees_of_freedom},
            ruptures.SDSource.FALLBACK: _(
                "fallback: the organisation has too few rated series to measure its own"
            ),
        }[sd.source]
        return _("%(sd)s, %(source)s; rupture threshold %(threshold)s points") % {
            "sd": ruptures.points_shown(sd.value),
            "source": source,
            "threshold": ruptures.points_shown(threshold),
        }

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        # The monthly sums count the ratings below the alliance cutoff: a new cutoff recounts
        # them, so the team pages agree with the flags at once (in this save's transaction).
        if change and "alliance_cutoff" in form.changed_data:
            rollups.rebuild(Episode.objects.filter(client__organization=obj))
        # A new rupture rule finds the ruptures again (flags already raised stay as they are).
        if change and RUPTURE_SETTINGS & set(form.changed_data):
            ruptures.rebuild(obj)

    @admin.action(description=_("Measure the SD of session totals and find ruptures again"))
    def ruptures_measure(self, request, queryset) -> None:
        for organization in queryset:
            ruptures.sd_measure(organization)
            count = ruptures.rebuild(organization)
            sd = ruptures.sd_in_force(organization)
            self.message_user(
                request,
                _("%(organization)s: SD %(sd)s, %(count)s ruptures.")
                % {"organization": organization, "sd": sd.value, "count": count},
            )

    @admin.action(description=_("Fit the expected-response band again (in the background)"))
    def expected_response_fit(self, request, queryset) -> None:
        for organization in queryset:
            try:
                job = expected.fit_start(organization, by=request.user)
            except ValidationError as refused:
                self.message_user(
                    request, f"{organization}: {' '.join(refused.messages)}", messages.WARNING
                )
                continue
            self.message_user(
                request,
                _("%(organization)s: fit version %(version)s started; it runs in the background.")
                % {"organization": organization, "version": job.version},
            )


@admin.register(ExpectedResponseFit)
class ExpectedResponseFitAdmin(ReadOnlyAdmin):
    list_display = ["organization", "version", "status", "episodes", "source", "finished_at"]
    list_filter = ["status"]


admin.site.unregister(Organization)
admin.site.register(Organization, OrganizationAdmin)


class ClientRecordViews:
    """An admin of records that belong to one client: each page showing one of them (change,
    delete confirmation, history) leaves an audit entry naming the client."""

    client_path = "client"  # how a row reaches its client; "" for the client itself

    @property
    def organization_path(self) -> str:
        return f"{self.client_path}__organization" if self.client_path else "organization"

    def client_of(self, obj) -> Client:
        for step in filter(None, self.client_path.split("__")):
            obj = getattr(obj, step)
        return obj

    def _recorded(self, request, object_id, response):
        obj = self.get_object(request, unquote(object_id)) if response.status_code == 200 else None
        if obj is not None:
            client = self.client_of(obj)
            audit_record(
                request,
                action=Action.ADMIN_RECORD_VIEWED,
                organization=client.organization,
                obj=obj,
                detail=client.code,
            )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        return self._recorded(request, object_id, response)

    def delete_view(self, request, object_id, extra_context=None):
        response = super().delete_view(request, object_id, extra_context)
        return self._recorded(request, object_id, response)

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        return self._recorded(request, object_id, response)


class EpisodeInline(ScopedTabularInline):
    model = Episode
    extra = 0
    fields = ["therapist", "opened", "closed", "closure"]
    autocomplete_fields = ["therapist"]


@admin.register(Client)
class ClientAdmin(ClientRecordViews, OrganizationScopedAdmin):
    client_path = ""
    list_display = [
        "code",
        "organization",
        "age_band",
        "language",
        "primary_therapist",
        "active",
        "created_at",
    ]
    list_filter = ["organization", "age_band", "language", "active"]
    search_fields = ["code"]
    list_select_related = ["organization", "primary_therapist"]
    autocomplete_fields = ["primary_therapist"]
    inlines = [EpisodeInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        _rollups_rebuild(*form.instance.episodes.values_list("pk", flat=True))


class TherapySessionInline(ScopedTabularInline):
    model = TherapySession
    extra = 0
    fields = ["number", "date", "format"]


@admin.register(Episode)
class EpisodeAdmin(ClientRecordViews, OrganizationScopedAdmin):
    list_display = ["client", "therapist", "opened", "closed", "closure"]
    list_filter = ["closure", "client__organization"]
    search_fields = ["client__code"]
    date_hierarchy = "opened"
    list_select_related = ["client", "therapist"]
    autocomplete_fields = ["client", "therapist"]
    inlines = [TherapySessionInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        _rollups_rebuild(form.instance.pk)


@admin.register(TherapySession)
class TherapySessionAdmin(ClientRecordViews, OrganizationScopedAdmin):
    client_path = "episode__client"
    list_display = ["episode", "number", "date", "format"]
    list_filter = ["format", "episode__client__organization"]
    search_fields = ["episode__client__code"]
    date_hierarchy = "date"
    list_select_related = ["episode__client"]
    autocomplete_fields = ["episode"]

    def save_model(self, request, obj, form, change):
        moved_from = form.initial.get("episode") if change else None
        super().save_model(request, obj, form, change)
        _rollups_rebuild(obj.episode_id, moved_from)

    def delete_model(self, request, obj):
        episode_id = obj.episode_id
        super().delete_model(request, obj)
        _rollups_rebuild(episode_id)

    def delete_queryset(self, request, queryset):
        episode_ids = list(queryset.values_list("episode_id", flat=True).distinct())
        super().delete_queryset(request, queryset)
        _rollups_rebuild(*episode_ids)


@admin.register(Rating)
class RatingAdmin(ClientRecordViews, ReadOnlyAdmin):
    """Ratings are read here; they are written only by the submit service, which validates them."""

    client_path = "session__episode__client"
    list_display = [
        "session",
        "scale",
        "instrument",
        "rater_display",
        "total",
        "channel",
        "created_at",
    ]
    list_filter = [
        "scale",
        "instrument",
        "rater",
        "channel",
        "session__episode__client__organization",
    ]
    search_fields = ["session__episode__client__code", "idempotency_key"]
    date_hierarchy = "created_at"
    list_select_related = ["session__episode__client"]


@admin.register(Flag)
class FlagAdmin(ClientRecordViews, ReadOnlyAdmin):
    """Flags are raised by the submit service and move on through their own workflow."""

    list_display = ["client", "kind", "severity", "status", "created_at", "acknowledged_by"]
    list_filter = ["kind", "severity", "status", "client__organization"]
    search_fields = ["client__code", "explanation"]
    date_hierarchy = "created_at"
    list_select_related = ["client", "acknowledged_by"]


@admin.register(RemoteLink)
class RemoteLinkAdmin(ClientRecordViews, ReadOnlyAdmin):
    client_path = "session__episode__client"
    list_display = [
        "session",
        "instrument",
        "rater",
        "created_by",
        "created_at",
        "expires_at",
        "used_at",
    ]
    list_filter = ["instrument", "session__episode__client__organization"]
    search_fields = ["session__episode__client__code"]
    list_select_related = ["session__episode__client", "created_by"]
    exclude = ["nonce_hash"]


@admin.register(ReflectionOption)
class ReflectionOptionAdmin(OrganizationScopedAdmin):
    """The choices on the therapist's reflection form: relabel, reorder, hide or add one.

    A built-in option's code stays, so that its label keeps following the reader's language until
    the organisation gives it its own words; options in use are hidden rather than deleted.
    """

    list_display = ["__str__", "kind", "position", "active", "exclusive", "organization"]
    list_editable = ["position", "active"]
    list_filter = ["kind", "active", "organization"]
    search_fields = ["code", "label"]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
