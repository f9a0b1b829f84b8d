"""Cached results (accounts.cached): the overview, team statistics, the supervision page and
the training evaluation compute their figures once per data version, and never show figures
older than the data.

Inside a test nothing commits, so these pages see the test's writes through the process's
generation; one test plays another server, whose writes this process learns of only through the
stored counter.
"""

import datetime

import pytest
from django.db.models import F
from django.urls import reverse

from alliance_app.accounts import data_version
from alliance_app.accounts.models import DataVersion, Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Closure
from alliance_app.dashboards import clients, selectors, views
from alliance_app.feedback.models import Flag, FlagKind, ReflectionOption
from alliance_app.feedback.reflecting import reflection_save
from alliance_app.feedback.services import episode_close, flag_acknowledge
from alliance_app.research.models import Training, TrainingKind
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

HIGH, DIP, LOW = "10 10 10 9.5", "10 7 10 9.5", "9 9 9 8.9"


@pytest.fixture
def clinic(org, therapist, north, admin):
    """A team of one therapist with one client rated twice; a supervisor of the team."""
    therapist.membership.team = north
    therapist.membership.save(update_fields=["team"])
    supervisor = factories.user(org, role=Role.SUPERVISOR, username="sue")
    supervisor.membership.supervised_teams.add(north)
    episode = factories.episode(factories.client(org, therapist, code="A001"))
    for number in (1, 2):
        rate(factories.therapy_session(episode, number=number), "session-adult", HIGH)
    return {"admin": admin, "supervisor": supervisor, "episode": episode}


def rate_next(episode, scores: str = LOW):
    """Store the episode's next session rating (a low one raises a flag)."""
    number = episode.sessions.count() + 1
    return rate(factories.therapy_session(episode, number=number), "session-adult", scores)


def totals(http, name: str):
    response = http.get(reverse(name))
    assert response.status_code == 200
    return response.context["totals"]


@pytest.fixture
def computed(monkeypatch):
    """How many times the team pages computed their figures."""
    calls = []
    figures = selectors.figures

    def counting(*args, **kwargs):
        calls.append(1)
        return figures(*args, **kwargs)

    monkeypatch.setattr(selectors, "figures", counting)
    return calls


@pytest.mark.parametrize(
    ("name", "viewer"), [("overview", "admin"), ("team_statistics", "supervisor")]
)
def test_a_second_visit_with_nothing_changed_reuses_the_figures(
    client, clinic, computed, name, viewer
):
    client.force_login(clinic[viewer])
    first, second = totals(client, name), totals(client, name)
    assert first == second
    assert len(computed) == 1


@pytest.mark.parametrize(
    ("name", "viewer"), [("overview", "admin"), ("team_statistics", "supervisor")]
)
def test_a_rating_stored_after_a_visit_shows_at_the_next(client, clinic, computed, name, viewer):
    client.force_login(clinic[viewer])
    before = totals(client, name)
    assert rate_next(clinic["episode"]).flags
    after = totals(client, name)
    assert (before.sessions, after.sessions) == (2, 3)
    assert before.alliance_concern_share != after.alliance_concern_share
    assert len(computed) == 2


def test_a_write_by_another_server_shows_once_its_commit_raises_the_stored_counter(
    client, clinic, monkeypatch
):
    client.force_login(clinic["admin"])
    before = totals(client, "overview")
    # Another server's rating: this process never sees the write go by.
    generation = data_version.generation()
    rate_next(clinic["episode"])
    monkeypatch.setattr(data_version, "_current_generation", generation)
    assert totals(client, "overview") == before  # not told yet: the cached figures stand
    # That server's commit raises the stored counter (this statement raises no generation).
    DataVersion.objects.filter(pk=1).update(counter=F("counter") + 1)
    assert data_version.generation() == generation
    assert totals(client, "overview").sessions == before.sessions + 1


@pytest.mark.parametrize(
    ("name", "viewer"), [("overview", "admin"), ("team_statistics", "supervisor")]
)
def test_settings_read_before_the_data_version_are_part_of_the_key(
    client, org, clinic, computed, monkeypatch, name, viewer
):
    """The organisation (its flag rules) is read with the user, before the data version: a
    change landing between the two must not be cached under the new version with the old rules.
    With the version held still, only the organisation's own columns can tell the change."""
    monkeypatch.setattr(data_version, "current", lambda using="default": "held")
    client.force_login(clinic[viewer])
    before = client.get(reverse(name)).context["chart"]
    org.alliance_cutoff = 39
    org.save(update_fields=["alliance_cutoff"])
    after = client.get(reverse(name)).context["chart"]
    assert len(computed) == 2
    # The chart's reference line is drawn at the organisation's cut-off.
    assert before != after


def test_each_supervisor_gets_the_figures_of_their_own_teams(client, org, clinic, south):
    other = factories.user(org, team=south, username="olga")
    episode = factories.episode(factories.client(org, other, code="B001"))
    for number in (1, 2, 3):
        rate(factories.therapy_session(episode, number=number), "session-adult", HIGH)
    supervisor_south = factories.user(org, role=Role.SUPERVISOR, username="sam")
    supervisor_south.membership.supervised_teams.add(south)
    client.force_login(clinic["supervisor"])
    assert totals(client, "team_statistics").sessions == 2
    client.force_login(supervisor_south)
    assert totals(client, "team_statistics").sessions == 3


def supervision(http, therapist, months: str = "all"):
    response = http.get(reverse("supervision", args=[therapist.pk]) + f"?months={months}")
    assert response.status_code == 200
    return response


def test_the_supervision_page_shows_a_new_rupture_and_audits_every_visit(client, therapist, clinic):
    client.force_login(clinic["supervisor"])
    episode = clinic["episode"]
    assert supervision(client, therapist).context["mine"].ruptures == 0
    rate_next(episode, DIP)
    rate_next(episode, HIGH)
    page = supervision(client, therapist)
    assert page.context["mine"].ruptures == 1
    viewed = AuditEntry.objects.filter(action=Action.CLIENT_VIEWED, object_type="client")
    assert viewed.count() == 1
    supervision(client, therapist)  # from the cache
    assert viewed.count() == 2
    assert [sequence.code for sequence, _link in page.context["sequences"]] == ["A001"]


def test_the_supervision_page_lists_only_the_clients_the_viewer_may_see(
    client, org, therapist, clinic
):
    other_supervisor = factories.user(org, role=Role.SUPERVISOR, username="stan")
    rate_next(clinic["episode"], DIP)
    rate_next(clinic["episode"], HIGH)
    client.force_login(clinic["supervisor"])
    assert [s.code for s, _link in supervision(client, therapist).context["sequences"]] == ["A001"]
    client.force_login(other_supervisor)
    # A supervisor of no team of the therapist's may not open the page at all.
    response = client.get(reverse("supervision", args=[therapist.pk]))
    assert response.status_code in (403, 404)


def test_the_language_is_part_of_the_key(client, therapist, clinic):
    supervisor = clinic["supervisor"]
    client.force_login(supervisor)
    english = supervision(client, therapist).context["rule"]
    supervisor.language = "nb"
    supervisor.save(update_fields=["language"])
    norwegian = supervision(client, therapist).context["rule"]
    assert norwegian != english
    assert english[0].startswith("A rupture here is")


def test_a_period_is_part_of_the_key(client, therapist, clinic):
    client.force_login(clinic["supervisor"])
    assert supervision(client, therapist, "all").context["period"] == "all"
    assert supervision(client, therapist, "6").context["period"] == "6"


def test_the_training_evaluation_names_an_attendee_added_after_a_visit(client, org, clinic):
    supervisor, therapist = clinic["supervisor"], clinic["episode"].therapist
    training = Training.objects.create(
        organization=org,
        title="Workshop",
        kind=TrainingKind.WORKSHOP,
        date=datetime.date(2026, 1, 15),
    )
    client.force_login(supervisor)
    url = reverse("training_evaluation", args=[training.pk]) + "?days=90"
    assert client.get(url).context["attendees"] == []
    training.attendees.add(therapist)
    page = client.get(url)
    assert page.context["attendees"] == [str(therapist.get_full_name() or therapist.username)]
    assert page.context["days"] == 90


# The inbox and the client page: their rows once per data version for each viewer.


@pytest.fixture
def built(monkeypatch):
    """Which of the inbox and the client page computed their result, in order."""
    calls = []
    for module, name in ((views, "_inbox_result"), (clients, "_client_result")):
        compute = getattr(module, name)

        def counting(*args, _compute=compute, _name=name, **kwargs):
            calls.append(_name.strip("_").removesuffix("_result"))
            return _compute(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    return calls


def inbox(http):
    response = http.get(reverse("inbox"))
    assert response.status_code == 200
    return response


def chart_page(http, episode):
    response = http.get(reverse("client_detail", args=[episode.client_id]))
    assert response.status_code == 200
    return response


def shown_flags(response) -> list[tuple[int, str]]:
    return [(flag.pk, flag.status) for flag in response.context["page"].object_list]


def test_a_second_visit_with_nothing_changed_reuses_the_inbox_and_the_client_page(
    client, clinic, built
):
    episode = clinic["episode"]
    rate_next(episode)
    client.force_login(clinic["supervisor"])
    first, second = inbox(client), inbox(client)
    assert shown_flags(first) == shown_flags(second) != []
    assert second.context["page"].paginator.count == first.context["page"].paginator.count
    first, second = chart_page(client, episode), chart_page(client, episode)
    assert first.context["chart"] == second.context["chart"]
    assert first.context["open_flags"] == second.context["open_flags"] != []
    assert built == ["inbox", "client"]


def test_a_rating_stored_after_a_visit_shows_in_the_inbox_and_on_the_client_page(
    client, clinic, built
):
    episode = clinic["episode"]
    client.force_login(clinic["supervisor"])
    assert shown_flags(inbox(client)) == []
    assert len(chart_page(client, episode).context["sessions"]) == 2
    rating = rate_next(episode)
    assert [flag.pk for flag in rating.flags] == [pk for pk, _ in shown_flags(inbox(client))]
    page = chart_page(client, episode)
    assert len(page.context["sessions"]) == 3
    assert {flag.pk for flag in page.context["open_flags"]} == {f.pk for f in rating.flags}
    assert built == ["inbox", "client", "inbox", "client"]


def test_a_flag_acknowledged_after_a_visit_shows_acknowledged(client, clinic):
    episode = clinic["episode"]
    [flag, *_] = rate_next(episode).flags
    client.force_login(clinic["supervisor"])
    assert (flag.pk, "open") in shown_flags(inbox(client))
    assert chart_page(client, episode).context["open_flags"][0].status == "open"
    flag_acknowledge(flag=flag, by=clinic["supervisor"])
    assert (flag.pk, "acknowledged") in shown_flags(inbox(client))
    shown = {f.pk: f.status for f in chart_page(client, episode).context["open_flags"]}
    assert shown[flag.pk] == "acknowledged"


def test_a_reflection_written_after_a_visit_shows_on_the_client_page_and_in_the_inbox(
    client, org, therapist, clinic
):
    episode = clinic["episode"]
    rate_next(episode, DIP)
    [flag] = Flag.objects.filter(client_id=episode.client_id, kind=FlagKind.RUPTURE)
    client.force_login(therapist)
    page = chart_page(client, episode)
    assert flag.pk in page.context["reflect_on"]
    assert [hasattr(f, "reflection") for f in page.context["open_flags"] if f.pk == flag.pk] == [
        False
    ]
    client.force_login(clinic["supervisor"])
    assert [f for f in inbox(client).context["page"].object_list if f.pk == flag.pk]
    reflection_save(
        flag=flag,
        by=therapist,
        marker=ReflectionOption.objects.get(organization=org, code="withdrawal"),
        dimension="tasks",
        strategies=[ReflectionOption.objects.get(organization=org, code="clarify")],
    )
    [shown] = [f for f in inbox(client).context["page"].object_list if f.pk == flag.pk]
    assert shown.reflection.dimension == "tasks"
    client.force_login(therapist)
    [shown] = [f for f in chart_page(client, episode).context["open_flags"] if f.pk == flag.pk]
    assert shown.reflection.marker.code == "withdrawal"


def test_an_episode_closed_after_a_visit_shows_closed_and_its_flags_leave_the_inbox(
    client, therapist, clinic
):
    episode = clinic["episode"]
    rate_next(episode)
    client.force_login(clinic["supervisor"])
    assert shown_flags(inbox(client))
    client.force_login(therapist)
    assert chart_page(client, episode).context["episode"].is_open
    episode_close(episode=episode, closure=Closure.values[0], by=therapist)
    page = chart_page(client, episode)
    assert not page.context["episode"].is_open
    assert page.context["open_flags"] == []
    client.force_login(clinic["supervisor"])
    assert shown_flags(inbox(client)) == []


def test_viewers_with_other_rights_never_share_a_client_page(client, org, therapist, clinic):
    episode = clinic["episode"]
    rate_next(episode, DIP)
    client.force_login(therapist)
    mine = chart_page(client, episode).context
    client.force_login(clinic["supervisor"])
    theirs = chart_page(client, episode).context
    assert (mine["can_treat"], mine["can_hand_over"]) == (True, False)
    assert (theirs["can_treat"], theirs["can_hand_over"]) == (False, True)
    assert mine["reflect_on"] and not theirs["reflect_on"]
    # Another therapist may not see the client at all, cached result or not.
    client.force_login(factories.user(org, username="tom"))
    response = client.get(reverse("client_detail", args=[episode.client_id]))
    assert response.status_code == 404


def test_each_supervisor_gets_the_inbox_of_their_own_teams(client, org, clinic, south):
    other = factories.user(org, team=south, username="olga")
    theirs = factories.episode(factories.client(org, other, code="B001"))
    for number in (1, 2):
        rate(factories.therapy_session(theirs, number=number), "session-adult", HIGH)
    south_flags = {flag.pk for flag in rate_next(theirs).flags}
    north_flags = {flag.pk for flag in rate_next(clinic["episode"]).flags}
    supervisor_south = factories.user(org, role=Role.SUPERVISOR, username="sam")
    supervisor_south.membership.supervised_teams.add(south)
    client.force_login(clinic["supervisor"])
    assert {pk for pk, _ in shown_flags(inbox(client))} == north_flags
    client.force_login(supervisor_south)
    assert {pk for pk, _ in shown_flags(inbox(client))} == south_flags
    client.force_login(clinic["admin"])
    assert {pk for pk, _ in shown_flags(inbox(client))} == north_flags | south_flags


def test_the_client_page_audits_every_visit_and_an_inbox_filter_is_part_of_the_key(
    client, therapist, clinic, built
):
    episode = clinic["episode"]
    rate_next(episode)
    client.force_login(therapist)
    viewed = AuditEntry.objects.filter(action=Action.CLIENT_VIEWED, object_type="client")
    chart_page(client, episode)
    chart_page(client, episode)  # from the cache
    assert viewed.count() == 2
    client.force_login(clinic["supervisor"])
    assert shown_flags(inbox(client))
    response = client.get(reverse("inbox") + "?status=resolved")
    assert shown_flags(response) == []
    assert built == ["client", "inbox", "inbox"]


def test_a_write_by_another_server_shows_in_the_inbox_and_on_the_client_page(
    client, clinic, monkeypatch
):
    episode = clinic["episode"]
    client.force_login(clinic["supervisor"])
    assert shown_flags(inbox(client)) == []
    assert len(chart_page(client, episode).context["sessions"]) == 2
    generation = data_version.generation()
    rating = rate_next(episode)
    monkeypatch.setattr(data_version, "_current_generation", generation)
    assert shown_flags(inbox(client)) == []  # not told yet: the cached rows stand
    assert len(chart_page(client, episode).context["sessions"]) == 2
    DataVersion.objects.filter(pk=1).update(counter=F("counter") + 1)
    assert data_version.generation() == generation
    assert {pk for pk, _ in shown_flags(inbox(client))} == {flag.pk for flag in rating.flags}
    assert len(chart_page(client, episode).context["sessions"]) == 3
