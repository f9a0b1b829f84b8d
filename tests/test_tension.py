"""The client's tension question after the session scale, over HTTP: on the tablet and on remote
links, stored with the rating exactly once, or not at all (DESIGN.md §5, issue 11 item 3)."""

import pytest
from django.urls import reverse

from alliance_app.clinic.models import Episode, SessionFormat, TherapySession
from alliance_app.feedback import rollups
from alliance_app.feedback.links import remote_link_create
from alliance_app.feedback.models import AllianceMonth, Flag, Rating, RemoteLink, TensionReport
from alliance_app.measures import Severity
from tests import factories

pytestmark = pytest.mark.django_db

SESSION_SCORES = {"relationship": "9.5", "goals": "9.0", "approach": "9.5", "overall": "9.6"}
OUTCOME_SCORES = {"personal": "4.2", "relationships": "6.0", "social": "5.5", "overall": "5.1"}
JSON = {"HTTP_ACCEPT": "application/json"}
QUESTION = "Was there a moment today when you felt uneasy, unheard or at odds with your therapist?"
FOLLOW_UP = "How far did you and your therapist sort it out?"
NOTHING_STORED = (0, 0, 0)


def stored() -> tuple[int, int, int]:
    """Ratings, tension reports and flags in the database."""
    return Rating.objects.count(), TensionReport.objects.count(), Flag.objects.count()


@pytest.fixture
def tablet(client, therapist, adult):
    """The therapist has started today's session: `hand(scale)` gives the client the tablet and
    returns the form's page, its action and its idempotency key."""
    client.force_login(therapist)
    client.post(reverse("session_start", args=[adult.pk]), {"format": "individual"})
    session = TherapySession.objects.get(episode__client=adult)

    def hand(scale: str = "session") -> tuple[str, str, str]:
        client.post(reverse("hand_over", args=[session.pk]), {"scale": scale})
        page = client.get(reverse("client_rate")).content.decode()
        action = page.split('id="rating-form"', 1)[1].split('action="', 1)[1].split('"', 1)[0]
        key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
        return page, action, key

    return hand


def send(http, action: str, key: str, scores=None, **answer):
    data = {**(scores or SESSION_SCORES), "idempotency_key": key, **answer}
    return http.post(action, data, **JSON)


# The form


def test_the_session_scale_has_the_tension_step(client, tablet):
    page, _, _ = tablet("session")
    assert 'id="rating-step-tension" hidden' in page
    assert QUESTION in page and FOLLOW_UP in page
    assert page.count('name="tension"') == 2
    assert page.count('name="tension_resolution"') == 5
    for label in ("Not at all", "A little", "Partly", "Mostly", "Completely"):
        assert f"{label}</span></label>" in page, label
    assert "I’d rather not answer" in page
    assert "data-ask-tension" in page
    assert '<button type="submit" id="rating-submit" class="rating-submit">Next</button>' in page
    assert 'data-label-send="Send my answers"' in page


def test_the_outcome_scale_has_no_tension_step(client, tablet):
    page, _, _ = tablet("outcome")
    assert "rating-step-tension" not in page and 'name="tension"' not in page
    assert "data-ask-tension" not in page
    assert '<button type="submit" id="rating-submit" class="rating-submit">Send my answers' in page


def test_a_childs_session_scale_asks_in_simpler_words(client, org, therapist):
    child = factories.client(org, therapist, age_band="child")
    client.force_login(therapist)
    client.post(reverse("session_start", args=[child.pk]))
    session = TherapySession.objects.get(episode__client=child)
    client.post(reverse("hand_over", args=[session.pk]), {"scale": "session"})
    page = client.get(reverse("client_rate")).content.decode()
    assert "something felt wrong between you and your therapist" in page
    assert "How much did you and your therapist make it better?" in page
    assert "All better</span></label>" in page
    assert 'data-label-send="Done"' in page
    assert QUESTION not in page


# Submitting on the tablet


def test_a_yes_stores_the_report_and_raises_a_flag_that_says_how_far_it_was_sorted_out(
    client, tablet
):
    _, action, key = tablet()
    response = send(client, action, key, tension="yes", tension_resolution="2")
    assert response.status_code == 201
    assert response.json() == {"status": "stored", "next": reverse("rate_thanks")}
    rating = Rating.objects.get()
    assert (rating.tension.tension, rating.tension.resolution) == (True, 2)
    flag = Flag.objects.get(kind="client_reported_tension")
    assert flag.rating == rating
    assert flag.explanation == (
        "The client felt tension with you in this session and says it was sorted out a little."
    )
    assert flag.severity == Severity.HIGH  # medium for the kind, one higher at 2 or less
    assert stored() == (1, 1, 1)


def test_a_yes_that_was_mostly_sorted_out_keeps_the_kinds_severity(client, tablet):
    _, action, key = tablet()
    assert send(client, action, key, tension="yes", tension_resolution="4").status_code == 201
    flag = Flag.objects.get(kind="client_reported_tension")
    assert flag.severity == Severity.MEDIUM
    assert flag.explanation.endswith("says it was mostly sorted out.")


def test_a_no_stores_a_report_and_no_flag(client, tablet):
    _, action, key = tablet()
    assert send(client, action, key, tension="no").status_code == 201
    report = TensionReport.objects.get()
    assert (report.tension, report.resolution) == (False, None)
    assert stored() == (1, 1, 0)


def test_without_the_tension_fields_no_report_is_stored(client, tablet):
    _, action, key = tablet()
    assert send(client, action, key).status_code == 201
    assert stored() == (1, 0, 0)


def test_empty_tension_fields_are_no_answer(client, tablet):
    _, action, key = tablet()
    assert send(client, action, key, tension="", tension_resolution="").status_code == 201
    assert stored() == (1, 0, 0)


def test_a_replay_with_the_same_key_stores_nothing_more(client, tablet):
    _, action, key = tablet()
    first = send(client, action, key, tension="yes", tension_resolution="3")
    again = send(client, action, key, tension="yes", tension_resolution="3")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["status"] == "stored"
    assert stored() == (1, 1, 1)
    assert TensionReport.objects.get().resolution == 3


@pytest.mark.parametrize(
    ("answer", "errors"),
    [
        (
            {"tension": "yes"},
            {"tension_resolution": ["Choose how far it was sorted out, from 1 to 5."]},
        ),
        (
            {"tension": "yes", "tension_resolution": "0"},
            {"tension_resolution": ["Choose how far it was sorted out, from 1 to 5."]},
        ),
        (
            {"tension": "yes", "tension_resolution": "6"},
            {"tension_resolution": ["Choose how far it was sorted out, from 1 to 5."]},
        ),
        (
            {"tension": "yes", "tension_resolution": "2.5"},
            {"tension_resolution": ["Choose how far it was sorted out, from 1 to 5."]},
        ),
        (
            {"tension": "yes", "tension_resolution": "two"},
            {"tension_resolution": ["Choose how far it was sorted out, from 1 to 5."]},
        ),
        (
            {"tension": "no", "tension_resolution": "3"},
            {"tension_resolution": ["After a no there is nothing to sort out."]},
        ),
        ({"tension": "maybe"}, {"tension": ["Answer yes or no."]}),
        ({"tension": "YES", "tension_resolution": "3"}, {"tension": ["Answer yes or no."]}),
        ({"tension_resolution": "3"}, {"tension": ["Answer yes or no."]}),
    ],
)
def test_a_bad_answer_is_refused_with_its_field_and_nothing_is_stored(
    client, tablet, answer, errors
):
    _, action, key = tablet()
    response = send(client, action, key, **answer)
    assert response.status_code == 400
    assert response.json() == {"status": "invalid", "errors": errors}
    assert stored() == NOTHING_STORED


def test_the_form_can_be_sent_again_after_a_refused_answer(client, tablet):
    _, action, key = tablet()
    assert send(client, action, key, tension="yes").status_code == 400
    assert send(client, action, key, tension="yes", tension_resolution="5").status_code == 201
    assert stored() == (1, 1, 1)


def test_tension_after_an_outcome_scale_is_refused(client, tablet):
    _, action, key = tablet("outcome")
    response = send(client, action, key, OUTCOME_SCORES, tension="no")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "tension": ["The tension question follows the session scale."]
    }
    assert stored() == NOTHING_STORED


# An organisation that does not ask


@pytest.fixture
def not_asking(org):
    org.ask_tension = False
    org.save(update_fields=["ask_tension"])
    return org


def test_an_organisation_that_does_not_ask_shows_no_tension_step(client, not_asking, tablet):
    page, _, _ = tablet()
    assert 'name="tension"' not in page and QUESTION not in page
    assert "data-ask-tension" not in page
    assert '<button type="submit" id="rating-submit" class="rating-submit">Send my answers' in page


def test_an_organisation_that_does_not_ask_refuses_the_answer(client, not_asking, tablet):
    _, action, key = tablet()
    response = send(client, action, key, tension="yes", tension_resolution="1")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "tension": ["This clinic does not ask the tension question."]
    }
    assert stored() == NOTHING_STORED
    assert send(client, action, key).status_code == 201
    assert stored() == (1, 0, 0)


# Remote links


@pytest.fixture
def link(session_one, therapist):
    return remote_link_create(session=session_one, scale="session", created_by=therapist)


def remote(http, token: str, key=None, **answer):
    data = {**SESSION_SCORES, "idempotency_key": str(key or factories.key()), **answer}
    return http.post(reverse("remote_rate", args=[token]), data, **JSON)


def test_a_remote_link_asks_the_question(client, link):
    page = client.get(reverse("remote_rate", args=[link.token])).content.decode()
    assert QUESTION in page and page.count('name="tension_resolution"') == 5


def test_a_remote_link_for_the_outcome_scale_does_not_ask(client, session_one, therapist):
    created = remote_link_create(session=session_one, scale="outcome", created_by=therapist)
    page = client.get(reverse("remote_rate", args=[created.token])).content.decode()
    assert "rating-form" in page and 'name="tension"' not in page


def test_a_remote_yes_is_stored_with_its_flag_and_uses_the_link(client, link):
    key = factories.key()
    response = remote(client, link.token, key, tension="yes", tension_resolution="1")
    assert response.status_code == 200
    assert response.json() == {"status": "stored", "next": reverse("remote_thanks") + "?lang=en"}
    rating = Rating.objects.get()
    assert (rating.channel, rating.tension.tension, rating.tension.resolution) == (
        "remote",
        True,
        1,
    )
    assert Flag.objects.get(kind="client_reported_tension").explanation.endswith(
        "says it was not sorted out."
    )
    assert RemoteLink.objects.get().rating == rating
    # The same submission again answers as the first did and stores nothing more.
    assert remote(client, link.token, key, tension="yes", tension_resolution="1").json() == {
        "status": "stored",
        "next": reverse("remote_thanks") + "?lang=en",
    }
    assert stored() == (1, 1, 1)


def test_a_remote_no_stores_a_report_and_no_flag(client, link):
    assert remote(client, link.token, tension="no").status_code == 200
    assert stored() == (1, 1, 0)
    assert TensionReport.objects.get().tension is False


def test_a_bad_remote_answer_is_refused_and_leaves_the_link_unused(client, link):
    response = remote(client, link.token, tension="yes")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "tension_resolution": ["Choose how far it was sorted out, from 1 to 5."]
    }
    assert stored() == NOTHING_STORED
    assert RemoteLink.objects.filter(used_at=None, rating=None).count() == 1


def test_a_remote_link_of_an_organisation_that_does_not_ask(client, not_asking, link):
    page = client.get(reverse("remote_rate", args=[link.token])).content.decode()
    assert "rating-form" in page and 'name="tension"' not in page
    response = remote(client, link.token, tension="no")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "tension": ["This clinic does not ask the tension question."]
    }
    assert stored() == NOTHING_STORED
    assert RemoteLink.objects.filter(used_at=None, rating=None).count() == 1
    # The link still works for the scale alone.
    assert remote(client, link.token).status_code == 200
    assert stored() == (1, 0, 0)
    assert RemoteLink.objects.get().used_at is not None


# The monthly summary rows


def test_the_months_count_the_clients_own_answers_and_a_rebuild_agrees(client, org, therapist):
    patient = factories.client(org, therapist)
    episode = factories.episode(patient)
    answers = [
        {"tension": "yes", "tension_resolution": "2"},  # session 1, January
        {"tension": "no"},  # session 2, January
        {},  # session 3, January: not answered
        {"tension": "yes", "tension_resolution": "5"},  # session 4, January
        {"tension": "yes", "tension_resolution": "4"},  # session 5, February
    ]
    for number, answer in enumerate(answers, start=1):
        session = factories.therapy_session(episode, number=number, fmt=SessionFormat.COUPLE)
        if number == 5:
            session.date = session.date.replace(month=2)
            session.save(update_fields=["date"])
        token = remote_link_create(session=session, scale="session", created_by=therapist).token
        assert remote(client, token, **answer).status_code == 200
    # A partner's answer is stored and flagged, but the months count the client's own only.
    partner = remote_link_create(
        session=episode.sessions.get(number=1),
        scale="session",
        created_by=therapist,
        rater="partner",
        rater_label="Sam",
    ).token
    assert remote(client, partner, tension="yes", tension_resolution="1").status_code == 200
    assert stored() == (6, 5, 4)

    def months():
        return list(
            AllianceMonth.objects.filter(episode=episode)
            .order_by("month")
            .values_list(
                "month__month", "count", "tensions_answered", "tensions", "tension_resolution_sum"
            )
        )

    expected = [(1, 4, 3, 2, 7), (2, 1, 1, 1, 4)]
    assert months() == expected
    rollups.rebuild(Episode.objects.filter(pk=episode.pk))
    assert months() == expected


# The pages' queries


def test_the_tablet_page_asks_the_organisation_once(client, tablet, django_assert_num_queries):
    tablet()
    # the login session, the user, and whether the organisation asks
    with django_assert_num_queries(3):
        page = client.get(reverse("client_rate")).content.decode()
    assert QUESTION in page


def test_the_tablet_page_of_an_outcome_scale_does_not_ask(
    client, tablet, django_assert_num_queries
):
    tablet("outcome")
    with django_assert_num_queries(2):  # the login session and the user
        page = client.get(reverse("client_rate")).content.decode()
    assert "rating-form" in page


def test_the_remote_page_asks_the_organisation_once(client, link, django_assert_num_queries):
    # the link, whether the scale was given meanwhile in the session, and whether the
    # organisation asks
    with django_assert_num_queries(3):
        page = client.get(reverse("remote_rate", args=[link.token])).content.decode()
    assert QUESTION in page
