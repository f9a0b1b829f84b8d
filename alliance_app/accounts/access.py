"""Who may see and do what. The rules are written once, each in the lowest layer that can state it:

- here, the membership: a user's organisation and role, and whose work they may see in statistics;
- `clinic.access`, clients and what hangs from them: a therapist sees the clients they are
  primary therapist of or have an episode with; a supervisor sees those plus the clients of the
  therapists in the teams they supervise; an organisation admin sees every client of the
  organisation;
- `feedback.access`, flags: seen with their client, acted on by the client's therapist and the
  supervisors who see the client.

Nobody sees another organisation. An object outside what a user sees is a 404 (its existence is not
confirmed); one they see but may not change is a 403. Every view starts from these helpers.
"""

from enum import StrEnum
from typing import NamedTuple

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

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


def get_visible_therapist(request: HttpRequest, pk: int) -> User:
    """A therapist whose work the caller may see (`therapists_visible_to`): themself, the members
    of the teams they supervise, or anyone of their organisation for its admins; else 404."""
    membership = require_membership(request)
    try:
        return therapists_visible_to(membership).select_related("membership__team").get(pk=pk)
    except User.DoesNotExist:
        raise Http404 from None


# A therapist sees their team's figures pooled only with at least this many members in it, so
# that their own figures and the team's never give away one colleague's.
POOLED_TEAM_MIN = 3


class PeerScope(StrEnum):
    ORGANIZATION = "organization"
    TEAM = "team"
    SUPERVISED = "supervised"
    NONE = "none"


class Peers(NamedTuple):
    ids: list[int]
    scope: PeerScope


def supervision_peers(membership: Membership, therapist: User) -> Peers:
    """Whose pooled figures the supervision page sets beside `therapist`'s (them included).

    Admins compare with the organisation; a supervisor with the therapist's team as far as they
    see it (everyone they see, when that leaves the therapist alone); a therapist looking at
    their own page with their team, pooled, once it has `POOLED_TEAM_MIN` members. The caller
    has checked that `therapist` is visible (`get_visible_therapist`).
    """
    visible = therapists_visible_to(membership)
    team_id = therapist.membership.team_id
    if membership.role == Role.ADMIN:
        return Peers(list(visible.values_list("pk", flat=True)), PeerScope.ORGANIZATION)
    if membership.role == Role.SUPERVISOR:
        seen = list(visible.values_list("pk", "membership__team_id"))
        in_team = [pk for pk, team in seen if team_id is not None and team == team_id]
        if len(in_team) > 1:
            return Peers(in_team, PeerScope.TEAM)
        return Peers([pk for pk, _team in seen], PeerScope.SUPERVISED)
    team = (
        list(
            User.objects.filter(
                membership__team_id=team_id,
                membership__role__in=[Role.THERAPIST, Role.SUPERVISOR],
            ).values_list("pk", flat=True)
        )
        if team_id is not None
        else []
    )
    if len(team) < POOLED_TEAM_MIN:
        return Peers([], PeerScope.NONE)
    return Peers(team, PeerScope.TEAM)
