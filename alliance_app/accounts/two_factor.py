"""Two-factor login on django-otp: an authenticator app (TOTP, RFC 6238) and recovery codes.

A user who has set up an authenticator must enter its code, or one of their single-use recovery
codes, after the password; in an organisation that requires two factors, a user without one must set
it up before going on. The password alone never changes the second factor: a first authenticator can
be added only while the user has none, and replacing one takes a verified login and a code from the
current one.
"""

from urllib.parse import urlencode

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django_otp import devices_for_user, verify_token
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .access import request_membership
from .decorators import allowed_in_client_mode
from .redirects import safe_next

# Reachable before the second factor: the factor pages themselves, logging out, health.
NOT_NEEDED_KEY = "alliance_two_factor_not_needed"
OPEN_URL_NAMES = {"two_factor_verify", "two_factor_setup", "logout", "healthz", "login"}
RECOVERY_CODE_COUNT = 10


def has_authenticator(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def needs_setup(request) -> bool:
    membership = request_membership(request)
    required = membership is not None and membership.organization.require_two_factor
    return required and not has_authenticator(request.user)


def redirect_to_verify(request):
    return redirect(
        f"{reverse('two_factor_verify')}?{urlencode({'next': request.get_full_path()})}"
    )


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
        if has_authenticator(user):
            return redirect_to_verify(request)
        if needs_setup(request):
            return redirect("two_factor_setup")
        # Asked once per login session: sessions end after 30 idle minutes, so a factor an
        # organisation starts to require applies from the next login on.
        request.session[NOT_NEEDED_KEY] = True
        return None


def accepting_device(user, token: str) -> Device | None:
    """The user's confirmed authenticator or recovery-code set that accepts the code, if any."""
    for device in devices_for_user(user):
        # Verifies under a row lock, so one code cannot be spent twice by parallel requests.
        accepted = verify_token(user, device.persistent_id, token)
        if accepted is not None:
            return accepted
    return None


def recovery_codes_make(*, user) -> list[str]:
    """Replace the user's recovery codes with a new set, returned to be shown this once."""
    codes = [StaticToken.random_token() for _position in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _code_field(label) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "off"}),
    )


def _normalised(code: str) -> str:
    # Recovery codes are shown in lower case; people copy them with spaces or type them in capitals.
    return code.replace(" ", "").replace("-", "").lower()


class TokenForm(forms.Form):
    token = _code_field(gettext_lazy("Code from your authenticator app"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"].widget.attrs.update(inputmode="numeric", autofocus=True)

    def clean_token(self) -> str:
        return _normalised(self.cleaned_data["token"])


class VerifyForm(TokenForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"].label = _("Code from your authenticator app, or a recovery code")
        self.fields["token"].widget.attrs.pop("inputmode")


class ReplaceForm(TokenForm):
    """Set up a new authenticator in place of the current one, which must vouch for it."""

    current = _code_field(gettext_lazy("Code from your current authenticator, or a recovery code"))
    field_order = ["current", "token"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token"].label = _("Code from the new authenticator")
        self.fields["token"].widget.attrs.pop("autofocus")
        self.fields["current"].widget.attrs.update(autofocus=True)

    def clean_current(self) -> str:
        return _normalised(self.cleaned_data["current"])


WRONG_CODE = gettext_lazy("That code is not right. Codes change every 30 seconds.")


@allowed_in_client_mode
@login_required
def verify(request):
    form = VerifyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = accepting_device(request.user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = recovery_codes_left(request.user)
                messages.warning(
                    request,
                    ngettext(
                        "You used a recovery code: %(left)d is left. "
                        "Make new ones on the two-factor page if you lost your phone.",
                        "You used a recovery code: %(left)d are left. "
                        "Make new ones on the two-factor page if you lost your phone.",
                        left,
                    )
                    % {"left": left},
                )
            return redirect(safe_next(request))
        form.add_error("token", WRONG_CODE)
    return render(request, "registration/two_factor_verify.html", {"form": form})


@login_required
def setup(request):
    """Add an authenticator (scan, then confirm with a code from it) or replace the current one."""
    replacing = has_authenticator(request.user)
    if replacing and not request.user.is_verified():
        return redirect_to_verify(request)
    pending, _created = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "authenticator"}
    )
    form = (ReplaceForm if replacing else TokenForm)(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # The new code first: a mistyped new code must not spend a recovery code given as current.
        if not verify_token(request.user, pending.persistent_id, form.cleaned_data["token"]):
            form.add_error("token", WRONG_CODE)
        elif replacing and accepting_device(request.user, form.cleaned_data["current"]) is None:
            form.add_error("current", WRONG_CODE)
        else:
            return _setup_done(request, pending, replacing=replacing)
    qr = segno.make(pending.config_url, error="m").svg_inline(scale=4, border=2, dark="#1f3a4d")
    secret = pending.config_url.split("secret=", 1)[1].split("&", 1)[0]
    context = {
        "form": form,
        "qr_svg": qr,
        "secret": secret,
        "required": needs_setup(request),
        "replacing": replacing,
    }
    return render(request, "registration/two_factor_setup.html", context)


def _setup_done(request, device: TOTPDevice, *, replacing: bool):
    with transaction.atomic():
        TOTPDevice.objects.filter(user=request.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    otp_login(request, device)
    request.session.pop(NOT_NEEDED_KEY, None)
    if replacing:
        messages.success(
            request, _("Your new authenticator is set up; the old one no longer works.")
        )
        return redirect("home")
    messages.success(request, _("Two-factor login is on for your account."))
    codes = recovery_codes_make(user=request.user)
    return render(request, "registration/two_factor_recovery_codes.html", {"codes": codes})


@login_required
def recovery_codes(request):
    """How many recovery codes are left; make a new set (which voids the old one)."""
    if not request.user.is_verified():
        return (
            redirect_to_verify(request)
            if has_authenticator(request.user)
            else redirect("two_factor_setup")
        )
    if request.method == "POST":
        codes = recovery_codes_make(user=request.user)
        messages.success(request, _("New recovery codes are made; the old ones no longer work."))
        return render(request, "registration/two_factor_recovery_codes.html", {"codes": codes})
    return render(
        request,
        "registration/two_factor_recovery.html",
        {"left": recovery_codes_left(request.user)},
    )
