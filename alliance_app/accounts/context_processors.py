from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .access import request_membership
from .models import Role

# The pages each role works from, in menu order.
NAVIGATION = {
    Role.THERAPIST: [
        ("caseload", _("Caseload")),
        ("supervision_index", _("My supervision page")),
        ("exports", _("Exports")),
    ],
    Role.SUPERVISOR: [
        ("inbox", _("Flag inbox")),
        ("team_statistics", _("Team statistics")),
        ("supervision_index", _("Supervision")),
        ("training_list", _("Trainings")),
        ("case_set_list", _("Case sets")),
        ("caseload", _("My caseload")),
        ("alliance_outcome", _("Alliance and outcome")),
        ("exports", _("Exports")),
    ],
    Role.ADMIN: [
        ("overview", _("Overview")),
        ("inbox", _("Flag inbox")),
        ("team_statistics", _("Therapists")),
        ("training_list", _("Trainings")),
        ("case_set_list", _("Case sets")),
        ("alliance_outcome", _("Alliance and outcome")),
        ("expected_response", _("Expected response")),
        ("exports", _("Exports")),
        ("client_new", _("New client")),
        ("paper_import", _("Paper ratings")),
        ("audit_log", _("Audit trail")),
        ("admin:index", _("Administration")),
    ],
}


def membership(request):
    """The signed-in user's organisation, role and menu, for the page header."""
    if not hasattr(request, "user"):
        return {}
    found = request_membership(request)
    if found is None:
        return {"membership": None, "navigation": []}
    navigation = [
        {"url": reverse(name), "label": label, "active": request.path == reverse(name)}
        for name, label in NAVIGATION[found.role]
    ]
    return {"membership": found, "navigation": navigation}
