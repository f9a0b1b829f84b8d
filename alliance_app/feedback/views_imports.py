"""Paper ratings in: upload a CSV file, read the dry run's report, then import it."""

import hashlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from alliance_app.accounts.access import require_membership
from alliance_app.accounts.models import Membership
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record, audit_record_each

from .forms import PaperImportConfirmForm, PaperImportForm
from .imports import (
    COLUMNS,
    MAX_BYTES,
    ImportReport,
    RowProblem,
    csv_decode,
    csv_rows,
    csv_template,
    rows_import,
)
from .models import Channel, Rater

# The file checked last, kept in the login session (stored on the server) until it is imported,
# so that the import stores exactly the file whose report the user read.
CHECKED_KEY = "alliance_paper_import"


@login_required
@require_http_methods(["GET", "POST"])
def paper_import(request: HttpRequest) -> HttpResponse:
    """GET: the upload form. POST with a file: its dry run. POST with a digest: the import."""
    membership = require_membership(request)
    if request.method == "GET":
        request.session.pop(CHECKED_KEY, None)
        return _page(request, PaperImportForm())
    if "digest" in request.POST:
        return _import(request, membership)
    form = PaperImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=400)
    upload = form.cleaned_data["file"]
    name = upload.name[:100]
    # Read one byte past the limit: enough to know the file is too large, never more.
    text, problems = csv_decode(upload.read(MAX_BYTES + 1))
    rows: list = []
    if not problems:
        rows, problems = csv_rows(text)
    if problems:
        request.session.pop(CHECKED_KEY, None)
        return _page(request, PaperImportForm(), name=name, file_problems=problems, status=400)
    report = _run(request, membership, rows, name, dry_run=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    request.session[CHECKED_KEY] = {"name": name, "text": text, "digest": digest}
    confirm = PaperImportConfirmForm(initial={"digest": digest})
    return _page(request, PaperImportForm(), name=name, report=report, confirm=confirm)


@login_required
@require_GET
def paper_import_template(request: HttpRequest) -> HttpResponse:
    require_membership(request)
    response = HttpResponse(csv_template(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="alliance-paper-ratings.csv"'
    return response


def _import(request: HttpRequest, membership: Membership) -> HttpResponse:
    confirm = PaperImportConfirmForm(request.POST)
    checked = request.session.get(CHECKED_KEY)
    if (
        not confirm.is_valid()
        or checked is None
        or checked["digest"] != confirm.cleaned_data["digest"]
    ):
        messages.error(request, _("The file checked is no longer at hand: please upload it again."))
        return redirect("paper_import")
    rows, _problems = csv_rows(checked["text"])
    report = _run(
        request,
        membership,
        rows,
        checked["name"],
        dry_run=False,
        only_valid=confirm.cleaned_data["only_valid"],
    )
    if report.stored or not report.ready:
        request.session.pop(CHECKED_KEY, None)
        confirm = None
    return _page(request, PaperImportForm(), name=checked["name"], report=report, confirm=confirm)


def _run(
    request: HttpRequest,
    membership: Membership,
    rows: list,
    name: str,
    *,
    dry_run: bool,
    only_valid: bool = False,
) -> ImportReport:
    """Check or import the rows, and record it: the file, and each client it names that the user
    sees (the report tells of their ratings)."""
    report = rows_import(
        organization=membership.organization,
        user=request.user,
        rows=rows,
        channel=Channel.PAPER,
        dry_run=dry_run,
        only_valid=only_valid,
    )
    action = Action.PAPER_IMPORT_CHECKED if dry_run else Action.PAPER_IMPORTED
    audit_record(
        request,
        action=action,
        organization=membership.organization,
        object_type="paper_import",
        detail=(
            f"{name}: {report.rows} rows, {report.stored} stored, {report.already} imported "
            f"before, {report.problem_lines} with problems"
        ),
    )
    audit_record_each(
        request, action=action, object_type="client", objects=sorted(report.clients.items())
    )
    return report


def _page(
    request: HttpRequest,
    form: PaperImportForm,
    *,
    name: str = "",
    report: ImportReport | None = None,
    confirm: PaperImportConfirmForm | None = None,
    file_problems: list[RowProblem] | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "feedback/paper_import.html",
        {
            "form": form,
            "name": name,
            "report": report,
            "confirm": confirm,
            "file_problems": file_problems or [],
            "columns": COLUMNS,
            "raters": Rater.values,
        },
        status=status,
    )
