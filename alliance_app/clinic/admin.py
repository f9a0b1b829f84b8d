from django.contrib import admin

from alliance_app.accounts.admin import OrganizationScopedAdmin, ScopedTabularInline

from .models import Client, Episode, TherapySession


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


@admin.register(TherapySession)
class TherapySessionAdmin(OrganizationScopedAdmin):
    organization_path = "episode__client__organization"
    list_display = ["episode", "number", "date", "format"]
    list_filter = ["format", "episode__client__organization"]
    search_fields = ["episode__client__code"]
    date_hierarchy = "date"
    list_select_related = ["episode__client"]
    autocomplete_fields = ["episode"]
