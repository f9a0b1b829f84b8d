"""The authentication backend loads a signed-in user's membership with the user."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alliance_app.accounts.access import membership_for
from alliance_app.accounts.backends import MembershipBackend
from alliance_app.accounts.models import Role
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_user_comes_with_membership_organisation_and_team_in_one_query():
    org = factories.organization()
    team = factories.team(org)
    user = factories.user(org, role=Role.SUPERVISOR, team=team)
    with CaptureQueriesContext(connection) as queries:
        loaded = MembershipBackend().get_user(user.pk)
        membership = membership_for(loaded)
        seen = (membership.role, membership.organization.slug, membership.team.name)
    assert seen == (Role.SUPERVISOR, org.slug, team.name)
    assert len(queries) == 1


def test_a_deactivated_user_is_no_longer_signed_in(client):
    org = factories.organization()
    user = factories.user(org)
    client.force_login(user)
    assert client.get("/caseload/").status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert MembershipBackend().get_user(user.pk) is None
    response = client.get("/caseload/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_a_user_of_no_organisation_has_no_membership():
    loaded = MembershipBackend().get_user(
        factories.User.objects.create_user(username="nobody", password=factories.PASSWORD).pk
    )
    assert membership_for(loaded) is None
