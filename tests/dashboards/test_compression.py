"""The dashboards' HTML goes gzipped to a browser that takes it: a repeat visit on a clinic's
Wi-Fi is the page alone (issue 16: ≤ 60 KB), the static files being cached for a year."""

import gzip

import pytest
from django.urls import reverse

from alliance_app.accounts.models import Role
from tests import factories
from tests.factories import logged_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["team_statistics", "inbox"])
def test_a_dashboard_is_gzipped_for_a_browser_that_takes_it(org, therapist, adult, north, name):
    therapist.first_name = "Quokka"
    therapist.save()
    therapist.membership.team = north
    therapist.membership.save()
    supervisor = factories.user(org, role=Role.SUPERVISOR, username="sup")
    supervisor.membership.supervised_teams.add(north)
    factories.rate(factories.therapy_session(factories.episode(adult)), "session-adult", "7 7 7 7")
    http = logged_in(supervisor)
    plain = http.get(reverse(name))
    packed = http.get(reverse(name), HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    html = gzip.decompress(packed.content).decode()
    assert "Quokka" in html and "Quokka" in plain.content.decode()
    assert len(packed.content) < len(plain.content) / 2
