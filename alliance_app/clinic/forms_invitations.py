"""The form an organisation admin invites a colleague with, and the one the colleague accepts it
with. Teams are offered from the admin's own organisation only."""

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.conf import settings
from django.contrib.auth.forms import SetPasswordForm
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.models import Organization, Role, Team

from .invitations import address_in_use

SAME_TEAMS = _("Choose among this organisation's teams.")


def _helper(submit: str) -> FormHelper:
    helper = FormHelper()
    helper.attrs = {"novalidate": ""}
    helper.add_input(Submit("send", submit, css_class="btn-primary btn-lg"))
    return helper


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"),
        error_messages={
            "required": _("Enter the colleague's e-mail address."),
            "invalid": _("Enter an e-mail address such as name@example.org."),
        },
        help_text=_("The invitation goes here, and it becomes their user name."),
    )
    first_name = forms.CharField(
        label=_("First name"),
        max_length=150,
        error_messages={"required": _("Enter their first name.")},
    )
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    role = forms.ChoiceField(
        label=_("Role"),
        choices=Role.choices,
        initial=Role.THERAPIST,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose a role."),
            "invalid_choice": _("Choose one of the roles listed."),
        },
    )
    language = forms.ChoiceField(
        label=_("Language"),
        choices=[("", _("Their browser's (the invitation in yours)")), *settings.LANGUAGES],
        required=False,
        help_text=_("The invitation is written in it, and Alliance speaks it to them."),
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        teams = Team.objects.filter(organization=organization).order_by("name")
        self.fields["team"] = forms.ModelChoiceField(
            label=_("Team"),
            queryset=teams,
            required=False,
            empty_label=_("No team"),
            help_text=_("The team whose statistics their work counts in."),
            error_messages={"invalid_choice": SAME_TEAMS},
        )
        self.fields["supervised_teams"] = forms.ModelMultipleChoiceField(
            label=_("Supervised teams"),
            queryset=teams,
            required=False,
            widget=forms.CheckboxSelectMultiple,
            help_text=_("For supervisors: they see these teams' clients, flags and figures."),
            error_messages={"invalid_choice": SAME_TEAMS, "invalid_pk_value": SAME_TEAMS},
        )
        self.order_fields(
            ["email", "first_name", "last_name", "role", "team", "supervised_teams", "language"]
        )
        self.helper = _helper(_("Send the invitation"))

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if address_in_use(email):
            raise forms.ValidationError(
                _("%(email)s already has an account."), params={"email": email}
            )
        return email

    def clean(self):
        data = super().clean()
        if data.get("supervised_teams") and data.get("role") != Role.SUPERVISOR:
            self.add_error(
                "supervised_teams",
                _("Only supervisors supervise teams: choose none, or Supervisor."),
            )
        return data


class AcceptForm(SetPasswordForm):
    """Django's own new-password form, with its validators, under a button of ours."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].widget.attrs["autofocus"] = True
        self.helper = _helper(_("Set my password and log in"))
        self.helper.inputs[0].field_classes = "btn btn-primary btn-lg w-100"
