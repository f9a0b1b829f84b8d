"""Two organisations whose ids interleave: nothing of one ever shows in the other's pages,
exports, statistics, audit trail or Django admin."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.test_access_matrix import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return World()


def text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode()


def test_the_ids_really_interleave(world):
    from alliance_app.clinic.models import Client

    a, b = Client.objects.get(code="ZQA-1"), Client.objects.get(code="ZQB-1")
    assert abs(a.pk - b.pk) == 1


@pytest.mark.parametrize(
    "url",
    [
        "/inbox/",
        "/team/",
        "/overview/",
        "/exports/ratings.csv",
        "/exports/outcomes.csv",
        "/audit/",
        "/audit/export.csv",
    ],
)
def test_the_other_organisations_admin_sees_nothing_of_ours(client, world, url):
    client.force_login(world.users["admin"])
    client.get(f"/clients/{world.client.pk}/")  # leaves an audit entry naming ZQA-1
    client.force_login(world.users["other_admin"])
    response = client.get(url)
    assert response.status_code == 200
    body = text(response)
    assert "ZQA-1" not in body and world.users["therapist"].username not in body


def test_our_admin_sees_ours_and_not_theirs(client, world):
    client.force_login(world.users["admin"])
    body = text(client.get("/exports/outcomes.csv"))
    assert "ZQA-1" in body and "ZQB-1" not in body


ADMIN_MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label != "axes"),
    key=lambda model: model._meta.label,
)


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda model: model._meta.label)
def test_the_django_admin_shows_each_organisation_only_its_own_rows(client, world, model):
    opts = model._meta
    client.force_login(world.users["other_admin"])
    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    if opts.label in {"otp_totp.TOTPDevice", "auth.Group"}:
        assert changelist.status_code == 403  # the server operator's business
        return
    assert changelist.status_code == 200
    path = admin.site._registry[model].organization_path
    ours = model._default_manager.filter(**{path: world.org.pk})
    for row in ours:
        change = client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
        )
        assert change.status_code == 302, f"{opts.label} {row.pk} opened for another organisation"


def test_choices_in_the_admin_offer_only_the_own_organisation(client, world):
    client.force_login(world.users["other_admin"])
    page = client.get(reverse("admin:clinic_client_add")).content.decode()
    assert f'<option value="{world.other_org.pk}"' in page
    assert f'<option value="{world.org.pk}"' not in page
    found = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "clinic", "model_name": "client", "field_name": "primary_therapist"},
    ).json()["results"]
    assert sorted(row["text"] for row in found) == ["Bob-B", "Otto-B"]  # both of B


def test_an_organisation_admin_cannot_make_a_superuser(client, world):
    client.force_login(world.users["admin"])
    page = client.get(reverse("admin:accounts_user_change", args=[world.users["colleague"].pk]))
    assert page.status_code == 200
    assert "is_superuser" not in page.content.decode()
