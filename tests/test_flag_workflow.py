"""Flags move open → acknowledged → resolved, each step with who, when and a note."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.feedback.models import Flag, FlagStatus
from alliance_app.feedback.services import flag_acknowledge, flag_resolve
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(org, therapist):
    team = factories.team(org, "North")
    therapist.membership.team = team
    therapist.membership.save()
    return team


@pytest.fixture
def flag(session_one) -> Flag:
    return factories.rate(session_one, "session-adult", "8 8 8 8").flags[0]


def act(http, flag, action, note=""):
    return http.post(reverse("flag_action", args=[flag.pk, action]), {"note": note})


def test_acknowledging_records_who_when_and_the_note(flag, therapist):
    flag_acknowledge(flag=flag, by=therapist, note="Will ask about it next week.")
    flag.refresh_from_db()
    assert flag.status == FlagStatus.ACKNOWLEDGED
    assert flag.acknowledged_by == therapist and flag.acknowledged_at is not None
    assert flag.acknowledged_note == "Will ask about it next week."


def test_resolving_needs_a_note_and_is_final(flag, therapist):
    with pytest.raises(ValidationError):
        flag_resolve(flag=flag, by=therapist, note="  ")
    flag_resolve(flag=flag, by=therapist, note="We changed the homework.")
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_note) == (FlagStatus.RESOLVED, "We changed the homework.")
    assert flag.acknowledged_by == therapist  # resolving an open flag acknowledges it too
    with pytest.raises(ValidationError):
        flag_resolve(flag=flag, by=therapist, note="again")
    with pytest.raises(ValidationError):
        flag_acknowledge(flag=flag, by=therapist)


def test_the_database_refuses_a_resolved_flag_without_a_note(flag):
    flag.status = FlagStatus.RESOLVED
    with pytest.raises(IntegrityError), transaction.atomic():
        flag.save()


def test_the_therapist_acknowledges_from_the_client_page(client, therapist, flag):
    client.force_login(therapist)
    response = act(client, flag, "acknowledge", "Talk next time")
    assert response.url == reverse("client_detail", args=[flag.client_id])
    flag.refresh_from_db()
    assert flag.status == FlagStatus.ACKNOWLEDGED


def test_the_supervisor_of_the_team_acts_and_others_cannot(client, org, team, flag):
    supervisor = factories.user(org, role=Role.SUPERVISOR)
    supervisor.membership.supervised_teams.add(team)
    other_supervisor = factories.user(org, role=Role.SUPERVISOR)
    other_supervisor.membership.supervised_teams.add(factories.team(org, "South"))

    client.force_login(other_supervisor)
    assert act(client, flag, "acknowledge").status_code == 404
    client.force_login(factories.user(org))  # another therapist
    assert act(client, flag, "acknowledge").status_code == 404
    client.force_login(factories.user(org, role=Role.ADMIN))  # sees everything, changes nothing
    assert act(client, flag, "acknowledge").status_code == 403
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN

    client.force_login(supervisor)
    act(client, flag, "resolve", "Discussed in supervision.")
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_by) == (FlagStatus.RESOLVED, supervisor)


def test_resolving_without_a_note_says_why_and_changes_nothing(client, therapist, flag):
    client.force_login(therapist)
    response = act(client, flag, "resolve", "")
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["Say in a few words what came of it."]
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN


def test_an_unknown_action_is_not_found(client, therapist, flag):
    client.force_login(therapist)
    assert act(client, flag, "delete").status_code == 404
    assert Flag.objects.filter(pk=flag.pk).exists()


def test_a_flag_action_returns_only_to_a_page_of_this_site(client, therapist, flag):
    client.force_login(therapist)
    url = reverse("flag_action", args=[flag.pk, "acknowledge"])
    response = client.post(url, {"next": "https://elsewhere.example/"})
    assert response.url == reverse("client_detail", args=[flag.client_id])
