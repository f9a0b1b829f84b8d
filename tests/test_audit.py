"""The audit trail records who looked at and did what; nobody can change or remove an entry."""

import csv
import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.test import RequestFactory
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry, AuditImmutable
from alliance_app.audit.services import audit_record
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(org):
    return factories.user(org, role=Role.ADMIN, username="ada")


@pytest.fixture
def entry(org, therapist, adult):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.7", HTTP_USER_AGENT="Tablet/1.0")
    request.user = therapist
    return audit_record(request, action=Action.CLIENT_VIEWED, obj=adult, detail=adult.code)


def test_recording_fills_every_field(entry, org, therapist, adult):
    entry.refresh_from_db()
    assert entry.at is not None
    assert entry.organization == org
    assert entry.actor == therapist
    assert entry.actor_name == therapist.username
    assert entry.action == Action.CLIENT_VIEWED
    assert (entry.object_type, entry.object_id) == ("client", str(adult.pk))
    assert entry.detail == adult.code
    assert entry.ip == "10.0.0.7"
    assert entry.user_agent == "Tablet/1.0"


def test_forwarded_for_is_read_only_behind_trusted_proxies(settings, therapist):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.4"
    )
    request.user = therapist
    assert audit_record(request, action=Action.LOGIN).ip == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert audit_record(request, action=Action.LOGIN).ip == "192.0.2.4"


def test_recording_without_a_request_truncates_long_text(org, therapist):
    entry = audit_record(None, action=Action.EXPORT_DOWNLOADED, actor=therapist, detail="x" * 400)
    assert (entry.organization, entry.ip, entry.user_agent) == (org, None, "")
    assert len(entry.detail) == 300


def _unchanged(entry: AuditEntry) -> bool:
    stored = AuditEntry.objects.get(pk=entry.pk)
    return (stored.action, stored.detail) == (entry.action, entry.detail)


def test_an_entry_cannot_be_saved_again_or_deleted(entry):
    original = entry.detail
    entry.detail = "changed"
    with pytest.raises(AuditImmutable):
        entry.save()
    with pytest.raises(AuditImmutable):
        entry.delete()
    assert isinstance(AuditImmutable(), PermissionError)
    assert AuditEntry.objects.get(pk=entry.pk).detail == original


def test_a_new_instance_with_an_existing_key_does_not_overwrite(entry):
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEntry(pk=entry.pk, action=Action.LOGOUT).save()
    assert _unchanged(entry)


def test_querysets_cannot_update_or_delete(entry):
    with pytest.raises(AuditImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(detail="changed")
    with pytest.raises(AuditImmutable):
        AuditEntry.objects.all().delete()
    assert _unchanged(entry)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditentry SET detail = 'changed'",
        "UPDATE audit_auditentry SET actor_id = NULL, detail = 'changed'",
        "DELETE FROM audit_auditentry",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(entry, sql):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert _unchanged(entry)


def test_the_database_refuses_giving_an_entry_to_someone_else(entry, org):
    other = factories.user(org)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET actor_id = %s", [other.pk])
    assert AuditEntry.objects.get(pk=entry.pk).actor_id == entry.actor_id


def test_deleting_a_user_keeps_their_entries_under_their_name(org):
    leaver = factories.user(org, username="leaver")
    entry = audit_record(None, action=Action.LOGIN, actor=leaver)
    leaver.delete()
    entry.refresh_from_db()
    assert (entry.actor, entry.actor_name, entry.organization) == (None, "leaver", org)


def test_an_organisation_with_entries_cannot_be_deleted(entry, org):
    with pytest.raises(ProtectedError):
        org.delete()


def test_a_failed_login_records_the_name_tried_and_the_address(client, org, therapist):
    client.post(reverse("login"), {"username": therapist.username, "password": "wrong"})
    client.post(reverse("login"), {"username": "nobody-here", "password": "wrong"})
    known, unknown = AuditEntry.objects.filter(action=Action.LOGIN_FAILED).order_by("pk")
    assert (known.actor, known.actor_name, known.organization) == (None, therapist.username, org)
    assert (unknown.actor, unknown.actor_name, unknown.organization) == (None, "nobody-here", None)
    assert known.ip == unknown.ip == "127.0.0.1"


def test_logging_in_and_out_is_recorded(client, org, therapist):
    client.post(reverse("login"), {"username": therapist.username, "password": factories.PASSWORD})
    client.post(reverse("logout"))
    entries = AuditEntry.objects.order_by("pk")
    assert [(e.action, e.actor, e.organization) for e in entries] == [
        (Action.LOGIN, therapist, org),
        (Action.LOGOUT, therapist, org),
    ]


def test_an_org_admin_in_the_admin_sees_only_their_own_organisation(client, entry, adult):
    elsewhere = factories.organization()
    their_admin = factories.user(elsewhere, role=Role.ADMIN)
    their_admin.is_staff = True
    their_admin.save()
    theirs = audit_record(None, action=Action.FLAG_RESOLVED, actor=their_admin, detail="X9")
    client.force_login(their_admin)
    response = client.get(reverse("admin:audit_auditentry_changelist"))
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert theirs in shown and entry not in shown
    assert adult.code not in response.content.decode()


def test_the_admin_offers_no_add_change_or_delete(client, entry, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-12345")
    client.force_login(root)
    assert client.get(reverse("admin:audit_auditentry_changelist"), {"q": "C"}).status_code == 200
    assert client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    delete = reverse("admin:audit_auditentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:audit_auditentry_change", args=[entry.pk])
    assert client.post(change, {"detail": "changed"}).status_code == 403
    assert _unchanged(entry)


@pytest.fixture
def two_organisations(org, admin_user, entry):
    elsewhere = factories.organization()
    stranger = factories.user(elsewhere, username="stranger")
    audit_record(None, action=Action.CLIENT_VIEWED, actor=stranger, detail="SECRET-CODE")
    return elsewhere


def test_the_audit_page_is_for_organisation_admins(client, org, two_organisations):
    for role in (Role.THERAPIST, Role.SUPERVISOR):
        client.force_login(factories.user(org, role=role))
        assert client.get(reverse("audit_log")).status_code == 403
        assert client.get(reverse("audit_export")).status_code == 403
    client.logout()
    response = client.get(reverse("audit_log"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_an_admin_sees_their_own_organisation_newest_first(
    client, admin_user, entry, two_organisations
):
    client.force_login(admin_user)
    response = client.get(reverse("audit_log"))
    assert response.status_code == 200
    entries = list(response.context["page"])
    assert entries[0].action == Action.LOGIN  # the admin's own login, just now
    assert entry in entries
    assert all(e.organization_id == admin_user.membership.organization_id for e in entries)
    assert "SECRET-CODE" not in response.content.decode()


def test_the_audit_page_filters_by_action_and_user(client, admin_user, therapist, entry):
    client.force_login(admin_user)
    by_action = client.get(reverse("audit_log"), {"action": "client_viewed"}).context["page"]
    assert list(by_action) == [entry]
    by_user = client.get(reverse("audit_log"), {"actor": admin_user.username.upper()})
    assert {e.actor_name for e in by_user.context["page"]} == {admin_user.username}


def test_the_audit_page_pages_by_fifty(client, admin_user):
    for _ in range(60):
        audit_record(None, action=Action.CLIENT_VIEWED, actor=admin_user)
    client.force_login(admin_user)
    assert len(client.get(reverse("audit_log")).context["page"]) == 50
    assert len(client.get(reverse("audit_log"), {"page": 2}).context["page"]) == 11


def test_the_csv_export_has_the_entries_and_is_itself_recorded(
    client, admin_user, entry, two_organisations
):
    client.force_login(admin_user)
    response = client.get(reverse("audit_export"), {"action": "client_viewed"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["action"], row["object_id"], row["detail"]) for row in rows] == [
        ("client_viewed", entry.object_id, entry.detail)
    ]
    recorded = AuditEntry.objects.get(action=Action.AUDIT_EXPORTED)
    assert (recorded.actor, recorded.organization) == (
        admin_user,
        admin_user.membership.organization,
    )
    assert "action=client_viewed" in recorded.detail


def test_the_csv_export_defuses_spreadsheet_formulas(client, admin_user):
    request = RequestFactory().get("/", HTTP_USER_AGENT="=HYPERLINK(1)")
    audit_record(request, action=Action.CLIENT_VIEWED, actor=admin_user)
    client.force_login(admin_user)
    response = client.get(reverse("audit_export"), {"action": "client_viewed"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["user_agent"] for row in rows] == ["'=HYPERLINK(1)"]


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_trail_and_the_guard_comes_back(org, therapist):
    audit_record(None, action=Action.LOGIN, actor=therapist)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEntry.objects.exists()
    entry = audit_record(None, action=Action.LOGIN, actor=factories.user(factories.organization()))
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry")
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
