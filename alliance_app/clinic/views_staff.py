"""Staff and teams pages: for organisation admins, within their own organisation."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from alliance_app.accounts.access import require_role
from alliance_app.accounts.cached import keyed_result
from alliance_app.accounts.models import Membership, Role, Team, User
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record

from . import staff
from .forms_staff import StaffForm, TeamForm, TeamMergeForm

STAFF_PAGE_SIZE = 50
TEAMS_PAGE_SIZE = 50


def _member(membership: Membership, pk: int) -> User:
    member = staff.get_member(membership.organization, pk)
    if member is None:
        raise Http404
    return member


def _team(membership: Membership, pk: int) -> Team:
    try:
        return Team.objects.get(organization=membership.organization, pk=pk)
    except Team.DoesNotExist:
        raise Http404 from None


@login_required
def staff_list(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, Role.ADMIN)
    query = request.GET.get("q", "").strip()[:100]
    number = request.GET.get("page", "")[:20]
    (members, count, number), key = keyed_result(
        "staff",
        (membership.organization, query, number),
        lambda: _staff_page_of(membership.organization, query, number),
    )
    page = _page(members, count, number, STAFF_PAGE_SIZE)
    # Statuses are counted from now on every visit: an invitation lapses at its own minute.
    now = timezone.now()
    rows = []
    for member in members:
        status = staff.staff_status(member, now)
        rows.append((member, status, staff.STATUS_LABELS[status]))
    return render(
        request,
        "clinic/staff_list.html",
        {
            "rows": rows,
            "page": page,
            "query": query,
            "filters": {"q": query} if query else {},
            # The rows are the cached result's, with these statuses: kept under its key.
            "result_key": key,
            "statuses": ",".join(status for _member, status, _label in rows),
        },
    )


def _staff_page_of(organization, query: str, number: str) -> tuple[list[User], int, int]:
    """One page of the staff list: its colleagues, how many match in all, the page's number."""
    members = staff.staff_of(organization)
    if query:
        members = members.filter(
            Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(email__icontains=query)
            | Q(username__icontains=query)
        )
    shown, count, number = _page_of(members, number, STAFF_PAGE_SIZE)
    for member in shown:
        # Named once per row: the table shows them in three places.
        member.supervised_names = ", ".join(
            str(team) for team in member.membership.supervised_teams.all()
        )
    return shown, count, number


def _page_of(rows: QuerySet, number: str, size: int) -> tuple[list, int, int]:
    """One page of `rows`, `size` at a time, so that a large organisation's page costs what a
    small one's does: its rows, how many there are in all, and the page's number (the last for
    a number past it, the first for one that is not a number)."""
    page = Paginator(rows, size).get_page(number)
    return list(page.object_list), page.paginator.count, page.number


def _page(rows: list, count: int, number: int, size: int) -> Page:
    """The page of a cached `_page_of` result, for the previous and next links."""
    return Page(rows, number, Paginator(range(count), size))


@login_required
def staff_edit(request: HttpRequest, pk: int) -> HttpResponse:
    membership = require_role(request, Role.ADMIN)
    member = _member(membership, pk)
    form = StaffForm(
        request.POST or None, organization=membership.organization, initial=_initial(member)
    )
    if request.method == "POST" and form.is_valid():
        try:
            changed = staff.staff_update(member=member, details=form.details())
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if changed:
                audit_record(
                    request, action=Action.STAFF_CHANGED, obj=member, detail="; ".join(changed)
                )
                messages.success(request, _("%(name)s's details are saved.") % {"name": member})
            return redirect("staff_list")
    return _staff_page(request, member, form)


def _staff_page(request, member: User, form: StaffForm, holding=None) -> HttpResponse:
    status = staff.staff_status(member)
    return render(
        request,
        "clinic/staff_edit.html",
        {
            "member": member,
            "form": form,
            "status": status,
            "label": staff.STATUS_LABELS[status],
            "holding": holding,
            "is_self": member.pk == request.user.pk,
        },
    )


@login_required
@require_POST
def staff_active(request: HttpRequest, pk: int) -> HttpResponse:
    """Deactivate a colleague (`active=0`) or reactivate them (`active=1`). A refused
    deactivation shows the clients to hand over first."""
    membership = require_role(request, Role.ADMIN)
    member = _member(membership, pk)
    wanted = request.POST.get("active", "")
    if wanted not in ("0", "1"):
        messages.error(request, _("Say whether to deactivate or reactivate the colleague."))
        return redirect("staff_edit", pk=member.pk)
    deactivating = wanted == "0"
    try:
        if deactivating:
            staff.staff_deactivate(member=member, by=request.user)
        else:
            staff.staff_reactivate(member=member)
    except ValidationError as error:
        return _refused(request, membership, member, error, deactivating=deactivating)
    if deactivating:
        audit_record(request, action=Action.STAFF_DEACTIVATED, obj=member, detail=str(member))
        messages.success(
            request, _("%(name)s is deactivated and can no longer log in.") % {"name": member}
        )
    else:
        audit_record(request, action=Action.STAFF_REACTIVATED, obj=member, detail=str(member))
        messages.success(request, _("%(name)s can log in again.") % {"name": member})
    return redirect("staff_list")


def _refused(
    request, membership: Membership, member: User, error: ValidationError, *, deactivating: bool
) -> HttpResponse:
    """The colleague's page again, saying why; a deactivation waiting for clients to be
    handed over lists them."""
    holding = []
    if deactivating and member.pk != request.user.pk:
        holding = list(staff.clients_holding(member))
    if not holding:
        for message in error.messages:
            messages.error(request, message)
    form = StaffForm(organization=membership.organization, initial=_initial(member))
    return _staff_page(request, member, form, holding=holding)


def _initial(member: User) -> dict:
    current = member.membership
    return {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "role": current.role,
        "team": current.team_id,
        "supervised_teams": [team.pk for team in current.supervised_teams.all()],
    }


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    """The organisation's teams, and a form to add one."""
    membership = require_role(request, Role.ADMIN)
    form = TeamForm(request.POST or None, submit=_("Add the team"))
    if request.method == "POST" and form.is_valid():
        try:
            team = staff.team_create(
                organization=membership.organization, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            audit_record(request, action=Action.TEAM_CREATED, obj=team, detail=team.name)
            messages.success(request, _("Team %(name)s is added.") % {"name": team.name})
            return redirect("team_list")
    number = request.GET.get("page", "")[:20]
    (teams, count, number), key = keyed_result(
        "teams",
        (membership.organization, number),
        lambda: _page_of(staff.teams_of(membership.organization), number, TEAMS_PAGE_SIZE),
    )
    return render(
        request,
        "clinic/team_list.html",
        {
            "teams": teams,
            "page": _page(teams, count, number, TEAMS_PAGE_SIZE),
            "filters": {},
            "can_merge": count > 1,
            "form": form,
            # The rows are the cached result's: kept under its key.
            "result_key": key,
        },
    )


@login_required
def team_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename a team."""
    membership = require_role(request, Role.ADMIN)
    team = _team(membership, pk)
    old_name = team.name
    form = TeamForm(request.POST or None, initial={"name": team.name}, submit=_("Rename"))
    if request.method == "POST" and form.is_valid():
        try:
            staff.team_rename(team=team, name=form.cleaned_data["name"])
        except ValidationError as error:
            team.name = old_name
            form.add_error(None, error)
        else:
            if team.name != old_name:
                audit_record(
                    request,
                    action=Action.TEAM_RENAMED,
                    obj=team,
                    detail=f"{old_name} → {team.name}",
                )
                messages.success(
                    request, _("The team is now called %(name)s.") % {"name": team.name}
                )
            return redirect("team_list")
    return render(request, "clinic/team_edit.html", {"team": team, "form": form})


@login_required
def team_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Merge a team into another: the page says what moves; posting the form merges."""
    membership = require_role(request, Role.ADMIN)
    team = _team(membership, pk)
    form = TeamMergeForm(request.POST or None, team=team)
    if request.method == "POST" and form.is_valid():
        into = form.cleaned_data["into"]
        name = team.name
        try:
            staff.team_merge(team=team, into=into)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            audit_record(
                request, action=Action.TEAMS_MERGED, obj=into, detail=f"{name} → {into.name}"
            )
            messages.success(
                request,
                _("Team %(team)s is merged into %(into)s.") % {"team": name, "into": into.name},
            )
            return redirect("team_list")
    return render(
        request,
        "clinic/team_merge.html",
        {"team": team, "form": form, "counts": staff.team_merge_counts(team)},
    )
