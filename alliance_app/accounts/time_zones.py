from zoneinfo import ZoneInfo

from django.utils import timezone

from .access import membership_for


class OrganizationTimeZoneMiddleware:
    """Serve each request in the signed-in user's organisation's time zone.

    Templates then show times in it and `timezone.localdate()` gives the organisation's date,
    so "today's session" is dated by the clinic's calendar, not the server's. Anyone else gets
    the server's TIME_ZONE.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Not request_membership: its per-request cache would keep "nobody" through a login.
        membership = membership_for(request.user)
        if membership is None:
            timezone.deactivate()
        else:
            timezone.activate(ZoneInfo(membership.organization.time_zone))
        try:
            return self.get_response(request)
        finally:
            # The zone is per thread: a worker's next request must not inherit it.
            timezone.deactivate()
