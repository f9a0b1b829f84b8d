from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import Membership, Organization, Team, User


class TeamInline(admin.TabularInline):
    model = Team
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "alliance_drop", "low_item", "no_change_sessions"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TeamInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "time_zone"]}),
        (
            _("Flag thresholds"),
            {
                "fields": [
                    "alliance_cutoff",
                    "alliance_drop",
                    "low_item",
                    "reliable_change",
                    "no_change_sessions",
                ]
            },
        ),
    ]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "organization"]
    list_filter = ["organization"]
    search_fields = ["name"]
    list_select_related = ["organization"]


class MembershipInline(admin.StackedInline):
    model = Membership
    can_delete = False
    filter_horizontal = ["supervised_teams"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [MembershipInline]
    list_display = [
        "username",
        "first_name",
        "last_name",
        "email",
        "role",
        "organization",
        "is_active",
    ]
    list_filter = ["membership__role", "membership__organization", "is_active", "is_staff"]
    list_select_related = ["membership__organization"]

    @admin.display(description=_("role"), ordering="membership__role")
    def role(self, user: User) -> str:
        return user.membership.get_role_display() if hasattr(user, "membership") else "—"

    @admin.display(description=_("organisation"), ordering="membership__organization__name")
    def organization(self, user: User) -> str:
        return str(user.membership.organization) if hasattr(user, "membership") else "—"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "team"]
    list_filter = ["organization", "role", "team"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user", "organization", "team"]
    filter_horizontal = ["supervised_teams"]
    autocomplete_fields = ["user"]
