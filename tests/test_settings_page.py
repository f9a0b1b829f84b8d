"""The organisation settings page: a change is previewed with this month's numbers, by the rules
the flags use, and saved only when confirmed, audited and by an admin of the organisation."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_app.accounts.models import Organization, Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import ClientContact, Closure
from alliance_app.dashboards.org_settings import month_of, settings_preview
from alliance_app.feedback.models import AllianceMonth, Flag, Rupture
from alliance_app.measures import FlagKind
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

# The preview's month: March 2026 in the organisation's zone (UTC unless a test says otherwise).
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
THIS_MONTH = date(2026, 3, 2)
LAST_MONTH = date(2026, 2, 20)
URL = "/settings/"


def rated(episode, number: int, day: date, instrument: str, items: str, **kwargs):
    """Rate session `number` of the episode, dated `day` (made if missing)."""
    session = episode.sessions.filter(number=number).first()
    if session is None:
        session = factories.therapy_session(episode, number=number)
        session.date = day
        session.save(update_fields=["date"])
    return rate(session, instrument, items, **kwargs)


class Clinic:
    """A hand-made month: five session ratings by clients this month, totals 35, 37, 37.9, 38 and
    40; one last month (36.5, the 35's previous session: a drop of 1.5). A couple's partner rates
    39.2, 39.2, then 37.0 this month: a rupture against their own level, by no client. Outcome:
    one active client +4.5 from intake, one −6.0, one closed episode +10.

    By hand, with the scales' own cutoff (36) and the defaults: 1 concern (35), 0 low items
    (35 is a concern, whose items are not judged; the others have no item below 9), 1 drop, 1
    rupture, 0 reliably improved and 1 deteriorated.
    """

    def __init__(self, this_month: date = THIS_MONTH, last_month: date = LAST_MONTH):
        self.org = factories.organization("Hand-made")
        self.therapist = factories.user(self.org)
        self.admin = factories.user(self.org, role=Role.ADMIN, username="ada")
        episodes = {}
        for code in ("A", "B", "C", "D", "E", "H", "Z"):
            client = factories.client(self.org, self.therapist, code=code)
            episodes[code] = factories.episode(client)
        a = episodes["A"]
        rated(a, 1, last_month, "session-adult", "9 9 9 9.5")
        rated(a, 2, this_month, "session-adult", "9 9 9 8")
        rated(a, 1, last_month, "outcome-adult", "5 5 5 5")
        rated(a, 2, this_month, "outcome-adult", "6 6 6 6.5")
        rated(episodes["B"], 1, this_month, "session-adult", "9.5 9.5 9 9")
        rated(episodes["C"], 1, this_month, "session-adult", "9.5 9.5 9.5 9.4")
        rated(episodes["D"], 1, this_month, "session-adult", "9.5 9.5 9.5 9.5")
        rated(episodes["E"], 1, this_month, "session-adult", "10 10 10 10")
        h = episodes["H"]
        for number, day, items in (
            (1, last_month, "9.8 9.8 9.8 9.8"),
            (2, last_month, "9.8 9.8 9.8 9.8"),
            (3, this_month, "9.5 9.5 9 9"),
        ):
            rated(h, number, day, "session-adult", items, rater="partner", label="Sam")
        rated(h, 1, last_month, "outcome-adult", "7.5 7.5 7.5 7.5")
        rated(h, 3, this_month, "outcome-adult", "6 6 6 6")
        z = episodes["Z"]
        rated(z, 1, last_month, "outcome-adult", "4 4 4 4")
        rated(z, 2, last_month, "outcome-adult", "6.5 6.5 6.5 6.5")
        z.closed, z.closure = last_month, Closure.PLANNED
        z.save(update_fields=["closed", "closure"])
        z.client.active = False
        z.client.save(update_fields=["active"])
        self.org = Organization.objects.get(pk=self.org.pk)


@pytest.fixture
def clinic():
    return Clinic()


def proposed(org: Organization, **changes) -> Organization:
    changed = Organization.objects.get(pk=org.pk)
    for name, value in changes.items():
        setattr(changed, name, value)
    changed.full_clean()
    return changed


def preview(org: Organization, **changes) -> dict[tuple[str, ...], str]:
    lines = settings_preview(org, proposed(org, **changes), changes, now=NOW)
    return {line.fields: line.text for line in lines}


def form_data(org: Organization, **changes) -> dict:
    """The settings form as a browser posts it, with `changes`."""
    data = {
        "name": org.name,
        "time_zone": org.time_zone,
        "alliance_cutoff": "" if org.alliance_cutoff is None else str(org.alliance_cutoff),
        "alliance_drop": str(org.alliance_drop),
        "low_item": str(org.low_item),
        "reliable_change": "" if org.reliable_change is None else str(org.reliable_change),
        "no_change_sessions": ", ".join(str(n) for n in org.no_change_sessions),
        "no_change_every": str(org.no_change_every),
        "rupture_k": str(org.rupture_k),
        "rupture_min_drop": str(org.rupture_min_drop),
        "rupture_baseline_window": str(org.rupture_baseline_window),
        "rupture_repair_window": str(org.rupture_repair_window),
        "rupture_sd": "" if org.rupture_sd is None else str(org.rupture_sd),
        "expected_quantile": str(org.expected_quantile),
        "expected_min_episodes": str(org.expected_min_episodes),
    }
    for flag in ("ask_tension", "require_two_factor", "client_email"):
        if getattr(org, flag):
            data[flag] = "on"
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


# The preview's numbers


def test_the_month_is_the_organisations_calendar_month():
    org = factories.organization()
    org.time_zone = "Pacific/Kiritimati"  # UTC+14: already April there
    assert month_of(org, datetime(2026, 3, 31, 12, 0, tzinfo=UTC)) == (
        date(2026, 4, 1),
        date(2026, 5, 1),
    )
    org.time_zone = "UTC"
    assert month_of(org, datetime(2026, 12, 31, 23, 0, tzinfo=UTC)) == (
        date(2026, 12, 1),
        date(2027, 1, 1),
    )


def test_a_new_cutoff_counts_this_months_concerns_by_clients(clinic):
    lines = preview(clinic.org, alliance_cutoff=Decimal("38.0"))
    assert lines == {
        ("alliance_cutoff",): (
            "With an alliance cutoff of 38.0, 3 of this month's 5 session ratings by clients "
            "would count as alliance concerns, against 1 now. The team pages count this and "
            "past months again by the new cutoff."
        )
    }


def test_from_a_cutoff_of_36_to_the_scales_own(clinic):
    clinic.org.alliance_cutoff = Decimal("37.95")
    clinic.org.save()
    # 37.95 is stored to the tenth as 38.0: 35, 37 and 37.9 are concerns now.
    org = Organization.objects.get(pk=clinic.org.pk)
    assert preview(org, alliance_cutoff=None)[("alliance_cutoff",)].startswith(
        "With each scale's own alliance cutoff, 1 of this month's 5 session ratings by clients "
        "would count as alliance concerns, against 3 now."
    )


def test_a_cutoff_of_exactly_a_total_does_not_make_it_a_concern(clinic):
    text = preview(clinic.org, alliance_cutoff=Decimal("37.0"))[("alliance_cutoff",)]
    assert "1 of this month's 5" in text  # 37.0 is not below 37.0


def test_a_higher_low_item_score_counts_the_ratings_with_a_low_item(clinic):
    lines = preview(clinic.org, low_item=Decimal("9.5"))
    assert lines[("low_item",)] == (
        "With a low item score of 9.5, 2 of this month's 5 session ratings by clients would "
        "have a low item, against 0 now."
    )


def test_a_larger_alliance_drop_counts_fewer_drops(clinic):
    lines = preview(clinic.org, alliance_drop=Decimal("2.0"))
    assert lines[("alliance_drop",)] == (
        "With an alliance drop of 2.0 points, 0 of this month's 5 session ratings by clients "
        "would count as a drop since the client's previous session rating, against 1 now."
    )


def test_a_stricter_rupture_rule_counts_this_months_ruptures_by_every_rater(clinic):
    lines = preview(clinic.org, rupture_k=Decimal("2.5"))
    assert lines[("rupture_k",)] == (
        "With a rupture threshold of 2.5 points (2.5 × SD 1.0, at least 1.0) against the mean "
        "of up to 3 previous sessions, this month's session ratings would hold 0 ruptures, "
        "against 1 now. The supervision pages find past ruptures again by the new rule."
    )


def test_a_fixed_sd_is_the_new_rules_sd(clinic):
    text = preview(clinic.org, rupture_sd=Decimal("2.30"), rupture_min_drop=Decimal("2.0"))[
        ("rupture_min_drop", "rupture_sd")
    ]
    assert "threshold of 2.3 points (1.0 × SD 2.3, at least 2.0)" in text
    assert "hold 0 ruptures, against 1 now" in text


def test_one_rupture_is_one(clinic):
    text = preview(clinic.org, rupture_baseline_window=4)[("rupture_baseline_window",)]
    assert "would hold 1 rupture, against 1 now" in text


def test_a_rupture_last_month_is_not_this_months():
    clinic = Clinic(this_month=date(2026, 4, 2), last_month=LAST_MONTH)
    lines = preview(clinic.org, rupture_k=Decimal("0.5"))
    assert "hold 0 ruptures, against 0 now" in lines[("rupture_k",)]


def test_a_smaller_reliable_change_counts_more_active_clients_improved(clinic):
    lines = preview(clinic.org, reliable_change=Decimal("4.0"))
    assert lines[("reliable_change",)] == (
        "With a reliable change of 4.0 points, 1 of the 2 active clients with outcome "
        "ratings would count as reliably improved and 1 as reliably deteriorated, against 0 "
        "and 1 now."
    )
    lines = preview(clinic.org, reliable_change=Decimal("6.5"))
    assert lines[("reliable_change",)].startswith(
        "With a reliable change of 6.5 points, 0 of the 2 active clients with outcome ratings "
        "would count as reliably improved and 0 as reliably deteriorated, against 0 and 1 now."
    )


def test_a_new_quantile_asks_for_a_new_fit(clinic):
    line = settings_preview(
        clinic.org,
        proposed(clinic.org, expected_quantile=Decimal("0.20")),
        ["expected_quantile"],
        now=NOW,
    )[0]
    assert line.fields == ("expected_quantile",)
    assert "fit it again" in line.text
    assert line.link == reverse("expected_response")


def test_requiring_two_factor_counts_the_members_without_an_authenticator(clinic):
    TOTPDevice.objects.create(user=clinic.admin, name="phone", confirmed=True)
    TOTPDevice.objects.create(user=clinic.therapist, name="unconfirmed", confirmed=False)
    other = factories.organization()
    factories.user(other)
    text = preview(clinic.org, require_two_factor=True)[("require_two_factor",)]
    assert "1 member has none yet" in text


def test_turning_client_email_off_says_how_many_addresses_go(clinic):
    clinic.org.client_email = True
    clinic.org.save()
    for code in ("A", "B"):
        client = clinic.org.clients.get(code=code)
        ClientContact.objects.create(client=client, email=f"{code}@example.org")
    elsewhere = factories.organization()
    ClientContact.objects.create(
        client=factories.client(elsewhere, factories.user(elsewhere)), email="x@example.org"
    )
    text = preview(clinic.org, client_email=False)[("client_email",)]
    assert "2 clients' e-mail addresses will be erased" in text


def test_only_changed_settings_get_a_line(clinic):
    assert preview(clinic.org) == {}
    assert set(preview(clinic.org, ask_tension=False, time_zone="Europe/Oslo")) == {
        ("ask_tension",),
        ("time_zone",),
    }


def everything_changed() -> dict:
    return {
        "alliance_cutoff": Decimal("38.0"),
        "alliance_drop": Decimal("2.0"),
        "low_item": Decimal("9.5"),
        "reliable_change": Decimal("4.0"),
        "rupture_k": Decimal("2.0"),
        "expected_quantile": Decimal("0.20"),
        "require_two_factor": True,
        "client_email": False,
    }


def test_the_preview_costs_the_same_few_queries_however_many_ratings(clinic):
    clinic.org.client_email = True
    clinic.org.save()
    changes = everything_changed()
    change_to = proposed(clinic.org, **changes)
    with CaptureQueriesContext(connection) as few:
        settings_preview(clinic.org, change_to, changes, now=NOW)
    for code in ("M1", "M2", "M3", "M4"):
        client = factories.client(clinic.org, clinic.therapist, code=code)
        episode = factories.episode(client)
        for number in (1, 2, 3):
            rated(episode, number, THIS_MONTH, "session-adult", "9 9 9 9")
            rated(episode, number, THIS_MONTH, "outcome-adult", "5 5 5 5")
    with CaptureQueriesContext(connection) as many:
        settings_preview(clinic.org, change_to, changes, now=NOW)
    # The month's series, the SD in force, the outcome ends, two-factor, e-mail addresses.
    assert len(few.captured_queries) == len(many.captured_queries) == 5


# The page


@pytest.fixture
def admin_client(client, clinic):
    client.force_login(clinic.admin)
    return client


def this_months_clinic() -> Clinic:
    first, _next = month_of(Organization(time_zone="UTC"))
    return Clinic(this_month=first, last_month=first - timedelta(days=1))


def test_the_admin_sees_the_settings_in_their_groups(admin_client, clinic):
    page = admin_client.get(URL)
    assert page.status_code == 200
    text = page.content.decode()
    for legend in ("Flags", "Ruptures", "Expected response", "Privacy and login"):
        assert f"<legend>{legend}</legend>" in text or legend in text
    assert 'name="client_email"' in text
    assert 'name="slug"' not in text
    assert "What this change would do" not in text


def test_a_change_is_previewed_and_not_saved(client):
    clinic = this_months_clinic()
    client.force_login(clinic.admin)
    page = client.post(URL, form_data(clinic.org, alliance_cutoff="38"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "What this change would do" in text
    assert (
        "With an alliance cutoff of 38.0, 3 of this month&#x27;s 5 session ratings by clients "
        "would count as alliance concerns, against 1 now."
    ) in text
    assert "Flags already raised are not changed" in text
    assert 'name="confirm" value="True"' in text
    clinic.org.refresh_from_db()
    assert clinic.org.alliance_cutoff is None
    assert not AuditEntry.objects.filter(action=Action.SETTINGS_CHANGED).exists()


def test_confirming_saves_recounts_the_team_pages_and_audits_the_names(client):
    clinic = this_months_clinic()
    client.force_login(clinic.admin)
    flags_before = Flag.objects.filter(kind=FlagKind.LOW_ALLIANCE).count()
    data = form_data(clinic.org, alliance_cutoff="38", low_item="9.5", confirm="True")
    response = client.post(URL, data)
    assert response.status_code == 302
    clinic.org.refresh_from_db()
    assert clinic.org.alliance_cutoff == Decimal("38.0")
    assert clinic.org.low_item == Decimal("9.5")
    entry = AuditEntry.objects.get(action=Action.SETTINGS_CHANGED)
    assert entry.detail == "alliance_cutoff, low_item"
    assert entry.organization == clinic.org
    assert entry.actor == clinic.admin
    # Flags stay as raised; the team pages' monthly counts follow the new cutoff.
    assert Flag.objects.filter(kind=FlagKind.LOW_ALLIANCE).count() == flags_before
    first, _next = month_of(clinic.org)
    concerns = sum(AllianceMonth.objects.filter(month=first).values_list("concerns", flat=True))
    assert concerns == 3
    assert "The settings are saved." in client.get(URL).content.decode()


def test_confirming_a_rupture_rule_finds_the_ruptures_again(client):
    clinic = this_months_clinic()
    client.force_login(clinic.admin)
    assert Rupture.objects.filter(episode__client__organization=clinic.org).count() == 1
    flags = Flag.objects.filter(kind=FlagKind.RUPTURE).count()
    client.post(URL, form_data(clinic.org, rupture_k="2.5", confirm="True"))
    assert Rupture.objects.filter(episode__client__organization=clinic.org).count() == 0
    assert Flag.objects.filter(kind=FlagKind.RUPTURE).count() == flags


def test_confirming_client_email_off_erases_the_addresses(admin_client, clinic):
    clinic.org.client_email = True
    clinic.org.save()
    client_a = clinic.org.clients.get(code="A")
    ClientContact.objects.create(client=client_a, email="a@example.org")
    page = admin_client.post(URL, form_data(clinic.org, client_email=None))
    assert "1 client&#x27;s e-mail address will be erased" in page.content.decode()
    assert ClientContact.objects.filter(client=client_a).exists()
    admin_client.post(URL, form_data(clinic.org, client_email=None, confirm="True"))
    assert not ClientContact.objects.filter(client=client_a).exists()
    entry = AuditEntry.objects.get(action=Action.SETTINGS_CHANGED)
    assert entry.detail == "client_email"
    assert "a@example.org" not in entry.detail


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"alliance_cutoff": "41"}, "alliance_cutoff", "less than or equal to 40.0"),
        ({"low_item": "nine"}, "low_item", "Enter a number."),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "“Mars/Olympus” is not a time zone."),
        ({"no_change_sessions": "3,six"}, "no_change_sessions", "Enter session numbers"),
        ({"rupture_baseline_window": "1"}, "rupture_baseline_window", "greater than or equal"),
        ({"expected_quantile": "0.5"}, "expected_quantile", "less than or equal to 0.40"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_bad_input_is_refused_in_words_and_nothing_is_saved(
    admin_client, clinic, changes, field, message
):
    for confirm in ({}, {"confirm": "True"}):
        response = admin_client.post(
            URL, form_data(clinic.org, alliance_drop="2.0", **changes, **confirm)
        )
        assert response.status_code == 400
        errors = response.context["form"].errors
        assert list(errors) == [field]
        assert message in " ".join(errors[field])
        assert "Nothing was saved" in response.content.decode()
        assert "What this change would do" not in response.content.decode()
    clinic.org.refresh_from_db()
    assert clinic.org.alliance_drop == Decimal("1.0")
    assert not AuditEntry.objects.filter(action=Action.SETTINGS_CHANGED).exists()


def test_nothing_changed_is_said_and_not_audited(admin_client, clinic):
    response = admin_client.post(URL, form_data(clinic.org, confirm="True"), follow=True)
    assert "Nothing has changed" in response.content.decode()
    assert not AuditEntry.objects.filter(action=Action.SETTINGS_CHANGED).exists()


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.SUPERVISOR])
def test_other_members_may_neither_see_nor_change_the_settings(client, clinic, role):
    client.force_login(factories.user(clinic.org, role=role))
    assert client.get(URL).status_code == 403
    response = client.post(URL, form_data(clinic.org, alliance_cutoff="38", confirm="True"))
    assert response.status_code == 403
    clinic.org.refresh_from_db()
    assert clinic.org.alliance_cutoff is None


def test_an_admin_changes_only_their_own_organisation(client, clinic):
    other = factories.organization("Other")
    client.force_login(factories.user(other, role=Role.ADMIN))
    page = client.get(URL)
    assert "Hand-made" not in page.content.decode()
    # Posting the first organisation's name and values changes the admin's own, nothing else.
    client.post(URL, form_data(clinic.org, alliance_cutoff="38", confirm="True"))
    clinic.org.refresh_from_db()
    other.refresh_from_db()
    assert clinic.org.alliance_cutoff is None
    assert other.alliance_cutoff == Decimal("38.0")
    assert AuditEntry.objects.get(action=Action.SETTINGS_CHANGED).organization == other


def test_the_admins_menu_leads_to_the_settings(admin_client):
    assert f'href="{URL}"' in admin_client.get(reverse("overview")).content.decode()


def test_the_preview_page_costs_the_same_queries_however_many_ratings(client):
    clinic = this_months_clinic()
    client.force_login(clinic.admin)
    data = form_data(clinic.org, alliance_cutoff="38", rupture_k="2.0", reliable_change="4.0")
    client.post(URL, data)  # the login's first request asks for more: not the page's cost
    with CaptureQueriesContext(connection) as few:
        assert client.post(URL, data).status_code == 200
    first, _next = month_of(clinic.org)
    for code in ("M1", "M2", "M3"):
        episode = factories.episode(factories.client(clinic.org, clinic.therapist, code=code))
        for number in (1, 2, 3):
            rated(episode, number, first, "session-adult", "9 9 9 9")
            rated(episode, number, first, "outcome-adult", "5 5 5 5")
    with CaptureQueriesContext(connection) as many:
        assert client.post(URL, data).status_code == 200
    # The login, the organisation, Django's check of each of its eleven check constraints (a
    # savepoint and a query each) and the preview's three.
    assert len(few.captured_queries) == len(many.captured_queries) <= 40
