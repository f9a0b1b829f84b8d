from crispy_forms.helper import FormHelper
from django import forms
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from alliance_app.measures import BordinDimension, Scale

from .imports import MAX_BYTES, MAX_ROWS
from .models import (
    BordinChoice,
    Flag,
    FlagStatus,
    Rater,
    Reflection,
    ReflectionOption,
    ReflectionOptionKind,
    ScaleChoice,
)
from .reflecting import (
    DIMENSIONS,
    NO_DIMENSION,
    NO_STRATEGY,
    NOT_OFFERED,
    NOTE_MAX,
    exclusive_error,
    initial_dimension,
    options_offered,
)
from .reflections import option_label


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


class OptionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ReflectionOption) -> str:
        return option_label(obj)


class OptionsChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: ReflectionOption) -> str:
        return option_label(obj)


DIMENSION_HINTS = {
    BordinDimension.BOND: _("How we got on: feeling heard, respected, understood."),
    BordinDimension.GOALS: _("What we are working towards, what we talked about."),
    BordinDimension.TASKS: _("How we worked, what we did in the session."),
}


class ReflectionForm(forms.Form):
    """The therapist's reflection on a rupture or a reported tension (`reflecting`).

    The choices are the client's organisation's options; when the flag is still open the form
    can acknowledge it too. `answers()` are the service's keyword arguments.
    """

    marker = OptionChoiceField(
        label=_("What did it look like?"),
        queryset=ReflectionOption.objects.none(),
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        empty_label=None,
        error_messages={
            "required": _("Choose what it looked like."),
            "invalid_choice": NOT_OFFERED,
        },
    )
    dimension = forms.ChoiceField(
        label=_("Which part of the alliance?"),
        choices=[(code, dict(BordinChoice.choices)[code]) for code in DIMENSIONS],
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        error_messages={"required": NO_DIMENSION},
    )
    strategies = OptionsChoiceField(
        label=_("What did you do?"),
        queryset=ReflectionOption.objects.none(),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        error_messages={
            "required": NO_STRATEGY,
            "invalid_choice": NOT_OFFERED,
            "invalid_pk_value": NOT_OFFERED,
        },
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 4, "class": "form-control"}),
        help_text=_("What happened, what you noticed in yourself, what you will try next."),
    )
    teaching_consent = forms.BooleanField(
        label=_("May be used, without names, for teaching"),
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )
    acknowledge = forms.BooleanField(
        label=_("Mark the flag acknowledged"),
        required=False,
        initial=True,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )

    def __init__(self, *args, flag: Flag, reflection: Reflection | None = None, **kwargs):
        if reflection is not None:
            kwargs.setdefault(
                "initial",
                {
                    "marker": reflection.marker_id,
                    "dimension": reflection.dimension,
                    "strategies": [option.pk for option in reflection.strategies.all()],
                    "note": reflection.note,
                    "teaching_consent": reflection.teaching_consent,
                },
            )
        else:
            kwargs.setdefault("initial", {"dimension": initial_dimension(flag)})
        super().__init__(*args, **kwargs)
        organization_id = flag.client.organization_id
        self.fields["marker"].queryset = options_offered(
            organization_id, ReflectionOptionKind.MARKER, reflection
        )
        self.fields["strategies"].queryset = options_offered(
            organization_id, ReflectionOptionKind.STRATEGY, reflection
        )
        if flag.status != FlagStatus.OPEN:
            del self.fields["acknowledge"]

    def clean_strategies(self) -> list[ReflectionOption]:
        strategies = list(self.cleaned_data["strategies"])
        problem = exclusive_error(strategies)
        if problem:
            raise forms.ValidationError(problem)
        return strategies

    def clean_note(self) -> str:
        return self.cleaned_data["note"].strip()

    def dimension_choices(self) -> list[tuple]:
        """Each bond / goals / tasks radio with its one-line hint."""
        return [(radio, DIMENSION_HINTS[radio.data["value"]]) for radio in self["dimension"]]

    def answers(self) -> dict:
        data = self.cleaned_data
        return {
            "marker": data["marker"],
            "dimension": data["dimension"],
            "strategies": data["strategies"],
            "note": data["note"],
            "teaching_consent": data["teaching_consent"],
            "acknowledge": data.get("acknowledge", False),
        }


class PaperImportForm(forms.Form):
    """The CSV file of paper ratings to check; `imports` reads and checks its rows."""

    file = forms.FileField(
        label=_("CSV file of paper ratings"),
        error_messages={"required": _("Choose the CSV file to check.")},
        widget=forms.ClearableFileInput(
            attrs={"accept": ".csv,text/csv", "class": "form-control-lg"}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _(
            "At most %(size)s MB and %(rows)s rows, in the template's columns."
        ) % {"size": MAX_BYTES // 2**20, "rows": number_format(MAX_ROWS, force_grouping=True)}
        self.helper = FormHelper()
        self.helper.attrs = {"novalidate": ""}
        self.helper.form_tag = False


class PaperImportConfirmForm(forms.Form):
    """Storing the file just checked: `digest` names it, so a page left open on an earlier
    file cannot store the one checked since."""

    digest = forms.CharField(widget=forms.HiddenInput)
    only_valid = forms.BooleanField(
        label=_("Import only the valid rows and leave out the rows with problems"),
        help_text=_("Without this, a file with any problem stores nothing."),
        required=False,
    )
