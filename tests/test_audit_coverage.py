"""Every page that shows one client's data leaves an audit entry naming the client (SECURITY.md,
"Every look is traceable").

The pages come from the URL configuration: every URL that takes a record's id, and every page
of the Django admin about one record that belongs to a client. A new URL with an id fails
`test_every_url_with_an_id_is_walked` until it has a row here; a new page that shows a client's
data without recording it fails the walk.
"""

import re

import pytest
from django.contrib import admin
from django.test import Client as HttpClient
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from alliance_app.audit.models import AuditEntry
from alliance_app.clinic.models import Client
from tests import factories
from tests.factories import rate
from tests.test_access_matrix import World, a_link_email

pytestmark = pytest.mark.django_db


def therapist_with_a_rupture(world: World):
    """The supervision page names the clients whose ruptures it lists: give the world's client
    one (two steady sessions, then a fall), and name their therapist."""
    episode = world.session.episode
    after = episode.sessions.count()
    for offset, items in enumerate(("9.5 9.5 9.5 9.5", "9.5 9.5 9.5 9.5", "7 7 7 7"), 1):
        rate(factories.therapy_session(episode, number=after + offset), "session-adult", items)
    return world.users["therapist"]


# The record each URL's id names, from the world of test_access_matrix.
RECORD_OF = {
    "supervision": therapist_with_a_rupture,
    "client_detail": lambda w: w.client,
    "client_edit": lambda w: w.client,
    "client_active": lambda w: w.client,
    "client_hand_over": lambda w: w.client,
    "client_export": lambda w: w.client,
    "client_fhir": lambda w: w.client,
    "client_delete": lambda w: w.client,
    "session_start": lambda w: w.client,
    "episode_close": lambda w: w.session.episode,
    "hand_over": lambda w: w.session,
    "link_create": lambda w: w.session,
    "link_detail": lambda w: w.link,
    "client_contact": lambda w: w.client,
    "link_emails": lambda w: w.session,
    "link_email_cancel": a_link_email,
    "rating_result": lambda w: w.rating,
    "flag_action": lambda w: w.flag,
    "flag_reflection": lambda w: w.tension_flag,
}
# URLs whose id names no client's record, and what they show instead.
NOT_CLIENT_RECORDS = {
    "training_edit": "a training: its title, date and the therapists who attended",
    "training_evaluation": "a training's figures summed over therapists, no client named",
    "case_set_detail": "teaching cases by session number, no client code, date or id",
    "case_set_pdf": "teaching cases by session number, no client code, date or id",
    "staff_edit": "a colleague's name, e-mail, role and teams",
    "staff_active": "a colleague; a refused deactivation lists the codes of the clients to hand "
    "over, and nothing else of theirs",
    "team_edit": "a team's name",
    "invitation_resend": "a colleague's invitation, sent again: shows nothing, recorded",
    "invitation_withdraw": "a colleague's invitation, withdrawn: shows nothing, recorded",
    "team_merge": "a team's name and counts of its members, supervisors and clients",
}
# The other parts of those URLs.
OTHER_ARGS = {"action": "acknowledge"}
# Pages that show a client's code and nothing else of theirs, and why they need no entry.
CODE_ONLY = {
    "client_delete": "asks the admin to type the code; the deletion itself is recorded",
}
# Everyone of the client's organisation who may open some of these pages.
VIEWERS = ("therapist", "supervisor", "admin")


def patterns_with_an_id(patterns) -> dict[str, URLPattern]:
    found = {}
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace != "admin":  # walked below, model by model
                found |= patterns_with_an_id(pattern.url_patterns)
        elif "pk" in pattern.pattern.converters:
            found[pattern.name] = pattern
    return found


URLS_WITH_AN_ID = patterns_with_an_id(get_resolver().url_patterns)


def test_every_url_with_an_id_is_walked():
    assert set(URLS_WITH_AN_ID) == set(RECORD_OF) | set(NOT_CLIENT_RECORDS)


def client_path(model, depth: int = 4) -> str | None:
    """How rows of `model` reach their client through foreign keys, or None if they do not."""
    if model is Client:
        return ""
    if depth == 0:
        return None
    for field in model._meta.get_fields():
        if field.concrete and (field.many_to_one or field.one_to_one):
            rest = client_path(field.related_model, depth - 1)
            if rest is not None:
                return "__".join(filter(None, [field.name, rest]))
    return None


CLIENT_RECORD_MODELS = sorted(
    (model for model in admin.site._registry if client_path(model) is not None),
    key=lambda model: model._meta.label,
)


def test_the_client_records_in_the_admin_are_found():
    labels = {model._meta.label for model in CLIENT_RECORD_MODELS}
    assert labels == {
        "clinic.Client",
        "clinic.Episode",
        "clinic.TherapySession",
        "feedback.Flag",
        "feedback.Rating",
        "feedback.RemoteLink",
    }


def fill(route: str, values: dict) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: str(values[match.group(1)]), route)


def entries_naming(client: Client, after: int, actor) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            pk__gt=after, actor=actor, detail=client.code, organization=client.organization
        )
    )


def open_as(user, url: str) -> tuple[int, int]:
    """The response's status, and the last audit entry before it."""
    http = HttpClient()
    http.force_login(user)
    before = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return http.get(url).status_code, before


@pytest.mark.parametrize("name", sorted(RECORD_OF))
def test_each_page_of_a_client_record_is_recorded(name):
    world = World()
    record = RECORD_OF[name](world)
    client = world.client
    converters = URLS_WITH_AN_ID[name].pattern.converters
    others = {key: value for key, value in OTHER_ARGS.items() if key in converters}
    url = reverse(name, kwargs={"pk": record.pk, **others})
    shown = []
    for viewer in VIEWERS:
        user = world.users[viewer]
        status, before = open_as(user, url)
        if status == 200 and name not in CODE_ONLY:
            shown.append(viewer)
            assert entries_naming(client, before, user), f"{viewer} opened {url} unrecorded"
    if name in ("client_detail", "client_export", "client_fhir", "link_detail", "rating_result"):
        assert shown, f"nobody could open {url}"


@pytest.mark.parametrize("model", CLIENT_RECORD_MODELS, ids=lambda model: model._meta.label)
def test_each_admin_page_of_a_client_record_is_recorded(model, django_user_model):
    world = World()
    lookup = "__".join(filter(None, [client_path(model), "pk"]))
    record = model._default_manager.filter(**{lookup: world.client.pk}).first()
    assert record is not None
    opts = model._meta
    base = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    root = django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-12345")
    pages = [
        base + fill(str(pattern.pattern), {"object_id": record.pk})
        for pattern in admin.site._registry[model].get_urls()
        if "object_id" in pattern.pattern.converters
    ]
    opened = []
    for user in (world.users["admin"], root):
        for url in pages:
            status, before = open_as(user, url)
            if status == 200:
                opened.append(url)
                assert entries_naming(world.client, before, user), f"{url} opened unrecorded"
    assert opened, f"no page of {opts.label} {record.pk} opened"
