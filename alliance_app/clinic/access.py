"""Which clients a user sees and may treat (the rules' overview is in `accounts.access`)."""

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

from alliance_app.accounts.access import require_membership
from alliance_app.accounts.models import Membership, Role

from .models import Client, Episode


def _treats(user) -> Q:
    # Subqueries that do not refer to the outer row: the database computes each set once and
    # checks every client against it, instead of looking up episodes client by client.
    had_episode = Episode.objects.filter(therapist=user).values("client_id")
    return Q(primary_therapist=user) | Q(pk__in=had_episode)


def clients_visible_to(membership: Membership) -> QuerySet[Client]:
    clients = Client.objects.filter(organization=membership.organization)
    if membership.role == Role.ADMIN:
        return clients
    if membership.role == Role.SUPERVISOR:
        teams = membership.supervised_teams.values("pk")
        in_teams = Membership.objects.filter(team__in=teams).values("user_id")
        return clients.filter(_treats(membership.user) | Q(primary_therapist__in=in_teams))
    return clients.filter(_treats(membership.user))


def clients_treated_by(membership: Membership) -> QuerySet[Client]:
    """The clients `may_treat` allows the member, as one queryset."""
    return Client.objects.filter(organization=membership.organization).filter(
        _treats(membership.user)
    )


def get_visible_client(request: HttpRequest, pk: int) -> Client:
    membership = require_membership(request)
    try:
        return clients_visible_to(membership).select_related("primary_therapist").get(pk=pk)
    except Client.DoesNotExist:
        raise Http404 from None


def get_visible(request: HttpRequest, queryset: QuerySet, pk: int, client_path: str):
    """An object reached through a client (`client_path`), if the caller may see that client."""
    clients = clients_visible_to(require_membership(request))
    try:
        return queryset.get(pk=pk, **{f"{client_path}__in": clients})
    except queryset.model.DoesNotExist:
        raise Http404 from None


def may_treat(membership: Membership, client: Client) -> bool:
    """Running sessions and handing the tablet over is for the client's own therapist."""
    if client.organization_id != membership.organization_id:
        return False
    if client.primary_therapist_id == membership.user_id:
        return True
    return client.episodes.filter(therapist=membership.user).exists()


def require_treating(request: HttpRequest, client: Client) -> Membership:
    membership = require_membership(request)
    if not may_treat(membership, client):
        raise PermissionDenied
    return membership


def may_hand_over(membership: Membership) -> bool:
    """Handing a client to another therapist is for supervisors and admins (among the clients
    and therapists they see)."""
    return membership.role in (Role.SUPERVISOR, Role.ADMIN)


def require_handing_over(request: HttpRequest) -> Membership:
    membership = require_membership(request)
    if not may_hand_over(membership):
        raise PermissionDenied
    return membership
