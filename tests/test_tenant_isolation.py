"""Two organisations whose ids interleave: nothing of one ever shows in the other's pages,
exports, statistics, audit trail or Django admin."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_app.accounts.models import Organization, Team
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


# The server operator's business: two-factor devices do not exist for an organisation admin.
OPERATORS_ONLY = {"otp_totp.TOTPDevice": 404, "otp_static.StaticDevice": 404, "auth.Group": 403}

ADMIN_MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label != "axes"),
    key=lambda model: model._meta.label,
)


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda model: model._meta.label)
def test_the_django_admin_shows_each_organisation_only_its_own_rows(client, world, model):
    opts = model._meta
    client.force_login(world.users["other_admin"])
    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    if opts.label in OPERATORS_ONLY:
        assert changelist.status_code == OPERATORS_ONLY[opts.label]  # the operator's business
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


# Organisation A's names, made distinctive so that any trace of them in B's pages is found.
OUR_NAMES = ("Quokka Clinic", "Quokka North", "Quokka South", "Tom-A", "Cleo-A", "Sue-A", "ZQA-1")


@pytest.fixture
def named_world(world):
    Organization.objects.filter(pk=world.org.pk).update(name="Quokka Clinic")
    for team in ("North", "South"):
        Team.objects.filter(organization=world.org, name=team).update(name=f"Quokka {team}")
    return world


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda model: model._meta.label)
def test_the_admins_filters_offer_only_the_own_organisation(client, named_world, model):
    opts = model._meta
    client.force_login(named_world.users["other_admin"])
    response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    if opts.label in OPERATORS_ONLY:
        return
    offered = {
        str(choice["display"])
        for spec in response.context["cl"].filter_specs
        for choice in spec.choices(response.context["cl"])
    }
    body = response.content.decode()
    assert not [name for name in OUR_NAMES if name in offered or name in body]


def test_the_filters_still_offer_the_own_organisation(client, named_world):
    client.force_login(named_world.users["other_admin"])
    response = client.get(reverse("admin:accounts_membership_changelist"))
    offered = {
        str(choice["display"])
        for spec in response.context["cl"].filter_specs
        for choice in spec.choices(response.context["cl"])
    }
    assert "B1" in offered  # the organisation filter, with one choice left, is not shown


def _relations():
    """Every (model, field) the admin's autocomplete can be asked about: forward relations to a
    model the admin has registered, from any installed model."""
    return sorted(
        (
            (model, field.name)
            for model in apps.get_models()
            for field in model._meta.get_fields()
            if field.is_relation and field.concrete and field.related_model in admin.site._registry
        ),
        key=lambda pair: (pair[0]._meta.label, pair[1]),
    )


@pytest.mark.parametrize(
    ("model", "field_name"),
    _relations(),
    ids=lambda value: value._meta.label if hasattr(value, "_meta") else value,
)
def test_the_admins_autocomplete_offers_only_the_own_organisation(
    client, named_world, model, field_name
):
    client.force_login(named_world.users["other_admin"])
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": model._meta.app_label,
            "model_name": model._meta.model_name,
            "field_name": field_name,
            "term": "",
        },
    )
    if response.status_code != 200:
        assert response.status_code in (403, 404)
        return
    remote = model._meta.get_field(field_name).related_model
    path = admin.site._registry[remote].organization_path
    ours = {
        str(pk)
        for pk in remote._default_manager.filter(**{path: named_world.org.pk}).values_list(
            "pk", flat=True
        )
    }
    found = response.json()["results"]
    assert found, "the own organisation's rows are offered"
    assert not [row for row in found if row["id"] in ours or row["text"] in OUR_NAMES]


@pytest.mark.parametrize("view", ["config", "qrcode", "change", "delete", "history"])
def test_two_factor_devices_do_not_exist_for_an_organisation_admin(client, world, view):
    """No id is confirmed or denied, not even one of the admin's own organisation."""
    device = TOTPDevice.objects.create(user=world.users["therapist"], name="phone", confirmed=True)
    client.force_login(world.users["admin"])
    for pk in (device.pk, device.pk + 1000):
        url = reverse(f"admin:otp_totp_totpdevice_{view}", args=[pk])
        assert client.get(url).status_code == 404, url
    for name in ("changelist", "add"):
        assert client.get(reverse(f"admin:otp_totp_totpdevice_{name}")).status_code == 404


@pytest.mark.parametrize("view", ["changelist", "add", "change", "delete", "history"])
def test_recovery_codes_do_not_exist_for_an_organisation_admin(client, world, view):
    device = StaticDevice.objects.create(user=world.users["therapist"], name="backup")
    client.force_login(world.users["admin"])
    pks = [[]] if view in ("changelist", "add") else [[device.pk], [device.pk + 1000]]
    for args in pks:
        url = reverse(f"admin:otp_static_staticdevice_{view}", args=args)
        assert client.get(url).status_code == 404, url


def test_the_operator_gets_404_for_a_missing_device(client, world, django_user_model):
    device = TOTPDevice.objects.create(user=world.users["therapist"], name="phone", confirmed=True)
    client.force_login(
        django_user_model.objects.create_superuser("root", "r@example.org", "pw-root-1")
    )
    for view in ("config", "qrcode"):
        assert (
            client.get(reverse(f"admin:otp_totp_totpdevice_{view}", args=[device.pk])).status_code
            == 200
        )
        missing = reverse(f"admin:otp_totp_totpdevice_{view}", args=[device.pk + 1000])
        assert client.get(missing).status_code == 404
