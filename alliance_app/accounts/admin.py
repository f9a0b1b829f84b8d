"""The Django admin, tenant by tenant.

An organisation admin (staff, role admin) sees and changes only their own organisation's rows,
and only their own organisation's objects appear in choices and filters; a superuser (whoever
runs the server) sees everything. Every ModelAdmin and inline of the project derives from the
classes here. Two-factor devices are the superuser's alone: to anyone else their pages do not
exist.
"""

from functools import wraps

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import URLPattern
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from .access import request_membership
from .models import Membership, Organization, Role, Team, User

# How each model that can appear in a choice reaches its organisation.
CHOICE_SCOPES = {
    "accounts.organization": "pk",
    "accounts.team": "organization",
    "accounts.user": "membership__organization",
    "clinic.client": "organization",
    "clinic.episode": "client__organization",
    "clinic.therapysession": "episode__client__organization",
}


def admin_organization(request) -> Organization | None:
    """The organisation an organisation admin manages; None for everybody else."""
    if not hasattr(request, "_alliance_admin_organization"):
        membership = request_membership(request)
        is_admin = membership is not None and membership.role == Role.ADMIN
        request._alliance_admin_organization = membership.organization if is_admin else None
    return request._alliance_admin_organization


def may_administer(request) -> bool:
    return request.user.is_superuser or admin_organization(request) is not None


def scope_choices(request, field):
    if field is None or request.user.is_superuser:
        return field
    scope = CHOICE_SCOPES.get(field.queryset.model._meta.label_lower)
    if scope is not None:
        organization = admin_organization(request)
        field.queryset = field.queryset.filter(**{scope: organization.pk if organization else None})
    return field


def scoped_filter(model, entry):
    """A filter on a relation offers only the objects the admin's own (scoped) rows refer to:
    listing every row of the related table would name other organisations' teams and users."""
    if not isinstance(entry, str | tuple):
        return entry  # a SimpleListFilter: it computes its own choices
    name = entry if isinstance(entry, str) else entry[0]
    if isinstance(entry, tuple) and issubclass(entry[1], admin.RelatedOnlyFieldListFilter):
        return entry
    if not get_fields_from_path(model, name)[-1].is_relation:
        return entry
    return (name, admin.RelatedOnlyFieldListFilter)


class ScopedChoices:
    def get_list_filter(self, request):
        return [scoped_filter(self.model, entry) for entry in super().get_list_filter(request)]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return scope_choices(request, super().formfield_for_foreignkey(db_field, request, **kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        return scope_choices(request, field)

    def has_view_permission(self, request, obj=None) -> bool:
        return may_administer(request)

    def has_add_permission(self, request, obj=None) -> bool:
        return may_administer(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return may_administer(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return may_administer(request)


class OrganizationScopedAdmin(ScopedChoices, admin.ModelAdmin):
    organization_path = "organization"  # how this model reaches its organisation

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        organization = admin_organization(request)
        if organization is None:
            return rows.none()
        return rows.filter(**{self.organization_path: organization.pk})

    def has_module_permission(self, request) -> bool:
        return may_administer(request)


class ReadOnlyAdmin(OrganizationScopedAdmin):
    """Records written only by the app's own services: read here, never changed."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ScopedTabularInline(ScopedChoices, admin.TabularInline):
    pass


class TeamInline(ScopedTabularInline):
    model = Team
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "pk"
    list_display = ["name", "slug", "time_zone", "require_two_factor", "alliance_drop", "low_item"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TeamInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "time_zone", "require_two_factor"]}),
        (
            _("Flag thresholds"),
            {
                "fields": [
                    "alliance_cutoff",
                    "alliance_drop",
                    "low_item",
                    "reliable_change",
                    "no_change_sessions",
                    "no_change_every",
                ]
            },
        ),
        (
            _("Rupture and repair"),
            {
                "fields": [
                    "rupture_k",
                    "rupture_min_drop",
                    "rupture_baseline_window",
                    "rupture_repair_window",
                    "rupture_sd",
                    "ask_tension",
                ],
                "description": _(
                    "A rupture is a session total at least max(k × SD, minimum drop) below the "
                    "rater's mean of their previous totals; it is repaired when the total comes "
                    "back within half that threshold within the given number of sessions."
                ),
            },
        ),
        (
            _("Expected response"),
            {
                "fields": ["expected_quantile", "expected_min_episodes"],
                "description": _(
                    "The band is fitted on the organisation's closed episodes; a new setting "
                    "applies from the next fit."
                ),
            },
        ),
    ]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(Team)
class TeamAdmin(OrganizationScopedAdmin):
    list_display = ["name", "organization"]
    list_filter = ["organization"]
    search_fields = ["name"]
    list_select_related = ["organization"]


class MembershipInline(ScopedChoices, admin.StackedInline):
    model = Membership
    can_delete = False
    filter_horizontal = ["supervised_teams"]

    def get_min_num(self, request, obj=None, **kwargs) -> int:
        # Everyone an organisation admin adds belongs to the organisation.
        return 0 if request.user.is_superuser else 1


@admin.register(User)
class UserAdmin(ScopedChoices, DjangoUserAdmin):
    organization_path = "membership__organization"
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

    def get_queryset(self, request):
        users = super().get_queryset(request)
        organization = admin_organization(request)
        if request.user.is_superuser:
            return users
        if organization is None:
            return users.none()
        return users.filter(**{self.organization_path: organization.pk})

    def has_module_permission(self, request) -> bool:
        return may_administer(request)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        # Only the operator of the server grants superuser rights or raw permissions.
        hidden = {"is_superuser", "groups", "user_permissions"}
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in fieldsets
        ]

    @admin.display(description=_("role"), ordering="membership__role")
    def role(self, user: User) -> str:
        return user.membership.get_role_display() if hasattr(user, "membership") else "—"

    @admin.display(description=_("organisation"), ordering="membership__organization__name")
    def organization(self, user: User) -> str:
        return str(user.membership.organization) if hasattr(user, "membership") else "—"


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    list_display = ["user", "organization", "role", "team"]
    list_filter = ["organization", "role", "team"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user", "organization", "team"]
    filter_horizontal = ["supervised_teams"]
    autocomplete_fields = ["user"]


def operator_only(view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise Http404
        return view(request, *args, **kwargs)

    return guarded


class OperatorOnlyAdmin:
    """Every page of this admin is a 404 for anyone but a superuser, so that nobody else can
    learn which ids exist (django-otp's own checks answer 403 for an existing device)."""

    def get_urls(self):
        return [
            URLPattern(url.pattern, operator_only(url.callback), url.default_args, url.name)
            for url in super().get_urls()
        ]


class OperatorTOTPDeviceAdmin(OperatorOnlyAdmin, TOTPDeviceAdmin):
    # django-otp fetches the device without a check and answers 500 for a missing id.
    def config_view(self, request, pk):
        get_object_or_404(TOTPDevice, pk=pk)
        return super().config_view(request, pk)

    def qrcode_view(self, request, pk):
        get_object_or_404(TOTPDevice, pk=pk)
        return super().qrcode_view(request, pk)


class OperatorStaticDeviceAdmin(OperatorOnlyAdmin, StaticDeviceAdmin):
    pass


# django-otp's admin modules imported above have registered their own classes.
admin.site.unregister([TOTPDevice, StaticDevice])
admin.site.register(TOTPDevice, OperatorTOTPDeviceAdmin)
admin.site.register(StaticDevice, OperatorStaticDeviceAdmin)
