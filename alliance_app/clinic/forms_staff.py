"""Forms of the staff and teams pages. The rules live once, in `staff`; the forms read the fields
and offer only the organisation's own teams."""

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.models import Organization, Role, Team

from .staff import StaffDetails


def _helper(submit: str) -> FormHelper:
    helper = FormHelper()
    helper.attrs = {"novalidate": ""}
    helper.add_input(Submit("save", submit, css_class="btn-primary btn-lg"))
    return helper


def _teams(organization: Organization):
    return Team.objects.filter(organization=organization).order_by("name")


class StaffForm(forms.Form):
    """A colleague's name, e-mail, role, team and supervised teams, among `organization`'s teams."""

    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(
        label=_("E-mail address"),
        required=False,
        error_messages={"invalid": _("Enter an e-mail address such as name@example.org.")},
    )
    role = forms.ChoiceField(
        label=_("Role"),
        choices=Role.choices,
        error_messages={
            "required": _("Choose a role."),
            "invalid_choice": _("Choose one of the roles listed."),
        },
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"] = forms.ModelChoiceField(
            label=_("Team"),
            queryset=_teams(organization),
            required=False,
            empty_label=_("No team"),
            help_text=_("The team whose statistics this colleague's work counts in."),
            error_messages={"invalid_choice": _("Choose one of this organisation's teams.")},
        )
        self.fields["supervised_teams"] = forms.ModelMultipleChoiceField(
            label=_("Supervised teams"),
            queryset=_teams(organization),
            required=False,
            widget=forms.CheckboxSelectMultiple,
            help_text=_(
                "For supervisors: they see these teams' clients, flags and figures. Other roles "
                "supervise no team, and a change of role clears these."
            ),
            error_messages={
                "invalid_choice": _("Choose among this organisation's teams."),
                "invalid_pk_value": _("Choose among this organisation's teams."),
            },
        )
        self.helper = _helper(_("Save the changes"))

    def details(self) -> StaffDetails:
        data = self.cleaned_data
        return StaffDetails(
            first_name=data["first_name"].strip(),
            last_name=data["last_name"].strip(),
            email=data["email"].strip(),
            role=data["role"],
            team=data["team"],
            supervised_teams=list(data["supervised_teams"]),
        )


class TeamForm(forms.Form):
    name = forms.CharField(
        label=_("Team name"),
        max_length=200,
        error_messages={"required": _("Give the team a name.")},
    )

    def __init__(self, *args, submit: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(submit)


class TeamMergeForm(forms.Form):
    """The team to merge into: another of the same organisation."""

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["into"] = forms.ModelChoiceField(
            label=_("Merge into"),
            queryset=_teams(team.organization).exclude(pk=team.pk),
            empty_label=None,
            error_messages={
                "required": _("Choose the team to merge into."),
                "invalid_choice": _("Choose another team of this organisation."),
            },
        )
        self.helper = _helper(_("Merge the teams"))
