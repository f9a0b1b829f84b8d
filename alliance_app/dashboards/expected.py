"""The expected-response page: the band in use, how it was made and how well it predicts, and
the admin's two ways to change it (a fit on the clinic's own episodes, or parameters fitted
elsewhere), with the history of fits.

The fitting itself is a job (`feedback.expected`); this page only starts it and reads what the
job stored, so it costs the same however many episodes lie behind the band.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from alliance_app.accounts.cached import keyed_result
from alliance_app.accounts.models import Membership
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.models import AgeBandChoice
from alliance_app.feedback.access import may_keep_band, require_band_keeper, require_band_reader
from alliance_app.feedback.expected import WAITING, fit_start, parameters_load
from alliance_app.feedback.expected_fit import MIN_RATINGS
from alliance_app.feedback.models import ExpectedResponseFit, FitStatus
from alliance_app.measures.expected import ExpectedResponse

from . import charts
from .forms import ExpectedParametersForm

# The signal's windows, in the order the validation table shows them.
SIGNALS = (
    ("by_session_3", gettext_lazy("By session 3")),
    ("by_session_4", gettext_lazy("By session 4")),
    ("any_session", gettext_lazy("At any session")),
)


@login_required
@require_GET
def expected_response(request: HttpRequest) -> HttpResponse:
    membership = require_band_reader(request)
    return _page(request, membership, ExpectedParametersForm())


@login_required
@require_POST
def expected_fit(request: HttpRequest) -> HttpResponse:
    """Start a fit on the organisation's closed episodes, in the background."""
    membership = require_band_keeper(request)
    try:
        job = fit_start(membership.organization, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        audit_record(request, action=Action.EXPECTED_FIT_STARTED, obj=job, detail=f"v{job.version}")
        messages.success(
            request,
            _(
                "Fit version %(version)s runs in the background; it takes a minute or two. "
                "Reload this page to see its result."
            )
            % {"version": job.version},
        )
    return redirect("expected_response")


@login_required
@require_POST
def expected_upload(request: HttpRequest) -> HttpResponse:
    """Put parameters fitted elsewhere in use; every problem is told beside its field."""
    membership = require_band_keeper(request)
    form = ExpectedParametersForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            job = parameters_load(
                membership.organization,
                form.raw(),
                by=request.user,
                source=form.cleaned_data["source"],
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    form.add_error(field, problem)
        else:
            audit_record(
                request,
                action=Action.EXPECTED_PARAMETERS_LOADED,
                obj=job,
                detail=f"v{job.version}: {job.source}",
            )
            messages.success(
                request,
                _("Version %(version)s, fitted elsewhere, is in use.") % {"version": job.version},
            )
            return redirect("expected_response")
    return _page(request, membership, form, status=400)


@login_required
@require_GET
def expected_download(request: HttpRequest, version: int) -> JsonResponse:
    """A finished fit's parameters in the documented form, for another clinic to load."""
    membership = require_band_reader(request)
    fit = get_object_or_404(
        ExpectedResponseFit,
        organization=membership.organization,
        version=version,
        status=FitStatus.DONE,
    )
    response = JsonResponse(fit.parameters, json_dumps_params={"indent": 2})
    filename = f"alliance-expected-response-v{version}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _page(
    request: HttpRequest, membership: Membership, form: ExpectedParametersForm, status: int = 200
) -> HttpResponse:
    """The page: its figures (and its HTML, but for a form sent back with errors) once per
    version of the data, for band readers and band keepers apart."""
    organization = membership.organization
    can_keep = may_keep_band(membership)
    context, key = keyed_result(
        "expected-response", [organization, can_keep], lambda: _figures(organization)
    )
    return render(
        request,
        "dashboards/expected_response.html",
        {**context, "can_keep": can_keep, "form": form, "result_key": key},
        status=status,
    )


def _figures(organization) -> dict[str, Any]:
    model = organization.expected_response_model()
    fits = list(organization.expected_response_fits.select_related("started_by"))
    in_use = next((fit for fit in fits if model and fit.pk == model.fit_id), None)
    validation = (in_use.validation if in_use else {}) or {}
    calibration = validation.get("calibration") or []
    context: dict[str, Any] = {
        # What the page shows of the band in use (the band itself is read-only, not picklable).
        "model": _shown(model),
        "in_use": in_use,
        "bands": _bands(model),
        "waiting": next((fit for fit in fits if fit.status in WAITING), None),
        "missing": None if model else _missing(fits),
        "min_episodes": organization.expected_min_episodes,
        "min_ratings": MIN_RATINGS,
        "validation": validation,
        "signals": [
            (label, validation["signal"][key])
            for key, label in SIGNALS
            if key in validation.get("signal", {})
        ],
        "fits": fits,
    }
    if calibration:
        figure = charts.calibration_chart(calibration, model.quantile)
        context["chart"] = charts.chart_json(figure)
        context["chart_config"] = charts.chart_json(charts.chart_config())
    return context


def _shown(model: ExpectedResponse | None) -> dict[str, Any] | None:
    if model is None:
        return None
    names = ("episodes", "fitted_elsewhere", "max_session", "quantile", "source", "version")
    return {name: getattr(model, name) for name in names}


def _bands(model: ExpectedResponse | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    names = dict(AgeBandChoice.choices)
    return [
        {
            "name": names.get(band, band),
            "episodes": lines.episodes,
            "pooled": lines.pooled,
            "intakes": lines.intakes,
        }
        for band, lines in model.bands.items()
    ]


def _missing(fits: list[ExpectedResponseFit]) -> str:
    """Why there is no band: the latest finished fit's reason, in words."""
    finished = next((fit for fit in fits if fit.status not in WAITING), None)
    if finished is None:
        return _("No fit has been made yet.")
    if finished.status == FitStatus.TOO_FEW:
        return _(
            "The band needs %(needed)s closed episodes with at least %(ratings)s outcome ratings; "
            "this clinic has %(count)s."
        ) % {"needed": finished.min_episodes, "ratings": MIN_RATINGS, "count": finished.episodes}
    return _("The latest fit (version %(version)s) failed: %(message)s") % {
        "version": finished.version,
        "message": finished.message,
    }
