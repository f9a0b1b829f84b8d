"""Rating links e-mailed to the client, now or at a chosen time, through a real local SMTP server;
the client's address kept apart, for their own therapists only, and in no export."""

import io
import smtplib
import threading
import zipfile
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import override

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.contacts import contact_save, erase_all_contacts
from alliance_app.clinic.models import Client, ClientContact
from alliance_app.dashboards.views import EXPORTS
from alliance_app.feedback import link_emails
from alliance_app.feedback.link_emails import (
    MAX_ATTEMPTS,
    due,
    link_email_deliver,
    link_email_schedule,
    send_due,
)
from alliance_app.feedback.models import LinkEmailStatus, RatingLinkEmail, RemoteLink
from tests import factories
from tests.factories import logged_in, rate
from tests.smtp import free_port
from tests.test_unlock_concurrency import database_for_threads  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

ADDRESS = "zq-contact-4471@example.org"
ZONE = "Europe/Oslo"


@pytest.fixture
def org():
    org = factories.organization("Quillfeather Clinic")
    org.client_email = True
    org.time_zone = ZONE
    org.save()
    return org


@pytest.fixture
def client_with_address(adult):
    contact_save(client=adult, email=ADDRESS)
    return adult


@pytest.fixture
def http(therapist) -> HttpClient:
    http = HttpClient()
    http.force_login(therapist)
    return http


def later_local(hours: int = 2) -> str:
    """A time `hours` from now as the page's datetime-local input gives it, in the org's zone."""
    return timezone.localtime(timezone.now() + timedelta(hours=hours), ZoneInfo(ZONE)).strftime(
        "%Y-%m-%dT%H:%M"
    )


def schedule(session, therapist, **changes) -> RatingLinkEmail:
    return link_email_schedule(
        session=session,
        scale=changes.get("scale", "outcome"),
        created_by=therapist,
        rater="client",
        send_at=changes.get("send_at", timezone.now() + timedelta(hours=1)),
    )


def make_due(*emails: RatingLinkEmail) -> None:
    RatingLinkEmail.objects.filter(pk__in=[e.pk for e in emails]).update(
        send_at=timezone.now() - timedelta(minutes=1)
    )


# The address


def test_the_treating_therapist_stores_the_address_and_the_audit_names_only_the_client(http, adult):
    response = http.post(reverse("client_contact", args=[adult.pk]), {"email": f" {ADDRESS} "})
    assert response.status_code == 302
    assert ClientContact.objects.get(client=adult).email == ADDRESS
    entry = AuditEntry.objects.get(action=Action.CLIENT_CONTACT_CHANGED)
    assert entry.detail == adult.code
    page = http.get(reverse("client_contact", args=[adult.pk]))
    assert ADDRESS in page.content.decode()
    assert AuditEntry.objects.filter(action=Action.CLIENT_CONTACT_VIEWED).count() == 1
    every_entry = " ".join(
        " ".join(str(value) for value in row)
        for row in AuditEntry.objects.values_list("detail", "object_type", "object_id")
    )
    assert ADDRESS not in every_entry


def test_a_bad_address_is_refused_in_words_and_nothing_is_stored(http, adult):
    response = http.post(reverse("client_contact", args=[adult.pk]), {"email": "someone at home"})
    assert response.status_code == 400
    assert "not an e-mail address" in response.content.decode()
    assert not ClientContact.objects.exists()


def test_an_empty_address_erases_the_stored_one(http, client_with_address):
    http.post(reverse("client_contact", args=[client_with_address.pk]), {"email": ""})
    assert not ClientContact.objects.exists()


def test_no_address_is_kept_while_the_organisation_keeps_none(http, org, adult):
    org.client_email = False
    org.save()
    response = http.post(reverse("client_contact", args=[adult.pk]), {"email": ADDRESS})
    assert response.status_code == 403
    assert not ClientContact.objects.exists()
    assert "does not keep clients' e-mail addresses" in http.get(
        reverse("client_contact", args=[adult.pk])
    ).content.decode("utf-8").replace("&#x27;", "'")


def test_only_the_clients_own_therapists_see_the_address(org, therapist, client_with_address):
    team = factories.team(org)
    therapist.membership.team = team
    therapist.membership.save()
    supervisor = factories.user(org, role=Role.SUPERVISOR)
    supervisor.membership.supervised_teams.add(team)
    other_org = factories.organization()
    expected = {
        supervisor: 403,
        factories.user(org, role=Role.ADMIN): 403,
        factories.user(org): 404,
        factories.user(other_org, role=Role.ADMIN): 404,
        therapist: 200,
    }
    url = reverse("client_contact", args=[client_with_address.pk])
    for user, status in expected.items():
        response = logged_in(user).get(url)
        assert response.status_code == status, user
        assert (ADDRESS in response.content.decode()) == (status == 200)
        if status != 200:
            assert logged_in(user).post(url, {"email": "x@example.org"}).status_code == status
    assert ClientContact.objects.get().email == ADDRESS


# Scheduling


def test_a_link_scheduled_for_later_waits_in_the_organisations_time(http, client_with_address):
    session = factories.therapy_session(factories.episode(client_with_address))
    wanted = later_local(3)
    response = http.post(
        reverse("link_emails", args=[session.pk]),
        {"scale": "outcome", "rater": "client", "when": "later", "send_at": wanted},
    )
    assert response.status_code == 302
    email = RatingLinkEmail.objects.get()
    assert email.status == LinkEmailStatus.SCHEDULED
    assert timezone.localtime(email.send_at, ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M") == wanted
    assert (email.instrument, email.rater, email.attempts) == ("outcome-adult", "client", 0)
    # Nothing is sent and no link exists until the time comes.
    assert not RemoteLink.objects.exists()
    assert AuditEntry.objects.filter(action=Action.RATING_LINK_SCHEDULED).count() == 1
    page = http.get(reverse("link_emails", args=[session.pk])).content.decode()
    assert "Scheduled" in page
    assert date_format(timezone.localtime(email.send_at, ZoneInfo(ZONE)), "DATETIME_FORMAT") in page


def refused(http, session, **data) -> str:
    form = {"scale": "outcome", "rater": "client", "when": "later", "send_at": later_local()}
    response = http.post(reverse("link_emails", args=[session.pk]), {**form, **data})
    assert response.status_code == 400
    return response.content.decode().replace("&#x27;", "'")


def test_refusals_say_why_and_store_nothing(http, org, therapist, client_with_address):
    session = factories.therapy_session(factories.episode(client_with_address))
    past = later_local(-1)
    assert "This time has passed" in refused(http, session, send_at=past)
    assert "Choose the day and time" in refused(http, session, send_at="")
    assert "at most 14 days ahead" in refused(http, session, send_at=later_local(24 * 15))
    rate(session, "session-adult", "9 9 9 9")
    assert "already been given" in refused(http, session, scale="session")
    contact_save(client=client_with_address, email="")
    assert "No e-mail address is kept" in refused(http, session)
    contact_save(client=client_with_address, email=ADDRESS)
    org.client_email = False
    org.save()
    assert "does not keep clients' e-mail addresses" in refused(http, session)
    assert not RatingLinkEmail.objects.exists()
    assert not AuditEntry.objects.filter(action=Action.RATING_LINK_SCHEDULED).exists()


def test_the_same_email_waiting_twice_is_refused(http, therapist, client_with_address):
    session = factories.therapy_session(factories.episode(client_with_address))
    schedule(session, therapist)
    assert "already waiting" in refused(http, session)
    assert RatingLinkEmail.objects.count() == 1


# Sending


def test_send_now_delivers_the_link_in_the_clients_language_and_it_opens_the_form(
    http, therapist, client_with_address, smtp_server
):
    client_with_address.language = "nb"
    client_with_address.save()
    session = factories.therapy_session(factories.episode(client_with_address))
    response = http.post(
        reverse("link_emails", args=[session.pk]),
        {"scale": "outcome", "rater": "client", "when": "now"},
    )
    assert response.status_code == 302
    [message] = smtp_server.messages
    assert message["To"] == ADDRESS
    email = RatingLinkEmail.objects.get()
    assert (email.status, email.attempts) == (LinkEmailStatus.SENT, 1)
    link = email.remote_link
    assert link.created_by == therapist
    body = message.get_body(preferencelist=("plain",)).get_content()
    with override("nb"):
        expires = date_format(
            timezone.localtime(link.expires_at, ZoneInfo(ZONE)), "DATETIME_FORMAT"
        )
    assert expires in body
    # Nothing clinical, and nothing naming the client or the clinic.
    text = body + message["Subject"]
    for word in (client_with_address.code, "Quillfeather", "therapy", "session", "outcome"):
        assert word.lower() not in text.lower()
    url = smtp_server.first_url()
    assert url.startswith("http://testserver/r/")
    form = HttpClient().get(url.removeprefix("http://testserver"))
    assert form.status_code == 200
    assert 'class="vas-track' in form.content.decode()
    sent = AuditEntry.objects.get(action=Action.RATING_LINK_SENT)
    assert (sent.detail, sent.object_id) == (client_with_address.code, str(email.pk))


def test_the_timer_sends_due_emails_once_and_leaves_later_ones(
    therapist, client_with_address, smtp_server, settings
):
    settings.SITE_URL = "https://alliance.example.org"
    session = factories.therapy_session(factories.episode(client_with_address))
    now, later = schedule(session, therapist), schedule(session, therapist, scale="session")
    make_due(now)
    out = io.StringIO()
    call_command("send_rating_links", stdout=out)
    assert "1 sent, 0 failed" in out.getvalue()
    call_command("send_rating_links", stdout=io.StringIO())
    assert len(smtp_server.messages) == 1
    assert smtp_server.first_url().startswith("https://alliance.example.org/r/")
    now.refresh_from_db(), later.refresh_from_db()
    assert (now.status, later.status) == (LinkEmailStatus.SENT, LinkEmailStatus.SCHEDULED)
    assert RemoteLink.objects.count() == 1


def test_a_run_that_overlaps_another_sends_nothing_the_other_claimed(
    therapist, client_with_address, smtp_server
):
    """Sequential overlap, as SQLite runs it: run A reads the due e-mails, run B sends them all,
    then A comes to each and finds it taken."""
    sessions = [factories.therapy_session(factories.episode(client_with_address))]
    sessions += [factories.therapy_session(sessions[0].episode, number=n) for n in (2, 3)]
    emails = [schedule(session, therapist) for session in sessions]
    make_due(*emails)
    seen_by_a = list(due(timezone.now()).values_list("pk", flat=True))
    assert send_due().sent == 3
    assert [link_email_deliver(pk) for pk in seen_by_a] == [None, None, None]
    assert len(smtp_server.messages) == 3
    assert RemoteLink.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_timer_runs_at_once_send_each_email_exactly_once(
    therapist,
    client_with_address,
    smtp_server,
    database_for_threads,  # noqa: F811
):
    """Two runs of the command at the same moment, each in its own thread with its own database
    connection (PostgreSQL as it is; SQLite on a file copy, see `database_for_threads`)."""
    episode = factories.episode(client_with_address)
    sessions = [factories.therapy_session(episode, number=n) for n in range(1, 9)]
    emails = [schedule(session, therapist) for session in sessions]
    emails += [schedule(session, therapist, scale="session") for session in sessions]
    make_due(*emails)
    start = threading.Barrier(2)
    outputs, errors = [io.StringIO(), io.StringIO()], []

    def run(out):
        database_for_threads()
        try:
            start.wait()
            call_command("send_rating_links", stdout=out)
        except Exception as error:  # reported below: a thread's exception is otherwise lost
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(out,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(smtp_server.messages) == 16
    assert len({message["Message-ID"] for message in smtp_server.messages}) == 16
    assert len({smtp_server.first_url(i) for i in range(16)}) == 16
    rows = RatingLinkEmail.objects.all()
    assert {row.status for row in rows} == {LinkEmailStatus.SENT}
    assert {row.attempts for row in rows} == {1}
    assert RemoteLink.objects.count() == 16
    sent = [int(out.getvalue().split(" sent")[0].split()[-1]) for out in outputs]
    assert sum(sent) == 16


@pytest.fixture
def no_server(settings):
    """Django's SMTP backend pointed at a port where nothing listens."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False


def test_a_failure_is_recorded_and_tried_again_up_to_three_times(
    therapist, client_with_address, no_server
):
    session = factories.therapy_session(factories.episode(client_with_address))
    email = schedule(session, therapist)
    make_due(email)
    for attempt in range(1, MAX_ATTEMPTS + 2):
        report = send_due()
        email.refresh_from_db()
        assert email.status == LinkEmailStatus.FAILED
        assert email.attempts == min(attempt, MAX_ATTEMPTS)
        assert report.failed == (1 if attempt <= MAX_ATTEMPTS else 0)
    assert "ConnectionRefusedError" in email.error
    # The failed sends leave no link behind.
    assert not RemoteLink.objects.exists()


def test_a_failed_email_goes_out_on_a_later_run(
    therapist, client_with_address, smtp_server, settings
):
    session = factories.therapy_session(factories.episode(client_with_address))
    email = schedule(session, therapist)
    make_due(email)
    # The server is out of reach for the first run only.
    good_port, settings.EMAIL_PORT = settings.EMAIL_PORT, free_port()
    assert send_due().failed == 1
    settings.EMAIL_PORT = good_port
    assert send_due().sent == 1
    email.refresh_from_db()
    assert (email.status, email.attempts, email.error) == (LinkEmailStatus.SENT, 2, "")
    assert len(smtp_server.messages) == 1


def test_the_error_kept_never_quotes_the_address(therapist, client_with_address, monkeypatch):
    def refuse(address, *args, **kwargs):
        raise smtplib.SMTPRecipientsRefused({address: (550, f"5.1.1 <{address}> unknown".encode())})

    monkeypatch.setattr(link_emails, "send_to_address", refuse)
    email = schedule(factories.therapy_session(factories.episode(client_with_address)), therapist)
    make_due(email)
    send_due()
    email.refresh_from_db()
    assert email.status == LinkEmailStatus.FAILED
    assert "SMTPRecipientsRefused" in email.error
    assert ADDRESS not in email.error


def test_an_email_left_sending_by_a_dead_run_is_reported_not_resent(
    http, therapist, client_with_address, smtp_server
):
    session = factories.therapy_session(factories.episode(client_with_address))
    email = schedule(session, therapist)
    RatingLinkEmail.objects.filter(pk=email.pk).update(
        status=LinkEmailStatus.SENDING,
        claimed_at=timezone.now() - timedelta(minutes=20),
        send_at=timezone.now() - timedelta(minutes=21),
        attempts=1,
    )
    out, err = io.StringIO(), io.StringIO()
    call_command("send_rating_links", stdout=out, stderr=err)
    assert smtp_server.messages == []
    assert f"rating link e-mail {email.pk} (client {client_with_address.code}" in err.getvalue()
    assert "not sent again" in err.getvalue()
    page = http.get(reverse("link_emails", args=[session.pk])).content.decode()
    assert "Sending was interrupted" in page
    # A new one may be sent in its place.
    assert schedule(session, therapist).status == LinkEmailStatus.SCHEDULED


def test_what_changed_before_the_time_cancels_the_email_with_the_reason(
    org, therapist, client_with_address, smtp_server
):
    session = factories.therapy_session(factories.episode(client_with_address))
    rated, unkept = schedule(session, therapist, scale="session"), schedule(session, therapist)
    rate(session, "session-adult", "9 9 9 9")
    make_due(rated, unkept)
    org.client_email = False
    org.save()
    assert send_due().cancelled == 2
    rated.refresh_from_db(), unkept.refresh_from_db()
    assert {rated.status, unkept.status} == {LinkEmailStatus.CANCELLED}
    assert "no longer keeps" in rated.error
    assert smtp_server.messages == []
    assert not RemoteLink.objects.exists()


def test_a_rating_given_meanwhile_cancels_the_email(therapist, client_with_address, smtp_server):
    session = factories.therapy_session(factories.episode(client_with_address))
    email = schedule(session, therapist, scale="session")
    rate(session, "session-adult", "9 9 9 9")
    make_due(email)
    send_due()
    email.refresh_from_db()
    assert (email.status, email.error) == (
        LinkEmailStatus.CANCELLED,
        "Not sent: the rating was given meanwhile.",
    )
    assert smtp_server.messages == []


def test_a_scheduled_email_is_cancelled_from_the_page_and_never_sent(
    http, therapist, client_with_address, smtp_server
):
    session = factories.therapy_session(factories.episode(client_with_address))
    email = schedule(session, therapist)
    assert http.post(reverse("link_email_cancel", args=[email.pk])).status_code == 302
    make_due(email)
    send_due()
    email.refresh_from_db()
    assert email.status == LinkEmailStatus.CANCELLED
    assert smtp_server.messages == []
    assert AuditEntry.objects.filter(action=Action.RATING_LINK_CANCELLED).count() == 1
    again = http.post(reverse("link_email_cancel", args=[email.pk]), follow=True)
    assert "no longer waiting" in again.content.decode()
    assert AuditEntry.objects.filter(action=Action.RATING_LINK_CANCELLED).count() == 1


def test_the_session_page_shows_each_emails_fate(http, therapist, client_with_address):
    session = factories.therapy_session(factories.episode(client_with_address))
    sent, failed = schedule(session, therapist), schedule(session, therapist, scale="session")
    RatingLinkEmail.objects.filter(pk=sent.pk).update(
        status=LinkEmailStatus.SENT, sent_at=timezone.now(), attempts=1
    )
    RatingLinkEmail.objects.filter(pk=failed.pk).update(
        status=LinkEmailStatus.FAILED, attempts=1, error="The mail server did not take it (X)."
    )
    page = http.get(reverse("link_emails", args=[session.pk])).content.decode()
    statuses = page.count('data-testid="email"')
    assert statuses == 2
    assert "The mail server did not take it (X)." in page
    assert "After 1 attempt; it will be tried again." in page
    assert 'data-status="sent"' in page


# Who may


def test_supervisors_admins_and_other_organisations_cannot_send_or_cancel(
    org, therapist, client_with_address
):
    session = factories.therapy_session(factories.episode(client_with_address))
    email = schedule(session, therapist)
    team = factories.team(org)
    therapist.membership.team = team
    therapist.membership.save()
    supervisor = factories.user(org, role=Role.SUPERVISOR)
    supervisor.membership.supervised_teams.add(team)
    form = {"scale": "session", "rater": "client", "when": "now"}
    for user, status in (
        (supervisor, 403),
        (factories.user(org, role=Role.ADMIN), 403),
        (factories.user(factories.organization(), role=Role.ADMIN), 404),
    ):
        http = logged_in(user)
        assert http.get(reverse("link_emails", args=[session.pk])).status_code == status
        assert http.post(reverse("link_emails", args=[session.pk]), form).status_code == status
        assert http.post(reverse("link_email_cancel", args=[email.pk])).status_code == status
    assert RatingLinkEmail.objects.get().status == LinkEmailStatus.SCHEDULED


# Never exported, erased with the client


def body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if content[:2] == b"PK":  # an Excel workbook or a zip: read every file in it
        archive = zipfile.ZipFile(io.BytesIO(content))
        return " ".join(
            archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
        )
    return content.decode("utf-8", "replace")


def test_the_address_is_in_no_export_research_data_fhir_audit_or_admin_page(
    org, therapist, client_with_address, smtp_server, django_user_model
):
    session = factories.therapy_session(factories.episode(client_with_address))
    rate(session, "session-adult", "9 9 9 9")
    email = schedule(session, therapist)
    make_due(email)
    send_due()
    assert len(smtp_server.messages) == 1
    email.refresh_from_db()
    admin = factories.user(org, role=Role.ADMIN)
    http = logged_in(admin)
    urls = [reverse("export", args=[name, fmt]) for name in EXPORTS for fmt in ("csv", "xlsx")]
    urls += [
        reverse("client_export", args=[client_with_address.pk]),
        reverse("client_fhir", args=[client_with_address.pk]),
        reverse("fhir_export"),
        reverse("research_export_download"),
        reverse("audit_log"),
        reverse("audit_export"),
        reverse("client_detail", args=[client_with_address.pk]),
    ]
    for url in urls:
        response = http.get(url)
        assert response.status_code == 200, url
        assert ADDRESS not in body(response), url
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-12345")
    admin_pages = [
        reverse("admin:clinic_client_change", args=[client_with_address.pk]),
        reverse("admin:feedback_remotelink_change", args=[email.remote_link_id]),
    ]
    for url in admin_pages:
        response = logged_in(root).get(url)
        assert response.status_code == 200, url
        assert ADDRESS not in body(response), url
    # The admin's search does not look into addresses either.
    search = logged_in(root).get(reverse("admin:clinic_client_changelist"), {"q": ADDRESS})
    assert "0 results" in body(search)


def test_deleting_the_client_erases_the_address_and_the_emails(org, therapist, client_with_address):
    schedule(factories.therapy_session(factories.episode(client_with_address)), therapist)
    admin = factories.user(org, role=Role.ADMIN)
    url = reverse("client_delete", args=[client_with_address.pk])
    assert logged_in(admin).post(url, {"code": client_with_address.code}).status_code == 302
    assert not Client.objects.exists()
    assert not ClientContact.objects.exists()
    assert not RatingLinkEmail.objects.exists()


def test_erase_all_contacts_erases_one_organisations_addresses(org, therapist, client_with_address):
    second = factories.client(org, therapist)
    contact_save(client=second, email="second@example.org")
    elsewhere = factories.organization()
    elsewhere.client_email = True
    elsewhere.save()
    theirs = factories.client(elsewhere, factories.user(elsewhere))
    contact_save(client=theirs, email="theirs@example.org")
    assert erase_all_contacts(org) == 2
    assert list(ClientContact.objects.values_list("email", flat=True)) == ["theirs@example.org"]


def test_the_client_page_leads_to_each_sessions_emails_only_where_addresses_are_kept(
    http, org, adult
):
    episode = factories.episode(adult)
    sessions = [factories.therapy_session(episode, number=n) for n in (1, 2)]
    page = http.get(reverse("client_detail", args=[adult.pk])).content.decode()
    for session in sessions:
        assert reverse("link_emails", args=[session.pk]) in page
    assert reverse("client_contact", args=[adult.pk]) in page
    org.client_email = False
    org.save()
    page = http.get(reverse("client_detail", args=[adult.pk])).content.decode()
    assert "/link-emails/" not in page
    assert reverse("client_contact", args=[adult.pk]) not in page
