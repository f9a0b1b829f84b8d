"""The organisation's settings page: its admin changes the thresholds and options, sees what the
change would do (`org_settings.settings_preview`), and only then saves it."""

from functools import cache

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from alliance_app.accounts.access import require_role
from alliance_app.accounts.fields import time_zone_names
from alliance_app.accounts.models import Organization, Role
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record

from .forms_settings import TIME_ZONES_LIST, OrganizationSettingsForm
from .org_settings import settings_preview, settings_save


@login_required
@require_http_methods(["GET", "POST"])
def organization_settings(request: HttpRequest) -> HttpResponse:
    """GET shows the settings; a POST shows what the change would do; a POST confirmed saves it."""
    membership = require_role(request, Role.ADMIN)
    current = membership.organization
    # A copy of its own: validating the form writes the new values into its instance.
    editing = Organization.objects.get(pk=current.pk)
    form = OrganizationSettingsForm(request.POST or None, instance=editing)
    if request.method == "GET":
        return _page(request, form, stored=editing)
    if not form.is_valid():
        return _page(request, form, status=400)
    changed = form.changed_settings()
    if not changed:
        messages.info(request, _("Nothing has changed: the settings are as they were."))
        return redirect("organization_settings")
    if not form.cleaned_data["confirm"]:
        preview = settings_preview(current, form.instance, changed)
        return _page(request, form, preview=preview)
    erased = settings_save(organization=form.instance, changed=changed)
    audit_record(
        request,
        action=Action.SETTINGS_CHANGED,
        organization=current,
        obj=current,
        detail=", ".join(changed),
    )
    messages.success(request, _("The settings are saved."))
    if erased:
        messages.info(
            request,
            ngettext(
                "%(count)s client's e-mail address was erased.",
                "%(count)s clients' e-mail addresses were erased.",
                erased,
            )
            % {"count": erased},
        )
    return redirect("organization_settings")


@cache
def _time_zone_options() -> str:
    # Some 600 names, the same for every page and language: joined once per process, not looped
    # through by the template on each request.
    return format_html_join(
        "", '<option value="{}">', ((zone,) for zone in sorted(time_zone_names()))
    )


def _page(
    request: HttpRequest,
    form: OrganizationSettingsForm,
    *,
    preview: list | None = None,
    status: int = 200,
    stored: Organization | None = None,
) -> HttpResponse:
    """`stored`, for a form showing the stored settings as they are, lets the form's HTML be
    cached under a key made of them: a setting changed is another key."""
    context = {
        "form": form,
        "stored": stored,
        "preview": preview,
        "time_zone_options": _time_zone_options(),
        "time_zones_list": TIME_ZONES_LIST,
    }
    return render(request, "dashboards/settings.html", context, status=status)
