"""A client's e-mail address for rating links: kept apart from the pseudonymous record, only while
the organisation allows it, and for the client's own therapists alone (`access.may_treat`)."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alliance_app.accounts.models import Organization

from .models import Client, ClientContact


class ContactForm(forms.Form):
    email = forms.CharField(
        label=gettext_lazy("E-mail address"),
        max_length=254,
        required=False,
        help_text=gettext_lazy("Leave empty to erase the address."),
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise ValidationError(
                    _("This is not an e-mail address: it needs a name, an @ and a domain.")
                ) from None
        return email


def contact_email(client: Client) -> str:
    """The address rating links go to, or "" when none may be used: none stored, or the
    organisation no longer keeps addresses."""
    if not client.organization.client_email:
        return ""
    contact = ClientContact.objects.filter(client=client).first()
    return contact.email if contact else ""


def contact_save(*, client: Client, email: str) -> bool:
    """Store, change or (with "") erase the client's address; whether anything changed.

    Refused while the organisation does not keep clients' addresses."""
    if email and not client.organization.client_email:
        raise ValidationError(
            _(
                "Your organisation does not keep clients' e-mail addresses: an admin can turn "
                "this on."
            )
        )
    with transaction.atomic():
        contact = ClientContact.objects.select_for_update().filter(client=client).first()
        if not email:
            return contact is not None and bool(contact.delete()[0])
        if contact is not None and contact.email == email:
            return False
        ClientContact.objects.update_or_create(client=client, defaults={"email": email})
        return True


def erase_all_contacts(organization: Organization) -> int:
    """Erase every client address of the organisation, as when it stops keeping them; how many."""
    deleted, _by_model = ClientContact.objects.filter(client__organization=organization).delete()
    return deleted
