"""Two-factor login with a time-based one-time password (TOTP, RFC 6238) via django-otp.

A user who has set up an authenticator must enter its code after the password; in an
organisation that requires two factors, a user without one must set it up before going on.
"""

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .access import request_membership
from .decorators import allowed_in_client_mode

# Reachable before the second factor: the factor pages themselves, logging out, health.
NOT_NEEDED_KEY = "alliance_two_factor_not_needed"
OPEN_URL_NAMES = {"two_factor_verify", "two_factor_setup", "logout", "healthz", "login"}


def needs_setup(request) -> bool:
    membership = request_membership(request)
    required = membership is not None and membership.organization.require_two_factor
    has_device = TOTPDevice.objects.filter(user=request.user, confirmed=True).exists()
    return required and not has_device


class TwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified():
            return None
        if request.resolver_match and request.resolver_match.url_name in OPEN_URL_NAMES:
            return None
        if request.session.get(NOT_NEEDED_KEY):
            return None
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            return redirect(f"{reverse('two_factor_verify')}?next={request.get_full_path()}")
        if needs_setup(request):
            return redirect("two_factor_setup")
        # Asked once per login session: sessions end after 30 idle minutes, so a factor an
        # organisation starts to require applies from the next login on.
        request.session[NOT_NEEDED_KEY] = True
        return None


class TokenForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_token(self) -> str:
        return self.cleaned_data["token"].replace(" ", "")


@allowed_in_client_mode
@login_required
def verify(request):
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in TOTPDevice.objects.filter(user=request.user, confirmed=True):
            if device.verify_token(form.cleaned_data["token"]):
                otp_login(request, device)
                target = request.GET.get("next", "")
                return redirect(
                    target if target.startswith("/") and not target.startswith("//") else "home"
                )
        form.add_error("token", _("That code is not right. Codes change every 30 seconds."))
    return render(request, "registration/two_factor_verify.html", {"form": form})


@login_required
def setup(request):
    """Add an authenticator: scan the code, confirm with one code from it."""
    device, _created = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "authenticator"}
    )
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            request.session.pop(NOT_NEEDED_KEY, None)
            messages.success(request, _("Two-factor login is on for your account."))
            return redirect("home")
        form.add_error("token", _("That code is not right. Codes change every 30 seconds."))
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4, border=2, dark="#1f3a4d")
    secret = device.config_url.split("secret=", 1)[1].split("&", 1)[0]
    return render(
        request,
        "registration/two_factor_setup.html",
        {"form": form, "qr_svg": qr, "secret": secret, "required": needs_setup(request)},
    )
