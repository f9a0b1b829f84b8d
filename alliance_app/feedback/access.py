"""Which flags a user sees and may act on, and who writes a reflection on one (the rules' overview
is in `accounts.access`)."""

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from alliance_app.accounts.access import require_membership, require_role
from alliance_app.accounts.models import Membership, Role
from alliance_app.clinic.access import clients_treated_by, clients_visible_to, may_treat
from alliance_app.clinic.models import Client

from .models import Flag
from .reflecting import REFLECTED_KINDS


def flags_visible_to(membership: Membership) -> QuerySet[Flag]:
    return Flag.objects.filter(client__in=clients_visible_to(membership))


def get_visible_flag(request: HttpRequest, pk: int) -> Flag:
    membership = require_membership(request)
    try:
        return flags_visible_to(membership).select_related("client").get(pk=pk)
    except Flag.DoesNotExist:
        raise Http404 from None


def may_act_on_flags(membership: Membership, client: Client) -> bool:
    """The client's therapist and the supervisors who see the client; admins only read."""
    if membership.role == Role.SUPERVISOR:
        return True
    return may_treat(membership, client)


def require_acting_on_flags(request: HttpRequest, client: Client) -> Membership:
    membership = require_membership(request)
    if not may_act_on_flags(membership, client):
        raise PermissionDenied
    return membership


def may_reflect(membership: Membership, client: Client) -> bool:
    """A reflection is the treating therapist's own account; supervisors and admins read it."""
    return may_treat(membership, client)


def flags_to_reflect_on(membership: Membership, flags: Iterable[Flag]) -> set[int]:
    """Of `flags`, the ruptures and tensions the member may write a reflection on, in one query
    (none when there are no such flags)."""
    candidates = [flag for flag in flags if flag.kind in REFLECTED_KINDS]
    if not candidates:
        return set()
    treated = set(
        clients_treated_by(membership)
        .filter(pk__in={flag.client_id for flag in candidates})
        .values_list("pk", flat=True)
    )
    return {flag.pk for flag in candidates if flag.client_id in treated}


def require_band_reader(request: HttpRequest) -> Membership:
    """The expected-response page: admins keep the band, supervisors read how it was made and
    how well it predicts; a therapist gets 403, as for the other pages about the whole clinic."""
    return require_role(request, Role.ADMIN, Role.SUPERVISOR)


def may_keep_band(membership: Membership) -> bool:
    """Fitting the band or loading one fitted elsewhere changes every client's flags: admins."""
    return membership.role == Role.ADMIN


def require_band_keeper(request: HttpRequest) -> Membership:
    membership = require_band_reader(request)
    if not may_keep_band(membership):
        raise PermissionDenied
    return membership
