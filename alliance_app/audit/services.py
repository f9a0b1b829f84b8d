from collections.abc import Iterable

from django.db import models
from django.http import HttpRequest

from alliance_app.accounts.access import request_membership
from alliance_app.accounts.models import Organization
from alliance_app.lib.client_address import client_address

from .models import AuditEntry


def request_origin(request: HttpRequest | None) -> dict:
    """Where a request came from, as AuditEntry fields: the address the login lockout uses too."""
    if request is None:
        return {"ip": None, "user_agent": ""}
    return {
        "ip": client_address(request),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
    }


def audit_record(
    request: HttpRequest | None,
    *,
    action: str,
    organization: Organization | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    detail: str = "",
    actor=None,
) -> AuditEntry:
    """Add one entry to the audit trail; `detail` names things, it never holds clinical content."""
    if obj is not None:
        object_type, object_id = obj._meta.model_name, str(obj.pk)
    return AuditEntry.objects.create(
        **_who(request, actor, organization),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail[:300],
        **request_origin(request),
    )


def audit_record_each(
    request: HttpRequest, *, action: str, object_type: str, objects: Iterable[tuple[str, str]]
) -> None:
    """One entry per (object id, detail), written in one INSERT: a page that lists several
    clients' records names each client, however many there are."""
    who, origin = _who(request, None, None), request_origin(request)
    AuditEntry.objects.bulk_create(
        AuditEntry(
            **who,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            detail=detail[:300],
            **origin,
        )
        for object_id, detail in objects
    )


def _who(request: HttpRequest | None, actor, organization: Organization | None) -> dict:
    user = getattr(request, "user", None)
    if actor is None and user is not None and user.is_authenticated:
        actor = user
    organization_id = organization.pk if organization is not None else None
    if organization_id is None and actor is not None:
        if actor == user:
            membership = request_membership(request)  # fetched once per request already
        else:
            membership = getattr(actor, "membership", None)
        organization_id = membership.organization_id if membership else None
    return {
        "organization_id": organization_id,
        "actor": actor,
        "actor_name": actor.get_username()[:150] if actor else "",
    }
