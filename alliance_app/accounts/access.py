"""Who may see and do what: the one place that says it. Every view starts from these helpers.

- A therapist sees the clients they are primary therapist of, or have an episode with.
- A supervisor sees those, plus the clients of the therapists in the teams they supervise.
- An organisation admin sees every client of the organisation.
Nobody sees another organisation. An object outside what a user sees is a 404 (its existence is not
confirmed); one they see but may not change is a 403.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

from alliance_app.clinic.models import Client, Episode
from alliance_app.feedback.models import Flag

from .models import Membership, Role, User


def membership_for(user) -> Membership | None:
    if not user.is_authenticated:
        return None
    try:
        # Loaded with the user by the authentication backend, so usually no query.
        return user.membership
    except Membership.DoesNotExist:
        return None


def request_membership(request: HttpRequest) -> Membership | None:
    """The caller's membership, fetched at most once per request."""
    if not hasattr(request, "_alliance_membership"):
        request._alliance_membership = membership_for(request.user)
    return request._alliance_membership


def require_membership(request: HttpRequest) -> Membership:
    """The caller's membership; a user of no organisation at all gets 404."""
    membership = request_membership(request)
    if membership is None:
        raise Http404
    return membership


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


def require_role(request: HttpRequest, *roles: Role) -> Membership:
    """The caller's membership if their role is among `roles`; any other role gets 403."""
    membership = require_membership(request)
    if membership.role not in roles:
        raise PermissionDenied
    return membership


def therapists_visible_to(membership: Membership) -> QuerySet[User]:
    """Whose work a user may see in statistics: the organisation, their teams, or themselves."""
    members = User.objects.filter(membership__organization=membership.organization)
    if membership.role == Role.ADMIN:
        return members.filter(membership__role__in=[Role.THERAPIST, Role.SUPERVISOR])
    if membership.role == Role.SUPERVISOR:
        teams = membership.supervised_teams.values("pk")
        return members.filter(Q(membership__team__in=teams) | Q(pk=membership.user_id)).distinct()
    return members.filter(pk=membership.user_id)


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
