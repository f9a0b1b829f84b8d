"""FHIR out and in: a client's ratings as a Bundle, the organisation's as NDJSON, and
QuestionnaireResponses imported through the paper ratings' checks (`fhir`, docs/fhir.md)."""

from functools import partial

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from alliance_app.accounts.access import require_membership, require_role
from alliance_app.accounts.models import Membership, Role
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.access import clients_visible_to, get_visible_client

from . import fhir
from .fhir import Responses, client_bundle, ndjson_lines, responses_import, responses_read
from .imports import MAX_BYTES, MAX_ROWS, ImportReport
from .models import Rating
from .views_imports import (
    ImportWords,
    checked_file,
    file_checked,
    import_page,
    import_recorded,
)

# The file checked last, kept in the login session (stored on the server) until it is imported,
# so that the import stores exactly the file whose report the user read.
CHECKED_KEY = "alliance_fhir_import"

FHIR_WORDS = ImportWords(
    nothing_stored=gettext_lazy(
        "Nothing was stored: the file has responses with problems. Correct them and check the "
        "file again, or import only the valid ones."
    ),
    in_the_file=gettext_lazy("Responses in the file"),
    with_problems=gettext_lazy("Responses with problems"),
    already_at=gettext_lazy("Already imported, so not stored again: places"),
    caption=gettext_lazy(
        "Problems, response by response. The place is the line of an NDJSON file, or the entry "
        "of a Bundle counted from 1."
    ),
    place=gettext_lazy("Place"),
    field=gettext_lazy("Element"),
    whole=gettext_lazy("whole resource"),
)


class FhirImportForm(forms.Form):
    """The file of QuestionnaireResponses to check: a JSON Bundle or NDJSON."""

    file = forms.FileField(
        label=gettext_lazy("FHIR file of QuestionnaireResponses"),
        error_messages={"required": gettext_lazy("Choose the file to check.")},
        widget=forms.ClearableFileInput(
            attrs={"accept": ".json,.ndjson,application/json", "class": "form-control-lg"}
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _(
            "A JSON Bundle or NDJSON, at most %(size)s MB and %(rows)s ratings."
        ) % {"size": MAX_BYTES // 2**20, "rows": MAX_ROWS}


@login_required
@require_GET
def client_fhir(request: HttpRequest, pk: int) -> HttpResponse:
    """A client's ratings as a FHIR Bundle, for whoever sees the client: the ratings only, as
    the ratings export gives them, no flags or notes."""
    client = get_visible_client(request, pk)
    audit_record(request, action=Action.FHIR_EXPORTED, obj=client, detail=client.code)
    ratings = (
        Rating.objects.filter(session__episode__client=client)
        .select_related("session__episode__client")
        .order_by("session__episode__opened", "session__number", "scale", "rater", "rater_label")
    )
    response = HttpResponse(client_bundle(ratings), content_type="application/fhir+json")
    response["Content-Disposition"] = f'attachment; filename="alliance-fhir-{client.code}.json"'
    return response


@login_required
@require_GET
def organization_fhir(request: HttpRequest) -> StreamingHttpResponse:
    """Every rating of the organisation, one QuestionnaireResponse a line, streamed: for admins."""
    membership = require_role(request, Role.ADMIN)
    audit_record(
        request, action=Action.EXPORT_DOWNLOADED, object_type="export", detail="fhir.ndjson"
    )
    # The ids first, as the ratings export does: a plain list keeps the join cheap.
    client_ids = list(clients_visible_to(membership).values_list("pk", flat=True))
    ratings = (
        Rating.objects.filter(session__episode__client__in=client_ids)
        .select_related("session__episode__client")
        .order_by("session__episode__client__code", "session__episode_id", "session__number", "pk")
        .iterator(chunk_size=settings.EXPORT_CHUNK_ROWS)
    )
    response = StreamingHttpResponse(ndjson_lines(ratings), content_type=fhir.NDJSON_TYPE)
    filename = f"alliance-fhir-{timezone.localdate():%Y-%m-%d}.ndjson"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def fhir_import(request: HttpRequest) -> HttpResponse:
    """GET: the upload form. POST with a file: its dry run. POST with a digest: the import."""
    membership = require_membership(request)
    if request.method == "GET":
        request.session.pop(CHECKED_KEY, None)
        return _page(request, FhirImportForm())
    if "digest" in request.POST:
        return _import(request, membership)
    form = FhirImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=400)
    upload = form.cleaned_data["file"]
    name = upload.name[:100]
    # One byte past the limit: enough to know the file is too large, never more.
    data = upload.read(MAX_BYTES + 1)
    responses = responses_read(data)
    file_problems = [problem for problem in responses.problems if problem.field == "file"]
    if file_problems:
        request.session.pop(CHECKED_KEY, None)
        return _page(request, FhirImportForm(), name=name, file_problems=file_problems, status=400)
    report = _run(request, membership, responses, name, dry_run=True)
    text = data.decode("utf-8-sig")
    confirm = file_checked(request, CHECKED_KEY, name, text)
    return _page(request, FhirImportForm(), name=name, report=report, confirm=confirm)


def _import(request: HttpRequest, membership: Membership) -> HttpResponse:
    confirmed = checked_file(request, CHECKED_KEY)
    if confirmed is None:
        return redirect("fhir_import")
    confirm, checked = confirmed
    report = _run(
        request,
        membership,
        responses_read(checked["text"].encode()),
        checked["name"],
        dry_run=False,
        only_valid=confirm.cleaned_data["only_valid"],
    )
    if report.stored or not report.ready:
        request.session.pop(CHECKED_KEY, None)
        confirm = None
    return _page(request, FhirImportForm(), name=checked["name"], report=report, confirm=confirm)


def _run(
    request: HttpRequest,
    membership: Membership,
    responses: Responses,
    name: str,
    *,
    dry_run: bool,
    only_valid: bool = False,
) -> ImportReport:
    """Check or import the responses, and record it."""
    report = responses_import(
        organization=membership.organization,
        user=request.user,
        responses=responses,
        dry_run=dry_run,
        only_valid=only_valid,
    )
    import_recorded(
        request,
        membership,
        report,
        name,
        action=Action.FHIR_IMPORT_CHECKED if dry_run else Action.FHIR_IMPORTED,
        object_type="fhir_import",
        unit="responses",
    )
    return report


_page = partial(
    import_page,
    template="feedback/fhir_import.html",
    words=FHIR_WORDS,
    extra={
        "base": fhir.QUESTIONNAIRE_BASE,
        "system": fhir.CLIENT_CODE_SYSTEM,
        "number_url": fhir.SESSION_NUMBER_URL,
        "date_url": fhir.SESSION_DATE_URL,
        "rater_url": fhir.RATER_URL,
    },
)
