import pytest
from django.urls import reverse

from alliance_app.accounts.models import Role, User
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_login_page_uses_bootstrap_from_our_own_static_files(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '/static/bootstrap/css/bootstrap.min.css"' in html
    assert "cdn" not in html.lower()
    assert 'name="username"' in html and 'name="password"' in html


def test_home_requires_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_therapist_logs_in_and_sees_their_organisation_and_role(client, org, therapist):
    response = client.post(
        reverse("login"), {"username": therapist.username, "password": factories.PASSWORD}
    )
    assert response.status_code == 302
    page = client.get(reverse("home"), follow=True).content.decode()
    assert org.name in page
    assert "Therapist" in page


def test_a_wrong_password_is_refused_with_a_message(client, therapist):
    response = client.post(reverse("login"), {"username": therapist.username, "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("role", "landing"),
    [(Role.THERAPIST, "caseload"), (Role.SUPERVISOR, "inbox"), (Role.ADMIN, "overview")],
)
def test_each_role_lands_on_its_own_page_and_is_named_there(client, org, role, landing):
    client.force_login(factories.user(org, role=role))
    response = client.get(reverse("home"))
    assert response.url == reverse(landing)
    page = client.get(response.url).content.decode()
    assert str(role.label) in page and org.name in page


def test_a_user_of_no_organisation_finds_nothing(client):
    client.force_login(User.objects.create_user(username="stray", password=factories.PASSWORD))
    assert client.get(reverse("home")).status_code == 404


def test_logout_is_a_post_and_ends_the_login(client, therapist):
    client.force_login(therapist)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_healthz_answers_when_the_database_does(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_503_when_the_database_does_not(client, monkeypatch):
    from django.db import DatabaseError, connection

    def broken_cursor(*args, **kwargs):
        raise DatabaseError("down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "error"
