from django.contrib import admin

from alliance_app.accounts.admin import ReadOnlyAdmin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read only, and an organisation admin sees only their own organisation's entries."""

    list_display = [
        "at",
        "organization",
        "actor_name",
        "action",
        "object_type",
        "object_id",
        "detail",
        "ip",
    ]
    list_filter = ["action", "at"]
    search_fields = ["actor_name", "detail", "object_id"]
    date_hierarchy = "at"
    list_select_related = ["organization"]
