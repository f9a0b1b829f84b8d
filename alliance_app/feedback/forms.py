from django import forms
from django.utils.translation import gettext_lazy as _

from alliance_app.measures import Scale

from .models import Rater, ScaleChoice


class HandOverForm(forms.Form):
    """Which scale the client is handed, and who rates (couple, family and group sessions)."""

    scale = forms.ChoiceField(choices=ScaleChoice.choices)
    rater = forms.ChoiceField(
        label=_("Who rates"), choices=Rater.choices, initial=Rater.CLIENT, required=False
    )
    rater_label = forms.CharField(
        label=_("Name or role (optional)"),
        max_length=60,
        required=False,
        help_text=_("Tells raters of the same kind apart, e.g. 'Mother' and 'Father'."),
    )

    def clean_scale(self) -> Scale:
        return Scale(self.cleaned_data["scale"])

    def clean_rater(self) -> str:
        return self.cleaned_data["rater"] or Rater.CLIENT

    def clean_rater_label(self) -> str:
        return self.cleaned_data["rater_label"].strip()


class UnlockForm(forms.Form):
    password = forms.CharField(
        label=_("Therapist's password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
