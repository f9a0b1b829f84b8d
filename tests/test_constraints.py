"""The database itself refuses bad data, whatever path (ORM, admin, shell) tries to store it."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from alliance_app.clinic.models import Client, Closure, Episode, TherapySession
from alliance_app.feedback.models import Rating
from tests import factories

pytestmark = pytest.mark.django_db


def rating(session, **overrides) -> Rating:
    fields = {
        "session": session,
        "instrument": "outcome-adult",
        "scale": "outcome",
        "rater": "client",
        "item_1": Decimal("5.0"),
        "item_2": Decimal("5.0"),
        "item_3": Decimal("5.0"),
        "item_4": Decimal("5.0"),
        "total": Decimal("20.0"),
        "channel": "tablet",
    }
    fields.update(overrides)
    return Rating(**fields)


def refused(obj) -> bool:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        return True
    return False


def test_it_stores_a_valid_rating(session_one):
    assert not refused(rating(session_one))
    assert Rating.objects.count() == 1


@pytest.mark.parametrize("value", ["10.1", "-0.1", "11.0"])
@pytest.mark.parametrize("item", ["item_1", "item_2", "item_3", "item_4"])
def test_it_refuses_an_item_out_of_range(session_one, item, value):
    bad = rating(session_one, **{item: Decimal(value)})
    bad.total = sum(bad.items)
    assert refused(bad)
    assert Rating.objects.count() == 0


@pytest.mark.parametrize("value", ["0.0", "10.0"])
def test_it_accepts_the_ends_of_the_line(session_one, value):
    items = {name: Decimal(value) for name in ("item_1", "item_2", "item_3", "item_4")}
    assert not refused(rating(session_one, total=Decimal(value) * 4, **items))


def test_it_refuses_a_total_that_is_not_the_sum(session_one):
    assert refused(rating(session_one, total=Decimal("21.0")))


def test_it_refuses_a_second_rating_with_the_same_idempotency_key(session_one):
    first = rating(session_one)
    first.save()
    second_session = factories.therapy_session(session_one.episode, number=2)
    assert refused(rating(second_session, idempotency_key=first.idempotency_key))
    assert Rating.objects.count() == 1


def test_it_refuses_two_ratings_of_one_scale_by_the_same_rater(session_one):
    rating(session_one).save()
    assert refused(rating(session_one))
    assert not refused(rating(session_one, rater="partner"))
    assert not refused(rating(session_one, scale="session", instrument="session-adult"))


@pytest.mark.parametrize(
    ("field", "value"), [("scale", "mood"), ("rater", "neighbour"), ("channel", "fax")]
)
def test_it_refuses_unknown_choices(session_one, field, value):
    assert refused(rating(session_one, **{field: value}))


def test_client_codes_are_unique_within_an_organisation_only(org, therapist):
    factories.client(org, therapist, code="A-1")
    assert refused(
        Client(organization=org, code="A-1", age_band="adult", primary_therapist=therapist)
    )
    other = factories.organization()
    assert not refused(
        Client(organization=other, code="A-1", age_band="adult", primary_therapist=therapist)
    )


def test_a_client_has_one_open_episode_at_a_time(adult):
    factories.episode(adult)
    assert refused(Episode(client=adult, therapist=adult.primary_therapist, opened="2026-02-01"))


def test_an_episode_closes_with_a_reason_and_not_before_it_opened(adult):
    def episode(**fields):
        return Episode(
            client=adult, therapist=adult.primary_therapist, opened="2026-02-01", **fields
        )

    assert refused(episode(closed="2026-03-01"))
    assert refused(episode(closure=Closure.PLANNED))
    assert refused(episode(closed="2026-01-01", closure=Closure.PLANNED))
    assert not refused(episode(closed="2026-03-01", closure=Closure.UNPLANNED))


def test_session_numbers_are_unique_and_positive(session_one):
    duplicate = TherapySession(episode=session_one.episode, number=1, date="2026-01-07")
    assert refused(duplicate)
    assert refused(TherapySession(episode=session_one.episode, number=0, date="2026-01-07"))
