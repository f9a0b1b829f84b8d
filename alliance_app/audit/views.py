from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from alliance_app.accounts.access import require_role
from alliance_app.accounts.models import Membership, Role
from alliance_app.lib.tabular import Table, csv_stream

from .models import Action, AuditEntry
from .services import audit_record

CSV_FIELDS = ["actor_name", "action", "object_type", "object_id", "detail", "ip", "user_agent"]


def _entries(request: HttpRequest, membership: Membership) -> tuple[QuerySet, dict]:
    """The organisation's entries, newest first, narrowed by the filters in the query string."""
    entries = AuditEntry.objects.filter(organization=membership.organization).order_by("-at", "-pk")
    filters = {key: request.GET.get(key, "").strip() for key in ("action", "actor")}
    if filters["action"] in Action.values:
        entries = entries.filter(action=filters["action"])
    if filters["actor"]:
        entries = entries.filter(actor_name__icontains=filters["actor"])
    return entries, filters


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, Role.ADMIN)
    entries, filters = _entries(request, membership)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "audit/log.html",
        {
            "page": page,
            "filters": filters,
            "actions": Action.choices,
            "membership": membership,
        },
    )


@login_required
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    membership = require_role(request, Role.ADMIN)
    entries, _filters = _entries(request, membership)
    filename = f"alliance-audit-{timezone.localdate():%Y-%m-%d}.csv"
    audit_record(
        request,
        action=Action.AUDIT_EXPORTED,
        organization=membership.organization,
        object_type="export",
        detail=f"{filename} {request.GET.urlencode()}".strip(),
    )
    # Usernames tried and user agents come from outside: the shared writer keeps spreadsheets
    # from running them.
    table = Table(
        header=["at", *CSV_FIELDS],
        rows=entries.values_list("at", *CSV_FIELDS).iterator(chunk_size=2000),
    )
    response = StreamingHttpResponse(
        csv_stream(table),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
