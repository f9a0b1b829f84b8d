"""What a therapist meets on a tablet, page by page: no link or form for a rating already given,
the Today card when both ratings are in, the link page, the headers that must not break, the
caseload's stacked cells and the flag actions' own fields."""

import re

import pytest
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.clinic.models import TherapySession
from alliance_app.feedback.links import remote_link_create
from alliance_app.feedback.models import Flag, Rating, RemoteLink
from alliance_app.measures import TensionAnswer
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

SESSION_SCORES = {"relationship": "9.5", "goals": "9.0", "approach": "9.5", "overall": "9.6"}


@pytest.fixture
def http(client, therapist):
    client.force_login(therapist)
    return client


@pytest.fixture
def today(http, adult) -> TherapySession:
    http.post(reverse("session_start", args=[adult.pk]), {"format": "individual"})
    return TherapySession.objects.get(episode__client=adult)


def test_no_link_is_made_for_a_rating_already_given(http, today):
    rate(today, "session-adult", "9.5 9.0 9.5 9.6")
    response = http.post(reverse("link_create", args=[today.pk]), {"scale": "session"}, follow=True)
    assert response.redirect_chain == [
        (reverse("client_detail", args=[today.episode.client_id]), 302)
    ]
    assert (
        "This rating has already been given in this session: no link is needed for it."
        in response.content.decode()
    )
    assert RemoteLink.objects.count() == 0
    # The other scale still gets its link.
    http.post(reverse("link_create", args=[today.pk]), {"scale": "outcome"})
    assert RemoteLink.objects.get().instrument == "outcome-adult"


def test_a_link_whose_rating_was_given_meanwhile_says_so_before_any_form(client, therapist, today):
    token = remote_link_create(session=today, scale="session", created_by=therapist).token
    rate(today, "session-adult", "9.5 9.0 9.5 9.6")  # on the tablet, meanwhile
    response = client.get(reverse("remote_rate", args=[token]))
    page = response.content.decode()
    assert response.status_code == 410
    assert "You have already given this rating for this session. Thank you." in page
    assert 'id="rating-form"' not in page and "Client has already" not in page


def test_a_form_sent_after_the_rating_was_given_meanwhile_is_refused_in_words(
    client, therapist, today
):
    token = remote_link_create(session=today, scale="session", created_by=therapist).token
    assert client.get(reverse("remote_rate", args=[token])).status_code == 200
    rate(today, "session-adult", "9.0 9.0 9.0 9.0")
    response = client.post(
        reverse("remote_rate", args=[token]),
        {**SESSION_SCORES, "idempotency_key": str(factories.key())},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 410
    assert response.json() == {
        "status": "refused",
        "message": "You have already given this rating for this session. Thank you.",
    }
    assert Rating.objects.count() == 1


def hand_over_buttons(page: str) -> list[str]:
    return re.findall(r'name="scale" value="(\w+)"', page.split('id="today-title"', 1)[1])


def test_the_today_card_offers_only_the_scales_still_to_give(http, today, adult):
    url = reverse("client_detail", args=[adult.pk])
    assert hand_over_buttons(http.get(url).content.decode()) == ["outcome", "session"]
    rate(today, "outcome-adult", "5 5 5 5")
    page = http.get(url).content.decode()
    assert hand_over_buttons(page) == ["session"]
    assert page.count('<option value="session">') == 1  # and the link form offers only it
    rate(today, "session-adult", "9.5 9.0 9.5 9.6")
    page = http.get(url).content.decode()
    assert hand_over_buttons(page) == []
    assert "Hand to client" not in page and "Telehealth" not in page
    assert "Both ratings of this session are done" in page


def test_a_couple_session_keeps_both_scales_for_the_next_rater(http, adult):
    http.post(reverse("session_start", args=[adult.pk]), {"format": "couple"})
    session = TherapySession.objects.get(episode__client=adult)
    rate(session, "outcome-adult", "5 5 5 5")
    rate(session, "session-adult", "9.5 9.0 9.5 9.6")
    page = http.get(reverse("client_detail", args=[adult.pk])).content.decode()
    assert hand_over_buttons(page) == ["outcome", "session"]


def test_the_link_page_shows_the_whole_link_a_copy_button_and_one_full_stop(http, today):
    response = http.post(reverse("link_create", args=[today.pk]), {"scale": "outcome"})
    page = http.get(response.url).content.decode()
    url = re.search(r'<textarea[^>]*data-testid="link-url">([^<]+)</textarea>', page).group(1)
    assert url.startswith("http://testserver/r/")
    assert 'data-copy-target="link-url"' in page and "js/copy-link.js" in page
    assert "Works once." in page and "Expires:" in page
    assert ".." not in re.sub(r"<[^>]+>", "", page)


def test_the_client_header_holds_each_dot_to_the_word_before_it(http, today, adult):
    page = http.get(reverse("client_detail", args=[adult.pk])).content.decode()
    facts = re.search(r'data-testid="client-facts">(.+?)</span>\s*\n', page).group(1)
    assert facts.count("&nbsp;· ") == 2 and " · " not in facts
    assert '<span class="text-nowrap" data-testid="in-care-since">in care since ' in facts


def test_the_intake_line_of_the_result_does_not_break(http, today, adult):
    rating = rate(today, "outcome-adult", "5 5 5 5").rating
    later = factories.therapy_session(today.episode, number=2)
    result = rate(later, "outcome-adult", "6 6 6 6").rating
    assert rating.session.number == 1
    page = http.get(reverse("rating_result", args=[result.pk])).content.decode()
    assert '<span class="text-nowrap">Intake 20.0 at session 1.</span>' in page


def test_the_caseload_stacks_three_facts_for_a_narrow_screen(http, today):
    rate(today, "outcome-adult", "5 5 5 5")
    page = http.get(reverse("caseload")).content.decode()
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert head.count("<th ") == 8
    assert head.count('class="alliance-narrow"') == 3 and head.count("alliance-wide") == 3
    row = page.split('data-testid="caseload-row"', 1)[1].split("</tr>", 1)[0]
    assert row.count('class="alliance-narrow"') == 3 and row.count("alliance-wide") == 3


def test_each_flag_action_has_its_own_labelled_field(http, today, adult):
    flag = rate(today, "session-adult", "8 8 8 8").flags[0]
    page = http.get(reverse("client_detail", args=[adult.pk])).content.decode()
    assert f'<label class="form-label small fw-semibold mb-1" for="ack-{flag.pk}">' in page
    assert f'<label class="form-label small fw-semibold mb-1" for="resolve-{flag.pk}">' in page
    actions = page.split("alliance-flag-actions", 1)[1].split("</li>", 1)[0]
    assert "placeholder" not in actions
    assert Flag.objects.get(pk=flag.pk).status == "open"


def test_acknowledging_with_a_reflection_sits_apart_from_the_note(client, org):
    """Sue supervises and treats a client of her own: her inbox offers her the reflection."""
    sue = factories.user(org, role=Role.SUPERVISOR, username="sue")
    session = factories.therapy_session(factories.episode(factories.client(org, sue)))
    answer = TensionAnswer(tension=True, resolution=1)
    flag = rate(session, "session-adult", "9.5 9.5 9.5 9.5", tension=answer).flags[0]
    client.force_login(sue)
    page = client.get(reverse("inbox")).content.decode()
    item = page.split('data-testid="inbox-flag"', 1)[1].split("</li>", 1)[0]
    link = f'href="/flags/{flag.pk}/reflection/?next='
    assert item.count("Acknowledge with a reflection") == 1 and link in item
    # The link comes before, and outside, the form whose note it would otherwise leave behind.
    assert item.index(link) < item.index("<form")
    forms = re.findall(r"<form.+?</form>", item, flags=re.S)
    assert forms and not any("Acknowledge with a reflection" in form for form in forms)
