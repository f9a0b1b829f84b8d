"""The client's e-mail address for rating links, on a page of its own: for the client's own
therapists only, each look and each change audited (the address itself never is)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record

from .access import get_visible_client, require_treating
from .contacts import ContactForm, contact_email, contact_save


@login_required
def client_contact(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_visible_client(request, pk)
    require_treating(request, client)
    keeps_addresses = client.organization.client_email
    stored = contact_email(client)
    form = ContactForm(request.POST or None, initial={"email": stored})
    status = 200
    if request.method == "POST" and keeps_addresses and form.is_valid():
        try:
            changed = contact_save(client=client, email=form.cleaned_data["email"])
        except ValidationError as error:
            form.add_error("email", error)
        else:
            if changed:
                audit_record(
                    request, action=Action.CLIENT_CONTACT_CHANGED, obj=client, detail=client.code
                )
            messages.success(
                request,
                _("The e-mail address is saved.")
                if form.cleaned_data["email"]
                else _("No e-mail address is kept for this client."),
            )
            return redirect("client_contact", pk=client.pk)
    if request.method == "POST":
        status = 400 if keeps_addresses else 403
    else:
        audit_record(request, action=Action.CLIENT_CONTACT_VIEWED, obj=client, detail=client.code)
    return render(
        request,
        "clinic/client_contact.html",
        {"client": client, "form": form, "keeps_addresses": keeps_addresses, "stored": stored},
        status=status,
    )
