from .access import membership_for


def membership(request):
    """The signed-in user's organisation and role, for the page header."""
    if not hasattr(request, "user"):
        return {}
    cached = getattr(request, "_alliance_membership", None)
    return {"membership": cached or membership_for(request.user)}
