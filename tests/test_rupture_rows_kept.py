"""A rater's rupture rows are kept in place as their series grows: a rupture found again keeps
its row, and the research cases that cite it; a change of status updates the row; a rating that
changes nothing writes no rupture row at all."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alliance_app.feedback.models import Rupture
from alliance_app.research.models import Case, CaseSet
from tests import factories

pytestmark = pytest.mark.django_db

HIGH, LOW = "9.5 9.5 9.5 9.5", "4.0 4.0 4.0 4.0"


@pytest.fixture
def series():
    org = factories.organization()
    therapist = factories.user(org)
    episode = factories.episode(factories.client(org, therapist))
    sessions = [factories.therapy_session(episode, number=n) for n in range(1, 9)]
    for session in sessions[:4]:
        factories.rate(session, "session-adult", HIGH)
    factories.rate(sessions[4], "session-adult", LOW)
    return org, therapist, sessions


def test_a_later_rating_keeps_the_rupture_row_and_the_case_citing_it(series):
    org, therapist, sessions = series
    rupture = Rupture.objects.get()
    case_set = CaseSet.objects.create(organization=org, title="Ruptures", created_by=therapist)
    Case.objects.create(case_set=case_set, rupture=rupture, position=1)
    factories.rate(sessions[5], "session-adult", HIGH)
    assert list(Rupture.objects.values_list("pk", flat=True)) == [rupture.pk]
    assert Case.objects.get().rupture_id == rupture.pk


def test_a_repair_updates_the_rupture_in_place(series):
    _org, _therapist, sessions = series
    before = Rupture.objects.get()
    for session in sessions[5:]:
        factories.rate(session, "session-adult", HIGH)
    after = Rupture.objects.get()
    assert after.pk == before.pk
    assert (before.status, after.status) == ("pending", "repaired")
    assert after.repaired_number is not None


def test_a_rating_that_changes_no_rupture_writes_none(series):
    _org, _therapist, sessions = series
    factories.rate(sessions[5], "session-adult", HIGH)
    with CaptureQueriesContext(connection) as captured:
        factories.rate(sessions[6], "session-adult", HIGH)
    writes = [
        query["sql"]
        for query in captured
        if "feedback_rupture" in query["sql"] and not query["sql"].startswith("SELECT")
    ]
    assert writes == []


def test_a_rebuild_keeps_the_ruptures_found_again_and_the_cases_citing_them(series):
    from alliance_app.feedback import ruptures

    org, therapist, sessions = series
    rupture = Rupture.objects.get()
    case_set = CaseSet.objects.create(organization=org, title="Ruptures", created_by=therapist)
    Case.objects.create(case_set=case_set, rupture=rupture, position=1)
    # A row the rule no longer finds (its rating's rupture is gone) is deleted by the rebuild.
    stray = Rupture.objects.create(
        **{
            field.attname: getattr(rupture, field.attname)
            for field in Rupture._meta.concrete_fields
            if field.attname not in ("id", "rating_id")
        },
        rating=factories.rate(sessions[5], "session-adult", HIGH).rating,
    )
    assert ruptures.rebuild(org) == 1
    assert list(Rupture.objects.values_list("pk", flat=True)) == [rupture.pk]
    assert Case.objects.get().rupture_id == rupture.pk
    assert not Rupture.objects.filter(pk=stray.pk).exists()
