"""Organisation settings are checked when saved and stored typed: no rating trips on them."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from alliance_app.accounts.models import Organization
from alliance_app.clinic.models import TherapySession
from alliance_app.measures import FlagKind, FlagRules
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

BEFORE = ("accounts", "0002_organization_require_two_factor")
TYPED = ("accounts", "0003_organization_typed_settings")


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-12345")


def change_form(org: Organization, **changes) -> dict:
    """The admin's change form for `org` as a browser would post it, with `changes`."""
    data = {
        "name": org.name,
        "slug": org.slug,
        "time_zone": org.time_zone,
        "alliance_cutoff": "",
        "alliance_drop": "1.0",
        "low_item": "9.0",
        "reliable_change": "",
        "no_change_sessions": "3, 6",
        "no_change_every": "3",
        "rupture_k": "1.0",
        "rupture_min_drop": "1.0",
        "rupture_baseline_window": "3",
        "rupture_repair_window": "3",
        "rupture_sd": "",
        "ask_tension": "on",
        "expected_quantile": "0.10",
        "expected_min_episodes": "100",
        "teams-TOTAL_FORMS": "0",
        "teams-INITIAL_FORMS": "0",
        "teams-MIN_NUM_FORMS": "0",
        "teams-MAX_NUM_FORMS": "1000",
    }
    return {**data, **changes}


def post_change(client, org, **changes):
    url = reverse("admin:accounts_organization_change", args=[org.pk])
    return client.post(url, change_form(org, **changes))


# No-change checkpoints


def test_the_admin_refuses_checkpoints_that_are_not_numbers(client, superuser, org):
    client.force_login(superuser)
    response = post_change(client, org, no_change_sessions="3,six")
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["no_change_sessions"] == [
        "Enter session numbers separated by commas, such as 3, 6."
    ]
    org.refresh_from_db()
    assert org.no_change_sessions == [3, 6]


@pytest.mark.parametrize("typed", ["0, 3", "", "3;6", "-3"])
def test_the_admin_refuses_other_impossible_checkpoints(client, superuser, org, typed):
    client.force_login(superuser)
    response = post_change(client, org, no_change_sessions=typed)
    assert "no_change_sessions" in response.context["adminform"].form.errors
    org.refresh_from_db()
    assert org.no_change_sessions == [3, 6]


def test_the_admin_stores_checkpoints_as_sorted_distinct_numbers(client, superuser, org):
    client.force_login(superuser)
    response = post_change(client, org, no_change_sessions=" 12, 3,6, 6 ", no_change_every="4")
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.no_change_sessions == [3, 6, 12]
    assert org.no_change_every == 4


def test_the_admin_refuses_a_repeat_interval_of_zero(client, superuser, org):
    client.force_login(superuser)
    response = post_change(client, org, no_change_every="0")
    assert "no_change_every" in response.context["adminform"].form.errors


def test_the_admin_shows_the_checkpoints_as_typed_text(client, superuser, org):
    org.no_change_sessions = [3, 6, 12]
    org.save(update_fields=["no_change_sessions"])
    client.force_login(superuser)
    page = client.get(reverse("admin:accounts_organization_change", args=[org.pk]))
    assert 'value="3, 6, 12"' in page.content.decode()


@pytest.mark.parametrize(
    "value", ["3,six", "3,6", [], [0, 3], [6, 3], [3, 3], ["3", "6"], [3.0], [True], None]
)
def test_model_validation_refuses_checkpoints_that_are_not_increasing_numbers(org, value):
    org.no_change_sessions = value
    with pytest.raises(ValidationError) as refused:
        org.full_clean()
    assert list(refused.value.message_dict) == ["no_change_sessions"]


def test_model_validation_accepts_increasing_checkpoints(org):
    org.no_change_sessions = [2, 4, 8]
    org.full_clean()


def test_an_outcome_rating_is_stored_after_the_admin_refused_bad_checkpoints(
    client, superuser, org, session_one
):
    client.force_login(superuser)
    post_change(client, org, no_change_sessions="3,six")
    factories.rate(session_one, "outcome-adult", "5 5 5 5")
    later = factories.therapy_session(session_one.episode, number=3)
    # Read afresh, so the service sees the organisation as stored, not the fixture's copy.
    later = TherapySession.objects.get(pk=later.pk)
    result = factories.rate(later, "outcome-adult", "5 5 5 5")
    assert [flag.kind for flag in result.flags] == [FlagKind.NO_CHANGE]


def test_the_flag_rules_carry_the_organisations_checkpoints(org):
    org.no_change_sessions = [4, 10]
    org.no_change_every = 5
    org.save()
    rules = Organization.objects.get(pk=org.pk).flag_rules()
    assert rules.no_change_sessions == (4, 10)
    assert rules.no_change_every == 5


def test_a_new_organisation_gets_the_clinical_cores_default_checkpoints():
    org = factories.organization()
    org.refresh_from_db()
    defaults = FlagRules()
    assert org.no_change_sessions == list(defaults.no_change_sessions)
    assert org.no_change_every == defaults.no_change_every


# Time zone


def test_the_admin_refuses_a_time_zone_that_does_not_exist(client, superuser, org):
    client.force_login(superuser)
    response = post_change(client, org, time_zone="Mars/Olympus")
    assert response.context["adminform"].form.errors["time_zone"] == [
        "“Mars/Olympus” is not a time zone. Use a name such as Europe/Berlin or UTC."
    ]
    org.refresh_from_db()
    assert org.time_zone == "UTC"


def test_the_admin_stores_an_iana_time_zone(client, superuser, org):
    client.force_login(superuser)
    assert post_change(client, org, time_zone="Pacific/Kiritimati").status_code == 302
    org.refresh_from_db()
    assert org.time_zone == "Pacific/Kiritimati"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "utc ", "+02:00"])
def test_model_validation_refuses_a_time_zone_that_is_no_iana_name(org, zone):
    org.time_zone = zone
    with pytest.raises(ValidationError) as refused:
        org.full_clean()
    assert list(refused.value.message_dict) == ["time_zone"]


# Upgrading: the text stored before becomes typed


@pytest.mark.django_db(transaction=True)
def test_the_migration_types_the_stored_checkpoints_and_mends_bad_time_zones(settings):
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps.get_model("accounts", "Organization")
    stored = {
        "plain": ("3,6", "Europe/Berlin"),
        "spaced": (" 12, 3 ,6,6", "UTC"),
        "unparsable": ("3,six", "Mars/Olympus"),
        "zero": ("0,4", "UTC"),
        "blank": ("", "UTC"),
    }
    for slug, (sessions, zone) in stored.items():
        old.objects.create(name=slug, slug=slug, no_change_sessions=sessions, time_zone=zone)

    executor = MigrationExecutor(connection)
    executor.migrate([TYPED])
    new = executor.loader.project_state([TYPED]).apps.get_model("accounts", "Organization")
    typed = {org.slug: (org.no_change_sessions, org.time_zone) for org in new.objects.all()}
    assert typed == {
        "plain": ([3, 6], "Europe/Berlin"),
        "spaced": ([3, 6, 12], "UTC"),
        "unparsable": ([3, 6], settings.TIME_ZONE),
        "zero": ([3, 6], "UTC"),
        "blank": ([3, 6], "UTC"),
    }

    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old = executor.loader.project_state([BEFORE]).apps.get_model("accounts", "Organization")
    assert old.objects.get(slug="spaced").no_change_sessions == "3,6,12"

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


# Thresholds a scale's total can reach


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alliance_cutoff", "40.1"),
        ("alliance_cutoff", "-1.0"),
        ("reliable_change", "0.0"),
        ("reliable_change", "41.0"),
        ("low_item", "10.5"),
        ("alliance_drop", "40.5"),
    ],
)
def test_the_admin_refuses_thresholds_no_total_can_reach(client, superuser, org, field, value):
    client.force_login(superuser)
    response = post_change(client, org, **{field: value})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field]
    org.refresh_from_db()
    assert getattr(org, field) != Decimal(value)
    # The next session rating is stored and judged as before.
    episode = factories.episode(factories.client(org, factories.user(org)))
    assert rate(factories.therapy_session(episode), "session-adult", "9 9 9 9").created


def test_the_database_refuses_an_alliance_cutoff_above_the_scale():
    org = factories.organization()
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=org.pk).update(alliance_cutoff=Decimal("45.0"))


# Rupture settings


def test_a_new_rupture_rule_in_the_admin_finds_the_ruptures_again(client, superuser, org):
    from alliance_app.feedback.models import Flag, Rupture

    therapist = factories.user(org)
    episode = factories.episode(factories.client(org, therapist))
    for number, items in enumerate(("9.9 9.9 9.9 9.9", "9.9 9.9 9.9 9.9", "9.2 9.2 9.0 9.2"), 1):
        rate(factories.therapy_session(episode, number=number), "session-adult", items)
    assert Rupture.objects.count() == 1  # a fall of 3.0 against a threshold of 1.0
    client.force_login(superuser)
    response = post_change(client, org, rupture_sd="1.60", rupture_k="2.0")
    assert response.status_code == 302
    assert not Rupture.objects.exists()  # 3.0 < 2 × 1.60
    assert Flag.objects.filter(kind="rupture").count() == 1  # the flag raised stays
    page = client.get(reverse("admin:accounts_organization_change", args=[org.pk]))
    html = page.content.decode()
    assert "1.6, fixed above; rupture threshold 3.2 points" in html


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rupture_k", "0.4"),
        ("rupture_k", "3.1"),
        ("rupture_min_drop", "0.0"),
        ("rupture_baseline_window", "1"),
        ("rupture_repair_window", "0"),
        ("rupture_sd", "0.00"),
    ],
)
def test_the_admin_refuses_impossible_rupture_settings(client, superuser, org, field, value):
    client.force_login(superuser)
    response = post_change(client, org, **{field: value})
    assert field in response.context["adminform"].form.errors
    org.refresh_from_db()
    assert org.rupture_rules() == Organization().rupture_rules()


@pytest.mark.parametrize(
    "values",
    [
        {"rupture_k": Decimal("0.4")},
        {"rupture_min_drop": Decimal("0.0")},
        {"rupture_baseline_window": 1},
        {"rupture_repair_window": 11},
        {"rupture_sd": Decimal("0")},
    ],
)
def test_the_database_refuses_impossible_rupture_settings(org, values):
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=org.pk).update(**values)
