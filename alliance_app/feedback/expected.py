"""The expected-response band of an organisation: fitted as a job, versioned, put in use.

The rule and the line arithmetic are `measures.expected`, the fitting `measures.expected_fit`.
This module reads the organisation's closed episodes, runs a fit recorded as an
`ExpectedResponseFit` row, and copies a finished fit's parameters to
`Organization.expected_response`, the fit in use, which every rating, chart and caseload reads
with the organisation itself (no query of its own). A fit never runs in a request: the pages and
the admin start `manage.py fit_expected_response` in the background (`fit_start`); a refit never
touches flags already raised, which keep the fit that raised them.
"""

import json
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from alliance_app.accounts.models import Organization, User
from alliance_app.measures import AgeBand, Scale
from alliance_app.measures.expected import ExpectedResponse, ParametersInvalid

from .expected_fit import fit, measured, prepare, validate
from .instruments import catalogue
from .models import ExpectedResponseFit, FitStatus, Rater, Rating

MAX_UPLOAD_BYTES = 200_000
WAITING = (FitStatus.QUEUED, FitStatus.RUNNING)


def episode_frame(organization: Organization) -> pd.DataFrame:
    """One row per outcome rating by the client in the organisation's closed episodes, with the
    client's age band: the data a fit is made of. One query."""
    rows = (
        Rating.objects.filter(
            session__episode__client__organization=organization,
            session__episode__closed__isnull=False,
            scale=Scale.OUTCOME,
            rater=Rater.CLIENT,
            rater_label="",
        )
        .order_by()
        .values_list(
            "session__episode_id", "session__episode__client__age_band", "session__number", "total"
        )
    )
    return pd.DataFrame.from_records(
        list(rows.iterator(chunk_size=20_000)), columns=["episode", "band", "session", "total"]
    )


def reliable_changes(organization: Organization) -> dict[str, Decimal]:
    """Each band's reliable change on its outcome scale, as the organisation's flags judge it."""
    rules = organization.flag_rules()
    return {
        band.value: rules.thresholds(catalogue().for_client(Scale.OUTCOME, band)).reliable_change
        for band in AgeBand
    }


def fit_create(
    organization: Organization, *, by: User | None, source: str = ""
) -> ExpectedResponseFit:
    """A new, queued fit with the next version number and the organisation's settings."""
    with transaction.atomic():
        # Lock the organisation so two fits started at once get different versions.
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        latest = organization.expected_response_fits.aggregate(latest=Max("version"))["latest"]
        return ExpectedResponseFit.objects.create(
            organization=organization,
            version=(latest or 0) + 1,
            started_by=by,
            source=source,
            quantile=organization.expected_quantile,
            min_episodes=organization.expected_min_episodes,
        )


def waiting_fit(organization: Organization) -> ExpectedResponseFit | None:
    return organization.expected_response_fits.filter(status__in=WAITING).first()


def fit_start(organization: Organization, *, by: User | None) -> ExpectedResponseFit:
    """Queue a fit and start the job that runs it, in the background; refused while another
    fit of the organisation waits or runs."""
    if waiting_fit(organization) is not None:
        raise ValidationError(_("A fit is already under way; its result will show here."))
    queued = fit_create(organization, by=by)
    launch(queued)
    return queued


def launch(queued: ExpectedResponseFit) -> None:
    """Run `manage.py fit_expected_response --fit N` as a process of its own, detached from the
    request. FIT_JOBS_INLINE (tests) runs it here instead."""
    if getattr(settings, "FIT_JOBS_INLINE", False):
        fit_run(queued)
        return
    manage = Path(settings.BASE_DIR) / "manage.py"
    subprocess.Popen(  # noqa: S603 - a fixed command line with our own interpreter and script
        [sys.executable, str(manage), "fit_expected_response", "--fit", str(queued.pk)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def fit_run(
    job: ExpectedResponseFit, progress: Callable[[str], None] | None = None
) -> ExpectedResponseFit:
    """Fit the queued `job` on its organisation's closed episodes, validate it on a held-out
    30%, store everything on the row and, if there is a band, put it in use."""
    claimed = ExpectedResponseFit.objects.filter(pk=job.pk, status=FitStatus.QUEUED).update(
        status=FitStatus.RUNNING
    )
    if not claimed:
        raise ValidationError(_("This fit is not waiting to run."))
    job.refresh_from_db()
    try:
        (result, validation), cost = measured(lambda: _fit_and_validate(job, progress))
    except Exception as error:  # recorded on the row for the admin, then raised for the log
        ExpectedResponseFit.objects.filter(pk=job.pk).update(
            status=FitStatus.FAILED, finished_at=timezone.now(), message=str(error)[:2000]
        )
        raise
    job.episodes = result.episodes
    job.seconds, job.peak_memory_mb = cost.seconds, cost.peak_memory_mb
    job.validation = validation
    job.finished_at = timezone.now()
    if result.model is None:
        job.status, job.message = FitStatus.TOO_FEW, result.reason
        job.save()
        return job
    model = result.model
    job.parameters = ExpectedResponse(
        quantile=model.quantile,
        max_session=model.max_session,
        bands=model.bands,
        fit_id=job.pk,
        version=job.version,
        episodes=model.episodes,
        fitted_at=job.finished_at.isoformat(),
    ).as_json()
    job.parameters["omitted"] = result.omitted
    job.status = FitStatus.DONE
    with transaction.atomic():
        job.save()
        put_in_use(job)
    return job


def _fit_and_validate(job: ExpectedResponseFit, progress):
    prepared = prepare(episode_frame(job.organization))
    if progress:
        progress(f"{len(prepared.episodes)} closed episodes, {len(prepared.rows)} later ratings")
    quantile = float(job.quantile)
    result = fit(prepared, quantile=quantile, min_episodes=job.min_episodes, progress=progress)
    validation = {}
    if result.model is not None:
        if progress:
            progress("validation on held-out episodes")
        validation = validate(
            prepared,
            quantile=quantile,
            min_episodes=job.min_episodes,
            reliable_change=reliable_changes(job.organization),
        )
    validation["band_episodes"] = result.band_episodes
    return result, validation


def put_in_use(job: ExpectedResponseFit) -> None:
    """Make a finished fit's parameters the organisation's band in use."""
    Organization.objects.filter(pk=job.organization_id).update(expected_response=job.parameters)
    job.organization.expected_response = job.parameters


def parameters_load(
    organization: Organization, raw: bytes, *, by: User | None, source: str
) -> ExpectedResponseFit:
    """Put parameters fitted elsewhere in use, from an uploaded JSON file in the documented form
    (`measures.expected.SCHEMA`). Anything wrong is refused with every problem in words, and
    nothing is stored."""
    source = source.strip()
    if not source:
        raise ValidationError({"source": _("Say where these parameters were fitted.")})
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ValidationError(
            {"parameters": _("The file is larger than %(size)s KB.") % {"size": 200}}
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValidationError(
            {"parameters": _("The file is not JSON: %(error)s") % {"error": error}}
        ) from None
    try:
        model = ExpectedResponse.from_json(data, source=source)
    except ParametersInvalid as invalid:
        raise ValidationError({"parameters": invalid.problems}) from None
    with transaction.atomic():
        job = fit_create(organization, by=by, source=source)
        job.quantile = Decimal(str(round(model.quantile, 2)))
        job.episodes = model.episodes
        job.status = FitStatus.DONE
        job.finished_at = timezone.now()
        job.parameters = ExpectedResponse(
            quantile=model.quantile,
            max_session=model.max_session,
            bands=model.bands,
            fit_id=job.pk,
            version=job.version,
            source=source,
            episodes=model.episodes,
            fitted_at=str(data.get("fitted_at") or ""),
        ).as_json()
        job.save()
        put_in_use(job)
    return job
