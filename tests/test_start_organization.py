"""`manage.py start_organization`: a new clinic, its teams and its first admin's invitation."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient

from alliance_app.accounts.models import Invitation, Organization, Role, Team
from alliance_app.audit.models import Action, AuditEntry

pytestmark = pytest.mark.django_db


def start(*args: str) -> str:
    out = StringIO()
    call_command("start_organization", *args, stdout=out)
    return out.getvalue()


def test_the_first_admin_is_invited_and_can_log_in(smtp_server):
    out = start(
        "Fjord Clinic",
        "--admin-email", "Anna@Fjord.example",
        "--time-zone", "Europe/Oslo",
        "--team", "North", "--team", "South", "--team", "North",
        "--language", "nb",
    )  # fmt: skip
    organization = Organization.objects.get(slug="fjord-clinic")
    assert organization.time_zone == "Europe/Oslo"
    assert sorted(
        Team.objects.filter(organization=organization).values_list("name", flat=True)
    ) == [
        "North",
        "South",
    ]
    invitation = Invitation.objects.get(organization=organization)
    assert invitation.user.membership.role == Role.ADMIN
    assert not invitation.user.is_active
    assert "Invitation sent to anna@fjord.example" in out
    [message] = smtp_server.messages
    assert message["To"] == "anna@fjord.example"
    assert AuditEntry.objects.filter(action=Action.STAFF_INVITED, actor=None).count() == 2
    # The link sets the admin's password; they arrive as the organisation's admin.
    browser = HttpClient()
    url = smtp_server.first_url()
    response = browser.post(
        url, {"new_password1": "a-long-fjord-pass-41", "new_password2": "a-long-fjord-pass-41"}
    )
    assert response.status_code == 302
    invitation.user.refresh_from_db()
    assert invitation.user.is_active
    assert browser.get("/staff/").status_code == 200


def test_bad_input_stores_nothing(smtp_server):
    start("Fjord Clinic", "--admin-email", "anna@fjord.example")
    with pytest.raises(CommandError, match="exists already"):
        start("Fjord Clinic", "--admin-email", "bo@fjord.example")
    with pytest.raises(CommandError, match="is not a time zone"):
        start("Other", "--admin-email", "bo@fjord.example", "--time-zone", "Mars/Olympus")
    with pytest.raises(CommandError, match="already has an account"):
        start("Other", "--admin-email", "ANNA@fjord.example")
    with pytest.raises(CommandError, match="letters or digits"):
        start("!!!", "--admin-email", "bo@fjord.example")
    assert list(Organization.objects.values_list("slug", flat=True)) == ["fjord-clinic"]
    assert Invitation.objects.count() == 1
    assert len(smtp_server.messages) == 1


def test_an_invitation_that_could_not_be_sent_is_kept_and_sent_again(settings, smtp_server):
    port = settings.EMAIL_PORT  # the local SMTP server the fixture started
    settings.EMAIL_PORT = 9  # nothing listens there: the connection is refused
    with pytest.raises(CommandError, match="could not be e-mailed"):
        start("Fjord Clinic", "--admin-email", "anna@fjord.example")
    assert Invitation.objects.filter(organization__slug="fjord-clinic").exists()
    settings.EMAIL_PORT = port
    out = start("Fjord Clinic", "--admin-email", "anna@fjord.example", "--resend")
    assert "Invitation sent again" in out
    assert [m["To"] for m in smtp_server.messages] == ["anna@fjord.example"]
    with pytest.raises(CommandError, match="no pending invitation"):
        start("Fjord Clinic", "--admin-email", "bo@fjord.example", "--resend")
