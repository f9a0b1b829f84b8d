"""Logins, failed logins and logouts go into the audit trail; every other event is recorded by
the view that handles it."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from alliance_app.accounts.models import User

from .models import Action, AuditEntry
from .services import audit_record, request_origin


@receiver(user_logged_in, dispatch_uid="audit_login")
def record_login(sender, request, user, **kwargs) -> None:
    audit_record(request, action=Action.LOGIN, actor=user)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def record_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(request, action=Action.LOGOUT, actor=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def record_login_failed(sender, credentials, request=None, **kwargs) -> None:
    username = str(credentials.get("username") or "")
    # A known account's organisation sees attempts on it; an unknown name belongs to nobody.
    target = User.objects.filter(username=username).select_related("membership")
    membership = getattr(target.first(), "membership", None)
    AuditEntry.objects.create(
        organization_id=membership.organization_id if membership else None,
        actor_name=username[:150],
        action=Action.LOGIN_FAILED,
        **request_origin(request),
    )
