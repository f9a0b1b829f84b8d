import csv
from collections.abc import Iterable, Iterator

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from alliance_app.accounts.access import require_role
from alliance_app.accounts.models import Membership, Role

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


class _Echo:
    """csv.writer writes a row into this and gets the line back, so rows can be streamed."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # Usernames tried and user agents come from outside: keep spreadsheets from running them.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(rows: Iterable[tuple]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(["at", *CSV_FIELDS])
    for at, *values in rows:
        yield writer.writerow([at.isoformat(), *(_cell(value) for value in values)])


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
    response = StreamingHttpResponse(
        _csv_rows(entries.values_list("at", *CSV_FIELDS).iterator(chunk_size=2000)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
