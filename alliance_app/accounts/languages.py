"""The language staff read Alliance in: their own setting, else the browser's, else English.

Django's LocaleMiddleware picks the browser's language (Accept-Language) before anyone is
known; once the user is, their setting wins. Client mode and remote links speak the client's
language instead (`feedback.client_mode`, `feedback.views`).
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .redirects import safe_next


def is_offered(language: str) -> bool:
    return language in dict(settings.LANGUAGES)


class StaffLanguageMiddleware:
    """Serve a signed-in member of staff in the language they chose."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        language = user.language if user.is_authenticated else ""
        if is_offered(language):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


class LanguageForm(forms.Form):
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        widget=forms.RadioSelect,
        required=False,
        choices=[("", gettext_lazy("The browser's language")), *settings.LANGUAGES],
    )


@login_required
def language_setting(request: HttpRequest) -> HttpResponse:
    """A small page where a member of staff chooses their language; it applies at once."""
    user = request.user
    form = LanguageForm(request.POST or None, initial={"language": user.language})
    if request.method == "POST" and form.is_valid():
        user.language = form.cleaned_data["language"]
        user.save(update_fields=["language"])
        # The confirmation is read in the language just chosen.
        translation.activate(user.language or translation.get_language_from_request(request))
        messages.success(request, _("Language saved."))
        return redirect(safe_next(request))
    return render(
        request,
        "registration/language.html",
        {"form": form, "next": request.GET.get("next", "")},
        status=400 if request.method == "POST" else 200,
    )
