from django.contrib import admin

from alliance_app.accounts.admin import ReadOnlyAdmin

from .models import Flag, Rating, RemoteLink


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    """Ratings are read here; they are written only by the submit service, which validates them."""

    organization_path = "session__episode__client__organization"
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
class FlagAdmin(ReadOnlyAdmin):
    """Flags are raised by the submit service and move on through their own workflow."""

    organization_path = "client__organization"
    list_display = ["client", "kind", "severity", "status", "created_at", "acknowledged_by"]
    list_filter = ["kind", "severity", "status", "client__organization"]
    search_fields = ["client__code", "explanation"]
    date_hierarchy = "created_at"
    list_select_related = ["client", "acknowledged_by"]


@admin.register(RemoteLink)
class RemoteLinkAdmin(ReadOnlyAdmin):
    organization_path = "session__episode__client__organization"
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
