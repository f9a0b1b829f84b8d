"""Who may see what: the one place that says it. Every view starts from these helpers."""

from django.http import Http404, HttpRequest

from .models import Membership


def membership_for(user) -> Membership | None:
    """The signed-in user's membership, fetched once per request object."""
    if not user.is_authenticated:
        return None
    try:
        return Membership.objects.select_related("organization", "team").get(user=user)
    except Membership.DoesNotExist:
        return None


def require_membership(request: HttpRequest) -> Membership:
    """The caller's membership; a signed-in user with none belongs to no organisation: 404."""
    membership = getattr(request, "_alliance_membership", None)
    if membership is None:
        membership = membership_for(request.user)
        if membership is None:
            raise Http404
        request._alliance_membership = membership
    return membership
