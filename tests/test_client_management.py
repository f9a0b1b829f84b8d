"""Therapists add their clients, change their details, archive and reactivate them, in the app:
codes unique in the organisation, bad input refused in words with nothing stored, each change
audited, and nobody reaching another organisation's clients."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client as HttpClient
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.access import clients_visible_to
from alliance_app.clinic.models import Client, Episode
from alliance_app.clinic.services import (
    CODE_PATTERN,
    client_code_suggest,
    client_create,
    client_update,
)
from alliance_app.feedback.handover import client_hand_over
from alliance_app.feedback.models import AllianceMonth, OutcomeEnds
from tests import factories
from tests.factories import logged_in

pytestmark = pytest.mark.django_db


TOO_LONG_OR_NAME = (
    "A client code is 1 to 32 letters, digits, dots, hyphens or underscores, starting with a "
    "letter or digit: no spaces, and no names."
)


def new_client(http: HttpClient, **changes):
    data = {"code": "K-100", "age_band": "adult", "language": "en"} | changes
    return http.post(reverse("client_new"), data)


def test_a_therapist_adds_a_client_of_their_own_without_an_episode(therapist):
    response = new_client(logged_in(therapist), primary_therapist=therapist.pk)
    client = Client.objects.get(code="K-100")
    assert response.status_code == 302
    assert response.url == reverse("client_detail", args=[client.pk])
    assert (client.primary_therapist, client.age_band, client.language, client.active) == (
        therapist,
        "adult",
        "en",
        True,
    )
    assert not Episode.objects.filter(client=client).exists()
    entry = AuditEntry.objects.get(action=Action.CLIENT_CREATED)
    assert (entry.actor, entry.object_id, entry.detail) == (therapist, str(client.pk), "K-100")


def test_the_first_session_opens_the_episode(therapist):
    http = logged_in(therapist)
    new_client(http, primary_therapist=therapist.pk)
    client = Client.objects.get(code="K-100")
    response = http.post(reverse("session_start", args=[client.pk]), {"format": "individual"})
    assert response.status_code == 302
    episode = Episode.objects.get(client=client)
    assert (episode.therapist, episode.sessions.count(), episode.is_open) == (therapist, 1, True)


def test_the_form_suggests_a_free_code_and_the_therapist_themself(org, therapist):
    factories.user(org, username="colleague")
    response = logged_in(therapist).get(reverse("client_new"))
    form = response.context["form"]
    suggested = form.initial["code"]
    assert CODE_PATTERN.fullmatch(suggested) and suggested.startswith("C-")
    assert form.initial["primary_therapist"] == therapist.pk
    # A therapist gives clients to themself only.
    assert list(form.fields["primary_therapist"].queryset) == [therapist]


def test_suggested_codes_are_free(org, therapist):
    taken = {factories.client(org, therapist, code=f"T-{n}").code for n in range(3)}
    codes = {client_code_suggest(organization=org) for _n in range(50)}
    assert not codes & taken
    assert all(CODE_PATTERN.fullmatch(code) for code in codes)


def test_a_code_used_in_the_organisation_is_refused_in_any_case(org, therapist):
    factories.client(org, therapist, code="K-100")
    response = new_client(logged_in(therapist), code="k-100", primary_therapist=therapist.pk)
    assert response.status_code == 200
    assert response.context["form"].errors["code"] == [
        "The code k-100 is already used in this organisation; choose another."
    ]
    assert Client.objects.count() == 1
    assert not AuditEntry.objects.filter(action=Action.CLIENT_CREATED).exists()


def test_the_same_code_is_free_in_another_organisation(org, therapist):
    other = factories.organization("Other")
    factories.client(other, factories.user(other), code="K-100")
    new_client(logged_in(therapist), primary_therapist=therapist.pk)
    assert Client.objects.filter(code="K-100").count() == 2


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"code": ""}, "code", "Give the client a code."),
        ({"code": "Anna Berg"}, "code", TOO_LONG_OR_NAME),
        ({"code": "K" * 33}, "code", TOO_LONG_OR_NAME),
        ({"age_band": "senior"}, "age_band", "Choose one of the age bands listed."),
        ({"language": "de"}, "language", "Choose one of the languages listed."),
    ],
)
def test_bad_details_are_refused_in_words_and_nothing_is_stored(therapist, changes, field, message):
    response = new_client(logged_in(therapist), primary_therapist=therapist.pk, **changes)
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert "Nothing was saved" in response.content.decode()
    assert not Client.objects.exists()


def test_an_unknown_therapist_is_refused(org, therapist):
    other = factories.organization("Other")
    stranger = factories.user(other)
    colleague = factories.user(org, username="colleague")
    http = logged_in(therapist)
    for pk in (stranger.pk, colleague.pk, 999999):
        response = new_client(http, primary_therapist=pk)
        assert response.context["form"].errors["primary_therapist"] == [
            "That therapist is unknown here: choose one of the therapists listed."
        ]
    assert not Client.objects.exists()


def test_a_supervisor_gives_a_client_to_a_therapist_of_their_team(org):
    team = factories.team(org, "North")
    member = factories.user(org, team=team, username="member")
    outside = factories.user(org, username="outside")
    supervisor = factories.user(org, role=Role.SUPERVISOR, username="sup")
    supervisor.membership.supervised_teams.add(team)
    http = logged_in(supervisor)
    assert new_client(http, primary_therapist=outside.pk).status_code == 200
    assert new_client(http, primary_therapist=member.pk).status_code == 302
    assert Client.objects.get().primary_therapist == member


def test_an_admin_chooses_any_therapist_of_the_organisation_and_no_admin(org, therapist):
    admin = factories.user(org, role=Role.ADMIN, username="ada")
    response = logged_in(admin).get(reverse("client_new"))
    form = response.context["form"]
    assert "primary_therapist" not in form.initial
    assert list(form.fields["primary_therapist"].queryset) == [therapist]
    assert new_client(logged_in(admin), primary_therapist=therapist.pk).status_code == 302


def test_the_service_refuses_a_therapist_of_another_organisation(org):
    stranger = factories.user(factories.organization("Other"))
    with pytest.raises(ValidationError) as error:
        client_create(
            organization=org,
            code="K-1",
            age_band="adult",
            language="en",
            primary_therapist=stranger,
        )
    assert error.value.message_dict == {
        "primary_therapist": [
            "This therapist is not a therapist or supervisor of this organisation."
        ]
    }
    assert not Client.objects.exists()


def test_editing_changes_code_band_and_language_and_is_audited(org, therapist, adult):
    http = logged_in(therapist)
    url = reverse("client_edit", args=[adult.pk])
    assert http.get(url).status_code == 200
    assert AuditEntry.objects.filter(action=Action.CLIENT_VIEWED, object_id=str(adult.pk)).exists()
    response = http.post(url, {"code": "K-200", "age_band": "adolescent", "language": "nb"})
    assert response.status_code == 302
    adult.refresh_from_db()
    assert (adult.code, adult.age_band, adult.language) == ("K-200", "adolescent", "nb")
    entry = AuditEntry.objects.get(action=Action.CLIENT_CHANGED)
    assert (entry.object_id, entry.detail) == (str(adult.pk), "K-200")


def test_an_edit_to_a_taken_code_stores_nothing(org, therapist, adult):
    factories.client(org, therapist, code="TAKEN")
    before = (adult.code, adult.age_band, adult.language)
    response = logged_in(therapist).post(
        reverse("client_edit", args=[adult.pk]),
        {"code": "taken", "age_band": "child", "language": "es"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["code"] == [
        "The code taken is already used in this organisation; choose another."
    ]
    adult.refresh_from_db()
    assert (adult.code, adult.age_band, adult.language) == before
    assert not AuditEntry.objects.filter(action=Action.CLIENT_CHANGED).exists()


def test_a_client_keeps_their_own_code(adult):
    client_update(client=adult, code=adult.code.lower(), age_band="child", language="en")
    adult.refresh_from_db()
    assert adult.age_band == "child"


def test_archiving_and_reactivating_are_audited_once_each(therapist, adult):
    http = logged_in(therapist)
    url = reverse("client_active", args=[adult.pk])
    for value in ("0", "0", "1"):
        assert http.post(url, {"active": value}).status_code == 302
    adult.refresh_from_db()
    assert adult.active
    actions = list(
        AuditEntry.objects.filter(object_id=str(adult.pk))
        .filter(action__in=[Action.CLIENT_ARCHIVED, Action.CLIENT_REACTIVATED])
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == [Action.CLIENT_ARCHIVED, Action.CLIENT_REACTIVATED]


def test_an_archived_client_leaves_the_caseload(therapist, adult):
    http = logged_in(therapist)
    # Followed to the client page, which shows the message.
    http.post(reverse("client_active", args=[adult.pk]), {"active": "0"}, follow=True)
    adult.refresh_from_db()
    assert not adult.active
    page = http.get(reverse("caseload")).content.decode()
    assert adult.code not in page
    assert 'data-testid="client-new-first"' in page


def test_a_bad_archive_request_changes_nothing(therapist, adult):
    response = logged_in(therapist).post(
        reverse("client_active", args=[adult.pk]), {"active": "maybe"}, follow=True
    )
    assert "Say whether to archive or reactivate the client." in response.content.decode()
    adult.refresh_from_db()
    assert adult.active


def test_another_organisation_cannot_reach_the_client(adult):
    other = factories.organization("Other")
    http = logged_in(factories.user(other, role=Role.ADMIN))
    edit = reverse("client_edit", args=[adult.pk])
    assert http.get(edit).status_code == 404
    assert http.post(edit, {"code": "X", "age_band": "adult", "language": "en"}).status_code == 404
    active = reverse("client_active", args=[adult.pk])
    assert http.post(active, {"active": "0"}).status_code == 404
    adult.refresh_from_db()
    assert adult.active and adult.code != "X"


@pytest.fixture
def team_world(org, therapist, adult):
    """`therapist` and `newcomer` in a team that `supervisor` supervises; the client `adult` in
    an open episode with an outcome rating and a session rating."""
    team = factories.team(org, "North")
    therapist.membership.team = team
    therapist.membership.save()
    newcomer = factories.user(org, team=team, username="newcomer")
    supervisor = factories.user(org, role=Role.SUPERVISOR, username="sup")
    supervisor.membership.supervised_teams.add(team)
    episode = factories.episode(adult)
    factories.rate(factories.therapy_session(episode, 1), "outcome-adult", "5 5 5 5")
    factories.rate(factories.therapy_session(episode, 2), "session-adult", "8 8 8 8")
    return {"newcomer": newcomer, "supervisor": supervisor, "episode": episode}


def test_handing_over_moves_the_client_visibility_and_summary_rows(therapist, adult, team_world):
    newcomer, episode = team_world["newcomer"], team_world["episode"]
    assert OutcomeEnds.objects.get(episode=episode).therapist == therapist
    http = logged_in(team_world["supervisor"])
    url = reverse("client_hand_over", args=[adult.pk])
    assert http.post(url, {"therapist": newcomer.pk}).status_code == 302
    adult.refresh_from_db()
    episode.refresh_from_db()
    assert (adult.primary_therapist, episode.therapist) == (newcomer, newcomer)
    assert OutcomeEnds.objects.get(episode=episode).therapist == newcomer
    assert list(
        AllianceMonth.objects.filter(episode=episode).values_list("therapist", "count", "concerns")
    ) == [(newcomer.pk, 1, 1)]
    assert clients_visible_to(newcomer.membership).filter(pk=adult.pk).exists()
    assert not clients_visible_to(therapist.membership).filter(pk=adult.pk).exists()
    entry = AuditEntry.objects.get(action=Action.CLIENT_HANDED_OVER)
    assert (entry.object_id, entry.detail) == (str(adult.pk), adult.code)


def test_a_closed_episode_stays_with_its_therapist(therapist, adult, team_world):
    newcomer, episode = team_world["newcomer"], team_world["episode"]
    episode.closed, episode.closure = episode.opened, "planned"
    episode.save()
    assert client_hand_over(client=adult, therapist=newcomer) is None
    episode.refresh_from_db()
    assert episode.therapist == therapist
    assert OutcomeEnds.objects.get(episode=episode).therapist == therapist
    # The former therapist still sees the client through the episode they held.
    assert clients_visible_to(therapist.membership).filter(pk=adult.pk).exists()


def test_a_hand_over_to_the_same_or_an_unseen_therapist_is_refused(
    org, therapist, adult, team_world
):
    outsider = factories.user(org, username="outsider")  # in no team the supervisor sees
    stranger = factories.user(factories.organization("Other"))
    http = logged_in(team_world["supervisor"])
    url = reverse("client_hand_over", args=[adult.pk])
    expected = {
        therapist.pk: f"{adult.code} is already this therapist's client.",
        outsider.pk: "That therapist is unknown here: choose one of the therapists listed.",
        stranger.pk: "That therapist is unknown here: choose one of the therapists listed.",
    }
    for pk, message in expected.items():
        response = http.post(url, {"therapist": pk})
        assert response.status_code == 200
        assert response.context["form"].errors["therapist"] == [message]
    adult.refresh_from_db()
    assert adult.primary_therapist == therapist
    assert not AuditEntry.objects.filter(action=Action.CLIENT_HANDED_OVER).exists()
    with pytest.raises(ValidationError):
        client_hand_over(client=adult, therapist=stranger)


def test_deactivated_and_invited_colleagues_are_not_offered_nor_taken(org, adult, team_world):
    """A colleague who cannot log in cannot take a client: not in the list, refused if posted."""
    team = team_world["newcomer"].membership.team
    gone = factories.user(org, team=team, username="gone")
    gone.is_active = False
    gone.save()
    http = logged_in(team_world["supervisor"])
    url = reverse("client_hand_over", args=[adult.pk])
    offered = http.get(url).context["form"].fields["therapist"].queryset
    assert team_world["newcomer"] in offered
    assert gone not in offered
    response = http.post(url, {"therapist": gone.pk})
    assert response.context["form"].errors["therapist"] == [
        "That therapist is unknown here: choose one of the therapists listed."
    ]
    adult.refresh_from_db()
    assert adult.primary_therapist != gone


def test_a_therapist_cannot_hand_over_their_client(therapist, adult, team_world):
    url = reverse("client_hand_over", args=[adult.pk])
    response = logged_in(therapist).post(url, {"therapist": team_world["newcomer"].pk})
    assert response.status_code == 403
    adult.refresh_from_db()
    assert adult.primary_therapist == therapist
    page = logged_in(therapist).get(reverse("client_detail", args=[adult.pk])).content.decode()
    assert 'data-testid="client-hand-over"' not in page


def test_an_admin_finds_new_client_in_the_menu(org):
    admin = factories.user(org, role=Role.ADMIN, username="ada")
    response = logged_in(admin).get(reverse("overview"))
    assert {
        "url": reverse("client_new"),
        "label": "New client",
        "active": False,
    } in next(
        item["menu"]
        for item in response.context["navigation"]
        if item.get("menu") and str(item["label"]) == "Data"
    )
