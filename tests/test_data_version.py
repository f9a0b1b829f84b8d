"""The data version (accounts.data_version): every write path the dashboards read raises it once
its transaction commits; reading a page or writing an audit entry does not.

These tests commit for real (transactional), as a server does: the stored counter is what every
other process sees.
"""

import pytest
from django.db import connection, transaction
from django.urls import reverse

from alliance_app.accounts import data_version
from alliance_app.accounts.models import DataVersion, Organization
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.models import Closure, TherapySession
from alliance_app.clinic.staff import team_merge
from alliance_app.feedback import ruptures
from alliance_app.feedback.handover import client_hand_over
from alliance_app.feedback.models import Flag, Rupture
from alliance_app.feedback.services import episode_close, flag_acknowledge, flag_resolve
from tests import factories
from tests.factories import rate
from tests.test_settings_page import form_data

pytestmark = pytest.mark.django_db(transaction=True)

HIGH, DIP = "10 10 10 9.5", "10 7 10 9.5"  # 39.5, and 36.5 where the goals item fell


def stored() -> int:
    # A transactional test's flush removes the migration's row; the next write makes it again.
    return DataVersion.objects.filter(pk=1).values_list("counter", flat=True).first() or 0


def changes(write) -> int:
    """How many times `write` raised the stored counter; it must raise the generation too."""
    before, generation = stored(), data_version.generation()
    write()
    assert data_version.generation() > generation
    return stored() - before


@pytest.fixture
def rated(adult):
    """A client whose alliance dipped (flags raised, a rupture found) and came back."""
    episode = factories.episode(adult)
    for number, scores in enumerate((HIGH, HIGH, DIP, HIGH), 1):
        rate(factories.therapy_session(episode, number=number), "session-adult", scores)
    return episode


def test_a_rating_submitted_through_client_mode_raises_the_version(client, therapist, adult):
    client.force_login(therapist)
    client.post(reverse("session_start", args=[adult.pk]), {"format": "individual"})
    session = TherapySession.objects.get(episode__client=adult)
    client.post(reverse("hand_over", args=[session.pk]), {"scale": "outcome"})
    page = client.get(reverse("client_rate")).content.decode()
    action = page.split('id="rating-form"', 1)[1].split('action="', 1)[1].split('"', 1)[0]
    key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    scores = {"personal": "4.2", "relationships": "6.0", "social": "5.5", "overall": "5.1"}

    def submit():
        response = client.post(action, {**scores, "idempotency_key": key})
        assert response.status_code in (200, 302)

    assert changes(submit) >= 1
    assert session.ratings.count() == 1


def test_acknowledging_and_resolving_a_flag_raise_it(rated, admin):
    flag = Flag.objects.filter(rating__session__episode=rated).order_by("pk").first()
    assert changes(lambda: flag_acknowledge(flag=flag, by=admin)) == 1
    assert changes(lambda: flag_resolve(flag=flag, by=admin, note="Talked it through")) == 1


def test_closing_an_episode_raises_it_once_for_its_whole_transaction(rated, admin):
    assert changes(lambda: episode_close(episode=rated, closure=Closure.PLANNED, by=admin)) == 1
    assert not Flag.objects.filter(resolved_at__isnull=True).exists()


def test_a_rupture_rebuild_raises_it(org, rated):
    # A rebuild that finds what is stored writes nothing; one that finds a row missing writes it.
    found = list(Rupture.objects.filter(episode=rated).values_list("rating_id", flat=True))
    assert found
    Rupture.objects.filter(episode=rated).delete()
    assert changes(lambda: ruptures.rebuild(org)) >= 1
    assert list(Rupture.objects.filter(episode=rated).values_list("rating_id", flat=True)) == found


def test_a_hand_over_raises_it(org, adult, rated):
    colleague = factories.user(org, username="colleague")
    assert changes(lambda: client_hand_over(client=adult, therapist=colleague)) == 1


def test_a_team_merge_raises_it_once(org, north, south):
    factories.user(org, team=north, username="in-north")
    assert changes(lambda: team_merge(team=north, into=south)) == 1


def test_a_settings_change_raises_it(client, org, admin):
    client.force_login(admin)
    url = reverse("organization_settings")
    assert changes(lambda: client.post(url, form_data(org, rupture_k="2.5", confirm="True"))) >= 1
    org.refresh_from_db()
    assert str(org.rupture_k) == "2.5"


def test_a_band_put_in_use_raises_it(org):
    # parameters_load stores the fit, then puts it in use with Organization.objects...update().
    assert changes(lambda: factories.expected_band_load(org)) >= 1
    org.refresh_from_db()
    assert org.expected_response


def test_a_queryset_update_alone_raises_it(org):
    assert changes(lambda: Organization.objects.filter(pk=org.pk).update(name="Renamed")) == 1


def test_reading_pages_and_writing_audit_entries_leave_it_alone(client, org, admin, rated):
    client.force_login(admin)
    client.get(reverse("overview"))  # the login session's first page renews it
    before = stored()
    for name in ("overview", "team_statistics", "inbox"):
        assert client.get(reverse(name)).status_code == 200
    url = reverse("supervision", args=[rated.therapist_id]) + "?months=all"
    assert client.get(url).status_code == 200
    audit_record(None, action=Action.CLIENT_VIEWED, obj=rated.client, actor=admin)
    assert stored() == before


def test_a_transaction_rolled_back_leaves_the_stored_counter_alone(org):
    before = stored()
    with pytest.raises(RuntimeError), transaction.atomic():
        factories.team(org, "Never")
        raise RuntimeError
    assert stored() == before


def test_a_later_transaction_after_a_rolled_back_one_still_raises_it(org):
    with transaction.atomic():
        factories.team(org, "Kept")
        with pytest.raises(RuntimeError), transaction.atomic():
            factories.team(org, "Undone")
            raise RuntimeError
        assert data_version.writes_pending()
    assert not data_version.writes_pending()
    assert changes(lambda: factories.team(org, "Next")) == 1


@pytest.mark.parametrize(
    ("sql", "watched"),
    [
        ('INSERT INTO "feedback_rating" ("items") VALUES (%s)', True),
        ('  update "feedback_flag" SET "status" = %s', True),
        ('DELETE FROM "accounts_team" WHERE "id" = %s', True),
        ('INSERT INTO "research_training_attendees" ("user_id") VALUES (%s)', True),
        ('INSERT OR IGNORE INTO "research_training_attendees" ("user_id") VALUES (%s)', True),
        ('INSERT INTO "clinic_client" ("code") VALUES (%s) ON CONFLICT DO NOTHING', True),
        ('SELECT * FROM "feedback_rating"', False),
        ('INSERT INTO "audit_auditentry" ("action") VALUES (%s)', False),
        ('UPDATE "feedback_unlockattempts" SET "failures" = %s', False),
        ('UPDATE "django_session" SET "expire_date" = %s', False),
        ('UPDATE "accounts_dataversion" SET "counter" = ("counter" + %s)', False),
        ('UPDATE "accounts_user" SET "last_login" = %s WHERE "accounts_user"."id" = %s', False),
        ('UPDATE "accounts_user" SET "first_name" = %s WHERE "accounts_user"."id" = %s', True),
    ],
)
def test_which_statements_count_as_writes(sql, watched):
    assert data_version.writes_watched_table(sql) is watched


def test_every_connection_watches_its_writes():
    connection.ensure_connection()
    assert data_version.watch_writes in connection.execute_wrappers


def test_a_page_read_after_a_day_of_no_writes_keys_on_the_stored_counter_alone(org):
    factories.team(org, "Committed")
    assert data_version.current() == str(stored())


def test_the_audit_trail_and_the_unlock_counters_are_left_out():
    assert {"feedback_rating", "feedback_flag", "accounts_organization"} <= (
        data_version.watched_tables()
    )
    assert not data_version.watched_tables() & {"audit_auditentry", "feedback_unlockattempts"}


def test_a_flushed_row_comes_back_counted_from_the_time(org):
    DataVersion.objects.all().delete()
    # Microseconds since 1970: later than any counter the database's predecessor could reach.
    assert int(data_version.current()) > 1_700_000_000 * 10**6
    assert data_version.current() == str(stored())
