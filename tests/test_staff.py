"""Organisation admins keep their staff in the app: everyone listed with role, teams, status and
clients in a fixed number of queries; role and teams changed within the organisation, audited;
a colleague deactivated only once their clients are handed over, and logged out at once."""

from datetime import date, timedelta
from importlib import import_module

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alliance_app.accounts.models import Invitation, Membership, Role, User
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Episode
from alliance_app.clinic.staff import StaffStatus, login_sessions_end, staff_status
from tests import factories
from tests.factories import logged_in

pytestmark = pytest.mark.django_db


def edit(http: HttpClient, member: User, **changes):
    membership = member.membership
    data = {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "role": membership.role,
        "team": membership.team_id or "",
        "supervised_teams": [team.pk for team in membership.supervised_teams.all()],
    } | changes
    return http.post(reverse("staff_edit", args=[member.pk]), data)


def logs_in(http: HttpClient, user: User) -> bool:
    """Log in through the login page, as a person would; whether it let them in."""
    response = http.post(
        reverse("login"), {"username": user.username, "password": factories.PASSWORD}
    )
    return response.status_code == 302


def invited(org, email: str, **times) -> User:
    user = User.objects.create_user(username=email, email=email, is_active=False)
    user.set_unusable_password()
    user.save()
    Membership.objects.create(user=user, organization=org, role=Role.THERAPIST)
    Invitation.objects.create(
        organization=org, user=user, email=email, token_hash=email.ljust(64, "0")[:64], **times
    )
    return user


# The list


def test_the_staff_page_lists_everyone_of_the_organisation_with_role_teams_status_and_clients(
    org, admin, north, south
):
    tom = factories.user(org, team=north, username="tom")
    sue = factories.user(org, role=Role.SUPERVISOR, team=north, username="sue")
    sue.membership.supervised_teams.add(north, south)
    for n in range(3):
        factories.client(org, tom, code=f"T-{n}")
    archived = factories.client(org, tom, code="T-old")
    archived.active = False
    archived.save()
    factories.user(factories.organization(), role=Role.ADMIN, username="other-org-admin")

    response = logged_in(admin).get(reverse("staff_list"))
    assert response.status_code == 200
    rows = {member.username: (member, status) for member, status, _ in response.context["rows"]}
    assert set(rows) == {"ada", "tom", "sue"}
    assert rows["tom"][0].active_clients == 3  # the archived client does not count
    assert rows["sue"][0].active_clients == 0
    assert {status for _member, status in rows.values()} == {StaffStatus.ACTIVE}
    page = response.content.decode()
    assert "Supervises: North, South" in page
    assert "other-org-admin" not in page
    assert reverse("staff_invite") in page


def test_the_staff_page_is_for_admins_only(org, therapist):
    supervisor = factories.user(org, role=Role.SUPERVISOR)
    assert logged_in(therapist).get(reverse("staff_list")).status_code == 403
    assert logged_in(supervisor).get(reverse("staff_list")).status_code == 403


def test_the_staff_page_takes_the_same_queries_for_3_and_for_30_members(org, admin, north):
    def queries() -> int:
        http = logged_in(admin)
        http.get(reverse("staff_list"))  # the first page after logging in renews the session
        with CaptureQueriesContext(connection) as captured:
            assert http.get(reverse("staff_list")).status_code == 200
        return len(captured)

    def add_members(count: int) -> None:
        for _n in range(count):
            member = factories.user(org, role=Role.SUPERVISOR, team=north)
            member.membership.supervised_teams.add(north)
            factories.client(org, member)
        invited(org, f"new{User.objects.count()}@example.org")

    add_members(2)
    few = queries()
    add_members(27)
    assert User.objects.filter(membership__organization=org).count() >= 30
    assert queries() == few


def test_each_status_is_told_apart(org, admin):
    now = timezone.now()
    pending = invited(org, "pending@example.org")
    expired = invited(org, "late@example.org", expires_at=now - timedelta(days=1))
    withdrawn = invited(org, "gone@example.org", withdrawn_at=now)
    left = factories.user(org, username="left")
    left.is_active = False
    left.save()
    assert staff_status(admin) == StaffStatus.ACTIVE
    assert staff_status(pending) == StaffStatus.INVITED
    assert staff_status(expired) == StaffStatus.INVITATION_EXPIRED
    assert staff_status(withdrawn) == StaffStatus.INVITATION_WITHDRAWN
    assert staff_status(left) == StaffStatus.DEACTIVATED

    page = logged_in(admin).get(reverse("staff_list")).content.decode()
    for label in ("Invited", "Invitation expired", "Invitation withdrawn", "Deactivated"):
        assert label in page
    # A pending invitation is sent again or withdrawn; an expired one only sent again.
    assert reverse("invitation_withdraw", args=[pending.invitation.pk]) in page
    assert reverse("invitation_resend", args=[expired.invitation.pk]) in page
    assert reverse("invitation_withdraw", args=[expired.invitation.pk]) not in page


# Changing a colleague


def test_an_admin_changes_a_colleagues_role_teams_name_and_email(org, admin, north, south):
    tom = factories.user(org, team=north, username="tom")
    response = edit(
        logged_in(admin),
        tom,
        role=Role.SUPERVISOR,
        team=south.pk,
        supervised_teams=[north.pk, south.pk],
        first_name="Thomas",
        email="thomas@example.org",
    )
    assert response.status_code == 302 and response.url == reverse("staff_list")
    tom.refresh_from_db()
    membership = Membership.objects.get(user=tom)
    assert (membership.role, membership.team, tom.first_name, tom.email) == (
        Role.SUPERVISOR,
        south,
        "Thomas",
        "thomas@example.org",
    )
    assert set(membership.supervised_teams.all()) == {north, south}
    entry = AuditEntry.objects.get(action=Action.STAFF_CHANGED)
    assert (entry.actor, entry.object_id, entry.organization) == (admin, str(tom.pk), org)
    assert entry.detail == (
        "role Therapist → Supervisor; team North → South; supervised teams; name; e-mail address"
    )


def test_saving_without_a_change_records_nothing(org, admin, north):
    tom = factories.user(org, team=north, username="tom")
    assert edit(logged_in(admin), tom).status_code == 302
    assert not AuditEntry.objects.filter(action=Action.STAFF_CHANGED).exists()


def test_only_supervisors_keep_supervised_teams(org, admin, north):
    sue = factories.user(org, role=Role.SUPERVISOR, username="sue")
    sue.membership.supervised_teams.add(north)
    edit(logged_in(admin), sue, role=Role.THERAPIST, supervised_teams=[north.pk])
    assert not Membership.objects.get(user=sue).supervised_teams.exists()


def test_another_organisations_team_cannot_be_chosen(org, admin, north):
    tom = factories.user(org, team=north, username="tom")
    theirs = factories.team(factories.organization(), "Theirs")
    for changes in ({"team": theirs.pk}, {"supervised_teams": [theirs.pk], "role": "supervisor"}):
        response = edit(logged_in(admin), tom, **changes)
        assert response.status_code == 200
        field = next(iter(changes))
        assert response.context["form"].errors[field]
    membership = Membership.objects.get(user=tom)
    assert (membership.role, membership.team) == (Role.THERAPIST, north)
    assert not membership.supervised_teams.exists()
    assert not AuditEntry.objects.filter(action=Action.STAFF_CHANGED).exists()


def test_the_last_active_admin_keeps_their_admin_role(org, admin):
    response = edit(logged_in(admin), admin, role=Role.THERAPIST)
    assert response.status_code == 200
    assert "last active admin" in str(response.context["form"].errors["role"])
    assert Membership.objects.get(user=admin).role == Role.ADMIN
    # With another active admin, they may step down.
    factories.user(org, role=Role.ADMIN, username="bea")
    assert edit(logged_in(admin), admin, role=Role.THERAPIST).status_code == 302
    assert Membership.objects.get(user=admin).role == Role.THERAPIST


def test_an_email_address_of_another_account_is_refused(org, admin, therapist):
    User.objects.filter(pk=factories.user(org).pk).update(email="taken@example.org")
    response = edit(logged_in(admin), therapist, email="Taken@Example.org")
    assert response.status_code == 200
    assert "already used" in str(response.context["form"].errors["email"])
    therapist.refresh_from_db()
    assert therapist.email == ""


def test_a_bad_email_address_is_refused_in_words(org, admin, therapist):
    response = edit(logged_in(admin), therapist, email="not an address")
    assert response.context["form"].errors["email"] == [
        "Enter an e-mail address such as name@example.org."
    ]


# Deactivating and reactivating


def deactivate(http: HttpClient, member: User):
    return http.post(reverse("staff_active", args=[member.pk]), {"active": "0"})


def test_deactivation_waits_until_the_colleagues_clients_are_handed_over(org, admin, therapist):
    own = factories.client(org, therapist, code="OWN-1")
    colleague = factories.user(org, username="cleo")
    shared = factories.client(org, colleague, code="SHARED-1")
    # The colleague's client, whose open episode is this therapist's.
    Episode.objects.create(client=shared, therapist=therapist, opened=date(2026, 1, 5))
    archived = factories.client(org, therapist, code="OLD-1")
    archived.active = False
    archived.save()

    response = deactivate(logged_in(admin), therapist)
    assert response.status_code == 200
    page = response.content.decode()
    assert "cannot be deactivated yet" in page
    assert [client.code for client in response.context["holding"]] == ["OWN-1", "SHARED-1"]
    assert reverse("client_hand_over", args=[own.pk]) in page
    assert reverse("client_hand_over", args=[shared.pk]) in page
    assert "OLD-1" not in page
    therapist.refresh_from_db()
    assert therapist.is_active
    assert not AuditEntry.objects.filter(action=Action.STAFF_DEACTIVATED).exists()


def test_a_deactivated_colleague_is_logged_out_and_cannot_log_in(org, admin, therapist):
    theirs = HttpClient()
    assert logs_in(theirs, therapist)
    assert theirs.get(reverse("caseload")).status_code == 200
    admins = logged_in(admin)

    response = deactivate(admins, therapist)
    assert response.status_code == 302 and response.url == reverse("staff_list")
    therapist.refresh_from_db()
    assert not therapist.is_active
    assert theirs.get(reverse("caseload")).status_code == 302  # to the login page
    assert not logs_in(HttpClient(), therapist)
    # The admin's own session goes on.
    assert admins.get(reverse("staff_list")).status_code == 200
    entry = AuditEntry.objects.get(action=Action.STAFF_DEACTIVATED)
    assert (entry.actor, entry.object_id) == (admin, str(therapist.pk))
    assert staff_status(therapist) == StaffStatus.DEACTIVATED


def test_ending_sessions_ends_only_the_colleagues(org, admin, therapist):
    for user in (therapist, therapist, admin):
        HttpClient().force_login(user)
    assert login_sessions_end(therapist) == 2
    left = [session.get_decoded().get("_auth_user_id") for session in Session.objects.all()]
    assert left == [str(admin.pk)]


def test_sessions_end_in_the_cache_too_with_redis_style_sessions(org, admin, therapist, settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    theirs = HttpClient()
    theirs.force_login(therapist)
    key = theirs.session.session_key
    engine = import_module(settings.SESSION_ENGINE)
    assert cache.get(engine.KEY_PREFIX + key) is not None
    assert login_sessions_end(therapist) == 1
    assert cache.get(engine.KEY_PREFIX + key) is None
    assert not Session.objects.filter(session_key=key).exists()


def test_an_admin_cannot_deactivate_themself(org, admin):
    factories.user(org, role=Role.ADMIN, username="bea")
    factories.client(org, admin, code="ADA-1")
    response = deactivate(logged_in(admin), admin)
    assert response.status_code == 200
    assert "You cannot deactivate yourself." in response.content.decode()
    assert not response.context["holding"]
    admin.refresh_from_db()
    assert admin.is_active


def test_a_deactivated_colleague_is_reactivated(org, admin, therapist):
    http = logged_in(admin)
    deactivate(http, therapist)
    response = http.post(reverse("staff_active", args=[therapist.pk]), {"active": "1"})
    assert response.status_code == 302
    therapist.refresh_from_db()
    assert therapist.is_active
    assert AuditEntry.objects.filter(action=Action.STAFF_REACTIVATED).count() == 1
    assert logs_in(HttpClient(), therapist)


def test_an_invited_colleague_is_not_reactivated_here(org, admin):
    pending = invited(org, "pending@example.org")
    response = logged_in(admin).post(reverse("staff_active", args=[pending.pk]), {"active": "1"})
    assert "Only a deactivated colleague can be reactivated." in response.content.decode()
    pending.refresh_from_db()
    assert not pending.is_active


def test_an_unclear_request_changes_nothing(org, admin, therapist):
    response = logged_in(admin).post(reverse("staff_active", args=[therapist.pk]), {"active": "x"})
    assert response.status_code == 302
    therapist.refresh_from_db()
    assert therapist.is_active


# Other organisations


def test_an_admin_of_another_organisation_reaches_nobody_here(org, therapist, north):
    other_admin = factories.user(factories.organization(), role=Role.ADMIN, username="bob")
    http = logged_in(other_admin)
    assert http.get(reverse("staff_edit", args=[therapist.pk])).status_code == 404
    assert edit(http, therapist, first_name="Hacked", team="").status_code == 404
    assert deactivate(http, therapist).status_code == 404
    therapist.refresh_from_db()
    assert (therapist.first_name, therapist.is_active) == ("Test", True)
    assert Membership.objects.get(user=therapist).role == Role.THERAPIST
    assert not AuditEntry.objects.filter(
        action__in=[Action.STAFF_CHANGED, Action.STAFF_DEACTIVATED]
    ).exists()


def test_non_admins_change_nobody(org, therapist):
    supervisor = factories.user(org, role=Role.SUPERVISOR)
    for user in (therapist, supervisor):
        http = logged_in(user)
        assert http.get(reverse("staff_edit", args=[therapist.pk])).status_code == 403
        assert deactivate(http, therapist).status_code == 403
    therapist.refresh_from_db()
    assert therapist.is_active


def test_the_menu_offers_staff_and_teams_to_admins_under_organisation(org, admin, therapist):
    navigation = logged_in(admin).get(reverse("staff_list")).context["navigation"]
    menu = next(item for item in navigation if str(item["label"]) == "Organisation")
    assert str(menu["label"]) == "Organisation" and menu["active"]
    labels = [str(item["label"]) for item in menu["menu"]]
    assert labels[:2] == ["Staff", "Teams"]
    caseload = logged_in(therapist).get(reverse("caseload")).context["navigation"]
    assert not any(item.get("menu") for item in caseload)


def test_the_staff_page_shows_fifty_at_a_time_and_finds_by_name_or_address(org, admin, north):
    for number in range(55):
        factories.user(org, team=north, username=f"member{number:02d}")
    User.objects.filter(username="member07").update(first_name="Quentin", last_name="Okonkwo")
    User.objects.filter(username="member12").update(email="q.member12@clinic.example")
    http = logged_in(admin)
    first = http.get(reverse("staff_list"))
    assert len(first.context["rows"]) == 50
    assert first.context["page"].paginator.count == 56  # the 55 and the admin
    second = http.get(reverse("staff_list"), {"page": 2})
    assert len(second.context["rows"]) == 6
    found = http.get(reverse("staff_list"), {"q": "okonk"})
    assert [member.username for member, *_ in found.context["rows"]] == ["member07"]
    by_address = http.get(reverse("staff_list"), {"q": "12@clinic"})
    assert [member.username for member, *_ in by_address.context["rows"]] == ["member12"]
    none = http.get(reverse("staff_list"), {"q": "nobody-at-all"})
    assert none.context["rows"] == [] and 'data-testid="staff-none"' in none.text
    # Another organisation's member is never found.
    factories.user(factories.organization("Other"), username="okonkwo-elsewhere")
    assert len(http.get(reverse("staff_list"), {"q": "okonk"}).context["rows"]) == 1
