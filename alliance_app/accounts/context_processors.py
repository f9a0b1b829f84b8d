from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .access import request_membership
from .models import Role

# Menus that gather pages, to keep the menu bar to one row on a tablet in portrait.
ORGANISATION = _("Organisation")
TEACHING = _("Teaching")
DATA = _("Data")

# The pages each role works from, in menu order; a third part names the menu a page is in.
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
        ("caseload", _("My caseload")),
        ("training_list", _("Trainings"), TEACHING),
        ("case_set_list", _("Case sets"), TEACHING),
        ("alliance_outcome", _("Alliance and outcome"), TEACHING),
        ("exports", _("Exports")),
    ],
    Role.ADMIN: [
        ("overview", _("Overview")),
        ("inbox", _("Flag inbox")),
        ("team_statistics", _("Therapists")),
        ("training_list", _("Trainings"), TEACHING),
        ("case_set_list", _("Case sets"), TEACHING),
        ("alliance_outcome", _("Alliance and outcome"), TEACHING),
        ("expected_response", _("Expected response"), TEACHING),
        ("client_new", _("New client"), DATA),
        ("paper_import", _("Paper ratings"), DATA),
        ("exports", _("Exports"), DATA),
        ("staff_list", _("Staff"), ORGANISATION),
        ("team_list", _("Teams"), ORGANISATION),
        ("organization_settings", _("Settings"), ORGANISATION),
        ("audit_log", _("Audit trail"), ORGANISATION),
        ("admin:index", _("Administration"), ORGANISATION),
    ],
}


def membership(request):
    """The signed-in user's organisation, role and menu, for the page header."""
    if not hasattr(request, "user"):
        return {}
    found = request_membership(request)
    if found is None:
        return {"membership": None, "navigation": []}
    navigation, menus = [], {}
    for name, label, *menu in NAVIGATION[found.role]:
        url = reverse(name)
        item = {"url": url, "label": label, "active": request.path == url}
        if not menu:
            navigation.append(item)
            continue
        if menu[0] not in menus:
            menus[menu[0]] = {"label": menu[0], "menu": [], "active": False}
            navigation.append(menus[menu[0]])
        menus[menu[0]]["menu"].append(item)
        menus[menu[0]]["active"] |= item["active"]
    return {"membership": found, "navigation": navigation}
