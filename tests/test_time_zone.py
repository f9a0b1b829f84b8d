"""Dates and times follow the signed-in user's organisation's time zone, not the server's."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from alliance_app.clinic.models import TherapySession
from alliance_app.feedback.links import remote_link_create
from tests import factories

pytestmark = pytest.mark.django_db

# The server keeps UTC; Kiritimati is UTC+14 and Pago Pago UTC−11, so near midnight UTC their
# calendars are a day ahead of and a day behind the server's.
AHEAD = ("Pacific/Kiritimati", datetime(2026, 3, 1, 11, 30, tzinfo=UTC), date(2026, 3, 2))
BEHIND = ("Pacific/Pago_Pago", datetime(2026, 3, 2, 8, 30, tzinfo=UTC), date(2026, 3, 1))


@pytest.fixture(autouse=True)
def _server_in_utc(settings):
    settings.TIME_ZONE = "UTC"


def in_zone(org, zone):
    org.time_zone = zone
    org.save(update_fields=["time_zone"])
    return org


@pytest.mark.parametrize(("zone", "now", "org_today"), [AHEAD, BEHIND], ids=["ahead", "behind"])
def test_todays_session_is_dated_by_the_organisations_calendar(
    client, org, therapist, adult, zone, now, org_today
):
    in_zone(org, zone)
    with time_machine.travel(now, tick=False):
        client.force_login(therapist)
        response = client.post(reverse("session_start", args=[adult.pk]))
    assert response.status_code == 302
    session = TherapySession.objects.get(episode__client=adult)
    assert session.date == org_today
    assert session.episode.opened == org_today


def test_the_client_page_finds_todays_session_by_the_organisations_date(
    client, org, therapist, adult
):
    zone, now, org_today = AHEAD
    in_zone(org, zone)
    session = TherapySession.objects.create(
        episode=factories.episode(adult), number=1, date=org_today
    )
    with time_machine.travel(now, tick=False):
        client.force_login(therapist)
        response = client.get(reverse("client_detail", args=[adult.pk]))
    assert response.context["today"] == session


def test_a_link_page_shows_its_expiry_in_the_organisations_zone(client, org, therapist, adult):
    in_zone(org, "Pacific/Kiritimati")
    session = factories.therapy_session(factories.episode(adult), number=1)
    with time_machine.travel(datetime(2026, 3, 1, 10, 30, tzinfo=UTC), tick=False):
        link = remote_link_create(
            session=session, scale="outcome", created_by=therapist, hours=1
        ).link
        client.force_login(therapist)
        page = client.get(reverse("link_detail", args=[link.pk])).content.decode()
    # 11:30 UTC on 1 March is 1:30 at night on 2 March in Kiritimati.
    assert ">2 Mar 2026, 01:30</time>" in page


def test_a_request_leaves_the_servers_zone_behind_it(client, org, therapist):
    in_zone(org, "Pacific/Kiritimati")
    client.force_login(therapist)
    client.get(reverse("caseload"))
    assert timezone.get_current_timezone_name() == "UTC"
