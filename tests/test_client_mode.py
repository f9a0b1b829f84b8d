"""The therapist's flow and client mode: hand-over, the lock, submission, unlock, result."""

import uuid
from datetime import timedelta

import pytest
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from alliance_app.accounts.models import Role
from alliance_app.clinic.models import Episode, TherapySession
from alliance_app.feedback.models import Rating, UnlockAttempts
from tests import factories

pytestmark = pytest.mark.django_db

SCORES = {"personal": "4.2", "relationships": "6.0", "social": "5.5", "overall": "5.1"}
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def therapist_client(client, therapist):
    client.force_login(therapist)
    return client


@pytest.fixture
def today(therapist_client, adult):
    therapist_client.post(reverse("session_start", args=[adult.pk]), {"format": "individual"})
    return TherapySession.objects.get(episode__client=adult)


def hand_over(http, session, scale="outcome", **extra):
    return http.post(reverse("hand_over", args=[session.pk]), {"scale": scale, **extra})


def submit_url(http) -> tuple[str, str]:
    page = http.get(reverse("client_rate")).content.decode()
    action = page.split('id="rating-form"', 1)[1].split('action="', 1)[1].split('"', 1)[0]
    key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    return action, key


# Starting today's session


def test_starting_today_opens_an_episode_and_session_one(therapist_client, adult):
    response = therapist_client.post(
        reverse("session_start", args=[adult.pk]), {"format": "couple"}
    )
    assert response.status_code == 302
    session = TherapySession.objects.get()
    assert (session.number, session.format, session.episode.client) == (1, "couple", adult)


def test_starting_again_the_same_day_continues_the_session(therapist_client, today, adult):
    therapist_client.post(reverse("session_start", args=[adult.pk]), {"format": "individual"})
    assert TherapySession.objects.count() == 1


def test_the_next_day_is_the_next_session_number(therapist_client, today, adult):
    TherapySession.objects.filter(pk=today.pk).update(date="2026-01-01")
    therapist_client.post(reverse("session_start", args=[adult.pk]))
    assert list(TherapySession.objects.values_list("number", flat=True).order_by("number")) == [
        1,
        2,
    ]
    assert Episode.objects.count() == 1


def test_only_the_clients_therapist_runs_a_session(client, org, adult):
    supervisor = factories.user(org, role=Role.SUPERVISOR)
    supervisor.membership.supervised_teams.add(factories.team(org))
    client.force_login(factories.user(org))
    assert client.post(reverse("session_start", args=[adult.pk])).status_code == 404
    client.force_login(factories.user(org, role=Role.ADMIN))
    assert client.get(reverse("client_detail", args=[adult.pk])).status_code == 200
    assert client.post(reverse("session_start", args=[adult.pk])).status_code == 403
    assert TherapySession.objects.count() == 0


# Client mode and its lock


def test_handing_over_shows_only_the_scale(therapist_client, today):
    response = hand_over(therapist_client, today)
    assert response.url == reverse("client_rate")
    page = therapist_client.get(reverse("client_rate")).content.decode()
    assert "How things have been going" in page
    assert page.count('class="vas-track"') == 4
    assert "<nav" not in page and "Log out" not in page and today.episode.client.code not in page
    assert "bootstrap" not in page and "plotly" not in page


@pytest.mark.parametrize(
    "url",
    ["/", "/admin/", "/clients/1/", "/ratings/1/", "/login/", "/sessions/1/links/"],
)
def test_every_other_page_leads_back_to_the_client_page(therapist_client, today, url):
    hand_over(therapist_client, today)
    response = therapist_client.get(url)
    assert response.status_code == 302
    assert response.url == reverse("client_rate")


def test_logging_out_is_blocked_while_the_client_holds_the_tablet(therapist_client, today):
    hand_over(therapist_client, today)
    assert therapist_client.post(reverse("logout")).url == reverse("client_rate")
    assert "_auth_user_id" in therapist_client.session


def test_an_individual_session_is_always_rated_by_the_client(therapist_client, today):
    hand_over(therapist_client, today, rater="partner", rater_label="Sam")
    action, key = submit_url(therapist_client)
    therapist_client.post(action, {**SCORES, "idempotency_key": key}, **JSON)
    assert Rating.objects.get().rater_key == "client"


def test_a_couple_session_goes_round_the_raters(therapist_client, adult):
    therapist_client.post(reverse("session_start", args=[adult.pk]), {"format": "couple"})
    session = TherapySession.objects.get()
    for rater, label in (("client", ""), ("partner", "Sam")):
        hand_over(therapist_client, session, rater=rater, rater_label=label)
        action, key = submit_url(therapist_client)
        therapist_client.post(action, {**SCORES, "idempotency_key": key}, **JSON)
        therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    assert sorted(Rating.objects.values_list("rater", "rater_label")) == [
        ("client", ""),
        ("partner", "Sam"),
    ]


def test_a_rater_who_already_rated_is_not_handed_the_scale_again(therapist_client, today):
    factories.rate(today, "outcome-adult", "5 5 5 5")
    response = hand_over(therapist_client, today)
    assert response.url == reverse("client_detail", args=[today.episode.client_id])
    assert "alliance_client_mode" not in therapist_client.session


# Submitting


def test_a_submission_stores_once_and_a_replay_answers_the_same(therapist_client, today):
    hand_over(therapist_client, today)
    action, key = submit_url(therapist_client)
    first = therapist_client.post(action, {**SCORES, "idempotency_key": key}, **JSON)
    again = therapist_client.post(action, {**SCORES, "idempotency_key": key}, **JSON)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == again.json() == {"status": "stored", "next": reverse("rate_thanks")}
    rating = Rating.objects.get()
    assert (rating.total, rating.channel, rating.entered_by_id) == (
        rating.total,
        "tablet",
        today.episode.therapist_id,
    )
    assert str(rating.total) == "20.8"


def test_bad_input_gets_messages_per_line_and_stores_nothing(therapist_client, today):
    hand_over(therapist_client, today)
    action, key = submit_url(therapist_client)
    bad = {**SCORES, "personal": "", "social": "10.5", "overall": "x", "idempotency_key": key}
    response = therapist_client.post(action, bad, **JSON)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["personal"] == ["Please mark this line."]
    assert errors["social"] == ["Scores run from 0.0 to 10.0."]
    assert errors["overall"] == ["This is not a number."]
    assert Rating.objects.count() == 0


def test_a_missing_or_broken_idempotency_key_is_refused(therapist_client, today):
    hand_over(therapist_client, today)
    action, _ = submit_url(therapist_client)
    response = therapist_client.post(action, {**SCORES, "idempotency_key": "nope"}, **JSON)
    assert response.status_code == 400
    assert "reload the page" in response.json()["errors"]["__all__"][0]
    assert Rating.objects.count() == 0


def test_a_tampered_form_token_is_refused(therapist_client, today):
    hand_over(therapist_client, today)
    action, key = submit_url(therapist_client)
    response = therapist_client.post(
        action[:-3] + "xx/", {**SCORES, "idempotency_key": key}, **JSON
    )
    assert response.status_code == 400
    assert Rating.objects.count() == 0


def test_another_therapists_session_cannot_be_rated_through_a_form(client, org, today):
    client.force_login(today.episode.therapist)
    hand_over(client, today)
    action, key = submit_url(client)
    client.force_login(factories.user(factories.organization()))
    response = client.post(action, {**SCORES, "idempotency_key": key}, **JSON)
    assert response.status_code == 404
    assert Rating.objects.count() == 0


def test_a_retry_after_the_tablet_was_unlocked_still_stores_once(therapist_client, today):
    hand_over(therapist_client, today)
    action, key = submit_url(therapist_client)
    therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    response = therapist_client.post(action, {**SCORES, "idempotency_key": key}, **JSON)
    rating = Rating.objects.get()
    assert response.json()["next"] == reverse("rating_result", args=[rating.pk])


# Unlocking


def test_after_submitting_the_client_sees_thanks_and_the_therapist_unlocks(therapist_client, today):
    hand_over(therapist_client, today)
    action, key = submit_url(therapist_client)
    therapist_client.post(action, {**SCORES, "idempotency_key": key}, **JSON)
    assert therapist_client.get(reverse("client_rate")).url == reverse("rate_thanks")
    thanks = therapist_client.get(reverse("rate_thanks")).content.decode()
    assert "Thank you — please hand the tablet back" in thanks
    response = therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    rating = Rating.objects.get()
    assert response.url == reverse("rating_result", args=[rating.pk])
    assert therapist_client.get("/").url == reverse("caseload")


def test_a_wrong_password_keeps_the_lock_and_counts_down(therapist_client, today):
    hand_over(therapist_client, today)
    response = therapist_client.post(reverse("unlock"), {"password": "guess"})
    assert response.status_code == 400
    assert "4 tries left" in response.content.decode()
    assert therapist_client.get("/").url == reverse("client_rate")


def test_unlocking_is_rate_limited(therapist_client, today, settings):
    settings.UNLOCK_MAX_ATTEMPTS = 3
    hand_over(therapist_client, today)
    for _ in range(3):
        therapist_client.post(reverse("unlock"), {"password": "guess"})
    response = therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()
    assert therapist_client.get("/").url == reverse("client_rate")


def test_the_count_starts_again_once_no_password_was_tried_for_the_window(
    therapist_client, today, settings
):
    settings.UNLOCK_MAX_ATTEMPTS = 2
    hand_over(therapist_client, today)
    for _ in range(2):
        therapist_client.post(reverse("unlock"), {"password": "guess"})
    assert therapist_client.get(reverse("unlock")).status_code == 429
    window = timedelta(seconds=settings.UNLOCK_WINDOW_SECONDS)
    UnlockAttempts.objects.update(counted_at=F("counted_at") - window - timedelta(seconds=1))
    response = therapist_client.post(reverse("unlock"), {"password": "guess"})
    assert response.status_code == 400
    assert "1 try left" in response.content.decode()
    assert UnlockAttempts.objects.get().attempts == 1


def test_leaving_client_mode_removes_the_hand_overs_count(therapist_client, today):
    hand_over(therapist_client, today)
    therapist_client.post(reverse("unlock"), {"password": "guess"})
    assert UnlockAttempts.objects.get().attempts == 1
    therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    assert not UnlockAttempts.objects.exists()


def test_leaving_client_mode_removes_counts_abandoned_a_day_ago(therapist_client, today):
    UnlockAttempts.objects.create(
        hand_over=uuid.uuid4(), attempts=5, counted_at=timezone.now() - timedelta(days=1, hours=1)
    )
    recent = UnlockAttempts.objects.create(
        hand_over=uuid.uuid4(), attempts=5, counted_at=timezone.now() - timedelta(hours=23)
    )
    hand_over(therapist_client, today)
    therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    assert list(UnlockAttempts.objects.all()) == [recent]


def test_a_new_hand_over_has_a_count_of_its_own(therapist_client, today, settings):
    settings.UNLOCK_MAX_ATTEMPTS = 2
    hand_over(therapist_client, today)
    therapist_client.post(reverse("unlock"), {"password": "guess"})
    therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    hand_over(therapist_client, today, scale="session")
    response = therapist_client.post(reverse("unlock"), {"password": "guess"})
    assert "1 try left" in response.content.decode()


def test_unlocking_before_any_rating_returns_to_the_client(therapist_client, today):
    hand_over(therapist_client, today)
    response = therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    assert response.url == reverse("client_detail", args=[today.episode.client_id])


# The therapist's result


def test_the_result_shows_total_cutoff_change_and_flags(therapist_client, today):
    TherapySession.objects.filter(pk=today.pk).update(number=2)
    first = factories.therapy_session(today.episode, number=1)
    factories.rate(first, "outcome-adult", "6 6 6 6")  # intake 24.0
    hand_over(therapist_client, today)
    action, key = submit_url(therapist_client)
    low = {
        "personal": "4",
        "relationships": "4",
        "social": "5",
        "overall": "5",
        "idempotency_key": key,
    }
    therapist_client.post(action, low, **JSON)
    response = therapist_client.post(
        reverse("unlock"), {"password": factories.PASSWORD}, follow=True
    )
    page = response.content.decode()
    assert "18.0" in page
    assert "In the clinical range (at or below 25.0)" in page
    assert "-6.0" in page and "Intake 24.0 at session 1" in page
    assert "Reliable deterioration" in page
    assert "Outcome 18.0 is 6.0 points below intake (24.0)" in page


def test_a_result_of_another_organisation_is_not_found(client, today):
    rating = factories.rate(today, "outcome-adult", "5 5 5 5").rating
    client.force_login(factories.user(factories.organization()))
    assert client.get(reverse("rating_result", args=[rating.pk])).status_code == 404


def test_a_reload_keeps_the_key_and_a_new_hand_over_gets_a_new_one(therapist_client, today):
    hand_over(therapist_client, today)
    first, reloaded = (submit_url(therapist_client)[1] for _ in range(2))
    assert first == reloaded
    therapist_client.post(reverse("unlock"), {"password": factories.PASSWORD})
    hand_over(therapist_client, today, scale="session")
    assert submit_url(therapist_client)[1] != first
    assert uuid.UUID(first)


# Raters named by label


def test_the_labels_given_are_offered_and_a_respelt_one_is_the_same_rater(therapist_client, adult):
    therapist_client.post(reverse("session_start", args=[adult.pk]), {"format": "family"})
    session = TherapySession.objects.get(episode__client=adult)
    factories.rate(session, "outcome-adult", "5 5 5 5", rater="parent", label="Mother")
    page = therapist_client.get(reverse("client_detail", args=[adult.pk])).content.decode()
    assert '<datalist id="rater-labels" data-testid="labels-used"><option value="Mother">' in page
    # "mother " is Mother, who has given this session's outcome rating already.
    response = hand_over(therapist_client, session, rater="parent", rater_label="mother ")
    assert response.url == reverse("client_detail", args=[adult.pk])
    assert therapist_client.get(reverse("client_rate")).url == reverse("home")
    hand_over(therapist_client, session, scale="session", rater="parent", rater_label="mother ")
    action, key = submit_url(therapist_client)
    scores = {"relationship": "9", "goals": "9", "approach": "9", "overall": "9"}
    therapist_client.post(action, {**scores, "idempotency_key": key})
    assert sorted(Rating.objects.values_list("scale", "rater_label")) == [
        ("outcome", "Mother"),
        ("session", "Mother"),
    ]
