"""The organisation's settings as its admin changes them in the app.

Every rule on a value is the model's (`accounts.Organization`: its validators, check constraints
and typed fields); the form only groups the fields and carries the confirmation."""

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Fieldset, Layout, Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.models import Organization

from .org_settings import SETTINGS_FIELDS

FIELDSETS = (
    (_("Organisation"), ("name", "time_zone")),
    (
        _("Flags"),
        (
            "alliance_cutoff",
            "alliance_drop",
            "low_item",
            "reliable_change",
            "no_change_sessions",
            "no_change_every",
        ),
    ),
    (
        _("Ruptures"),
        (
            "rupture_k",
            "rupture_min_drop",
            "rupture_baseline_window",
            "rupture_repair_window",
            "rupture_sd",
            "ask_tension",
        ),
    ),
    (_("Expected response"), ("expected_quantile", "expected_min_episodes")),
    (_("Privacy and login"), ("require_two_factor", "client_email")),
)
TIME_ZONES_LIST = "time-zones"


class OrganizationSettingsForm(forms.ModelForm):
    """The settings; `confirm` is set by the preview's own button, so that a first submission
    only shows what the change would do and the second one saves it."""

    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Organization
        fields = SETTINGS_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A callable default makes Django compare with a hidden copy of the first value; the
        # stored value is what a change is measured from here.
        for bound in self.fields.values():
            bound.show_hidden_initial = False
        self.fields["time_zone"].widget.attrs.update(
            {"list": TIME_ZONES_LIST, "autocomplete": "off", "spellcheck": "false"}
        )
        self.helper = FormHelper()
        self.helper.attrs = {"novalidate": "", "data-testid": "settings-form"}
        self.helper.layout = Layout(
            *(Fieldset(legend, *names) for legend, names in FIELDSETS),
            Submit("preview", _("Show what this would change"), css_class="btn-primary btn-lg"),
        )

    def changed_settings(self) -> list[str]:
        """The settings whose values differ from those stored, in the form's order."""
        return [name for name in SETTINGS_FIELDS if name in self.changed_data]
