"""Handing a client to another therapist: for supervisors and organisation admins."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from alliance_app.accounts.access import therapists_visible_to
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.access import get_visible_client, require_handing_over
from alliance_app.clinic.forms import HandOverForm

from .handover import client_hand_over


@login_required
def client_hand_over_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The new therapist is one whose work the caller sees (`therapists_visible_to`)."""
    client = get_visible_client(request, pk)
    membership = require_handing_over(request)
    form = HandOverForm(request.POST or None, therapists=therapists_visible_to(membership))
    if request.method == "POST" and form.is_valid():
        therapist = form.cleaned_data["therapist"]
        try:
            client_hand_over(client=client, therapist=therapist)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            audit_record(request, action=Action.CLIENT_HANDED_OVER, obj=client, detail=client.code)
            messages.success(
                request,
                _("Client %(code)s is now %(therapist)s's client.")
                % {"code": client.code, "therapist": therapist},
            )
            return redirect("client_detail", pk=client.pk)
    else:
        # The page names the client and their therapist: a look at their record.
        audit_record(request, action=Action.CLIENT_VIEWED, obj=client, detail=client.code)
    return render(request, "clinic/client_hand_over.html", {"form": form, "client": client})
