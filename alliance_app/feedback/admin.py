from django.contrib import admin

from .models import Rating


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    """Ratings are read here; they are written only by the submit service, which validates them."""

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

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
