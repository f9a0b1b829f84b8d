"""rating_submit: validates, stores exactly once, and refuses bad input without storing it."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from alliance_app.feedback.models import Rating
from alliance_app.feedback.services import rating_submit
from tests import factories

pytestmark = pytest.mark.django_db

ADULT_OUTCOME = {"personal": "4.5", "relationships": "6.0", "social": "5.2", "overall": "5.0"}


def submit(session, scores=None, **kwargs):
    kwargs.setdefault("instrument_code", "outcome-adult")
    kwargs.setdefault("idempotency_key", factories.key())
    return rating_submit(session=session, scores=scores or ADULT_OUTCOME, **kwargs)


def test_it_stores_the_items_in_order_and_the_total(session_one):
    result = submit(session_one)
    assert result.created
    rating = Rating.objects.get()
    assert rating.items == (Decimal("4.5"), Decimal("6.0"), Decimal("5.2"), Decimal("5.0"))
    assert rating.total == Decimal("20.7")
    assert (rating.scale, rating.rater, rating.channel) == ("outcome", "client", "tablet")


def test_the_same_key_twice_stores_one_rating_and_answers_the_same(session_one):
    key = factories.key()
    first = submit(session_one, idempotency_key=key)
    second = submit(session_one, idempotency_key=key)
    assert Rating.objects.count() == 1
    assert not second.created
    assert second.rating.pk == first.rating.pk
    assert second.rating.total == first.rating.total


def test_a_replay_with_other_scores_keeps_what_was_stored(session_one):
    key = factories.key()
    submit(session_one, idempotency_key=key)
    replay = submit(session_one, idempotency_key=key, scores={**ADULT_OUTCOME, "overall": "9.9"})
    assert replay.rating.total == Decimal("20.7")
    assert Rating.objects.get().item_4 == Decimal("5.0")


def test_a_key_used_for_another_session_is_refused(session_one):
    key = factories.key()
    submit(session_one, idempotency_key=key)
    other = factories.therapy_session(session_one.episode, number=2)
    with pytest.raises(ValidationError, match="already been used"):
        submit(other, idempotency_key=key)
    assert Rating.objects.count() == 1


@pytest.mark.parametrize(
    ("scores", "field", "message"),
    [
        ({**ADULT_OUTCOME, "overall": ""}, "overall", "Please mark this line."),
        ({k: v for k, v in ADULT_OUTCOME.items() if k != "social"}, "social", "Please mark"),
        ({**ADULT_OUTCOME, "personal": "10.1"}, "personal", "from 0.0 to 10.0"),
        ({**ADULT_OUTCOME, "personal": "-0.1"}, "personal", "from 0.0 to 10.0"),
        ({**ADULT_OUTCOME, "personal": "5.55"}, "personal", "at most one decimal"),
        ({**ADULT_OUTCOME, "personal": "lots"}, "personal", "not a number"),
        ({**ADULT_OUTCOME, "personal": "NaN"}, "personal", "not a number"),
        ({**ADULT_OUTCOME, "mood": "5.0"}, "mood", "no such item"),
    ],
)
def test_bad_scores_get_a_message_and_store_nothing(session_one, scores, field, message):
    with pytest.raises(ValidationError) as raised:
        submit(session_one, scores=scores)
    assert message in " ".join(raised.value.message_dict[field])
    assert Rating.objects.count() == 0


def test_every_bad_item_is_reported_at_once(session_one):
    with pytest.raises(ValidationError) as raised:
        submit(session_one, scores={"personal": "11", "relationships": "x"})
    assert set(raised.value.message_dict) == {"personal", "relationships", "social", "overall"}


def test_an_unknown_instrument_is_refused(session_one):
    with pytest.raises(ValidationError) as raised:
        submit(session_one, instrument_code="phq-9")
    assert "instrument" in raised.value.message_dict
    assert Rating.objects.count() == 0


def test_a_scale_for_another_age_band_is_refused(org, therapist):
    child = factories.client(org, therapist, age_band="child")
    session = factories.therapy_session(factories.episode(child))
    with pytest.raises(ValidationError) as raised:
        submit(session)
    assert "age group" in raised.value.message_dict["instrument"][0]
    child_scores = {"me": "5", "family": "5", "school": "5", "everything": "5"}
    assert submit(session, scores=child_scores, instrument_code="outcome-child").created


def test_adolescents_use_the_adult_session_scale(org, therapist):
    teen = factories.client(org, therapist, age_band="adolescent")
    session = factories.therapy_session(factories.episode(teen))
    scores = {"relationship": "9", "goals": "9", "approach": "9", "overall": "9"}
    assert submit(session, scores=scores, instrument_code="session-adult").created
    with pytest.raises(ValidationError):
        submit(session, instrument_code="outcome-adult")


def test_a_rater_rates_each_scale_once_per_session(session_one):
    submit(session_one)
    with pytest.raises(ValidationError, match="already given the outcome rating"):
        submit(session_one)
    assert submit(session_one, rater="partner").created
    assert submit(session_one, rater="partner", rater_label="Second partner").created
    assert Rating.objects.count() == 3


def test_an_unknown_rater_or_channel_is_refused(session_one):
    with pytest.raises(ValidationError):
        submit(session_one, rater="neighbour")
    with pytest.raises(ValidationError):
        submit(session_one, channel="fax")
    assert Rating.objects.count() == 0
