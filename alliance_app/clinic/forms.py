"""Forms of the clinic's pages. The rules on a client's details live once, in
`services.client_errors`; the forms only read the fields and offer the choices."""

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.models import User

from .models import AgeBandChoice


def active_only(therapists: QuerySet[User]) -> QuerySet[User]:
    """Colleagues who can take a client: not those invited and not yet in, nor deactivated."""
    return therapists.filter(is_active=True).order_by("first_name", "last_name", "username")


class TherapistChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.get_username()


class ClientForm(forms.Form):
    """A client's code, age band and language; for a new client, also their therapist, chosen
    among `therapists` (the caller's choice of whom they may give a client to)."""

    code = forms.CharField(
        label=_("Client code"),
        help_text=_(
            "A pseudonymous code, unique in the organisation: letters, digits, dots, hyphens "
            "or underscores. Never a name or initials."
        ),
        error_messages={"required": _("Give the client a code.")},
        widget=forms.TextInput(attrs={"maxlength": 32, "autocomplete": "off"}),
    )
    age_band = forms.ChoiceField(
        label=_("Age band"),
        choices=AgeBandChoice.choices,
        help_text=_("Picks the adult, adolescent or child scales."),
        error_messages={
            "required": _("Choose the client's age band."),
            "invalid_choice": _("Choose one of the age bands listed."),
        },
    )
    language = forms.ChoiceField(
        label=_("Preferred language"),
        choices=settings.LANGUAGES,
        help_text=_("Client mode and remote links speak this language."),
        error_messages={
            "required": _("Choose the client's language."),
            "invalid_choice": _("Choose one of the languages listed."),
        },
    )

    def __init__(self, *args, therapists: QuerySet[User] | None = None, submit: str, **kwargs):
        super().__init__(*args, **kwargs)
        if therapists is not None:
            self.fields["primary_therapist"] = TherapistChoiceField(
                label=_("Therapist"),
                queryset=active_only(therapists),
                help_text=_("The client's own therapist, who sees them on the caseload."),
                error_messages={
                    "required": _("Choose the client's therapist."),
                    "invalid_choice": _(
                        "That therapist is unknown here: choose one of the therapists listed."
                    ),
                },
            )
        self.helper = FormHelper()
        self.helper.attrs = {"novalidate": ""}
        self.helper.add_input(Submit("save", submit, css_class="btn-primary btn-lg"))


class HandOverForm(forms.Form):
    """The therapist to hand a client to, among `therapists` (those the caller may choose)."""

    def __init__(self, *args, therapists: QuerySet[User], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["therapist"] = TherapistChoiceField(
            label=_("New therapist"),
            queryset=active_only(therapists),
            help_text=_(
                "The client's open episode of care goes with them, and its ratings count for "
                "the new therapist from now on."
            ),
            error_messages={
                "required": _("Choose the therapist to hand the client to."),
                "invalid_choice": _(
                    "That therapist is unknown here: choose one of the therapists listed."
                ),
            },
        )
        self.helper = FormHelper()
        self.helper.attrs = {"novalidate": ""}
        self.helper.add_input(
            Submit("save", _("Hand the client over"), css_class="btn-primary btn-lg")
        )
