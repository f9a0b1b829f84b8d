from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from alliance_app.accounts.access import require_membership, therapists_visible_to
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record

from .access import get_visible_client, require_treating
from .forms import ClientForm
from .models import Client
from .services import (
    client_code_suggest,
    client_create,
    client_set_active,
    client_update,
    session_start_today,
)


@login_required
@require_POST
def session_start(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_visible_client(request, pk)
    require_treating(request, client)
    session = session_start_today(
        client=client, therapist=request.user, format=request.POST.get("format", "")
    )
    messages.success(request, _("Session %(number)s is open.") % {"number": session.number})
    return redirect("client_detail", pk=client.pk)


@login_required
def client_new(request: HttpRequest) -> HttpResponse:
    """Add a client. Every member may; the therapist is one whose work the caller sees
    (`therapists_visible_to`): a therapist themself, a supervisor also their teams' members,
    an admin anyone of the organisation."""
    membership = require_membership(request)
    therapists = therapists_visible_to(membership)
    initial = {
        "code": client_code_suggest(organization=membership.organization),
        "language": Client._meta.get_field("language").default,
    }
    if therapists.filter(pk=request.user.pk).exists():
        initial["primary_therapist"] = request.user.pk
    form = ClientForm(
        request.POST or None, initial=initial, therapists=therapists, submit=_("Add the client")
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            client = client_create(
                organization=membership.organization,
                code=data["code"],
                age_band=data["age_band"],
                language=data["language"],
                primary_therapist=data["primary_therapist"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            audit_record(request, action=Action.CLIENT_CREATED, obj=client, detail=client.code)
            messages.success(request, _("Client %(code)s is added.") % {"code": client.code})
            return redirect("client_detail", pk=client.pk)
    return render(request, "clinic/client_form.html", {"form": form, "client": None})


@login_required
def client_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a client's code, age band and language: for everyone who sees the client."""
    client = get_visible_client(request, pk)
    form = ClientForm(
        request.POST or None,
        initial={"code": client.code, "age_band": client.age_band, "language": client.language},
        submit=_("Save the changes"),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            client_update(
                client=client,
                code=data["code"],
                age_band=data["age_band"],
                language=data["language"],
            )
        except ValidationError as error:
            client.refresh_from_db()
            form.add_error(None, error)
        else:
            audit_record(request, action=Action.CLIENT_CHANGED, obj=client, detail=client.code)
            messages.success(request, _("The client's details are saved."))
            return redirect("client_detail", pk=client.pk)
    else:
        # The form shows the client's details: a look at their record.
        audit_record(request, action=Action.CLIENT_VIEWED, obj=client, detail=client.code)
    return render(request, "clinic/client_form.html", {"form": form, "client": client})


@login_required
@require_POST
def client_active(request: HttpRequest, pk: int) -> HttpResponse:
    """Archive a client (`active=0`) or bring them back (`active=1`): for everyone who sees them."""
    client = get_visible_client(request, pk)
    wanted = request.POST.get("active", "")
    if wanted not in ("0", "1"):
        messages.error(request, _("Say whether to archive or reactivate the client."))
    elif client_set_active(client=client, active=wanted == "1"):
        action = Action.CLIENT_REACTIVATED if client.active else Action.CLIENT_ARCHIVED
        audit_record(request, action=action, obj=client, detail=client.code)
        messages.success(
            request,
            _("Client %(code)s is active again.") % {"code": client.code}
            if client.active
            else _("Client %(code)s is archived: off the caseload, with their record kept.")
            % {"code": client.code},
        )
    return redirect("client_detail", pk=client.pk)
