"""The therapist's reflection on a rupture or a client-reported tension: written by the client's
own therapist (with the flag's acknowledgement, if they like), read by their supervisors and
admins, refused whole on bad input, recorded in the audit trail, and shown on every flag list."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Closure, Episode
from alliance_app.feedback.models import (
    Flag,
    FlagStatus,
    Reflection,
    ReflectionOption,
    Rupture,
)
from alliance_app.feedback.reflecting import reflection_save
from alliance_app.measures import TensionAnswer
from tests import factories
from tests.dashboards.test_query_counts import MISSES
from tests.factories import rate

pytestmark = pytest.mark.django_db

# Session totals 39.6, 39.6, then 36.6 with the approach (tasks) item falling most; 39.6 again.
HIGH = "9.9 9.9 9.9 9.9"
DIP = "9.2 9.2 9.0 9.2"
BACK = "9.8 9.9 9.9 9.8"


class World:
    """Tess treats R-1, whose session 3 is a rupture; Sue supervises Tess's team; Cleo is a
    colleague in the team; Ada is the admin. Another organisation has its own options."""

    def __init__(self):
        self.org = factories.organization()
        team = factories.team(self.org, "North")
        self.tess = factories.user(self.org, team=team, username="tess")
        self.cleo = factories.user(self.org, team=team, username="cleo")
        self.sue = factories.user(self.org, role=Role.SUPERVISOR, username="sue")
        self.sue.membership.supervised_teams.add(team)
        self.ada = factories.user(self.org, role=Role.ADMIN, username="ada")
        self.other_org = factories.organization()
        self.client = factories.client(self.org, self.tess, code="R-1")
        self.episode = factories.episode(self.client)
        self.sessions = [factories.therapy_session(self.episode, number=n) for n in range(1, 7)]
        for session, items in zip(self.sessions, (HIGH, HIGH), strict=False):
            rate(session, "session-adult", items)
        self.flag = rate(self.sessions[2], "session-adult", DIP).flags[0]
        assert self.flag.kind == "rupture"

    def option(self, code, org=None):
        return ReflectionOption.objects.get(organization=org or self.org, code=code)

    def tension_flag(self, session_index=3, items=HIGH) -> Flag:
        answer = TensionAnswer(tension=True, resolution=2)
        return rate(self.sessions[session_index], "session-adult", items, tension=answer).flags[0]


@pytest.fixture
def world():
    return World()


def answers(world, **changes):
    data = {
        "marker": world.option("withdrawal").pk,
        "dimension": "tasks",
        "strategies": [world.option("clarify").pk, world.option("rationale").pk],
        "note": "  She went quiet when I set the homework.  ",
        "teaching_consent": "on",
        "acknowledge": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def reflect(http, flag, data, **params):
    return http.post(reverse("flag_reflection", args=[flag.pk]) + _query(params), data)


def _query(params) -> str:
    return "?" + "&".join(f"{key}={value}" for key, value in params.items()) if params else ""


def as_user(http, user):
    http.force_login(user)
    return http


def audit_actions(flag) -> list[str]:
    return list(
        AuditEntry.objects.filter(detail=flag.client.code)
        .exclude(action=Action.CLIENT_VIEWED)
        .order_by("pk")
        .values_list("action", flat=True)
    )


# Writing


def test_the_therapist_writes_a_reflection_and_acknowledges_the_flag_with_it(client, world):
    response = reflect(as_user(client, world.tess), world.flag, answers(world))
    assert response.status_code == 302
    assert response.url == reverse("client_detail", args=[world.client.pk])
    reflection = Reflection.objects.get(flag=world.flag)
    assert (reflection.author, reflection.marker.code, reflection.dimension) == (
        world.tess,
        "withdrawal",
        "tasks",
    )
    assert sorted(s.code for s in reflection.strategies.all()) == ["clarify", "rationale"]
    assert reflection.note == "She went quiet when I set the homework."
    assert reflection.teaching_consent is True
    world.flag.refresh_from_db()
    assert (world.flag.status, world.flag.acknowledged_by) == (
        FlagStatus.ACKNOWLEDGED,
        world.tess,
    )
    assert audit_actions(world.flag) == [Action.REFLECTION_SAVED, Action.FLAG_ACKNOWLEDGED]


def test_without_the_tick_the_flag_stays_open(client, world):
    reflect(as_user(client, world.tess), world.flag, answers(world, acknowledge=None))
    world.flag.refresh_from_db()
    assert world.flag.status == FlagStatus.OPEN
    assert Reflection.objects.filter(flag=world.flag).count() == 1
    assert audit_actions(world.flag) == [Action.REFLECTION_SAVED]


def test_editing_keeps_the_first_author_and_moves_the_time_of_change(client, world):
    # Vic saw the client in an earlier episode: he treats the client too.
    vic = factories.user(world.org, username="vic")
    Episode.objects.create(
        client=world.client,
        therapist=vic,
        opened=date(2025, 3, 1),
        closed=date(2025, 6, 1),
        closure=Closure.PLANNED,
    )
    with time_machine.travel(datetime(2026, 2, 1, 9, 0, tzinfo=UTC), tick=False):
        reflect(as_user(client, world.tess), world.flag, answers(world))
    with time_machine.travel(datetime(2026, 2, 3, 17, 30, tzinfo=UTC), tick=False):
        response = reflect(
            as_user(client, vic),
            world.flag,
            answers(
                world,
                marker=world.option("confrontation").pk,
                dimension="goals",
                strategies=[world.option("nothing_yet").pk],
                note="",
                teaching_consent=None,
            ),
        )
    assert response.status_code == 302
    reflection = Reflection.objects.get(flag=world.flag)  # still one
    assert reflection.author == world.tess
    assert reflection.created_at == datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    assert reflection.updated_at == datetime(2026, 2, 3, 17, 30, tzinfo=UTC)
    assert (reflection.marker.code, reflection.dimension, reflection.note) == (
        "confrontation",
        "goals",
        "",
    )
    assert [s.code for s in reflection.strategies.all()] == ["nothing_yet"]
    assert reflection.teaching_consent is False


def test_the_form_starts_from_the_ruptures_part_of_the_alliance_or_the_stored_answers(
    client, world
):
    http = as_user(client, world.tess)
    form = http.get(reverse("flag_reflection", args=[world.flag.pk])).context["form"]
    assert form["dimension"].value() == "tasks"  # the approach item fell most
    assert form["acknowledge"].value() is True
    reflect(http, world.flag, answers(world, dimension="bond"))
    form = http.get(reverse("flag_reflection", args=[world.flag.pk])).context["form"]
    assert form["dimension"].value() == "bond"
    assert form["marker"].value() == world.option("withdrawal").pk
    assert "acknowledge" not in form.fields  # the flag is acknowledged now


def test_a_tension_flag_takes_a_reflection_too(client, world):
    flag = world.tension_flag()
    assert flag.kind == "client_reported_tension"
    assert reflect(as_user(client, world.tess), flag, answers(world)).status_code == 302
    assert Reflection.objects.get(flag=flag).dimension == "tasks"


def test_it_goes_back_to_a_page_of_this_site_only(client, world):
    http = as_user(client, world.tess)
    result = reverse("rating_result", args=[world.flag.rating_id])
    assert reflect(http, world.flag, answers(world), next=result).url == result
    response = reflect(http, world.flag, answers(world), next="https://evil.example/")
    assert response.url == reverse("client_detail", args=[world.client.pk])


# Refused, and nothing stored


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"marker": None}, "marker", "Choose what it looked like."),
        ({"dimension": "general"}, "dimension", "Select a valid choice."),
        ({"strategies": None}, "strategies", "Tick what you did, or that nothing was done yet."),
        ({"note": "x" * 2001}, "note", "at most 2000 characters"),
    ],
)
def test_bad_input_stores_nothing(client, world, change, field, message):
    response = reflect(as_user(client, world.tess), world.flag, answers(world, **change))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert "Nothing was saved." in response.content.decode()
    assert not Reflection.objects.exists()
    world.flag.refresh_from_db()
    assert world.flag.status == FlagStatus.OPEN


def test_nothing_yet_stands_alone(client, world):
    strategies = [world.option("nothing_yet").pk, world.option("validate").pk]
    response = reflect(
        as_user(client, world.tess), world.flag, answers(world, strategies=strategies)
    )
    assert response.status_code == 400
    assert response.context["form"].errors["strategies"] == [
        "“Nothing yet” cannot be ticked together with something you did."
    ]
    assert not Reflection.objects.exists()


def test_another_organisations_options_are_refused(client, world):
    foreign = world.option("withdrawal", org=world.other_org)
    response = reflect(as_user(client, world.tess), world.flag, answers(world, marker=foreign.pk))
    assert response.status_code == 400
    assert response.context["form"].errors["marker"] == [
        "That choice is not offered by your organisation."
    ]
    foreign_strategy = world.option("clarify", org=world.other_org)
    response = reflect(client, world.flag, answers(world, strategies=[foreign_strategy.pk]))
    assert response.context["form"].errors["strategies"] == [
        "That choice is not offered by your organisation."
    ]
    with pytest.raises(ValidationError) as refused:
        reflection_save(
            flag=world.flag,
            by=world.tess,
            marker=foreign,
            dimension="bond",
            strategies=[foreign_strategy],
        )
    assert set(refused.value.message_dict) == {"marker", "strategies"}
    assert not Reflection.objects.exists()


def test_a_hidden_option_is_refused_for_new_answers_but_kept_on_old_ones(client, world):
    http = as_user(client, world.tess)
    reflect(http, world.flag, answers(world))
    ReflectionOption.objects.filter(pk=world.option("withdrawal").pk).update(active=False)
    ReflectionOption.objects.filter(pk=world.option("validate").pk).update(active=False)
    # Revising the note keeps the marker the organisation has since hidden.
    response = reflect(http, world.flag, answers(world, note="Later: it came up again."))
    assert response.status_code == 302
    assert Reflection.objects.get().marker.code == "withdrawal"
    flag = world.tension_flag()
    response = reflect(http, flag, answers(world))
    assert response.context["form"].errors["marker"] == [
        "That choice is not offered by your organisation."
    ]
    response = reflect(
        http,
        flag,
        answers(world, marker=world.option("both").pk, strategies=[world.option("validate").pk]),
    )
    assert response.status_code == 400
    assert not Reflection.objects.filter(flag=flag).exists()


def test_a_flag_of_another_kind_takes_no_reflection(client, world):
    low = rate(world.sessions[3], "session-adult", "8 8 8 8").flags
    flag = next(f for f in low if f.kind == "low_alliance")
    http = as_user(client, world.tess)
    assert http.get(reverse("flag_reflection", args=[flag.pk])).status_code == 404
    assert reflect(http, flag, answers(world)).status_code == 404
    with pytest.raises(ValidationError, match="rupture or a reported tension"):
        reflection_save(
            flag=flag,
            by=world.tess,
            marker=world.option("withdrawal"),
            dimension="bond",
            strategies=[world.option("clarify")],
        )
    assert not Reflection.objects.exists()


# Who writes, who reads


def test_only_the_clients_own_therapist_writes(client, world):
    outsider_admin = factories.user(world.other_org, role=Role.ADMIN)
    for user, status in (
        (world.cleo, 404),  # does not see the client
        (outsider_admin, 404),
        (world.sue, 403),  # sees the flag, reads the reflection, does not write it
        (world.ada, 403),
    ):
        assert reflect(as_user(client, user), world.flag, answers(world)).status_code == status
    assert not Reflection.objects.exists()
    world.flag.refresh_from_db()
    assert world.flag.status == FlagStatus.OPEN


def test_the_supervisor_and_the_admin_read_what_was_written(client, world):
    url = reverse("flag_reflection", args=[world.flag.pk])
    response = as_user(client, world.sue).get(url)
    assert response.status_code == 200 and response.context["form"] is None
    assert "has not written a reflection on this flag yet" in response.content.decode()
    reflect(as_user(client, world.tess), world.flag, answers(world))
    for reader in (world.sue, world.ada):
        page = as_user(client, reader).get(url).content.decode()
        assert "Withdrawal: the client moved away" in page
        assert "She went quiet when I set the homework." in page
        assert "Clarified a misunderstanding" in page
        assert 'name="marker"' not in page
    assert as_user(client, world.cleo).get(url).status_code == 404


def test_every_look_and_every_save_is_recorded(client, world):
    http = as_user(client, world.tess)
    http.get(reverse("flag_reflection", args=[world.flag.pk]))
    reflect(http, world.flag, answers(world, marker=None))  # refused: the page is shown again
    reflect(http, world.flag, answers(world, acknowledge=None))
    as_user(client, world.sue).get(reverse("flag_reflection", args=[world.flag.pk]))
    entries = AuditEntry.objects.filter(detail="R-1").exclude(action=Action.CLIENT_VIEWED)
    assert [(e.actor.username, e.action, e.object_type) for e in entries.order_by("pk")] == [
        ("tess", Action.REFLECTION_VIEWED, "flag"),
        ("tess", Action.REFLECTION_VIEWED, "flag"),
        ("tess", Action.REFLECTION_SAVED, "reflection"),
        ("sue", Action.REFLECTION_VIEWED, "flag"),
    ]
    assert all(entry.organization_id == world.org.pk for entry in entries)


# On the flag lists


def test_the_client_page_offers_the_reflection_then_shows_it(client, world):
    http = as_user(client, world.tess)
    url = reverse("client_detail", args=[world.client.pk])
    page = http.get(url).content.decode()
    assert "Reflect on this" in page and 'data-testid="reflection-summary"' not in page
    assert "Waiting for the next sessions" in page
    reflect(http, world.flag, answers(world, acknowledge=None))
    page = http.get(url).content.decode()
    assert "Edit reflection" in page and "Reflect on this" not in page
    assert (
        "Withdrawal: the client moved away (went quiet, vague, agreed too easily) · Tasks · "
        "Clarified a misunderstanding; Explained the rationale for the task or goal"
    ) in page
    # The supervisor reads it and is not asked to write.
    page = as_user(client, world.sue).get(url).content.decode()
    assert "Read the reflection" in page
    assert "Edit reflection" not in page and "Reflect on this" not in page


def test_the_rupture_state_shows_on_the_flag_and_goes_when_the_row_does(client, world):
    http = as_user(client, world.tess)
    result = reverse("rating_result", args=[world.flag.rating_id])
    url = reverse("client_detail", args=[world.client.pk])
    rate(world.sessions[3], "session-adult", BACK)
    for page in (http.get(url), http.get(result)):
        assert "Repaired at session 4" in page.content.decode()
    Rupture.objects.update(status="unrepaired", repaired_number=None, sessions_to_repair=None)
    assert "Unrepaired" in http.get(url).content.decode()
    Rupture.objects.all().delete()
    for page in (http.get(url), http.get(result)):
        assert 'data-testid="rupture-state"' not in page.content.decode()
        assert "Reflect on this" in page.content.decode()  # the flag itself stays


def test_the_result_view_offers_the_reflection(client, world):
    http = as_user(client, world.tess)
    result = reverse("rating_result", args=[world.flag.rating_id])
    page = http.get(result).content.decode()
    assert "Waiting for the next sessions" in page and "Reflect on this" in page
    assert f"/flags/{world.flag.pk}/reflection/?next={result}" in page
    reflect(http, world.flag, answers(world))
    assert "Edit reflection" in http.get(result).content.decode()
    page = as_user(client, world.ada).get(result).content.decode()
    assert "Reflect on this" not in page and "Read the reflection" in page


def test_the_inbox_offers_acknowledging_with_a_reflection_to_whoever_treats_the_client(
    client, world
):
    own = factories.client(world.org, world.sue, code="S-1")
    session = factories.therapy_session(factories.episode(own))
    answer = TensionAnswer(tension=True, resolution=1)
    own_flag = rate(session, "session-adult", HIGH, tension=answer).flags[0]
    response = as_user(client, world.sue).get(reverse("inbox"))
    assert response.context["reflect_on"] == {own_flag.pk}
    page = response.content.decode()
    assert page.count("Acknowledge with a reflection") == 1
    assert f"/flags/{own_flag.pk}/reflection/" in page
    assert f"/flags/{world.flag.pk}/reflection/" not in page  # Tess's client: Sue only reads
    assert "Waiting for the next sessions" in page
    reflect(as_user(client, world.tess), world.flag, answers(world, acknowledge=None))
    page = as_user(client, world.sue).get(reverse("inbox")).content.decode()
    assert "Read the reflection" in page and "Tasks · Clarified a misunderstanding" in page


# Query counts: flat however many reflections there are


def count_queries(http, url) -> int:
    http.get(url)
    cache.clear()  # the pages' cached results: count what computes them
    with CaptureQueriesContext(connection) as captured:
        assert http.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", ["client", "inbox"])
def test_the_flag_lists_read_reflections_and_ruptures_in_a_fixed_number_of_queries(
    client, world, page
):
    reflect(as_user(client, world.tess), world.flag, answers(world, acknowledge=None))
    viewer = world.tess if page == "client" else world.sue
    url = reverse("client_detail", args=[world.client.pk]) if page == "client" else reverse("inbox")
    counts = []
    for sessions in ([3], [4, 5]):  # one more reflected tension flag, then three
        for index in sessions:
            flag = world.tension_flag(index)
            reflect(as_user(client, world.tess), flag, answers(world, acknowledge=None))
        counts.append(count_queries(as_user(client, viewer), url))
    assert Reflection.objects.count() == 4
    # The page's pinned queries on a miss (which includes the flags the viewer may write on),
    # plus one for the reflections' strategies.
    pinned = MISSES[page]
    assert counts == [pinned + 1, pinned + 1]
