"""Every URL × every actor, with real object ids, against the status each should get.

The list of URLs comes from the URL configuration itself: a new URL without a row here fails
`test_the_matrix_covers_every_url`. The Django admin is one row (its index); its per-model
tenant isolation is tested in test_tenant_isolation.py.
"""

import secrets
from datetime import date

import pytest
from django.core import signing
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from alliance_app.accounts.models import Invitation, Role
from alliance_app.clinic.invitations import token_hash as invitation_token_hash
from alliance_app.feedback.links import remote_link_create
from alliance_app.feedback.views import TABLET_SALT
from alliance_app.measures import TensionAnswer
from alliance_app.research.models import CaseSet, Training, TrainingKind
from tests import factories
from tests.factories import expected_band_load, rate

pytestmark = pytest.mark.django_db

ACTORS = (
    "anonymous",
    "link_holder",
    "therapist",
    "colleague",
    "supervisor",
    "other_supervisor",
    "admin",
    "other_admin",
)


class World:
    """Two organisations whose rows interleave, so an id from one is a plausible id in the other."""

    def __init__(self):
        self.org, self.other_org = factories.organization("A"), factories.organization("B")
        north, elsewhere = factories.team(self.org, "North"), factories.team(self.other_org, "B1")
        south = factories.team(self.org, "South")
        self.users = {
            "therapist": factories.user(self.org, team=north, username="tom-a"),
            "colleague": factories.user(self.org, team=north, username="cleo-a"),
            "supervisor": factories.user(self.org, role=Role.SUPERVISOR, username="sue-a"),
            "other_supervisor": factories.user(self.org, role=Role.SUPERVISOR, username="sid-a"),
            "admin": factories.user(self.org, role=Role.ADMIN, username="ada-a"),
            "other_admin": factories.user(self.other_org, role=Role.ADMIN, username="bob-b"),
        }
        self.users["supervisor"].membership.supervised_teams.add(north)
        self.users["other_supervisor"].membership.supervised_teams.add(south)
        for admin in ("admin", "other_admin"):
            self.users[admin].is_staff = True
            self.users[admin].save()
        outsider = factories.user(self.other_org, team=elsewhere, username="otto-b")
        ids = {}
        for owner, org, code in (
            (self.users["therapist"], self.org, "ZQA-1"),
            (outsider, self.other_org, "ZQB-1"),
        ):
            client = factories.client(org, owner, code=code)
            session = factories.therapy_session(factories.episode(client))
            rating = rate(session, "session-adult", "8 8 8 8").rating
            ids[code] = (client, session, rating)
        self.client, self.session, self.rating = ids["ZQA-1"]
        self.flag = self.rating.flags.get()
        # A flag that takes a reflection: the client felt tension in session 2.
        second = factories.therapy_session(self.session.episode, number=2)
        tension = TensionAnswer(tension=True, resolution=2)
        self.tension_flag = rate(second, "session-adult", "9 9 9 9", tension=tension).flags[0]
        created = remote_link_create(
            session=self.session, scale="outcome", created_by=self.users["therapist"]
        )
        self.link, self.token = created.link, created.token
        # The other organisation's link, which its admin's autocomplete may offer.
        remote_link_create(session=ids["ZQB-1"][1], scale="outcome", created_by=outsider)
        self.tablet_token = signing.dumps(
            [self.session.pk, "session-adult", "client", ""], salt=TABLET_SALT
        )


def row(method, url, *statuses):
    assert len(statuses) == len(ACTORS)
    return method, url, dict(zip(ACTORS, statuses, strict=True))


OUT = (302, 302)  # anonymous and the link holder are sent to log in


def a_training(w: World):
    """A training of the first organisation, attended by its therapist."""
    training = Training.objects.create(
        organization=w.org, title="Workshop", kind=TrainingKind.WORKSHOP, date=date(2026, 4, 15)
    )
    training.attendees.add(w.users["therapist"])
    return training


def a_band(w: World):
    """Parameters of the first organisation's band, loaded from a file (a new version each)."""
    return expected_band_load(w.org)


def a_link_email(w: World):
    """A rating link e-mail waiting to be sent to the first organisation's client."""
    from datetime import timedelta

    from django.utils import timezone

    from alliance_app.feedback.models import RatingLinkEmail

    return RatingLinkEmail.objects.create(
        session=w.session,
        instrument="outcome-adult",
        send_at=timezone.now() + timedelta(hours=1),
        created_by=w.users["therapist"],
    )


def a_case_set(w: World):
    """A case set of the first organisation (its cases do not change who may open it)."""
    return CaseSet.objects.create(organization=w.org, title="Week 3")


def an_invitation(w: World) -> tuple:
    """An open invitation of the first organisation, and the token of its link."""
    token = secrets.token_urlsafe(16)
    invited = factories.user(w.org)
    invitation = Invitation.objects.create(
        organization=w.org,
        user=invited,
        email=f"{invited.username}@a.example",
        token_hash=invitation_token_hash(token),
    )
    return invitation, token


MATRIX = {
    # name: (method, URL from the world, statuses in ACTORS order)
    "home": row("get", lambda w: "/", *OUT, 302, 302, 302, 302, 302, 302),
    "login": row("get", lambda w: "/login/", 200, 200, 302, 302, 302, 302, 302, 302),
    "logout": row("post", lambda w: "/logout/", 302, 302, 302, 302, 302, 302, 302, 302),
    "healthz": row("get", lambda w: "/healthz", *(200,) * 8),
    "two_factor_setup": row("get", lambda w: reverse("two_factor_setup"), *OUT, *(200,) * 6),
    "two_factor_verify": row("get", lambda w: reverse("two_factor_verify"), *OUT, *(200,) * 6),
    # Recovery codes need a verified login; a member without an authenticator is sent to set one up.
    "two_factor_recovery": row("get", lambda w: reverse("two_factor_recovery"), *(302,) * 8),
    # Password reset and invitation links need no login; a bogus reset link gets its own page.
    "password_reset": row("get", lambda w: reverse("password_reset"), *(200,) * 8),
    "password_reset_done": row("get", lambda w: reverse("password_reset_done"), *(200,) * 8),
    "password_reset_confirm": row(
        "get", lambda w: reverse("password_reset_confirm", args=["MQ", "x-y"]), *(200,) * 8
    ),
    "password_reset_complete": row(
        "get", lambda w: reverse("password_reset_complete"), *(200,) * 8
    ),
    "invitation_accept": row(
        "get", lambda w: reverse("invitation_accept", args=[an_invitation(w)[1]]), *(200,) * 8
    ),
    "caseload": row("get", lambda w: "/caseload/", *OUT, 200, 200, 200, 200, 403, 403),
    "language_setting": row("get", lambda w: reverse("language_setting"), *OUT, *(200,) * 6),
    "inbox": row("get", lambda w: "/inbox/", *OUT, 403, 403, 200, 200, 200, 200),
    "team_statistics": row("get", lambda w: "/team/", *OUT, 403, 403, 200, 200, 200, 200),
    "overview": row("get", lambda w: "/overview/", *OUT, 403, 403, 403, 403, 200, 200),
    # Admins and supervisors record trainings and read their evaluations, of their own
    # organisation only.
    "training_list": row("get", lambda w: "/trainings/", *OUT, 403, 403, 200, 200, 200, 200),
    "training_new": row("get", lambda w: "/trainings/new/", *OUT, 403, 403, 200, 200, 200, 200),
    "training_edit": row(
        "get",
        lambda w: reverse("training_edit", args=[a_training(w).pk]),
        *OUT,
        403,
        403,
        200,
        200,
        200,
        404,
    ),
    "training_evaluation": row(
        "get",
        lambda w: reverse("training_evaluation", args=[a_training(w).pk]),
        *OUT,
        403,
        403,
        200,
        200,
        200,
        404,
    ),
    # Supervisors and admins put teaching case sets together; therapists get 403.
    "case_set_list": row("get", lambda w: "/case-sets/", *OUT, 403, 403, 200, 200, 200, 200),
    "case_set_new": row("get", lambda w: "/case-sets/new/", *OUT, 403, 403, 200, 200, 200, 200),
    "case_set_detail": row(
        "get",
        lambda w: reverse("case_set_detail", args=[a_case_set(w).pk]),
        *OUT,
        403,
        403,
        200,
        200,
        200,
        404,
    ),
    "case_set_pdf": row(
        "get",
        lambda w: reverse("case_set_pdf", args=[a_case_set(w).pk]),
        *OUT,
        403,
        403,
        200,
        200,
        200,
        404,
    ),
    # A therapist is sent to their own supervision page; the others see whom they may open.
    "supervision_index": row(
        "get", lambda w: reverse("supervision_index"), *OUT, 302, 302, 200, 200, 200, 200
    ),
    # The therapist's own page, their team's supervisor and the admin; not a colleague.
    "supervision": row(
        "get",
        lambda w: reverse("supervision", args=[w.users["therapist"].pk]),
        *OUT,
        200,
        404,
        200,
        404,
        200,
        404,
    ),
    "flag_action": row(
        "post",
        lambda w: reverse("flag_action", args=[w.flag.pk, "acknowledge"]),
        *OUT,
        302,
        404,
        302,
        404,
        403,
        404,
    ),
    # The therapist writes it; the supervisor and admin who see the flag read it.
    "flag_reflection": row(
        "get",
        lambda w: reverse("flag_reflection", args=[w.tension_flag.pk]),
        *OUT,
        200,
        404,
        200,
        404,
        200,
        404,
    ),
    # Supervisors and admins read the stored fits: the organisation's, and their teams'.
    "alliance_outcome": row(
        "get", lambda w: reverse("alliance_outcome"), *OUT, 403, 403, 200, 200, 200, 200
    ),
    "alliance_outcome_team": row(
        "get",
        lambda w: reverse("alliance_outcome_team", args=[w.users["therapist"].membership.team_id]),
        *OUT,
        403,
        403,
        200,
        404,
        200,
        404,
    ),
    # Admins keep the expected-response band; supervisors read the page and download the
    # parameters; therapists get 403; each organisation sees its own fits only.
    "expected_response": row(
        "get", lambda w: reverse("expected_response"), *OUT, 403, 403, 200, 200, 200, 200
    ),
    "expected_fit": row(
        "post", lambda w: reverse("expected_fit"), *OUT, 403, 403, 403, 403, 302, 302
    ),
    # The admin's empty form is invalid: 400.
    "expected_upload": row(
        "post", lambda w: reverse("expected_upload"), *OUT, 403, 403, 403, 403, 400, 400
    ),
    "expected_download": row(
        "get",
        lambda w: reverse("expected_download", args=[a_band(w).version]),
        *OUT,
        403,
        403,
        200,
        200,
        200,
        404,
    ),
    "exports": row("get", lambda w: "/exports/", *OUT, *(200,) * 6),
    "organization_settings": row(
        "get", lambda w: reverse("organization_settings"), *OUT, 403, 403, 403, 403, 200, 200
    ),
    "export": row("get", lambda w: "/exports/ratings.csv", *OUT, *(200,) * 6),
    # The organisation's ratings as FHIR NDJSON: admins only.
    "fhir_export": row("get", lambda w: reverse("fhir_export"), *OUT, 403, 403, 403, 403, 200, 200),
    "research_export": row(
        "get", lambda w: reverse("research_export"), *OUT, 403, 403, 403, 403, 200, 200
    ),
    "research_export_download": row(
        "get", lambda w: reverse("research_export_download"), *OUT, 403, 403, 403, 403, 200, 200
    ),
    # Every member brings in paper ratings, of the clients they see (`feedback.imports`).
    "paper_import": row("get", lambda w: reverse("paper_import"), *OUT, *(200,) * 6),
    "paper_import_template": row(
        "get", lambda w: reverse("paper_import_template"), *OUT, *(200,) * 6
    ),
    # Every member brings in FHIR ratings, of the clients they see (`feedback.fhir`).
    "fhir_import": row("get", lambda w: reverse("fhir_import"), *OUT, *(200,) * 6),
    # Every member adds clients, in their own organisation.
    "client_new": row("get", lambda w: reverse("client_new"), *OUT, *(200,) * 6),
    "client_detail": row(
        "get", lambda w: f"/clients/{w.client.pk}/", *OUT, 200, 404, 200, 404, 200, 404
    ),
    # Whoever sees the client changes their details and archives them.
    "client_edit": row(
        "get",
        lambda w: reverse("client_edit", args=[w.client.pk]),
        *OUT,
        200,
        404,
        200,
        404,
        200,
        404,
    ),
    # Supervisors and admins hand a client they see to another therapist.
    "client_hand_over": row(
        "get",
        lambda w: reverse("client_hand_over", args=[w.client.pk]),
        *OUT,
        403,
        404,
        200,
        404,
        200,
        404,
    ),
    "client_active": row(
        "post",
        lambda w: reverse("client_active", args=[w.client.pk]),
        *OUT,
        302,
        404,
        302,
        404,
        302,
        404,
    ),
    "session_start": row(
        "post",
        lambda w: reverse("session_start", args=[w.client.pk]),
        *OUT,
        302,
        404,
        403,
        404,
        403,
        404,
    ),
    "episode_close": row(
        "post",
        lambda w: reverse("episode_close", args=[w.session.episode_id]),
        *OUT,
        302,
        404,
        403,
        404,
        403,
        404,
    ),
    "client_export": row(
        "get",
        lambda w: reverse("client_export", args=[w.client.pk]),
        *OUT,
        403,
        404,
        403,
        404,
        200,
        404,
    ),
    # A client's ratings as FHIR: for whoever sees the client.
    "client_fhir": row(
        "get",
        lambda w: reverse("client_fhir", args=[w.client.pk]),
        *OUT,
        200,
        404,
        200,
        404,
        200,
        404,
    ),
    "client_delete": row(
        "get",
        lambda w: reverse("client_delete", args=[w.client.pk]),
        *OUT,
        403,
        404,
        403,
        404,
        200,
        404,
    ),
    "hand_over": row(
        "post",
        lambda w: reverse("hand_over", args=[w.session.pk]),
        *OUT,
        302,
        404,
        403,
        404,
        403,
        404,
    ),
    "link_create": row(
        "post",
        lambda w: reverse("link_create", args=[w.session.pk]),
        *OUT,
        302,
        404,
        403,
        404,
        403,
        404,
    ),
    "link_detail": row(
        "get",
        lambda w: reverse("link_detail", args=[w.link.pk]),
        *OUT,
        200,
        404,
        200,
        404,
        200,
        404,
    ),
    # The client's e-mail address and the rating links e-mailed to them: their own therapist
    # only; a supervisor or admin who sees the client gets 403.
    "client_contact": row(
        "get",
        lambda w: reverse("client_contact", args=[w.client.pk]),
        *OUT,
        200,
        404,
        403,
        404,
        403,
        404,
    ),
    "link_emails": row(
        "get",
        lambda w: reverse("link_emails", args=[w.session.pk]),
        *OUT,
        200,
        404,
        403,
        404,
        403,
        404,
    ),
    "link_email_cancel": row(
        "post",
        lambda w: reverse("link_email_cancel", args=[a_link_email(w).pk]),
        *OUT,
        302,
        404,
        403,
        404,
        403,
        404,
    ),
    "rating_result": row(
        "get",
        lambda w: reverse("rating_result", args=[w.rating.pk]),
        *OUT,
        200,
        404,
        200,
        404,
        200,
        404,
    ),
    # Without client mode on, its pages send a member home.
    "client_rate": row("get", lambda w: "/rate/", *OUT, *(302,) * 6),
    "rate_thanks": row("get", lambda w: "/rate/thanks/", *OUT, *(302,) * 6),
    "unlock": row("get", lambda w: "/rate/unlock/", *OUT, *(302,) * 6),
    "rate_progress": row("get", lambda w: "/rate/progress/", *OUT, *(302,) * 6),
    "rate_submit": row(
        "post",
        lambda w: reverse("rate_submit", args=[w.tablet_token]),
        *OUT,
        400,
        404,
        403,
        404,
        403,
        404,  # the therapist's empty form is invalid: 400
    ),
    "remote_rate": row("get", lambda w: reverse("remote_rate", args=[w.token]), *(200,) * 8),
    "remote_thanks": row("get", lambda w: "/r-done/", *(200,) * 8),
    # Organisation admins keep their own organisation's staff and teams.
    "staff_list": row("get", lambda w: reverse("staff_list"), *OUT, 403, 403, 403, 403, 200, 200),
    "staff_edit": row(
        "get",
        lambda w: reverse("staff_edit", args=[w.users["therapist"].pk]),
        *OUT,
        403,
        403,
        403,
        403,
        200,
        404,
    ),
    # The admin's empty request says nothing to do: back to the colleague's page.
    "staff_active": row(
        "post",
        lambda w: reverse("staff_active", args=[w.users["therapist"].pk]),
        *OUT,
        403,
        403,
        403,
        403,
        302,
        404,
    ),
    "staff_invite": row(
        "get", lambda w: reverse("staff_invite"), *OUT, 403, 403, 403, 403, 200, 200
    ),
    # The admin's empty request sends the invitation again or withdraws it: back to the staff page.
    "invitation_resend": row(
        "post",
        lambda w: reverse("invitation_resend", args=[an_invitation(w)[0].pk]),
        *OUT,
        403,
        403,
        403,
        403,
        302,
        404,
    ),
    "invitation_withdraw": row(
        "post",
        lambda w: reverse("invitation_withdraw", args=[an_invitation(w)[0].pk]),
        *OUT,
        403,
        403,
        403,
        403,
        302,
        404,
    ),
    "team_list": row("get", lambda w: reverse("team_list"), *OUT, 403, 403, 403, 403, 200, 200),
    "team_edit": row(
        "get",
        lambda w: reverse("team_edit", args=[w.users["therapist"].membership.team_id]),
        *OUT,
        403,
        403,
        403,
        403,
        200,
        404,
    ),
    "team_merge": row(
        "get",
        lambda w: reverse("team_merge", args=[w.users["therapist"].membership.team_id]),
        *OUT,
        403,
        403,
        403,
        403,
        200,
        404,
    ),
    "audit_log": row("get", lambda w: reverse("audit_log"), *OUT, 403, 403, 403, 403, 200, 200),
    "audit_export": row(
        "get", lambda w: reverse("audit_export"), *OUT, 403, 403, 403, 403, 200, 200
    ),
    # Non-staff members are sent to the admin's own login page.
    "admin:index": row("get", lambda w: "/admin/", *OUT, 302, 302, 302, 302, 200, 200),
}


def url_names(patterns, namespace="") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                names.add("admin:index")
            else:
                names |= url_names(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            assert pattern.name, f"every URL has a name: {pattern.pattern}"
            names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)
    return names


def test_the_matrix_covers_every_url():
    assert url_names(get_resolver().url_patterns) == set(MATRIX)


def actor_client(world: World, actor: str) -> Client:
    http = Client()
    if actor == "link_holder":
        assert http.get(reverse("remote_rate", args=[world.token])).status_code == 200
    elif actor != "anonymous":
        http.force_login(world.users[actor])
    return http


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_actor_gets_the_expected_status(name):
    world = World()
    method, url, expected = MATRIX[name]
    got = {}
    for actor in ACTORS:
        response = getattr(actor_client(world, actor), method)(url(world))
        got[actor] = response.status_code
    assert got == expected
