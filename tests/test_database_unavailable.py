"""While the database does not answer, pages are a plain 503 with Retry-After, never a 500."""

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def failing_on(table: str, error: type[Exception] = OperationalError):
    """A database that stops answering once a query touches `table` ("" for every query)."""

    def execute(run, sql, params, many, context):
        if f'"{table}"' in sql or not table:
            raise error("server closed the connection unexpectedly")
        return run(sql, params, many, context)

    return connection.execute_wrapper(execute)


@pytest.fixture
def therapist_client(client, therapist):
    client.force_login(therapist)
    return client


def test_a_page_whose_query_fails_is_a_503_page(therapist_client, adult):
    with failing_on("clinic_client"):
        response = therapist_client.get(reverse("caseload"))
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert "Alliance is unavailable for a moment" in page
    assert "Try again in 10 seconds." in page
    assert "Traceback" not in page and "OperationalError" not in page


def test_the_database_down_before_the_view_is_a_503_too(therapist, adult):
    # The login session is read in a middleware, before any view: the first query fails there.
    # Django's test client would re-raise the error it saw; a browser sees only the answer.
    browser = Client(raise_request_exception=False)
    browser.force_login(therapist)
    with failing_on(""):
        response = browser.get(reverse("caseload"))
    assert response.status_code == 503
    assert "Alliance is unavailable for a moment" in response.content.decode()


def test_a_tablet_submission_gets_a_json_503_it_retries(therapist_client, session_one):
    therapist_client.raise_request_exception = False
    with failing_on("", InterfaceError):
        response = therapist_client.post("/rate/submit/token/", {}, HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response["Retry-After"] == "10"


def test_other_errors_are_not_taken_for_an_outage(therapist_client, adult):
    def broken(run, sql, params, many, context):
        raise ZeroDivisionError

    browser = Client(raise_request_exception=False)
    browser.force_login(adult.primary_therapist)
    with connection.execute_wrapper(broken):
        response = browser.get(reverse("caseload"))
    assert response.status_code == 500


def test_healthz_says_503_while_the_database_is_down(client):
    with failing_on(""):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "error"}
