"""Organisation admins create, rename and merge teams in the app: names unique in the
organisation, refused in words; a merge moves members and supervision in one go, and the team
pages count the merged members' work for the team they joined."""

import pytest
from django.urls import reverse

from alliance_app.accounts.models import Membership, Role, Team
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.staff import team_merge
from tests import factories
from tests.factories import logged_in
from tests.test_dashboards import World

pytestmark = pytest.mark.django_db


def test_the_teams_page_counts_members_and_supervisors(org, admin, north, south):
    for _n in range(3):
        factories.user(org, team=north)
    sue = factories.user(org, role=Role.SUPERVISOR, team=south)
    sue.membership.supervised_teams.add(north, south)
    factories.team(factories.organization(), "Elsewhere")
    response = logged_in(admin).get(reverse("team_list"))
    assert response.status_code == 200
    counts = [(t.name, t.member_count, t.supervisor_count) for t in response.context["teams"]]
    assert counts == [("North", 3, 1), ("South", 1, 1)]
    assert "Elsewhere" not in response.content.decode()


def test_the_teams_pages_are_for_admins_only(org, therapist, north):
    supervisor = factories.user(org, role=Role.SUPERVISOR)
    for user in (therapist, supervisor):
        http = logged_in(user)
        assert http.get(reverse("team_list")).status_code == 403
        assert http.post(reverse("team_list"), {"name": "Mine"}).status_code == 403
        assert http.get(reverse("team_edit", args=[north.pk])).status_code == 403
        assert http.get(reverse("team_merge", args=[north.pk])).status_code == 403
    assert not Team.objects.filter(name="Mine").exists()


def test_an_admin_creates_a_team(org, admin):
    response = logged_in(admin).post(reverse("team_list"), {"name": "  East  "})
    assert response.status_code == 302
    team = Team.objects.get(organization=org)
    assert team.name == "East"
    entry = AuditEntry.objects.get(action=Action.TEAM_CREATED)
    assert (entry.actor, entry.object_id, entry.detail) == (admin, str(team.pk), "East")


def test_a_team_name_used_in_the_organisation_is_refused_in_words(org, admin, north):
    factories.team(factories.organization(), "East")  # another organisation's: no matter
    http = logged_in(admin)
    response = http.post(reverse("team_list"), {"name": "north"})
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [
        "There is already a team called north here; choose another name."
    ]
    assert http.post(reverse("team_list"), {"name": ""}).context["form"].errors["name"] == [
        "Give the team a name."
    ]
    assert list(Team.objects.filter(organization=org).values_list("name", flat=True)) == ["North"]
    assert http.post(reverse("team_list"), {"name": "East"}).status_code == 302
    assert not AuditEntry.objects.filter(action=Action.TEAM_CREATED, detail="north").exists()


def test_an_admin_renames_a_team(org, admin, north, south):
    http = logged_in(admin)
    refused = http.post(reverse("team_edit", args=[north.pk]), {"name": "South"})
    assert refused.status_code == 200 and refused.context["form"].errors
    north.refresh_from_db()
    assert north.name == "North"
    response = http.post(reverse("team_edit", args=[north.pk]), {"name": "Harbour"})
    assert response.status_code == 302
    north.refresh_from_db()
    assert north.name == "Harbour"
    entry = AuditEntry.objects.get(action=Action.TEAM_RENAMED)
    assert (entry.object_id, entry.detail) == (str(north.pk), "North → Harbour")


def test_the_merge_page_says_what_moves(org, admin, north, south):
    ann = factories.user(org, team=north)
    ben = factories.user(org, team=north)
    factories.client(org, ann)
    factories.client(org, ann)
    archived = factories.client(org, ben)
    archived.active = False
    archived.save()
    sue = factories.user(org, role=Role.SUPERVISOR)
    sue.membership.supervised_teams.add(north)
    response = logged_in(admin).get(reverse("team_merge", args=[north.pk]))
    counts = response.context["counts"]
    assert (counts.members, counts.clients, counts.supervisors) == (2, 2, 1)
    page = response.content.decode()
    assert "2 members move to the team you choose." in page
    assert "2 active clients of theirs count for that team from now on." in page
    assert list(response.context["form"].fields["into"].queryset) == [south]


def test_a_merge_moves_members_and_supervision_and_deletes_the_team(org, admin, north, south):
    ann = factories.user(org, team=north)
    cal = factories.user(org, team=south)
    sue = factories.user(org, role=Role.SUPERVISOR, team=north)
    sue.membership.supervised_teams.add(north)
    sid = factories.user(org, role=Role.SUPERVISOR)
    sid.membership.supervised_teams.add(north, south)  # already supervises both
    response = logged_in(admin).post(reverse("team_merge", args=[north.pk]), {"into": south.pk})
    assert response.status_code == 302 and response.url == reverse("team_list")
    assert not Team.objects.filter(pk=north.pk).exists()
    assert set(Membership.objects.filter(team=south).values_list("user", flat=True)) == {
        ann.pk,
        cal.pk,
        sue.pk,
    }
    assert list(Membership.objects.get(user=sue).supervised_teams.all()) == [south]
    assert list(Membership.objects.get(user=sid).supervised_teams.all()) == [south]
    entry = AuditEntry.objects.get(action=Action.TEAMS_MERGED)
    assert (entry.object_id, entry.detail) == (str(south.pk), "North → South")


def test_a_team_is_not_merged_into_itself_or_another_organisations(org, admin, north, south):
    theirs = factories.team(factories.organization(), "Theirs")
    http = logged_in(admin)
    for into in (north, theirs):
        response = http.post(reverse("team_merge", args=[north.pk]), {"into": into.pk})
        assert response.status_code == 200
        assert response.context["form"].errors["into"] == [
            "Choose another team of this organisation."
        ]
    assert Team.objects.filter(pk=north.pk).exists()
    with pytest.raises(Exception, match="Choose another team"):
        team_merge(team=north, into=theirs)
    assert Team.objects.filter(pk__in=[north.pk, theirs.pk]).count() == 2
    assert not AuditEntry.objects.filter(action=Action.TEAMS_MERGED).exists()


def test_an_admin_of_another_organisation_reaches_no_team_here(org, north, south):
    tom = factories.user(org, team=north)
    other_admin = factories.user(factories.organization(), role=Role.ADMIN)
    http = logged_in(other_admin)
    assert http.get(reverse("team_edit", args=[north.pk])).status_code == 404
    assert http.post(reverse("team_edit", args=[north.pk]), {"name": "X"}).status_code == 404
    assert http.get(reverse("team_merge", args=[north.pk])).status_code == 404
    merge = http.post(reverse("team_merge", args=[north.pk]), {"into": south.pk})
    assert merge.status_code == 404
    north.refresh_from_db()
    assert north.name == "North"
    assert Membership.objects.get(user=tom).team == north
    assert not AuditEntry.objects.filter(
        action__in=[Action.TEAM_RENAMED, Action.TEAMS_MERGED]
    ).exists()


def test_team_statistics_count_the_merged_members_for_the_team_they_joined():
    world = World()  # North: Ann and Ben, supervised by Sue; South: Cal
    http = logged_in(world.admin)
    before = http.get(reverse("overview")).context["rows"]
    assert [(name, row.sessions) for name, row, _link in before] == [("North", 6), ("South", 1)]
    sue = logged_in(world.sue).get(reverse("team_statistics")).context
    assert [name for name, *_ in sue["rows"]] == ["Ann", "Ben"]

    http.post(reverse("team_merge", args=[world.north.pk]), {"into": world.south.pk})

    after = http.get(reverse("overview")).context["rows"]
    assert [(name, row.sessions) for name, row, _link in after] == [("South", 7)]
    # Sue supervised North: she now supervises South, with the members who came from North.
    sue = logged_in(world.sue).get(reverse("team_statistics")).context
    assert [name for name, *_ in sue["rows"]] == ["Ann", "Ben", "Cal"]
    assert sue["totals"].sessions == 7


def test_each_team_counts_its_members_and_its_supervisors_apart(org, admin, north, south):
    for _n in range(3):
        factories.user(org, team=north)
    for _n in range(2):
        factories.user(org, role=Role.SUPERVISOR, team=south).membership.supervised_teams.add(north)
    response = logged_in(admin).get(reverse("team_list"))
    counts = [(t.name, t.member_count, t.supervisor_count) for t in response.context["teams"]]
    assert counts == [("North", 3, 2), ("South", 2, 0)]


def test_the_teams_page_shows_fifty_teams_at_a_time(org, admin):
    for number in range(1, 53):
        factories.team(org, f"Team {number:02d}")
    http = logged_in(admin)
    first = http.get(reverse("team_list"))
    assert [team.name for team in first.context["teams"]][-1] == "Team 50"
    assert len(first.context["teams"]) == 50
    assert "1 / 2" in first.content.decode()
    second = http.get(reverse("team_list"), {"page": "2"})
    assert [team.name for team in second.context["teams"]] == ["Team 51", "Team 52"]
    # A team added shows at once, though the pages were kept per version of the data.
    http.post(reverse("team_list"), {"name": "Team 53"})
    third = http.get(reverse("team_list"), {"page": "2"})
    assert [team.name for team in third.context["teams"]] == ["Team 51", "Team 52", "Team 53"]
    assert 'data-testid="team-row"' in third.content.decode()
    assert third.content.decode().count('data-testid="team-row"') == 3
