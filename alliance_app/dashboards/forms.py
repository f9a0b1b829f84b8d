"""Forms of the dashboards' pages."""

from crispy_forms.helper import FormHelper
from django import forms
from django.utils.translation import gettext_lazy as _

from alliance_app.feedback.expected import MAX_UPLOAD_BYTES


class ExpectedParametersForm(forms.Form):
    """Parameters of an expected-response band fitted elsewhere: the JSON file and where it was
    fitted. `feedback.expected.parameters_load` checks the file's content."""

    parameters = forms.FileField(
        label=_("Parameters (JSON file)"),
        error_messages={"required": _("Choose the JSON file of parameters.")},
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )
    source = forms.CharField(
        label=_("Where were these fitted?"),
        max_length=300,
        error_messages={"required": _("Say where these parameters were fitted.")},
        help_text=_("For example: the network's shared fit, 2025, 4,200 adult episodes."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parameters"].help_text = _(
            "At most %(size)s KB, in the form docs/expected-response.md describes."
        ) % {"size": MAX_UPLOAD_BYTES // 1000}
        self.helper = FormHelper()
        self.helper.attrs = {"novalidate": ""}
        self.helper.form_tag = False

    def raw(self) -> bytes:
        """The file's bytes, one past the size limit at most: enough to know it is too large."""
        return self.cleaned_data["parameters"].read(MAX_UPLOAD_BYTES + 1)
