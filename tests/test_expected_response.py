"""The expected-response band in the app (`feedback.expected`): the fit as a job, versioned and
put in use, parameters loaded from a file, and the not-on-track flag it raises."""

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from alliance_app.clinic.models import Closure, Episode, TherapySession
from alliance_app.feedback import expected
from alliance_app.feedback.models import (
    ITEM_FIELDS,
    Channel,
    ExpectedResponseFit,
    FitStatus,
    Flag,
    Rating,
)
from alliance_app.measures.expected import SCHEMA
from tests import factories

pytestmark = pytest.mark.django_db
D = Decimal


def closed_history(org, therapist, count: int, *, sessions: int = 5, seed: int = 3) -> None:
    """`count` closed episodes of adult clients with `sessions` outcome ratings each, written in
    bulk (fitting reads only the stored ratings)."""
    rng = np.random.default_rng(seed)
    ratings = []
    for _ in range(count):
        client = factories.client(org, therapist)
        client.active = False
        client.save(update_fields=["active"])
        episode = Episode.objects.create(
            client=client,
            therapist=therapist,
            opened=date(2025, 1, 6),
            closed=date(2025, 4, 6),
            closure=Closure.PLANNED,
        )
        intake = float(rng.uniform(10, 28))
        gain = float(rng.normal(3.0, 2.0))
        for number in range(1, sessions + 1):
            session = TherapySession.objects.create(
                episode=episode, number=number, date=date(2025, 1, 6 + number)
            )
            total = intake if number == 1 else intake + gain * np.log(number) + rng.normal(0, 1)
            item = D(str(round(min(10.0, max(0.0, total / 4)), 1)))
            ratings.append(
                Rating(
                    session=session,
                    instrument="outcome-adult",
                    scale="outcome",
                    rater="client",
                    total=item * 4,
                    channel=Channel.TABLET,
                    **dict.fromkeys(ITEM_FIELDS, item),
                )
            )
    Rating.objects.bulk_create(ratings)


def parameters(boundary: float = 23.0, median: float = 25.0, max_session: int = 10) -> dict:
    def flat(value: float) -> dict:
        return {"intercept": value, "intake": 0.0, "log_session": 0.0, "intake_log_session": 0.0}

    return {
        "schema": SCHEMA,
        "quantile": 0.1,
        "max_session": max_session,
        "episodes": 5000,
        "bands": {"adult": {"median": flat(median), "boundary": flat(boundary)}},
    }


def upload(org, data: dict, source: str = "Network fit 2025") -> ExpectedResponseFit:
    return expected.parameters_load(org, json.dumps(data).encode(), by=None, source=source)


def test_a_fit_on_the_organisations_episodes_is_put_in_use(org, therapist):
    org.expected_min_episodes = 40
    org.save()
    closed_history(org, therapist, 45)
    job = expected.fit_start(org, by=therapist)
    job.refresh_from_db()
    org.refresh_from_db()
    assert job.status == FitStatus.DONE
    assert (job.version, job.episodes, job.min_episodes) == (1, 45, 40)
    assert job.seconds > 0 and job.peak_memory_mb > 0
    assert job.validation["fit_episodes"] == 31  # 70% of 45, rounded down
    assert job.validation["held_out_episodes"] == 14
    assert set(job.validation["signal"]) == {"by_session_3", "by_session_4", "any_session"}
    assert org.expected_response == job.parameters
    model = org.expected_response_model()
    assert (model.fit_id, model.version, model.max_session) == (job.pk, 1, 5)
    assert not model.fitted_elsewhere


def test_too_few_episodes_fits_nothing_and_says_why(org, therapist):
    closed_history(org, therapist, 37)
    # An open episode and a closed one with two ratings do not count.
    closed_history(org, therapist, 1, sessions=2)
    job = expected.fit_start(org, by=None)
    job.refresh_from_db()
    org.refresh_from_db()
    assert job.status == FitStatus.TOO_FEW
    assert job.message == (
        "The band needs 100 closed episodes with at least 3 outcome ratings; this clinic has 37."
    )
    assert org.expected_response == {}
    assert org.expected_response_model() is None


def test_each_fit_is_a_new_version(org, therapist):
    closed_history(org, therapist, 5)
    versions = [expected.fit_start(org, by=None).version for _ in range(3)]
    assert versions == [1, 2, 3]


def test_a_fit_is_not_started_twice(org):
    expected.fit_create(org, by=None)  # queued, not yet run
    with pytest.raises(ValidationError) as refused:
        expected.fit_start(org, by=None)
    assert refused.value.messages == ["A fit is already under way; its result will show here."]
    assert ExpectedResponseFit.objects.filter(organization=org).count() == 1


def test_a_fit_runs_in_a_process_of_its_own(org, settings, monkeypatch):
    settings.FIT_JOBS_INLINE = False
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda args, **kw: started.append((args, kw)))
    job = expected.fit_start(org, by=None)
    [(args, options)] = started
    assert args[0] == sys.executable
    assert args[1].endswith("manage.py")
    assert args[2:] == ["fit_expected_response", "--fit", str(job.pk)]
    assert options["start_new_session"] is True
    job.refresh_from_db()
    assert job.status == FitStatus.QUEUED


def test_the_command_fits_and_reports(org, therapist):
    org.expected_min_episodes = 40
    org.save()
    closed_history(org, therapist, 45)
    out = StringIO()
    call_command("fit_expected_response", organization_slug=org.slug, stdout=out)
    text = out.getvalue()
    assert f"{org.slug} v1: in use; 45 closed episodes;" in text
    assert "peak memory" in text
    assert "adult: 45 episodes, own lines; sessions 2 to 5, quantile 0.1" in text
    assert "by session 3: sensitivity" in text


def test_the_command_runs_a_queued_fit(org, therapist):
    closed_history(org, therapist, 3)
    job = expected.fit_create(org, by=None)
    out = StringIO()
    call_command("fit_expected_response", fit=job.pk, stdout=out)
    job.refresh_from_db()
    assert job.status == FitStatus.TOO_FEW
    assert "this clinic has 3" in out.getvalue()


def test_parameters_from_a_file_are_marked_fitted_elsewhere(org):
    job = upload(org, parameters())
    org.refresh_from_db()
    assert job.status == FitStatus.DONE and job.source == "Network fit 2025"
    model = org.expected_response_model()
    assert model.fitted_elsewhere and model.source == "Network fit 2025"
    assert model.fit_id == job.pk


@pytest.mark.parametrize(
    ("raw", "source", "field", "message"),
    [
        (b"{not json", "X", "parameters", "The file is not JSON"),
        (b"\xff\xfe", "X", "parameters", "The file is not JSON"),
        (json.dumps({"schema": "x"}).encode(), "X", "parameters", '"schema" must be'),
        (json.dumps(parameters()).encode(), "  ", "source", "Say where these parameters"),
        (b" " * 200_001, "X", "parameters", "The file is larger than 200 KB."),
    ],
)
def test_a_bad_file_is_refused_and_nothing_stored(org, raw, source, field, message):
    with pytest.raises(ValidationError) as refused:
        expected.parameters_load(org, raw, by=None, source=source)
    assert message in " ".join(refused.value.message_dict[field])
    org.refresh_from_db()
    assert org.expected_response == {}
    assert not ExpectedResponseFit.objects.exists()


def intake_and_session_4(org, therapist, total_4: str, *, rater="client", label=""):
    episode = factories.episode(factories.client(org, therapist))
    sessions = [factories.therapy_session(episode, number) for number in (1, 2, 3, 4)]
    factories.rate(sessions[0], "outcome-adult", "4.5 4.5 4.5 4.5", rater=rater, label=label)
    factories.rate(sessions[1], "outcome-adult", "6 6 6 6", rater=rater, label=label)
    factories.rate(sessions[2], "outcome-adult", "6 6 6 6", rater=rater, label=label)
    items = " ".join([str(D(total_4) / 4)] * 4)
    return factories.rate(sessions[3], "outcome-adult", items, rater=rater, label=label)


def test_not_on_track_below_the_boundary_exactly(org, therapist):
    job = upload(org, parameters(boundary=23.0))
    org.refresh_from_db()
    on_it = intake_and_session_4(org, therapist, "23.2")  # 5.8 x 4; the boundary is 23.0
    below = intake_and_session_4(org, therapist, "22.8")
    assert not on_it.rating.flags.filter(kind="not_on_track").exists()
    flag = below.rating.flags.get(kind="not_on_track")
    assert flag.fit_id == job.pk
    assert flag.explanation == (
        "Outcome 22.8 at session 4; clients who started near 18.0 are usually above 23.0 by now "
        "(half of them above 25.0)."
    )


def test_the_boundary_itself_is_on_track(org, therapist):
    upload(org, parameters(boundary=24.0))
    org.refresh_from_db()
    assert not intake_and_session_4(org, therapist, "24.0").rating.flags.filter(kind="not_on_track")
    assert intake_and_session_4(org, therapist, "23.6").rating.flags.filter(kind="not_on_track")


def test_no_flag_without_a_band(org, therapist):
    assert not Flag.objects.filter(kind="not_on_track").exists()
    intake_and_session_4(org, therapist, "10.0")
    assert not Flag.objects.filter(kind="not_on_track").exists()


def test_a_partners_rating_is_not_held_against_the_band(org, therapist):
    upload(org, parameters(boundary=30.0))
    org.refresh_from_db()
    intake_and_session_4(org, therapist, "20.0", rater="partner", label="Sam")
    assert not Flag.objects.filter(kind="not_on_track").exists()


def test_off_track_is_raised_once_until_acknowledged(org, therapist):
    upload(org, parameters(boundary=30.0))
    org.refresh_from_db()
    # Sessions 2, 3 and 4 are all below 30.0: one flag, waiting.
    intake_and_session_4(org, therapist, "20.0")
    assert Flag.objects.filter(kind="not_on_track").count() == 1


def test_a_refit_never_changes_flags_already_raised(org, therapist):
    first = upload(org, parameters(boundary=30.0))
    org.refresh_from_db()
    rating = intake_and_session_4(org, therapist, "20.0").rating
    flag = Flag.objects.get(kind="not_on_track")
    explanation = flag.explanation
    second = upload(org, parameters(boundary=10.0))
    flag.refresh_from_db()
    assert (flag.fit_id, flag.explanation) == (first.pk, explanation)
    assert second.version == first.version + 1
    org.refresh_from_db()
    assert org.expected_response_model().fit_id == second.pk
    assert rating.flags.filter(kind="not_on_track").count() == 0  # raised at session 2 instead
