"""The expected-response band in the pages: the admin's page (fit now, load a file, download,
validation, history), the band on the client chart, "off track" on the caseload and the share
off track in the team statistics and the overview."""

import json
import re
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Closure
from alliance_app.feedback import expected
from alliance_app.feedback.models import ExpectedResponseFit, FitStatus, Flag
from alliance_app.measures.expected import SCHEMA, ExpectedResponse
from tests import factories
from tests.factories import expected_band_load, expected_parameters, rate
from tests.test_dashboards import PAGES, caseload_of, count_queries
from tests.test_expected_response import closed_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor(org):
    return factories.user(org, role=Role.SUPERVISOR, username="sue")


def logged_in(client, user):
    client.force_login(user)
    return client


def upload(client, raw: bytes | None, source: str = "Network fit 2025"):
    data = {"source": source}
    if raw is not None:
        data["parameters"] = SimpleUploadedFile("band.json", raw, "application/json")
    return client.post(reverse("expected_upload"), data)


# The page


def test_without_a_band_the_page_says_why_and_what_to_do(client, org, admin, therapist):
    closed_history(org, therapist, 37)
    expected.fit_start(org, by=admin)
    page = logged_in(client, admin).get(reverse("expected_response"))
    text = page.content.decode()
    assert page.status_code == 200
    assert page.context["model"] is None
    assert page.context["missing"] == (
        "The band needs 100 closed episodes with at least 3 outcome ratings; this clinic has 37."
    )
    assert 'data-testid="no-band"' in text
    assert "load parameters fitted elsewhere" in text
    assert 'data-testid="fit-now"' in text


def test_fit_now_starts_a_fit_and_the_page_shows_it(client, org, admin, therapist):
    org.expected_min_episodes = 40
    org.save()
    closed_history(org, therapist, 45)
    response = logged_in(client, admin).post(reverse("expected_fit"), follow=True)
    job = ExpectedResponseFit.objects.get(organization=org)
    assert (job.version, job.status, job.started_by) == (1, FitStatus.DONE, admin)
    entry = AuditEntry.objects.get(action=Action.EXPECTED_FIT_STARTED)
    assert (entry.object_id, entry.detail, entry.actor) == (str(job.pk), "v1", admin)
    text = response.content.decode()
    assert "Fit version 1 runs in the background" in text
    assert response.context["in_use"] == job
    # The validation table carries the held-out figures the job stored.
    signals = response.context["signals"]
    assert [str(label) for label, _cells in signals] == [
        "By session 3",
        "By session 4",
        "At any session",
    ]
    assert signals[0][1] == job.validation["signal"]["by_session_3"]
    assert "Hannan et al. 2005 (J Clin Psychol 61:155–163)" in text
    assert "Warren, Nelson & Burlingame 2009" in text
    # The calibration chart: observed and expected means by session, and the share below.
    chart = json.loads(response.context["chart"])
    sessions = [point["session"] for point in job.validation["calibration"]]
    observed, median, below = chart["data"]
    assert observed["x"] == sessions == median["x"] == below["x"]
    assert observed["y"] == [p["observed_mean"] for p in job.validation["calibration"]]
    assert below["y"] == [100 * p["below_boundary"] for p in job.validation["calibration"]]
    assert 'data-testid="fitted-elsewhere"' not in text


def test_a_second_fit_while_one_waits_is_refused(client, org, admin):
    waiting = expected.fit_create(org, by=admin)
    response = logged_in(client, admin).post(reverse("expected_fit"), follow=True)
    text = response.content.decode()
    assert "A fit is already under way; its result will show here." in text
    assert ExpectedResponseFit.objects.filter(organization=org).count() == 1
    assert not AuditEntry.objects.filter(action=Action.EXPECTED_FIT_STARTED).exists()
    # The page says a fit waits, offers to reload, and does not offer a second.
    assert response.context["waiting"] == waiting
    assert 'data-testid="fit-waiting"' in text
    assert 'data-testid="fit-now" disabled' in text


def test_a_supervisor_reads_the_page_but_may_not_change_the_band(client, org, supervisor):
    expected_band_load(org)
    http = logged_in(client, supervisor)
    page = http.get(reverse("expected_response"))
    assert page.status_code == 200
    assert 'data-testid="change"' not in page.content.decode()
    assert http.post(reverse("expected_fit")).status_code == 403
    assert upload(http, json.dumps(expected_parameters()).encode()).status_code == 403
    assert ExpectedResponseFit.objects.filter(organization=org).count() == 1


def test_a_therapist_may_not_open_the_page(client, therapist):
    assert logged_in(client, therapist).get(reverse("expected_response")).status_code == 403


def test_another_organisations_band_is_not_downloaded(client, org):
    fit = expected_band_load(org)
    other_admin = factories.user(factories.organization("B"), role=Role.ADMIN)
    response = logged_in(client, other_admin).get(reverse("expected_download", args=[fit.version]))
    assert response.status_code == 404


# Parameters fitted elsewhere


def test_a_good_file_is_put_in_use_and_marked_fitted_elsewhere(client, org, admin):
    http = logged_in(client, admin)
    response = upload(http, json.dumps(expected_parameters()).encode(), "Northern network 2025")
    assert response.status_code == 302
    job = ExpectedResponseFit.objects.get(organization=org)
    assert (job.status, job.source, job.started_by) == (
        FitStatus.DONE,
        "Northern network 2025",
        admin,
    )
    entry = AuditEntry.objects.get(action=Action.EXPECTED_PARAMETERS_LOADED)
    assert entry.detail == "v1: Northern network 2025"
    page = http.get(reverse("expected_response"))
    text = page.content.decode()
    assert "Version 1, fitted elsewhere, is in use." in text
    assert 'data-testid="fitted-elsewhere"' in text
    assert "Fitted elsewhere: Northern network 2025" in text
    assert "comes without a validation on this clinic" in text


BAD_FILES = [
    (None, "X", "parameters", ["Choose the JSON file of parameters."]),
    (b"{not json", "X", "parameters", ["The file is not JSON: "]),
    (
        json.dumps({"schema": "other", "quantile": 0.7, "max_session": 1, "bands": {}}).encode(),
        "X",
        "parameters",
        [
            "&quot;schema&quot; must be &quot;alliance-expected-response/1&quot;.",
            "&quot;quantile&quot; must lie between 0 and 0.5 (e.g. 0.1).",
            "&quot;max_session&quot; must be from 2 to 100.",
            "&quot;bands&quot; must name at least one of adult, adolescent, child.",
        ],
    ),
    (json.dumps(expected_parameters()).encode(), "", "source", ["Say where these parameters"]),
    (json.dumps(expected_parameters()).encode(), "   ", "source", ["Say where these parameters"]),
    (b" " * 200_001, "X", "parameters", ["The file is larger than 200 KB."]),
]


@pytest.mark.parametrize(("raw", "source", "field", "messages"), BAD_FILES)
def test_a_bad_file_is_refused_field_by_field_and_nothing_stored(
    client, org, admin, raw, source, field, messages
):
    response = upload(logged_in(client, admin), raw, source)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field]
    text = response.content.decode()
    for message in messages:
        assert message in text
    org.refresh_from_db()
    assert org.expected_response == {}
    assert not ExpectedResponseFit.objects.exists()
    assert not AuditEntry.objects.filter(action=Action.EXPECTED_PARAMETERS_LOADED).exists()


def test_the_band_in_use_downloads_as_json_that_loads_back(client, org, supervisor):
    fit = expected_band_load(org, median=(5.0, 1.0, 3.0, 0.0), boundary=(2.0, 1.0, 1.0, 0.0))
    response = logged_in(client, supervisor).get(reverse("expected_download", args=[1]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="alliance-expected-response-v1.json"'
    )
    data = json.loads(response.content)
    assert data["schema"] == SCHEMA
    org.refresh_from_db()
    loaded = ExpectedResponse.from_json(data)
    assert loaded.as_json() == org.expected_response_model().as_json()
    assert (loaded.fit_id, loaded.source) == (fit.pk, "Network fit 2025")


# The band on the client chart


def client_with_outcomes(org, therapist, outcomes: list[str], code: str = "E-1"):
    patient = factories.client(org, therapist, code=code)
    episode = factories.episode(patient)
    for number, items in enumerate(outcomes, 1):
        rate(factories.therapy_session(episode, number=number), "outcome-adult", items)
    return patient


def test_the_chart_draws_the_band_from_the_clients_intake(client, org, therapist):
    # Median 5 + intake + 3 ln(s), boundary 2 + intake + ln(s); intake 18.0.
    expected_band_load(org, median=(5.0, 1.0, 3.0, 0.0), boundary=(2.0, 1.0, 1.0, 0.0))
    patient = client_with_outcomes(
        org, therapist, ["4.5 4.5 4.5 4.5", "6 6 6 6", "6 6 6 6", "5 5 5 5"]
    )
    page = logged_in(client, therapist).get(reverse("client_detail", args=[patient.pk]))
    chart = json.loads(page.context["chart"])
    boundary, median = chart["data"][:2]
    assert boundary["name"] == "Not-on-track line"
    assert median["name"] == "Expected course (median)"
    # From session 2 to two past the latest (4).
    assert boundary["x"] == median["x"] == [2, 3, 4, 5, 6]
    assert median["y"] == [25.1, 26.3, 27.2, 27.8, 28.4]
    assert boundary["y"] == [20.7, 21.1, 21.4, 21.6, 21.8]
    assert median["line"]["dash"] == "dash" and median["fill"] == "tonexty"
    assert (boundary["yaxis"], median["yaxis"]) == ("y", "y")
    assert median["hovertext"][2] == (
        "Session 4: half of the clients who started near 18.0 are above 27.2"
    )
    # Session 4's 20.0 is below 21.4: its not-on-track flag is drawn like the other flags.
    [flag] = [trace for trace in chart["data"] if trace["name"] == "Flag"]
    assert (flag["x"], flag["y"]) == ([4], [20.0])
    assert "usually above 21.4" in flag["hovertext"][0]
    # Loaded from a file: said on the chart and under it.
    notes = [note["text"] for note in chart["layout"]["annotations"]]
    assert "Band fitted elsewhere" in notes
    assert 'data-testid="band-elsewhere"' in page.content.decode()
    assert "Fitted elsewhere: Network fit 2025." in page.content.decode()


def test_the_band_stops_at_the_fits_last_session(client, org, therapist):
    expected_band_load(org, max_session=3)
    patient = client_with_outcomes(org, therapist, ["4.5 4.5 4.5 4.5", "6 6 6 6", "6 6 6 6"])
    page = logged_in(client, therapist).get(reverse("client_detail", args=[patient.pk]))
    boundary, median = json.loads(page.context["chart"])["data"][:2]
    assert boundary["x"] == [2, 3] and median["y"] == [25.0, 25.0]


def test_no_band_for_an_age_band_without_lines(client, org, therapist):
    expected_band_load(org, bands=("child",))
    adult = client_with_outcomes(org, therapist, ["4.5 4.5 4.5 4.5", "6 6 6 6"])
    page = logged_in(client, therapist).get(reverse("client_detail", args=[adult.pk]))
    names = {trace["name"] for trace in json.loads(page.context["chart"])["data"]}
    assert "Expected course (median)" not in names
    assert page.context["band"] is None


# Off track on the caseload, in the team statistics and the overview


def test_off_track_on_the_caseload_at_the_boundary_exactly(client, org, therapist):
    expected_band_load(org, boundary=(23.0, 0.0, 0.0, 0.0))
    on_it = client_with_outcomes(org, therapist, ["4.5 4.5 4.5 4.5", "5.8 5.8 5.7 5.7"], "E-1")
    below = client_with_outcomes(org, therapist, ["4.5 4.5 4.5 4.5", "5.8 5.7 5.7 5.7"], "E-2")
    intake_only = client_with_outcomes(org, therapist, ["4.5 4.5 4.5 4.5"], "E-3")
    http = logged_in(client, therapist)
    rows = {row.code: row for row in http.get(reverse("caseload")).context["rows"]}
    assert (rows["E-1"].latest_total, rows["E-2"].latest_total) == (D("23.0"), D("22.9"))
    assert not rows["E-1"].off_track and "off_track" not in rows["E-1"].statuses
    assert rows["E-2"].off_track and "off_track" in rows["E-2"].statuses
    assert not rows["E-3"].off_track
    # The caseload and the flag judge alike.
    flagged = set(Flag.objects.filter(kind="not_on_track").values_list("client_id", flat=True))
    assert flagged == {below.pk} == {rows[c].pk for c in rows if rows[c].off_track}
    assert on_it.pk not in flagged and intake_only.pk not in flagged
    filtered = http.get(reverse("caseload"), {"status": "off_track"})
    assert [row.code for row in filtered.context["rows"]] == ["E-2"]
    assert filtered.content.decode().count('data-testid="off-track"') == 1


def test_no_off_track_status_without_a_band(client, org, therapist):
    client_with_outcomes(org, therapist, ["4.5 4.5 4.5 4.5", "1 1 1 1"])
    page = logged_in(client, therapist).get(reverse("caseload"))
    assert not page.context["rows"][0].off_track
    assert "off_track" not in [value for value, _label in page.context["statuses"]]


def test_the_team_share_off_track(client, org, supervisor):
    expected_band_load(org, boundary=(23.0, 0.0, 0.0, 0.0))
    north = factories.team(org, "North")
    supervisor.membership.supervised_teams.add(north)
    ann = factories.user(org, team=north, username="ann")
    ben = factories.user(org, team=north, username="ben")
    low, fine = ["4.5 4.5 4.5 4.5", "5 5 5 5"], ["4.5 4.5 4.5 4.5", "7 7 7 7"]
    # Ann: one active client off track, one on track, one with only an intake; and a closed
    # episode that ended below the line, which is no longer an active client.
    client_with_outcomes(org, ann, low, "A-1")
    client_with_outcomes(org, ann, fine, "A-2")
    client_with_outcomes(org, ann, ["4.5 4.5 4.5 4.5"], "A-3")
    closed = client_with_outcomes(org, ann, low, "A-4").episodes.get()
    closed.closed, closed.closure = closed.opened, Closure.PLANNED
    closed.save(update_fields=["closed", "closure"])
    # Ben: his one active client is off track.
    client_with_outcomes(org, ben, low, "B-1")
    page = logged_in(client, supervisor).get(reverse("team_statistics"))
    rows = {name: row for name, row, _link in page.context["rows"]}
    assert (rows["Ann"].active_clients, rows["Ann"].off_track) == (3, 1)
    assert rows["Ann"].off_track_share == pytest.approx(1 / 3)
    assert (rows["Ben"].off_track, rows["Ben"].off_track_share) == (1, 1.0)
    totals = page.context["totals"]
    assert (totals.active_clients, totals.off_track, totals.off_track_share) == (4, 2, 0.5)
    text = page.content.decode()
    assert '<td class="text-end" data-testid="off-track-total">50%</td>' in text
    # The overview's team line counts the same.
    admin = factories.user(org, role=Role.ADMIN, username="ada")
    overview = logged_in(client, admin).get(reverse("overview"))
    [(_name, line, _link)] = [row for row in overview.context["rows"] if row[0] == "North"]
    assert (line.off_track, line.off_track_share) == (2, 0.5)


def test_no_off_track_column_without_a_band(client, org, supervisor):
    page = logged_in(client, supervisor).get(reverse("team_statistics"))
    assert page.context["totals"].off_track is None
    assert 'data-testid="off-track-total"' not in page.content.decode()


@pytest.mark.parametrize("name", PAGES)
def test_the_band_costs_no_query_for_5_and_50_clients(client, name):
    """The dashboards' pinned query counts (tests/test_dashboards.py) hold with a band in use
    and every client off track."""
    role, url, pinned = PAGES[name]
    counts = []
    for size in (5, 50):
        org = factories.organization()
        expected_band_load(org, boundary=(23.0, 0.0, 0.0, 0.0))
        team = factories.team(org)
        therapist = factories.user(org, team=team)
        supervisor = factories.user(org, role=Role.SUPERVISOR)
        supervisor.membership.supervised_teams.add(team)
        admin = factories.user(org, role=Role.ADMIN)
        caseload_of(org, therapist, team, size)
        viewer = {Role.THERAPIST: therapist, Role.SUPERVISOR: supervisor, Role.ADMIN: admin}[role]
        client.force_login(viewer)
        first = org.clients.order_by("code").first().pk
        counts.append(count_queries(client, url({"first": first})))
    assert Flag.objects.filter(kind="not_on_track").count() == 55
    assert counts == [pinned, pinned]


def test_the_documented_example_loads_and_gives_its_numbers():
    """docs/expected-response.md's example file is valid and its worked numbers hold."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "expected-response.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    model = ExpectedResponse.from_json(example)
    at_four = model.expected("adult", D("18.0"), 4)
    assert (at_four.median, at_four.boundary) == (D("23.3"), D("16.6"))
    assert "= 23.3 at session 4" in text and "= 16.6." in text


def test_every_page_judging_by_a_band_fitted_elsewhere_says_so(client, org, admin, therapist):
    team = factories.team(org)
    therapist.membership.team = team
    therapist.membership.save()
    supervisor = factories.user(org, role=Role.SUPERVISOR, team=team, username="sam")
    supervisor.membership.supervised_teams.add(team)
    caseload_of(org, therapist, team, 2)
    pages = [
        (therapist, reverse("caseload")),
        (supervisor, reverse("team_statistics")),
        (admin, reverse("overview")),
    ]
    for user, url in pages:
        assert (
            'data-testid="band-elsewhere"' not in logged_in(client, user).get(url).content.decode()
        )
    factories.expected_band_load(org, source="Northern network 2025")
    for user, url in pages:
        text = logged_in(client, user).get(url).content.decode()
        assert "judged by a band fitted elsewhere: Northern network 2025." in text, url
    expected.fit_start(org, by=admin)  # too few episodes here: the file's band stays in use
    org.refresh_from_db()
    assert org.expected_response_model().fitted_elsewhere


def test_the_page_is_kept_per_version_of_the_data_for_keepers_and_readers_apart(
    client, org, admin, supervisor, django_assert_num_queries
):
    expected_band_load(org)
    keeper = logged_in(client, admin).get(reverse("expected_response")).content.decode()
    # Seen again with nothing changed: the session, the viewer and the data version, no more.
    with django_assert_num_queries(3):
        again = client.get(reverse("expected_response")).content.decode()
    assert 'data-testid="upload"' in again
    # Each response carries its own CSRF token; the kept HTML is otherwise the same.
    token = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert token.sub("", again) == token.sub("", keeper)
    # A supervisor reads the same figures without the keeper's forms.
    reader = logged_in(client, supervisor).get(reverse("expected_response")).content.decode()
    assert 'data-testid="upload"' not in reader and 'data-testid="validation"' in reader
    # A new band is a change of the data: shown at once.
    expected_band_load(org, source="Another network 2026")
    assert "Another network 2026" in client.get(reverse("expected_response")).content.decode()
