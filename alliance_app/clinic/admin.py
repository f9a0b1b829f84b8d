from django.contrib import admin

from alliance_app.accounts.admin import OrganizationScopedAdmin, ScopedTabularInline
from alliance_app.feedback import rollups

from .models import Client, Episode, TherapySession


def _rollups_rebuild(*episode_ids) -> None:
    """What is changed here can move ratings between months (a session's date), reorder them
    (its number) or hand them to another therapist (the episode's): the episodes' summary rows
    are made again from their ratings."""
    rollups.rebuild(Episode.objects.filter(pk__in=[pk for pk in episode_ids if pk]))


class EpisodeInline(ScopedTabularInline):
    model = Episode
    extra = 0
    fields = ["therapist", "opened", "closed", "closure"]
    autocomplete_fields = ["therapist"]


@admin.register(Client)
class ClientAdmin(OrganizationScopedAdmin):
    list_display = ["code", "organization", "age_band", "primary_therapist", "active", "created_at"]
    list_filter = ["organization", "age_band", "active"]
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
class EpisodeAdmin(OrganizationScopedAdmin):
    organization_path = "client__organization"
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
class TherapySessionAdmin(OrganizationScopedAdmin):
    organization_path = "episode__client__organization"
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
