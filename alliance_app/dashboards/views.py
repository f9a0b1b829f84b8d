from collections.abc import Callable, Iterable
from decimal import Decimal
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_POST

from alliance_app.accounts.access import require_membership, require_role, therapists_visible_to
from alliance_app.accounts.cached import cached_result, keyed_result
from alliance_app.accounts.models import Membership, Role, Team
from alliance_app.accounts.redirects import safe_next
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.access import clients_visible_to
from alliance_app.feedback.access import (
    flags_to_reflect_on,
    flags_visible_to,
    get_visible_flag,
    require_acting_on_flags,
)
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import OPEN_STATUSES, Flag, FlagKindChoice, FlagStatus
from alliance_app.feedback.services import flag_acknowledge, flag_resolve
from alliance_app.lib import tabular
from alliance_app.lib.db_router import replica_reads
from alliance_app.measures import AgeBand, FlagRules, Scale, Severity
from alliance_app.measures.expected import ExpectedResponse

from . import charts, exports, ruptures, selectors, stats
from .selectors import caseload

LANDING = {Role.THERAPIST: "caseload", Role.SUPERVISOR: "inbox", Role.ADMIN: "overview"}
STATUS_FILTERS = {
    "flagged": lambda row: row.open_flags > 0,
    "clinical": lambda row: row.in_clinical_range,
    "improving": lambda row: "improving" in row.statuses,
    "deteriorating": lambda row: "deteriorating" in row.statuses,
    "alliance_concern": lambda row: row.alliance_concern,
    "off_track": lambda row: row.off_track,
}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role lands on its own page."""
    return redirect(LANDING[require_membership(request).role])


@gzip_page
@login_required
@replica_reads
def caseload_view(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, Role.THERAPIST, Role.SUPERVISOR)
    query = request.GET.get("q", "").strip()
    organization = membership.organization
    expected = organization.expected_response_model()
    # The therapist's rows, once per data version for them and this search.
    rows, key = keyed_result(
        "caseload",
        [organization, membership, query],
        lambda: _caseload_rows(membership, query, expected),
    )
    status = request.GET.get("status", "")
    if status in STATUS_FILTERS:
        rows = [row for row in rows if STATUS_FILTERS[status](row)]
    return render(
        request,
        "dashboards/caseload.html",
        {
            "rows": rows,
            "query": query,
            "status": status,
            "statuses": _status_choices(band_in_use=expected is not None),
            "band_elsewhere": _elsewhere(expected),
            # The table shows the result's rows with this filter: kept under the result's key.
            "result_key": key,
        },
    )


def _caseload_rows(membership: Membership, query: str, expected: ExpectedResponse | None):
    clients = clients_visible_to(membership).filter(primary_therapist_id=membership.user_id)
    if query:
        clients = clients.filter(code__icontains=query)
    organization = membership.organization
    return caseload(clients, rules=organization.flag_rules(), expected=expected)


def _elsewhere(expected: ExpectedResponse | None) -> str:
    """Where the band in use was fitted, when not on this clinic's episodes: every page that
    judges clients by it says so."""
    return expected.source if expected is not None and expected.fitted_elsewhere else ""


def _status_choices(*, band_in_use: bool) -> list[tuple[str, str]]:
    choices = [
        ("flagged", _("With open flags")),
        ("clinical", _("In the clinical range")),
        ("improving", _("Reliably improving")),
        ("deteriorating", _("Reliably deteriorating")),
        ("alliance_concern", _("Alliance concern")),
    ]
    if band_in_use:
        choices.append(("off_track", _("Off track (below the not-on-track line)")))
    return choices


@gzip_page
@login_required
@replica_reads
def inbox(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, Role.SUPERVISOR, Role.ADMIN)
    filters = {key: request.GET.get(key, "") for key in ("therapist", "team", "kind", "status")}
    # The page's rows, its count, the filters' lists and which rows one may reflect on, once per
    # data version for this viewer, these filters and this page; the links and each flag's age
    # are worked out per request.
    here = request.get_full_path()
    result, key = keyed_result(
        "inbox",
        [membership.organization, membership, *filters.values(), request.GET.get("page", ""), here],
        lambda: _inbox_result(membership, filters, request.GET.get("page"), here),
    )
    paginator = Paginator((), 50)
    # The count Paginator asks for, as it was counted with the page.
    paginator.count = result["count"]
    page = paginator.page(result["number"])
    page.object_list = result["flags"]
    return render(
        request,
        "dashboards/inbox.html",
        {
            "page": page,
            "here": here,
            "filters": filters,
            "therapists": result["therapists"],
            "teams": result["teams"],
            "kinds": FlagKindChoice.choices,
            "flag_statuses": FlagStatus.choices,
            "can_act": membership.role == Role.SUPERVISOR,
            "reflect_on": result["reflect_on"],
            # The list shows the result and the flags' ages, counted in minutes: its HTML is
            # kept under the result's key for the minute.
            "result_key": key,
            "minute": timezone.now().strftime("%Y-%m-%dT%H:%M"),
        },
    )


def _inbox_result(
    membership: Membership, filters: dict[str, str], number: str | None, here: str
) -> dict:
    therapists = therapists_visible_to(membership).order_by("first_name", "last_name")
    teams = (
        membership.supervised_teams.all()
        if membership.role == Role.SUPERVISOR
        else Team.objects.filter(organization=membership.organization)
    )
    if membership.role == Role.SUPERVISOR:
        # The supervisor's clients (their teams', about a thousand at most) read first: as a
        # subquery, the OR of its visibility rules made the planner read every open flag of the
        # organisation and scan its clients; as a list, the flags come from their client index.
        visible = list(clients_visible_to(membership).values_list("pk", flat=True))
        flags = Flag.objects.filter(client_id__in=visible)
    else:
        flags = flags_visible_to(membership)
    if filters["therapist"].isdigit():
        flags = flags.filter(client__primary_therapist_id=int(filters["therapist"]))
    if filters["team"].isdigit():
        flags = flags.filter(client__primary_therapist__membership__team_id=int(filters["team"]))
    if filters["kind"] in FlagKindChoice.values:
        flags = flags.filter(kind=filters["kind"])
    if filters["status"] in FlagStatus.values:
        flags = flags.filter(status=filters["status"])
    else:
        flags = flags.filter(status__in=OPEN_STATUSES)
    # Open before acknowledged ("open" sorts after "acknowledged"), then the most severe, then
    # the longest waiting: the order of the flag_needing_attention index, so a page of 50 is
    # read straight from it.
    order = ("-status", "-severity", "created_at", "pk")
    ids = flags.order_by(*order).values_list("pk", flat=True)
    page = Paginator(ids, 50).get_page(number)
    # The page's 50 flags are chosen first, joining nothing but the visibility rule; only they
    # are then read with what their rows show. Asked as one query, with the choice a subquery,
    # the planner may join every flag of the organisation before picking the 50.
    rows = list(
        Flag.objects.filter(pk__in=list(page.object_list))
        .select_related(
            "client__primary_therapist",
            "rating__session",
            "rating__rupture",
            "acknowledged_by",
            "reflection__marker",
        )
        .prefetch_related("reflection__strategies")
        .order_by(*order)
    )
    _with_links(rows, here)
    return {
        "count": page.paginator.count,
        "number": page.number,
        "flags": rows,
        "therapists": list(therapists),
        "teams": list(teams),
        "reflect_on": flags_to_reflect_on(membership, rows),
    }


_PK_MARK = 918273645


def _with_links(flags: Iterable[Flag], here: str) -> None:
    """What each row of the inbox links to and posts to, and its severity's style, worked out
    here once rather than by tags in each of up to 50 rows."""
    back = f"?next={quote(here)}"
    client_url, reflection_url = _url_for("client_detail"), _url_for("flag_reflection")
    acknowledge_url, resolve_url = (
        _url_for("flag_action", "acknowledge"),
        _url_for("flag_action", "resolve"),
    )
    for flag in flags:
        flag.severity_class = Severity(flag.severity).name.lower()
        flag.client_url = client_url(flag.client_id)
        flag.reflection_url = reflection_url(flag.pk) + back
        flag.acknowledge_url = acknowledge_url(flag.pk)
        flag.resolve_url = resolve_url(flag.pk)


def _url_for(name: str, *rest: str) -> Callable[[int], str]:
    """`reverse(name, args=[pk, *rest])` for many pks: reversed once (a reverse costs tens of
    microseconds, four a row), each pk then put in the mark's place."""
    before, after = reverse(name, args=[_PK_MARK, *rest]).split(str(_PK_MARK))
    return lambda pk: f"{before}{pk}{after}"


def _reference_cutoff(rules: FlagRules) -> Decimal:
    """The alliance cut-off drawn on monthly charts: the adult session scale's, as judged here."""
    return rules.thresholds(catalogue().for_client(Scale.SESSION, AgeBand.ADULT)).cutoff


def _names(therapists) -> dict[int, str]:
    return {user.pk: str(user) for user in therapists}


@gzip_page
@login_required
@replica_reads
def team_statistics(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, Role.SUPERVISOR, Role.ADMIN)
    # An admin sees the whole organisation; a supervisor their teams and themself.
    viewer = None if membership.role == Role.ADMIN else membership.user_id
    context = cached_result(
        "team_statistics",
        [membership.organization, membership, viewer],
        lambda: _team_context(membership),
    )
    return render(request, "dashboards/team.html", context)


def _team_context(membership: Membership) -> dict:
    therapists = list(
        therapists_visible_to(membership)
        .select_related("membership")
        .order_by("first_name", "last_name")
    )
    names = _names(therapists)
    organization = membership.organization
    rules = organization.flag_rules()
    expected = organization.expected_response_model()
    figures = selectors.figures(
        names, rules=rules, rupture_rules=organization.rupture_rules(), expected=expected
    )
    per_therapist = {row.therapist_id: row for row in stats.therapist_statistics(figures)}
    rates = ruptures.rates_by(
        figures.alliance, figures.rupture_statuses, {pk: pk for pk in names}, names
    )
    monthly = charts.monthly_chart(
        stats.monthly_session_means(figures.alliance), names, _reference_cutoff(rules)
    )
    # A supervisor appears as a therapist only when they carry a caseload of their own.
    listed = [
        user
        for user in therapists
        if user.pk in per_therapist or user.membership.role == Role.THERAPIST
    ]
    return {
        "rows": [
            (names[user.pk], per_therapist.get(user.pk), reverse("supervision", args=[user.pk]))
            for user in listed
        ],
        "rupture_rows": [
            (names[user.pk], rates[user.pk], reverse("supervision", args=[user.pk]))
            for user in listed
        ],
        **_rupture_context(figures),
        "totals": stats.totals_row(figures),
        "band_in_use": expected is not None,
        "band_elsewhere": _elsewhere(expected),
        "chart": charts.chart_json(monthly),
        "chart_config": charts.chart_json(charts.chart_config()),
    }


def _rupture_context(figures: stats.Figures) -> dict:
    """The rupture figures the team and organisation pages share: the totals line and the
    outcomes of episodes with a repaired rupture, an unrepaired one and none."""
    return {
        "rupture_totals": ruptures.rates_total(figures.alliance, figures.rupture_statuses),
        "rupture_outcomes": ruptures.outcome_groups(figures.outcomes, figures.rupture_groups),
        "minimum": ruptures.MINIMUM,
    }


# Teams a page of the overview shows in its tables and chart: the page costs the same with 20
# teams or 500 (the totals are the organisation's whole).
OVERVIEW_TEAMS = 20


@gzip_page
@login_required
@replica_reads
def overview(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, Role.ADMIN)
    number = _page_number(request.GET.get("page"))
    context, key = keyed_result(
        "overview",
        [membership.organization, number],
        lambda: _overview_page(membership, number),
    )
    paginator = Paginator((), OVERVIEW_TEAMS)
    paginator.count = context["count"]  # as counted with the page
    page = paginator.page(context["number"])
    # Its tables, a row per team of the page, are the cached result's: kept under its key.
    return render(
        request,
        "dashboards/overview.html",
        {**context, "page": page, "filters": {}, "result_key": key},
    )


def _page_number(text: str | None) -> int:
    """A page number as asked for: 1 for anything but a positive number, and no more than a
    bound, so that made-up numbers cannot fill the cache with keys."""
    try:
        return min(max(int(text or 1), 1), 10_000)
    except ValueError:
        return 1


def _overview_page(membership: Membership, number: int) -> dict:
    """One page of teams (`OVERVIEW_TEAMS` of them, by name): their rows and chart lines, out
    of the organisation's figures, which every page shares."""
    whole = cached_result(
        "overview-organization",
        [membership.organization],
        lambda: _overview_organization(membership),
    )
    page = Paginator(whole["teams"], OVERVIEW_TEAMS).get_page(number)
    shown = dict(page.object_list)
    monthly = charts.monthly_chart(
        [row for row in whole["monthly"] if row.line_id in shown], shown, whole["cutoff"]
    )
    return {
        "rows": [(name, whole["by_team"][pk], None) for pk, name in shown.items()],
        "rupture_rows": [(name, whole["rates"][pk], None) for pk, name in shown.items()],
        **whole["shared"],
        "chart": charts.chart_json(monthly),
        "chart_config": charts.chart_json(charts.chart_config()),
        "count": page.paginator.count,
        "number": page.number,
    }


def _overview_organization(membership: Membership) -> dict:
    """The organisation's figures, per team and in all, for every page of the overview."""
    therapists = list(
        therapists_visible_to(membership).select_related("membership__team").order_by("first_name")
    )
    organization = membership.organization
    rules = organization.flag_rules()
    expected = organization.expected_response_model()
    figures = selectors.figures(
        [user.pk for user in therapists],
        rules=rules,
        rupture_rules=organization.rupture_rules(),
        expected=expected,
    )
    team_of = {user.pk: user.membership.team_id for user in therapists}
    teams = list(Team.objects.filter(organization=organization).order_by("name"))
    ids = [team.pk for team in teams]
    return {
        "teams": [(team.pk, team.name) for team in teams],
        "by_team": stats.statistics_by(figures, team_of, ids),
        "rates": ruptures.rates_by(figures.alliance, figures.rupture_statuses, team_of, ids),
        # One line per team: two hundred therapists' lines would be unreadable (and a large page).
        "monthly": stats.monthly_session_means(figures.alliance, team_of),
        "cutoff": _reference_cutoff(rules),
        "shared": {
            **_rupture_context(figures),
            "totals": stats.totals_row(figures),
            "band_in_use": expected is not None,
            "band_elsewhere": _elsewhere(expected),
        },
    }


@login_required
@require_POST
def flag_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ("acknowledge", "resolve"):
        raise Http404
    flag = get_visible_flag(request, pk)
    require_acting_on_flags(request, flag.client)
    note = request.POST.get("note", "")
    try:
        if action == "acknowledge":
            flag_acknowledge(flag=flag, by=request.user, note=note)
            audit_record(
                request, action=Action.FLAG_ACKNOWLEDGED, obj=flag, detail=flag.client.code
            )
            messages.success(request, _("Flag acknowledged."))
        else:
            flag_resolve(flag=flag, by=request.user, note=note)
            audit_record(request, action=Action.FLAG_RESOLVED, obj=flag, detail=flag.client.code)
            messages.success(request, _("Flag resolved."))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    # Back where the action came from, if that is a page of this site.
    return redirect(safe_next(request, default=reverse("client_detail", args=[flag.client_id])))


EXPORTS = {
    "ratings": lambda clients, rules: exports.rating_chunks(clients),
    "outcomes": lambda clients, rules: exports.outcome_chunks(clients, rules=rules),
}


@login_required
def export_list(request: HttpRequest) -> HttpResponse:
    require_membership(request)
    return render(request, "dashboards/exports.html")


@login_required
@replica_reads
def export(request: HttpRequest, dataset: str, fmt: str) -> HttpResponse:
    """Everything of `dataset` the user may see, as CSV (streamed) or Excel."""
    membership = require_membership(request)
    if dataset not in EXPORTS or fmt not in ("csv", "xlsx"):
        raise Http404
    chunks = EXPORTS[dataset](clients_visible_to(membership), membership.organization.flag_rules())
    audit_record(
        request, action=Action.EXPORT_DOWNLOADED, object_type="export", detail=f"{dataset}.{fmt}"
    )
    filename = f"alliance-{dataset}-{timezone.localdate():%Y-%m-%d}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(
            tabular.csv_stream(chunks), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    return FileResponse(tabular.excel_file(chunks, dataset), as_attachment=True, filename=filename)
