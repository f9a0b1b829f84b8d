"""The Django admin is usable for real set-up: every model lists, searches and filters."""

import pytest
from django.contrib import admin
from django.urls import reverse

from alliance_app.feedback import expected
from alliance_app.feedback.links import remote_link_create
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-12345")


@pytest.fixture
def populated(org, therapist, session_one):
    factories.user(org, team=factories.team(org))
    factories.rate(session_one, "session-adult", "8 8 8 8")  # raises a flag
    remote_link_create(session=session_one, scale="outcome", created_by=therapist)
    expected.fit_start(org, by=None)  # too few episodes: a fit that says why
    return session_one


OUR_MODELS = [
    model
    for model in admin.site._registry
    if model._meta.app_label in {"accounts", "clinic", "feedback"}
]


def test_every_model_of_ours_is_in_the_admin():
    names = {model.__name__ for model in OUR_MODELS}
    assert names == {
        "Organization",
        "Team",
        "User",
        "Membership",
        "Client",
        "Episode",
        "TherapySession",
        "Rating",
        "Flag",
        "RemoteLink",
        "ExpectedResponseFit",
        "ReflectionOption",
    }


@pytest.mark.parametrize("model", OUR_MODELS, ids=lambda m: m.__name__)
def test_each_changelist_searches_and_opens_its_objects(client, superuser, populated, model):
    client.force_login(superuser)
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert client.get(changelist).status_code == 200
    if admin.site._registry[model].search_fields:
        assert client.get(changelist, {"q": "C"}).status_code == 200
    obj = model.objects.first()
    change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    assert client.get(change).status_code == 200


def test_ratings_flags_and_links_are_read_only_in_the_admin(client, superuser, populated):
    client.force_login(superuser)
    for model in ("rating", "flag", "remotelink"):
        assert client.get(reverse(f"admin:feedback_{model}_add")).status_code == 403
    flag = populated.ratings.get().flags.get()
    assert client.get(reverse("admin:feedback_flag_delete", args=[flag.pk])).status_code == 403
