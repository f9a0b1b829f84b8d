"""Organisation admins invite colleagues by e-mail; the link sets a password once, before it
expires, and only for the organisation's own teams. Every step is audited."""

import smtplib
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from alliance_app.accounts.models import Invitation, Role, User
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic import invitations
from tests import factories
from tests.factories import logged_in
from tests.smtp import first_url

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "quiet-harbour-lantern-42"


def invite_form(**changes) -> dict:
    return {
        "email": "Nina.New@Clinic.example",
        "first_name": "Nina",
        "last_name": "New",
        "role": Role.THERAPIST,
        "language": "",
    } | changes


def invite(org, admin, email="nina@clinic.example", **changes) -> Invitation:
    arguments = {
        "organization": org,
        "email": email,
        "first_name": "Nina",
        "last_name": "New",
        "role": Role.THERAPIST,
        "team": None,
        "invited_by": admin,
        "request": None,
    } | changes
    return invitations.invite(**arguments)


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def test_an_admin_invites_a_therapist_who_sets_a_password_and_logs_in(
    smtp_server, org, admin, north
):
    org.name = "Nord & Sør"
    org.save()
    response = logged_in(admin).post(
        reverse("staff_invite"), invite_form(team=north.pk, language="es")
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("staff_list")

    user = User.objects.get(username="nina.new@clinic.example")
    assert not user.is_active and not user.has_usable_password()
    assert (user.membership.organization, user.membership.role) == (org, Role.THERAPIST)
    assert user.membership.team == north
    assert user.language == "es"

    (message,) = smtp_server.messages
    assert message["To"] == "nina.new@clinic.example"
    # In the language chosen for her, and the organisation's name as written.
    assert message["Subject"] == "Tu invitación a Alliance en Nord & Sør"
    url = first_url(message)
    assert url.startswith("http://testserver/invitation/")
    invitation = user.invitation
    assert invitation.token_hash == invitations.token_hash(token_of(url))
    assert token_of(url) not in invitation.token_hash

    visitor = HttpClient()
    page = visitor.get(url)
    assert page.status_code == 200
    assert "Nord &amp; Sør" in page.text and "nina.new@clinic.example" in page.text
    assert page["Content-Language"] == "es"  # the language chosen for her
    done = visitor.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("home")
    user.refresh_from_db()
    assert user.is_active and user.check_password(NEW_PASSWORD)
    assert visitor.get("/caseload/").status_code == 200

    fresh = HttpClient()
    login = fresh.post(
        reverse("login"), {"username": "nina.new@clinic.example", "password": NEW_PASSWORD}
    )
    assert login.status_code == 302
    actions = set(AuditEntry.objects.filter(organization=org).values_list("action", flat=True))
    assert {Action.STAFF_INVITED, Action.INVITATION_ACCEPTED} <= actions


def test_the_invitation_is_written_in_the_language_chosen_or_the_inviters(smtp_server, org, admin):
    invite(org, admin, email="es@clinic.example", language="es")
    admin.language = "nb"
    admin.save()
    invite(org, admin, email="nb@clinic.example")
    spanish, norwegian = smtp_server.messages
    # The role is named in words the translations have already.
    assert "terapeuta" in spanish.get_content()
    assert "terapeut." in norwegian.get_content()
    assert "therapist" not in spanish.get_content() + norwegian.get_content()


def test_a_link_works_once(org, admin, mailoutbox):
    invite(org, admin)
    token = token_of(first_url_in(mailoutbox[0].body))
    invitations.accept(token, NEW_PASSWORD, NEW_PASSWORD)
    with pytest.raises(invitations.InvitationRefused):
        invitations.accept(token, NEW_PASSWORD, NEW_PASSWORD)


def first_url_in(body: str) -> str:
    return next(word for word in body.split() if word.startswith("http"))


@pytest.mark.parametrize("state", ["expired", "used", "withdrawn", "unknown"])
def test_every_dead_link_gets_the_same_page(org, admin, mailoutbox, state):
    invitation = invite(org, admin)
    token = token_of(first_url_in(mailoutbox[0].body))
    if state == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    elif state == "used":
        invitations.accept(token, NEW_PASSWORD, NEW_PASSWORD)
    elif state == "withdrawn":
        invitations.withdraw(invitation, by=admin)
    else:
        # Another first character, whatever the token's own is.
        token = ("y" if token.startswith("x") else "x") + token[1:]
    visitor = HttpClient()
    page = visitor.get(reverse("invitation_accept", args=[token]))
    assert page.status_code == 404
    assert "This link does not work" in page.text
    posted = visitor.post(
        reverse("invitation_accept", args=[token]),
        {"new_password1": "another-long-password-9", "new_password2": "another-long-password-9"},
    )
    assert posted.status_code == 404
    user = User.objects.get(pk=invitation.user_id)
    assert user.check_password(NEW_PASSWORD) if state == "used" else not user.is_active


def test_weak_or_differing_passwords_are_refused_in_words(org, admin, mailoutbox):
    invite(org, admin)
    url = reverse("invitation_accept", args=[token_of(first_url_in(mailoutbox[0].body))])
    visitor = HttpClient()
    weak = visitor.post(url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert weak.status_code == 400 and "too common" in weak.text
    differ = visitor.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"})
    assert differ.status_code == 400 and "didn’t match" in differ.text
    assert not User.objects.get(username="nina@clinic.example").is_active


def test_an_organisation_that_requires_two_factors_sends_the_newcomer_to_set_it_up(
    org, admin, mailoutbox
):
    org.require_two_factor = True
    org.save()
    invite(org, admin)
    visitor = HttpClient()
    url = reverse("invitation_accept", args=[token_of(first_url_in(mailoutbox[0].body))])
    done = visitor.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == reverse("two_factor_setup")
    assert visitor.get("/caseload/")["Location"] == reverse("two_factor_setup")


def test_an_address_in_use_anywhere_is_refused_and_nothing_is_stored(org, admin, mailoutbox):
    elsewhere = factories.user(factories.organization("Other"), username="taken")
    elsewhere.email = "Taken@Example.org"
    elsewhere.save()
    response = logged_in(admin).post(
        reverse("staff_invite"), invite_form(email="taken@example.org")
    )
    assert response.status_code == 400
    assert "taken@example.org already has an account." in response.text
    with pytest.raises(ValidationError, match="already has an account"):
        invite(org, admin, email="TAKEN@example.org")
    assert not Invitation.objects.exists() and mailoutbox == []


def test_only_supervisors_supervise_teams(org, admin, north, mailoutbox):
    http = logged_in(admin)
    refused = http.post(
        reverse("staff_invite"), invite_form(role=Role.THERAPIST, supervised_teams=[north.pk])
    )
    assert refused.status_code == 400 and "Only supervisors supervise teams" in refused.text
    http.post(
        reverse("staff_invite"), invite_form(role=Role.SUPERVISOR, supervised_teams=[north.pk])
    )
    supervisor = User.objects.get(username="nina.new@clinic.example")
    assert list(supervisor.membership.supervised_teams.all()) == [north]


def test_an_admin_cannot_give_another_organisations_teams(org, north, mailoutbox):
    other_org = factories.organization("B")
    factories.team(other_org, "B-South")
    other_admin = factories.user(other_org, role=Role.ADMIN)
    http = logged_in(other_admin)
    page = http.get(reverse("staff_invite"))
    assert "B-South" in page.text and "North" not in page.text
    for field in ({"team": north.pk}, {"role": Role.SUPERVISOR, "supervised_teams": [north.pk]}):
        refused = http.post(reverse("staff_invite"), invite_form(**field))
        assert refused.status_code == 400
        assert "this organisation" in refused.text
    with pytest.raises(ValidationError, match="your own organisation"):
        invite(other_admin.membership.organization, other_admin, team=north)
    assert not User.objects.filter(username="nina.new@clinic.example").exists()


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.SUPERVISOR])
def test_only_admins_invite(org, role):
    assert logged_in(factories.user(org, role=role)).get(reverse("staff_invite")).status_code == 403


def test_sending_again_ends_the_old_link_and_undoes_a_withdrawal(org, admin, mailoutbox):
    invitation = invite(org, admin)
    old = token_of(first_url_in(mailoutbox[0].body))
    http = logged_in(admin)
    http.post(reverse("invitation_withdraw", args=[invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.withdrawn_at is not None
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    http.post(reverse("invitation_resend", args=[invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.withdrawn_at is None and invitation.is_open()
    new = token_of(first_url_in(mailoutbox[1].body))
    with pytest.raises(invitations.InvitationRefused):
        invitations.open_invitation(old)
    assert invitations.open_invitation(new) == invitation
    actions = list(
        AuditEntry.objects.filter(object_id=str(invitation.user_id))
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == [Action.STAFF_INVITED, Action.INVITATION_WITHDRAWN, Action.STAFF_INVITED]


def test_another_organisations_admin_cannot_touch_an_invitation(org, admin, mailoutbox):
    invitation = invite(org, admin)
    other_admin = factories.user(factories.organization("B"), role=Role.ADMIN)
    http = logged_in(other_admin)
    assert http.post(reverse("invitation_withdraw", args=[invitation.pk])).status_code == 404
    assert http.post(reverse("invitation_resend", args=[invitation.pk])).status_code == 404
    invitation.refresh_from_db()
    assert invitation.withdrawn_at is None and len(mailoutbox) == 1


def test_a_mail_server_failure_keeps_the_invitation_and_says_so(org, admin, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    response = logged_in(admin).post(reverse("staff_invite"), invite_form(), follow=True)
    assert "did not take the e-mail" in response.text
    assert Invitation.objects.get().email == "nina.new@clinic.example"
    with pytest.raises((smtplib.SMTPException, OSError)):
        invite(org, admin, email="second@clinic.example")


def test_an_invited_colleague_cannot_log_in_or_reset_a_password_before_accepting(
    org, admin, mailoutbox
):
    invite(org, admin)
    mailoutbox.clear()
    HttpClient().post(reverse("password_reset"), {"email": "nina@clinic.example"})
    assert mailoutbox == []
    login = HttpClient().post(
        reverse("login"), {"username": "nina@clinic.example", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200
