from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.models import User

from .models import Training


class TherapistChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.username


class TrainingForm(forms.ModelForm):
    """A training and who attended, chosen among the organisation's therapists (`therapists`)."""

    attendees = TherapistChoice(
        queryset=User.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label=_("Therapists who attended"),
        error_messages={"required": _("Choose at least one therapist who attended.")},
    )

    class Meta:
        model = Training
        fields = ["title", "kind", "date", "attendees"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args, therapists: QuerySet[User], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attendees"].queryset = therapists
        self.helper = FormHelper()
        self.helper.attrs = {"novalidate": ""}
        self.helper.add_input(Submit("save", _("Save the training"), css_class="btn-primary"))

    def clean_date(self):
        date = self.cleaned_data["date"]
        if date > timezone.localdate():
            raise forms.ValidationError(_("A training is recorded once it has taken place."))
        return date
