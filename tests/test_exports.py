"""Exports hold exactly what the user may see, in chunks, as CSV and as Excel."""

import csv
import io

import openpyxl
import pytest
from django.urls import reverse

from alliance_app.dashboards import exports
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
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


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


def test_chunks_join_seamlessly(client, therapist, clinic, monkeypatch):
    client.force_login(therapist)
    whole = csv_rows(download(client, "ratings", "csv"))
    monkeypatch.setattr(exports, "CHUNK", 3)
    assert csv_rows(download(client, "ratings", "csv")) == whole


def test_the_ratings_excel_holds_the_same_rows(client, therapist, clinic, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK", 3)
    client.force_login(therapist)
    response = download(client, "ratings", "xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = workbook["ratings"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("client", "episode", "session")
    assert len(rows) == 1 + 8
    assert {row[0] for row in rows[1:]} == {"M-1"}


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
