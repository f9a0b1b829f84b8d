"""The client's own progress on the locked tablet: their outcome totals, nothing else."""

import pytest
from django.urls import reverse

from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import SessionFormat
from alliance_app.feedback.models import Flag
from alliance_app.feedback.services import flag_acknowledge
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

SCORES = {"personal": "6.0", "relationships": "6.5", "social": "6.0", "overall": "6.5"}  # 25.0


@pytest.fixture
def history(org, therapist, adult):
    """Three sessions of the adult's, with everything the progress page must keep to itself:
    session ratings, flags, a note, a partner's outcome rating, another client's totals."""
    episode = factories.episode(adult)
    one, two = (factories.therapy_session(episode, number=n) for n in (1, 2))
    three = factories.therapy_session(episode, number=3, fmt=SessionFormat.COUPLE)
    rate(one, "outcome-adult", "3 4 4 4")  # 15.0
    rate(one, "session-adult", "8.1 8.2 8.3 8.1")  # 32.7: low alliance
    rate(two, "outcome-adult", "2 2 3 2")  # 9.0: deterioration
    rate(two, "session-adult", "9.6 9.7 9.6 9.4")  # 38.3
    rate(three, "outcome-adult", "5 5 6 5.5")  # 21.5
    rate(three, "outcome-adult", "7 7 7 7", rater="partner", label="Sam")  # 28.0
    for flag in Flag.objects.filter(client=adult):
        flag_acknowledge(flag=flag, by=therapist, note="Talked about the pace of our work")
    other = factories.client(org, therapist, code="Z-OTHER-99")
    rate(
        factories.therapy_session(factories.episode(other), number=1),
        "outcome-adult",
        "8.3 8.3 8.3 8.4",
    )  # 33.3
    return factories.therapy_session(episode, number=4)


@pytest.fixture
def tablet(client, therapist):
    client.force_login(therapist)
    return client


def handed_over(http, session, scale="outcome"):
    response = http.post(reverse("hand_over", args=[session.pk]), {"scale": scale})
    assert response.url == reverse("client_rate")
    return http


def submit(http) -> None:
    page = http.get(reverse("client_rate")).content.decode()
    action = page.split('id="rating-form"', 1)[1].split('action="', 1)[1].split('"', 1)[0]
    key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    response = http.post(action, {**SCORES, "idempotency_key": key})
    assert response.url == reverse("rate_thanks")


def test_the_page_shows_the_clients_own_outcome_totals_in_order(tablet, history):
    html = handed_over(tablet, history).get(reverse("rate_progress")).content.decode()
    items = [line.split("<li>")[1] for line in html.split("</li>")[:-1]]
    assert items == ["Session 1: 15.0", "Session 2: 9.0", "Session 3: 21.5"]
    assert html.count('class="progress-point"') == 3
    assert 'class="progress-total" x="76" y="164.5" text-anchor="middle">15.0<' in html


def test_the_page_leaks_nothing_but_those_totals(tablet, history, adult, therapist):
    explanations = [flag.explained for flag in Flag.objects.filter(client=adult)]
    assert len(explanations) >= 2  # the low alliance and the deterioration
    html = handed_over(tablet, history).get(reverse("rate_progress")).content.decode()
    for hidden in (
        *explanations,
        "32.7",  # session ratings
        "38.3",
        "28.0",  # the partner's outcome rating
        "33.3",  # another client's
        "Z-OTHER-99",
        adult.code,
        "Talked about the pace",
        therapist.username,
        therapist.get_full_name(),
    ):
        assert hidden not in html, hidden
    for jargon in ("cutoff", "cut-off", "clinical", "flag", "reliable", "alliance", "plotly"):
        assert jargon not in html.lower(), jargon


def test_the_tablet_stays_locked_and_the_button_leads_back_to_the_form(tablet, history):
    handed_over(tablet, history)
    html = tablet.get(reverse("rate_progress")).content.decode()
    assert f'class="rating-submit progress-back" href="{reverse("client_rate")}"' in html
    assert ">Back to the form<" in html
    assert tablet.get(reverse("home")).url == reverse("client_rate")
    assert tablet.get(reverse("caseload")).url == reverse("client_rate")


def test_after_the_rating_it_shows_todays_total_and_leads_back_to_the_thanks(tablet, history):
    handed_over(tablet, history)
    submit(tablet)
    thanks = tablet.get(reverse("rate_thanks")).content.decode()
    assert f'href="{reverse("rate_progress")}"' in thanks
    html = tablet.get(reverse("rate_progress")).content.decode()
    assert "Session 4: 25.0" in html
    assert f'class="rating-submit progress-back" href="{reverse("rate_thanks")}"' in html


def test_a_partner_sees_only_their_own_totals(tablet, history):
    partner_session = factories.therapy_session(history.episode, number=5, fmt=SessionFormat.COUPLE)
    tablet.post(
        reverse("hand_over", args=[partner_session.pk]),
        {"scale": "outcome", "rater": "partner", "rater_label": "Sam"},
    )
    html = tablet.get(reverse("rate_progress")).content.decode()
    assert "Session 3: 28.0" in html
    for other in ("15.0", "9.0", "21.5"):
        assert other not in html, other


def test_a_first_rating_has_a_calm_word_instead_of_a_picture(tablet, adult):
    session = factories.therapy_session(factories.episode(adult), number=1)
    html = handed_over(tablet, session).get(reverse("rate_progress")).content.decode()
    assert "will appear here from your first one on" in html
    assert "<svg" not in html.split('class="client-progress"', 1)[1]


def test_each_showing_is_in_the_audit_trail(tablet, history, adult):
    handed_over(tablet, history).get(reverse("rate_progress"))
    entry = AuditEntry.objects.get(action=Action.CLIENT_PROGRESS_SHOWN)
    assert (entry.object_type, entry.object_id, entry.detail) == (
        "therapysession",
        str(history.pk),
        adult.code,
    )


def test_it_is_refused_outside_a_hand_over(tablet, history):
    response = tablet.get(reverse("rate_progress"))
    assert response.url == reverse("home")
    assert not AuditEntry.objects.filter(action=Action.CLIENT_PROGRESS_SHOWN).exists()


def test_the_page_loads_no_script(tablet, history):
    html = handed_over(tablet, history).get(reverse("rate_progress")).content.decode()
    assert "<script" not in html
