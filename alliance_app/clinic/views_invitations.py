"""Inviting colleagues (organisation admins) and accepting an invitation (no login: the link)."""

import logging
import smtplib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from alliance_app.accounts.access import require_role
from alliance_app.accounts.languages import is_offered
from alliance_app.accounts.models import Invitation, Role

from . import invitations
from .forms_invitations import AcceptForm, InviteForm

logger = logging.getLogger(__name__)

MAIL_FAILED = _(
    "The invitation to %(email)s is saved, but the mail server did not take the e-mail: "
    "send it again from the staff page once e-mail works."
)


@login_required
def invite(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, Role.ADMIN)
    form = InviteForm(request.POST or None, organization=membership.organization)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invitation = invitations.invite(
                organization=membership.organization,
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                role=data["role"],
                team=data["team"],
                supervised_teams=data["supervised_teams"],
                language=data["language"],
                invited_by=request.user,
                request=request,
            )
        except ValidationError as error:
            form.add_error(None, error)
        except (smtplib.SMTPException, OSError):
            logger.exception("invitation e-mail to %s not sent", data["email"])
            messages.warning(request, MAIL_FAILED % {"email": data["email"]})
            return redirect("staff_list")
        else:
            messages.success(
                request,
                _("%(email)s is invited. They appear here once they have chosen a password.")
                % {"email": invitation.email},
            )
            return redirect("staff_list")
    return render(
        request,
        "accounts/invite.html",
        {"form": form, "invitation_days": settings.INVITATION_DAYS},
        status=400 if request.method == "POST" else 200,
    )


def _admins_invitation(request: HttpRequest, pk: int) -> Invitation:
    """An invitation of the admin's own organisation; 404 for any other."""
    membership = require_role(request, Role.ADMIN)
    try:
        return Invitation.objects.select_related("organization", "user__membership").get(
            pk=pk, organization=membership.organization
        )
    except Invitation.DoesNotExist:
        raise Http404 from None


@require_POST
@login_required
def invitation_resend(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _admins_invitation(request, pk)
    try:
        invitations.resend(invitation, by=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except (smtplib.SMTPException, OSError):
        logger.exception("invitation e-mail to %s not sent", invitation.email)
        messages.warning(request, MAIL_FAILED % {"email": invitation.email})
    else:
        messages.success(
            request,
            _("A new invitation went to %(email)s; the earlier link no longer works.")
            % {"email": invitation.email},
        )
    return redirect("staff_list")


@require_POST
@login_required
def invitation_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _admins_invitation(request, pk)
    try:
        invitations.withdraw(invitation, by=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("The invitation to %(email)s is withdrawn: its link no longer works.")
            % {"email": invitation.email},
        )
    return redirect("staff_list")


@never_cache
def accept(request: HttpRequest, token: str) -> HttpResponse:
    """Set a password from an invitation link, then go on logged in (to two-factor set-up first
    where the organisation requires it)."""
    try:
        invitation = invitations.open_invitation(token)
    except invitations.InvitationRefused:
        return render(request, "accounts/invitation_invalid.html", status=404)
    # The page speaks the language chosen for them, where there is one.
    if is_offered(invitation.user.language):
        translation.activate(invitation.user.language)
        request.LANGUAGE_CODE = invitation.user.language
    form = AcceptForm(invitation.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitations.accept(
                token,
                form.cleaned_data["new_password1"],
                form.cleaned_data["new_password2"],
                request=request,
            )
        except invitations.InvitationRefused:
            return render(request, "accounts/invitation_invalid.html", status=404)
        login(request, user, backend="alliance_app.accounts.backends.MembershipBackend")
        messages.success(request, _("Welcome to Alliance. Your password is set."))
        if invitation.organization.require_two_factor:
            return redirect("two_factor_setup")
        return redirect("home")
    return render(
        request,
        "accounts/invitation_accept.html",
        {"form": form, "invitation": invitation},
        status=400 if request.method == "POST" else 200,
    )
