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
