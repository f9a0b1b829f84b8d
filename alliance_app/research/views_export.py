"""The research export's page and its download, for the organisation's admins."""

import tempfile

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from alliance_app.accounts.access import require_role
from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.dashboards.supervision import rule_in_force
from alliance_app.lib.db_router import replica_reads

from .codebook import COLUMNS, RULES
from .export import export_write


@login_required
@require_GET
def research_export_page(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, Role.ADMIN)
    return render(
        request,
        "research/export.html",
        {
            "columns": COLUMNS,
            "rules": RULES,
            "rule": rule_in_force(membership.organization),
        },
    )


@login_required
@require_GET
@replica_reads
def research_export_download(request: HttpRequest) -> FileResponse:
    """The zip, built into a temporary file that goes when the response is closed."""
    membership = require_role(request, Role.ADMIN)
    filename = f"alliance-research-{timezone.localdate():%Y-%m-%d}.zip"
    # Closed, and so deleted, by the response once it is sent.
    archive = tempfile.TemporaryFile()  # noqa: SIM115
    summary = export_write(membership.organization, archive)
    archive.seek(0)
    audit_record(
        request,
        action=Action.EXPORT_DOWNLOADED,
        organization=membership.organization,
        object_type="export",
        detail=f"{filename} ({summary.rows} rows)",
    )
    return FileResponse(
        archive, as_attachment=True, filename=filename, content_type="application/zip"
    )
