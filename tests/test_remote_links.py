"""Remote links: unguessable and signed, expiring, working once, showing only the form."""

from datetime import timedelta

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from alliance_app.accounts.models import Role
from alliance_app.feedback.links import SALT, remote_link_create
from alliance_app.feedback.models import Rating, RemoteLink
from tests import factories

pytestmark = pytest.mark.django_db

SESSION_SCORES = {"relationship": "9.5", "goals": "9.0", "approach": "9.5", "overall": "9.6"}
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def link(session_one, therapist):
    return remote_link_create(session=session_one, scale="session", created_by=therapist)


def post(http, token, key=None, **scores):
    data = {**SESSION_SCORES, **scores, "idempotency_key": str(key or factories.key())}
    return http.post(reverse("remote_rate", args=[token]), data, **JSON)


def test_a_therapist_creates_a_link_and_sees_it_once_with_a_qr_code(client, therapist, session_one):
    client.force_login(therapist)
    response = client.post(reverse("link_create", args=[session_one.pk]), {"scale": "session"})
    link = RemoteLink.objects.get()
    assert response.url == reverse("link_detail", args=[link.pk])
    page = client.get(response.url).content.decode()
    assert "<svg" in page and "/r/" in page
    assert link.instrument == "session-adult"
    assert link.expires_at - link.created_at == timedelta(hours=72)
    again = client.get(response.url).content.decode()
    assert "/r/" not in again and "shown when it was created" in again


def test_only_the_clients_therapist_creates_links(client, org, session_one):
    client.force_login(factories.user(org, role=Role.ADMIN))
    response = client.post(reverse("link_create", args=[session_one.pk]), {"scale": "outcome"})
    assert response.status_code == 403
    client.force_login(factories.user(factories.organization()))
    response = client.post(reverse("link_create", args=[session_one.pk]), {"scale": "outcome"})
    assert response.status_code == 404
    assert RemoteLink.objects.count() == 0


def test_the_expiry_is_configurable(session_one, therapist, settings):
    settings.REMOTE_LINK_HOURS = 24
    created = remote_link_create(session=session_one, scale="outcome", created_by=therapist)
    assert created.link.expires_at - created.link.created_at == timedelta(hours=24)


def test_the_link_shows_the_form_and_nothing_else_without_login(client, link):
    response = client.get(reverse("remote_rate", args=[link.token]))
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('class="vas-track"') == 4
    assert "How this session went" in page
    assert link.link.session.episode.client.code not in page
    assert "<nav" not in page and "<a " not in page


def test_a_link_works_once(client, link):
    first = post(client, link.token)
    assert first.status_code == 200
    assert first.json() == {"status": "stored", "next": reverse("remote_thanks") + "?lang=en"}
    rating = Rating.objects.get()
    assert (rating.channel, rating.scale, str(rating.total)) == ("remote", "session", "37.6")
    link.link.refresh_from_db()
    assert link.link.used_at is not None and link.link.rating == rating

    second = post(client, link.token)
    assert second.status_code == 410
    assert "already been used" in second.json()["message"]
    page = client.get(reverse("remote_rate", args=[link.token]))
    assert page.status_code == 410 and "already been used" in page.content.decode()
    assert Rating.objects.count() == 1


def test_a_replay_of_the_submission_that_used_the_link_answers_as_stored(client, link):
    key = factories.key()
    post(client, link.token, key=key)
    again = post(client, link.token, key=key)
    assert again.status_code == 200 and again.json()["status"] == "stored"
    assert Rating.objects.count() == 1


def test_an_expired_link_is_refused_calmly_and_stores_nothing(client, link):
    RemoteLink.objects.update(
        created_at=timezone.now() - timedelta(hours=80),
        expires_at=timezone.now() - timedelta(hours=8),
    )
    page = client.get(reverse("remote_rate", args=[link.token]))
    assert page.status_code == 410
    assert "expired" in page.content.decode()
    assert post(client, link.token).status_code == 410
    assert Rating.objects.count() == 0


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "nothing-like-a-token",
        lambda token: signing.dumps([1, "guessed-nonce"], salt=SALT, compress=True),
        lambda token: signing.dumps([1, "x"], salt="another-salt", compress=True),
    ],
)
def test_a_tampered_or_forged_link_is_refused(client, link, tamper):
    token = tamper(link.token)
    assert client.get(reverse("remote_rate", args=[token])).status_code == 404
    assert post(client, token).status_code == 404
    assert Rating.objects.count() == 0


def test_bad_scores_through_a_link_store_nothing_and_keep_it_usable(client, link):
    response = post(client, link.token, goals="11")
    assert response.status_code == 400
    assert response.json()["errors"]["goals"] == ["Scores run from 0.0 to 10.0."]
    assert Rating.objects.count() == 0
    assert post(client, link.token).status_code == 200


def test_a_link_for_a_rater_who_already_rated_stores_nothing(client, link, session_one):
    factories.rate(session_one, "session-adult", "9 9 9 9")
    response = post(client, link.token)
    assert response.status_code == 410  # told in the second person, as the form's opening is
    assert response.json()["message"] == (
        "You have already given this rating for this session. Thank you."
    )
    assert Rating.objects.count() == 1
    link.link.refresh_from_db()
    assert link.link.used_at is None


def test_the_database_keeps_only_a_digest_of_the_link(link):
    _, nonce = signing.loads(link.token, salt=SALT)
    assert nonce not in link.link.nonce_hash
    assert len(link.link.nonce_hash) == 64
