"""Paper ratings in: upload a CSV file, read the dry run's report, then import it."""

import hashlib
from dataclasses import dataclass
from functools import partial

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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


@dataclass(frozen=True)
class ImportWords:
    """What the shared import report (feedback/_import_report.html) calls the parts of the file:
    a CSV file has rows, lines and columns, a FHIR file responses, places and elements."""

    nothing_stored: str | Promise
    in_the_file: str | Promise
    with_problems: str | Promise
    already_at: str | Promise
    caption: str | Promise
    place: str | Promise
    field: str | Promise
    whole: str | Promise


PAPER_WORDS = ImportWords(
    nothing_stored=gettext_lazy(
        "Nothing was stored: the file has rows with problems. Correct them and check the file "
        "again, or import only the valid rows."
    ),
    in_the_file=gettext_lazy("Rows in the file"),
    with_problems=gettext_lazy("Rows with problems"),
    already_at=gettext_lazy("Already imported, so not stored again: lines"),
    caption=gettext_lazy(
        "Problems, row by row. Line numbers count the header as line 1, as a spreadsheet does."
    ),
    place=gettext_lazy("Line"),
    field=gettext_lazy("Column"),
    whole=gettext_lazy("whole row"),
)


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
    confirm = file_checked(request, CHECKED_KEY, name, text)
    return _page(request, PaperImportForm(), name=name, report=report, confirm=confirm)


@login_required
@require_GET
def paper_import_template(request: HttpRequest) -> HttpResponse:
    require_membership(request)
    response = HttpResponse(csv_template(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="alliance-paper-ratings.csv"'
    return response


def _import(request: HttpRequest, membership: Membership) -> HttpResponse:
    confirmed = checked_file(request, CHECKED_KEY)
    if confirmed is None:
        return redirect("paper_import")
    confirm, checked = confirmed
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


def file_checked(request: HttpRequest, key: str, name: str, text: str) -> PaperImportConfirmForm:
    """Keep the file just checked in the login session under `key`, and the form that imports
    it: the form names the file by its digest."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    request.session[key] = {"name": name, "text": text, "digest": digest}
    return PaperImportConfirmForm(initial={"digest": digest})


def checked_file(
    request: HttpRequest, key: str
) -> tuple[PaperImportConfirmForm, dict[str, str]] | None:
    """The import's confirm form, valid, and the file checked last, when the form names that
    file; else None, with a message: the file is no longer at hand (another tab checked
    another file, or the login session ended)."""
    confirm = PaperImportConfirmForm(request.POST)
    checked = request.session.get(key)
    if (
        not confirm.is_valid()
        or checked is None
        or checked["digest"] != confirm.cleaned_data["digest"]
    ):
        messages.error(request, _("The file checked is no longer at hand: please upload it again."))
        return None
    return confirm, checked


def _run(
    request: HttpRequest,
    membership: Membership,
    rows: list,
    name: str,
    *,
    dry_run: bool,
    only_valid: bool = False,
) -> ImportReport:
    """Check or import the rows, and record it."""
    report = rows_import(
        organization=membership.organization,
        user=request.user,
        rows=rows,
        channel=Channel.PAPER,
        dry_run=dry_run,
        only_valid=only_valid,
    )
    import_recorded(
        request,
        membership,
        report,
        name,
        action=Action.PAPER_IMPORT_CHECKED if dry_run else Action.PAPER_IMPORTED,
        object_type="paper_import",
        unit="rows",
    )
    return report


def import_recorded(
    request: HttpRequest,
    membership: Membership,
    report: ImportReport,
    name: str,
    *,
    action: str,
    object_type: str,
    unit: str,
) -> None:
    """Record a check or an import of ratings: the file, with its counts of `unit` (rows,
    responses), and each client it names that the user sees (the report tells of their
    ratings)."""
    audit_record(
        request,
        action=action,
        organization=membership.organization,
        object_type=object_type,
        detail=(
            f"{name}: {report.rows} {unit}, {report.stored} stored, {report.already} imported "
            f"before, {report.problem_lines} with problems"
        ),
    )
    audit_record_each(
        request, action=action, object_type="client", objects=sorted(report.clients.items())
    )


def import_page(
    request: HttpRequest,
    form: forms.Form,
    *,
    template: str,
    words: ImportWords,
    extra: dict,
    name: str = "",
    report: ImportReport | None = None,
    confirm: PaperImportConfirmForm | None = None,
    file_problems: list[RowProblem] | None = None,
    status: int = 200,
) -> HttpResponse:
    """An import page: the upload `form`, and the report of the file `name` when there is one,
    told in the page's `words`; `extra` is what the page's own help text needs."""
    return render(
        request,
        template,
        {
            "form": form,
            "name": name,
            "report": report,
            "confirm": confirm,
            "file_problems": file_problems or [],
            "words": words,
            **extra,
        },
        status=status,
    )


_page = partial(
    import_page,
    template="feedback/paper_import.html",
    words=PAPER_WORDS,
    extra={"columns": COLUMNS, "raters": Rater.values},
)
