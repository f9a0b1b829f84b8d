"""Inviting a colleague by e-mail: an inactive account now, a password of their own on accepting.

The invited user exists from the start (inactive, no usable password, their membership already
in place), so the staff page lists them. The e-mail holds a one-time token; only its SHA-256
is stored. In the clinic layer, with the staff page, because every step is audited.
"""

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from alliance_app.accounts.languages import is_offered
from alliance_app.accounts.mail import absolute_url, send_to_address, user_language
from alliance_app.accounts.models import Invitation, Membership, Organization, Role, Team, User
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record


class InvitationRefused(Exception):
    """The token names no invitation that still works: unknown, expired, used or withdrawn.

    One exception for all four, so the page cannot tell a guesser which tokens once existed.
    """


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def address_in_use(email: str) -> bool:
    """Whether any account, of any organisation, already has this address or user name."""
    return User.objects.filter(Q(username__iexact=email) | Q(email__iexact=email)).exists()


def invite(
    *,
    organization: Organization,
    email: str,
    first_name: str,
    last_name: str,
    role: Role,
    team: Team | None,
    supervised_teams: Iterable[Team] = (),
    language: str = "",
    invited_by: User | None,
    request: HttpRequest | None,
    send: bool = True,
) -> Invitation:
    """Create the colleague's inactive account and membership, and e-mail them the link.

    ValidationError for an address already in use or teams of another organisation. The
    invitation is saved before the e-mail goes: if the mail server fails (smtplib.SMTPException
    or OSError, raised), the invitation stands and can be sent again. `send=False` leaves the
    sending to a `resend` (`manage.py start_organization` sends once its organisation is saved).
    """
    email = email.strip().lower()
    supervised_teams = list(supervised_teams) if role == Role.SUPERVISOR else []
    if address_in_use(email):
        raise ValidationError(_("%(email)s already has an account.") % {"email": email})
    teams = [t for t in (team, *supervised_teams) if t is not None]
    if any(team.organization_id != organization.pk for team in teams):
        raise ValidationError(_("Choose teams of your own organisation."))
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        user = User(
            username=email,
            email=email,
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            language=language if is_offered(language) else "",
            is_active=False,
        )
        user.set_unusable_password()
        user.save()
        membership = Membership.objects.create(
            user=user, organization=organization, role=role, team=team
        )
        membership.supervised_teams.set(supervised_teams)
        invitation = Invitation.objects.create(
            organization=organization,
            user=user,
            email=email,
            invited_by=invited_by,
            token_hash=token_hash(token),
        )
        audit_record(
            request,
            action=Action.STAFF_INVITED,
            organization=organization,
            obj=user,
            detail=f"{email} as {role}",
        )
    if send:
        _send(invitation, token, request)
    return invitation


def resend(invitation: Invitation, *, by: User | None, request: HttpRequest | None) -> Invitation:
    """A new link and a new expiry (the old link stops working), sent again; also after a
    withdrawal, which this undoes."""
    if invitation.accepted_at is not None:
        raise ValidationError(_("This invitation was accepted already."))
    token = secrets.token_urlsafe(32)
    invitation.token_hash = token_hash(token)
    invitation.created_at = timezone.now()
    invitation.expires_at = invitation.created_at + timedelta(days=settings.INVITATION_DAYS)
    invitation.withdrawn_at = None
    invitation.invited_by = by
    invitation.save(
        update_fields=["token_hash", "created_at", "expires_at", "withdrawn_at", "invited_by"]
    )
    audit_record(
        request,
        action=Action.STAFF_INVITED,
        organization=invitation.organization,
        obj=invitation.user,
        detail=f"{invitation.email}, sent again",
        actor=by,
    )
    _send(invitation, token, request)
    return invitation


def withdraw(invitation: Invitation, *, by: User, request: HttpRequest | None = None) -> Invitation:
    """The link stops working; the account stays inactive (and listed) until sent again."""
    if invitation.accepted_at is not None:
        raise ValidationError(_("This invitation was accepted already."))
    if invitation.withdrawn_at is None:
        invitation.withdrawn_at = timezone.now()
        invitation.save(update_fields=["withdrawn_at"])
        audit_record(
            request,
            action=Action.INVITATION_WITHDRAWN,
            organization=invitation.organization,
            obj=invitation.user,
            detail=invitation.email,
            actor=by,
        )
    return invitation


def open_invitation(token: str) -> Invitation:
    """The invitation a token names, if it still works; InvitationRefused otherwise."""
    invitation = (
        Invitation.objects.select_related("organization", "user")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if invitation is None or not invitation.is_open():
        raise InvitationRefused
    return invitation


def accept(
    token: str, password1: str, password2: str, *, request: HttpRequest | None = None
) -> User:
    """Set the colleague's password and make the account active: once per invitation.

    InvitationRefused for a token that no longer works; ValidationError (by field, Django's
    password validators) for passwords that differ or are too weak.
    """
    with transaction.atomic():
        # Locked, so that two submissions of one link cannot both succeed.
        invitation = (
            Invitation.objects.select_for_update()
            .filter(token_hash=token_hash(token))
            .select_related("organization")
            .first()
        )
        if invitation is None or not invitation.is_open():
            raise InvitationRefused
        user = User.objects.get(pk=invitation.user_id)
        form = SetPasswordForm(user, {"new_password1": password1, "new_password2": password2})
        if not form.is_valid():
            raise ValidationError(form.errors)
        user.is_active = True
        form.save(commit=False)
        user.save(update_fields=["password", "is_active"])
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        audit_record(
            request,
            action=Action.INVITATION_ACCEPTED,
            organization=invitation.organization,
            obj=user,
            detail=invitation.email,
            actor=user,
        )
    return user


def _send(invitation: Invitation, token: str, request: HttpRequest | None) -> None:
    inviter = invitation.invited_by
    # The language chosen for them, else the one their inviter reads Alliance in.
    language = invitation.user.language or (user_language(inviter) if inviter else "")
    send_to_address(
        invitation.email,
        language,
        subject_template="email/invitation_subject.txt",
        body_template="email/invitation_body.txt",
        context={
            "invitation": invitation,
            "organization": invitation.organization,
            "inviter": inviter,
            "role": Role(invitation.user.membership.role).label,
            "url": absolute_url(reverse("invitation_accept", args=[token]), request),
            "username": invitation.user.username,
        },
    )
