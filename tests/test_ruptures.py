"""Ruptures found as ratings are stored (`feedback.ruptures`): their rows, their flags, their
repair, the SD they are measured by, and a rebuild that agrees with the incremental rows."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from alliance_app.clinic.models import Closure, SessionFormat
from alliance_app.feedback import ruptures
from alliance_app.feedback.models import Flag, Rupture, RuptureSD
from alliance_app.feedback.services import episode_close
from alliance_app.measures import DEFAULT_SD_FALLBACK
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

# Totals: 39.6, 39.6, then 36.6 with the approach (tasks) item falling most.
HIGH = "9.9 9.9 9.9 9.9"
DIP = "9.2 9.2 9.0 9.2"
BACK = "9.8 9.9 9.9 9.8"


@pytest.fixture
def therapist():
    org = factories.organization()
    return factories.user(org, team=factories.team(org))


def sessions(episode, count, start=1, fmt=SessionFormat.INDIVIDUAL):
    return [
        factories.therapy_session(episode, number=n, fmt=fmt) for n in range(start, start + count)
    ]


def test_a_dip_above_the_cutoff_is_a_rupture_with_its_flag_instead_of_a_drop_flag(therapist):
    client = factories.client(therapist.membership.organization, therapist)
    one, two, three = sessions(factories.episode(client), 3)
    rate(one, "session-adult", HIGH)
    rate(two, "session-adult", HIGH)
    result = rate(three, "session-adult", DIP)
    [rupture] = Rupture.objects.all()
    assert (rupture.rating, rupture.session_number, rupture.status) == (
        result.rating,
        3,
        "pending",
    )
    assert (rupture.total, rupture.baseline, rupture.drop, rupture.threshold) == (
        Decimal("36.6"),
        Decimal("39.60"),
        Decimal("3.00"),
        Decimal("1.00"),
    )
    assert rupture.dimensions == "tasks" and rupture.therapist == therapist
    kinds = [flag.kind for flag in result.flags]
    assert kinds == ["rupture"]  # 36.6 is above the cutoff; the drop flag gives way
    assert result.flags[0].explanation == (
        "Session rating 36.6, 3.0 below this client's usual 39.6: the tasks item fell most."
    )


def test_the_return_marks_it_repaired_and_keeps_the_flag(therapist):
    client = factories.client(therapist.membership.organization, therapist)
    one, two, three, four = sessions(factories.episode(client), 4)
    for session, items in ((one, HIGH), (two, HIGH), (three, DIP)):
        rate(session, "session-adult", items)
    result = rate(four, "session-adult", BACK)
    rupture = Rupture.objects.get()
    assert (rupture.status, rupture.repaired_number, rupture.sessions_to_repair) == (
        "repaired",
        4,
        1,
    )
    assert result.flags == []  # the repair raises nothing
    assert Flag.objects.filter(kind="rupture").count() == 1


def test_a_slide_without_a_one_point_step_is_found_at_its_third_session(therapist):
    client = factories.client(therapist.membership.organization, therapist)
    slide = ["9.9 9.9 9.9 9.8", "9.7 9.7 9.6 9.6", "9.5 9.4 9.4 9.4"]  # 39.5, 38.6, 37.7
    for session, items in zip(sessions(factories.episode(client), 3), slide, strict=True):
        result = rate(session, "session-adult", items)
    assert [flag.kind for flag in result.flags] == ["rupture"]
    assert Rupture.objects.get().drop == Decimal("1.35")


def test_a_rating_entered_late_for_an_earlier_session_moves_the_rows(therapist):
    client = factories.client(therapist.membership.organization, therapist)
    one, two, three = sessions(factories.episode(client), 3)
    rate(one, "session-adult", HIGH)
    rate(three, "session-adult", DIP)  # only one earlier total: no rupture yet
    assert not Rupture.objects.exists()
    rate(two, "session-adult", HIGH, channel="paper")
    rupture = Rupture.objects.get()
    assert rupture.session_number == 3
    # The flag hangs on the session-3 rating, the rupture's own.
    assert Flag.objects.get(kind="rupture").rating == rupture.rating


def test_a_second_raters_series_is_separate(therapist):
    client = factories.client(therapist.membership.organization, therapist)
    episode = factories.episode(client)
    joint = sessions(episode, 3, fmt=SessionFormat.COUPLE)
    for session, client_items, partner_items in zip(
        joint, (HIGH, HIGH, HIGH), (HIGH, HIGH, DIP), strict=True
    ):
        rate(session, "session-adult", client_items)
        rate(session, "session-adult", partner_items, rater="partner", label="Sam")
    rupture = Rupture.objects.get()
    assert (rupture.rater, rupture.rater_label) == ("partner", "Sam")


def test_closing_the_episode_leaves_a_pending_rupture_unrepaired(therapist):
    client = factories.client(therapist.membership.organization, therapist)
    episode = factories.episode(client)
    for session, items in zip(sessions(episode, 3), (HIGH, HIGH, DIP), strict=True):
        rate(session, "session-adult", items)
    episode_close(episode=episode, closure=Closure.PLANNED, by=therapist)
    assert Rupture.objects.get().status == "unrepaired"
    assert Flag.objects.get(kind="rupture").status == "resolved"  # with the episode, as all flags


def test_the_organisations_rule_and_fixed_sd_decide(therapist):
    org = therapist.membership.organization
    org.rupture_sd, org.rupture_k = Decimal("1.60"), Decimal("2.0")
    org.save()
    client = factories.client(org, therapist)
    for session, items in zip(
        sessions(factories.episode(client), 3), (HIGH, HIGH, DIP), strict=True
    ):
        rate(session, "session-adult", items)
    assert not Rupture.objects.exists()  # 3.0 < 2 × 1.60
    org.rupture_k = Decimal("1.0")
    org.save()
    assert ruptures.rebuild(org) == 1
    assert Rupture.objects.get().threshold == Decimal("1.60")
    assert not Flag.objects.filter(kind="rupture").exists()  # a rebuild raises no flag


def test_the_sd_is_the_fallback_until_measured_then_the_pooled_within_client_sd(therapist):
    org = therapist.membership.organization
    assert ruptures.sd_in_force(org) == ruptures.SDInForce(DEFAULT_SD_FALLBACK, "fallback")
    # 10 series of 4 totals each: 38.0, 39.0, 38.0, 39.0.
    for n in range(10):
        client = factories.client(org, therapist, code=f"S{n}")
        for session, items in zip(
            sessions(factories.episode(client), 4),
            ("9.5 9.5 9.5 9.5", "9.8 9.7 9.8 9.7", "9.5 9.5 9.5 9.5", "9.8 9.7 9.8 9.7"),
            strict=True,
        ):
            rate(session, "session-adult", items)
    ruptures.sd_measure(org)
    sd = ruptures.sd_in_force(org)
    # Each series: mean 38.5, squares 4 × 0.25 = 1.0 over 3 df; pooled sqrt(10 / 30) = 0.577…
    assert (sd.value, sd.source, sd.series, sd.degrees_of_freedom) == (
        Decimal("0.58"),
        "measured",
        10,
        30,
    )
    assert RuptureSD.objects.get(organization=org).is_fallback is False


def test_the_command_rebuilds_the_same_rows_the_ratings_made(therapist):
    org = therapist.membership.organization
    stories = {
        "V": (HIGH, HIGH, DIP, BACK),
        "low": (DIP, DIP, DIP, DIP),
        "never back": (HIGH, HIGH, DIP, DIP, DIP, DIP),
    }
    for code, story in stories.items():
        client = factories.client(org, therapist, code=code)
        for session, items in zip(
            sessions(factories.episode(client), len(story)), story, strict=True
        ):
            rate(session, "session-adult", items)

    def rows():
        return sorted(
            Rupture.objects.values_list(
                "episode__client__code", "session_number", "status", "repaired_number"
            )
        )

    incremental = rows()
    assert incremental == [("V", 3, "repaired", 4), ("never back", 3, "unrepaired", None)]
    out = io.StringIO()
    call_command("rebuild_ruptures", stdout=out)
    assert (
        "SD 1.0 (fallback: only 3 series, 11 degrees of freedom), threshold 1.0 points, 2 ruptures"
        in (out.getvalue())
    )
    assert rows() == incremental
    assert Flag.objects.filter(kind="rupture").count() == 2


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1", "1.0"), ("1.00", "1.0"), ("3.200", "3.2"), ("1.725", "1.725"), ("10", "10.0")],
)
def test_thresholds_are_shown_as_a_clinician_writes_them(value, shown):
    assert ruptures.points_shown(Decimal(value)) == shown


def test_the_clients_data_holds_their_tension_answers_ruptures_and_reflections(client, therapist):
    from alliance_app.accounts.models import Role
    from alliance_app.feedback.models import Reflection, TensionReport
    from alliance_app.feedback.reflections import options_for
    from alliance_app.measures import TensionAnswer

    org = therapist.membership.organization
    patient = factories.client(org, therapist)
    one, two, three = sessions(factories.episode(patient), 3)
    rate(one, "session-adult", HIGH)
    rate(two, "session-adult", HIGH)
    rate(three, "session-adult", DIP, tension=TensionAnswer(True, 2))
    flag = Flag.objects.get(kind="rupture")
    reflection = Reflection.objects.create(
        flag=flag,
        author=therapist,
        marker=options_for(org.pk, "marker").get(code="withdrawal"),
        dimension="tasks",
        note="We had rushed into homework.",
    )
    reflection.strategies.set(options_for(org.pk, "strategy").filter(code="rationale"))
    client.force_login(factories.user(org, role=Role.ADMIN))
    data = client.get(f"/clients/{patient.pk}/data.json").json()
    rating = data["episodes"][0]["sessions"][2]["ratings"][0]
    assert rating["tension"] == {"felt": True, "sorted_out": 2}
    assert rating["rupture"]["status"] == "pending"
    assert rating["rupture"]["part_of_the_alliance"] == ["tasks"]
    [written] = data["reflections"]
    assert written["note"] == "We had rushed into homework."
    assert written["what_the_therapist_did"] == ["Explained the rationale for the task or goal"]
    assert {f["kind"] for f in data["flags"]} == {"rupture", "client_reported_tension"}

    client.post(f"/clients/{patient.pk}/delete/", {"code": patient.code})
    for model in (Rupture, TensionReport, Reflection, Flag):
        assert not model.objects.exists(), model
