from django.contrib import admin

from alliance_app.accounts.admin import OrganizationScopedAdmin

from .models import Training


@admin.register(Training)
class TrainingAdmin(OrganizationScopedAdmin):
    list_display = ["title", "kind", "date", "organization"]
    list_filter = ["kind", "date"]
    search_fields = ["title"]
    filter_horizontal = ["attendees"]
    readonly_fields = ["created_by", "created_at"]
    date_hierarchy = "date"
