"""Trainings and their evaluation: the form, who may open what, the difference in differences on a
hand-made clinic with a known effect, the bootstrap interval, the words for too few, and a page
whose query count does not grow with the clients.

The hand-made clinic (`known_effect_rows`): a training on 15 April 2026, windows of 90 days, so
3 whole months each side (January to March, May to July; April left out). Six therapists, three
attending. In each window every therapist has 40 rated sessions and 4 closed episodes with two
outcome ratings, intakes 17, 19, 21 and 23. Before, everyone alike: mean 36.0, 8 concerns, 4
tensions of 40 answers, 6 ruptures (2 repaired, 2 unrepaired, 2 pending), 1 unplanned ending,
mean change 2. After, the others are alike again but for a mean of 36.5; the attendees' means are
38, 37 and 37, their ruptures 3, 4 and 5 (3, 3 and 4 repaired, 0, 1 and 1 not), 2 tensions and
4 concerns each, no unplanned ending, mean change 4.
"""

import datetime
import math
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Closure, Episode
from alliance_app.feedback.models import AllianceMonth
from alliance_app.research import evaluation
from alliance_app.research.evaluation import Group, Window, Windows
from alliance_app.research.models import Training, TrainingKind
from alliance_app.research.views_training import evaluation_rows
from tests import factories

TRAINING_DAY = datetime.date(2026, 4, 15)
WINDOWS = Windows.around(TRAINING_DAY, 90)
FEB, JUN = datetime.date(2026, 2, 1), datetime.date(2026, 6, 1)
ATTENDEES = (1, 2, 3)
OTHERS = (4, 5, 6)


def month_row(therapist_id, month, **changes):
    row = {
        "therapist_id": therapist_id,
        "month": month,
        "rated": 40,
        "total_sum": Decimal("1440.0"),
        "concerns": 8,
        "tension_answers": 40,
        "tensions": 4,
        "ruptures": 6,
        "repaired": 2,
        "unrepaired": 2,
        "closed": 4,
        "unplanned": 1,
        "outcomes": 4,
        "intake_sum": Decimal(80),
        "intake_squares": Decimal(17**2 + 19**2 + 21**2 + 23**2),
        "change_sum": Decimal(8),
    }
    return row | changes


def known_effect_rows():
    rows = [month_row(pk, FEB) for pk in (*ATTENDEES, *OTHERS)]
    rows += [month_row(pk, JUN, total_sum=Decimal("1460.0")) for pk in OTHERS]
    for pk, total, ruptures, repaired, unrepaired in (
        (1, "1520.0", 3, 3, 0),
        (2, "1480.0", 4, 3, 1),
        (3, "1480.0", 5, 4, 1),
    ):
        rows.append(
            month_row(
                pk,
                JUN,
                total_sum=Decimal(total),
                ruptures=ruptures,
                repaired=repaired,
                unrepaired=unrepaired,
                tensions=2,
                concerns=4,
                unplanned=0,
                change_sum=Decimal(16),
            )
        )
    # The training's own month and a month past the windows count for nothing.
    rows.append(
        {"therapist_id": 1, "month": datetime.date(2026, 4, 1), "rated": 50, "ruptures": 40}
    )
    rows.append(
        {"therapist_id": 4, "month": datetime.date(2026, 9, 1), "rated": 50, "ruptures": 40}
    )
    return rows


def known_evaluation(**kwargs):
    sums = evaluation.therapist_sums(known_effect_rows(), WINDOWS)
    return evaluation.evaluate(sums, set(ATTENDEES), WINDOWS, **kwargs)


def by_key(result):
    return {figure.rule.key: figure for figure in result.figures}


# -- the computation ----------------------------------------------------------------------------


def test_the_windows_are_whole_months_around_the_training_month():
    assert (WINDOWS.before_first, WINDOWS.before_last) == (
        datetime.date(2026, 1, 1),
        datetime.date(2026, 3, 1),
    )
    assert (WINDOWS.after_first, WINDOWS.after_last) == (
        datetime.date(2026, 5, 1),
        datetime.date(2026, 7, 1),
    )
    assert WINDOWS.window_of(datetime.date(2026, 4, 1)) is None
    assert [evaluation.months_for(days) for days in (30, 45, 60, 90, 180, 365)] == [
        1,
        1,
        2,
        3,
        6,
        12,
    ]
    december = Windows.around(datetime.date(2025, 12, 3), 60)
    assert (december.before_first, december.after_last) == (
        datetime.date(2025, 10, 1),
        datetime.date(2026, 2, 1),
    )


def test_the_difference_in_differences_recovers_the_known_effect():
    result = known_evaluation()
    figures = by_key(result)
    assert result.shortfalls == []
    assert result.therapists == {Group.ATTENDEES: 3, Group.OTHERS: 3}
    assert {key: figure.difference for key, figure in figures.items()} == {
        "rupture_rate": -5.0,  # attendees 15.0 -> 10.0, others 15.0 -> 15.0
        "repair_share": 33.3,  # 50% -> 83.3% (10 of 12), others 50% -> 50%
        "tension_share": -5.0,  # 10% -> 5%
        "mean_rating": 0.83,  # 36.0 -> 37.33, others 36.0 -> 36.5
        "concern_share": -10.0,  # 20% -> 10%
        "effect_size": 0.86,  # change 2 -> 4 over an intake SD of sqrt(60/11)
        "dropout": -25.0,  # 25% -> 0%
    }
    rate = figures["rupture_rate"]
    assert rate.cell("attendees", "before") == evaluation.Cell(15.0, 120, True)
    assert rate.cell("attendees", "after") == evaluation.Cell(10.0, 120, True)
    assert rate.cell("others", "after") == evaluation.Cell(15.0, 120, True)
    assert figures["effect_size"].cell("attendees", "after").value == round(
        4 / math.sqrt(60 / 11), 2
    )
    assert figures["repair_share"].cell("attendees", "after") == evaluation.Cell(83.3, 12, True)
    assert result.counts[Group.ATTENDEES, Window.AFTER] == {
        "therapists": 3,
        "rated": 120,
        "ruptures": 12,
        "repaired": 10,
        "unrepaired": 2,
        "tension_answers": 120,
        "tensions": 6,
        "concerns": 12,
        "closed": 12,
        "unplanned": 0,
        "outcomes": 12,
    }


def test_the_bootstrap_interval_is_the_same_with_the_seed_and_holds_the_estimate():
    first, again = by_key(known_evaluation()), by_key(known_evaluation())
    for key, figure in first.items():
        low, high = figure.interval
        assert low <= figure.difference <= high, key
        assert again[key].interval == figure.interval
    # The attendees differ in their means and ruptures, so the draws spread; they agree on
    # tension, and the others agree on everything, so its interval is the estimate itself.
    # With three attendees, 2000 draws hold the extremes: all three drawn the one at 37.0
    # (a change of +0.5 beside the others' +0.5) or the one at 38.0 (+1.5); likewise rupture
    # rates of 12.5 and 7.5 after, against 15.0.
    assert first["mean_rating"].interval == (0.5, 1.5)
    assert first["rupture_rate"].interval == (-7.5, -2.5)
    assert first["tension_share"].interval == (-5.0, -5.0)


def test_too_few_is_said_in_words_and_gives_no_number():
    rows = [
        month_row(1, FEB),
        month_row(1, JUN, rated=12, total_sum=Decimal("456.0"), tension_answers=12, concerns=1),
        month_row(4, FEB),
        month_row(4, JUN),
    ]
    result = evaluation.evaluate(evaluation.therapist_sums(rows, WINDOWS), {1}, WINDOWS)
    assert result.shortfalls == [
        "1 attendees with rated sessions in the windows: too few to judge (at least 3)",
        "1 other therapists with rated sessions in the windows: too few to judge (at least 3)",
    ]
    mean = by_key(result)["mean_rating"]
    assert mean.difference is None and mean.interval is None
    assert mean.cell("attendees", "after") == evaluation.Cell(38.0, 12, False)
    assert (
        "12 rated sessions after the training among attendees: too few to judge (at least 30)"
        in mean.shortfalls
    )


def test_a_therapist_without_rated_sessions_in_the_windows_is_left_out():
    rows = [
        month_row(1, datetime.date(2025, 6, 1)),
        {"therapist_id": 2, "month": FEB, "ruptures": 1},
    ]
    assert evaluation.therapist_sums(rows, WINDOWS) == {}


# -- the reads ----------------------------------------------------------------------------------


def closed_episode(org, therapist, closed: datetime.date, closure=Closure.PLANNED):
    episode = factories.episode(factories.client(org, therapist), opened=datetime.date(2025, 1, 6))
    Episode.objects.filter(pk=episode.pk).update(closed=closed, closure=closure)
    return episode


@pytest.mark.django_db
def test_the_rows_come_from_the_summary_rows_of_the_windows():
    org = factories.organization()
    ann = factories.user(org)
    episode = closed_episode(org, ann, datetime.date(2026, 6, 20), Closure.UNPLANNED)
    closed_episode(org, ann, datetime.date(2026, 4, 2))
    for month, count in ((FEB, 10), (JUN, 5), (datetime.date(2026, 4, 1), 7)):
        AllianceMonth.objects.create(
            episode=episode,
            therapist=ann,
            month=month,
            total_sum=Decimal(36) * count,
            count=count,
            concerns=1,
            tensions_answered=count,
            tensions=2,
        )
    sums = evaluation.therapist_sums(evaluation_rows([ann.pk], WINDOWS), WINDOWS)
    before, after = sums[ann.pk]
    at = {name: position for position, name in enumerate(evaluation.COLUMNS)}
    assert (before[at["rated"]], after[at["rated"]]) == (10, 5)
    assert (before[at["closed"]], after[at["closed"]], after[at["unplanned"]]) == (0, 1, 1)
    assert after[at["total_sum"]] == 180


# -- the pages ----------------------------------------------------------------------------------


@pytest.fixture
def clinic():
    org = factories.organization()
    people = {
        "admin": factories.user(org, role=Role.ADMIN),
        "supervisor": factories.user(org, role=Role.SUPERVISOR),
        "ann": factories.user(org, username="ann"),
        "ben": factories.user(org, username="ben"),
    }
    other = factories.organization()
    people["outsider"] = factories.user(other, username="otto")
    people["other_admin"] = factories.user(other, role=Role.ADMIN)
    return org, people


def form_data(*attendees, date="2026-04-15", title="Rupture repair workshop"):
    return {
        "title": title,
        "kind": TrainingKind.WORKSHOP,
        "date": date,
        "attendees": [user.pk for user in attendees],
    }


@pytest.mark.django_db
def test_a_supervisor_records_a_training_and_it_is_audited(client, clinic):
    org, people = clinic
    client.force_login(people["supervisor"])
    response = client.post(reverse("training_new"), form_data(people["ann"], people["ben"]))
    training = Training.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("training_evaluation", args=[training.pk])
    assert (training.organization, training.created_by) == (org, people["supervisor"])
    assert set(training.attendees.all()) == {people["ann"], people["ben"]}
    entry = AuditEntry.objects.get(action=Action.TRAINING_SAVED)
    assert (entry.actor, entry.object_id, entry.detail) == (
        people["supervisor"],
        str(training.pk),
        "Rupture repair workshop",
    )
    response = client.post(
        reverse("training_edit", args=[training.pk]), form_data(people["ann"], title="Renamed")
    )
    training.refresh_from_db()
    assert (training.title, list(training.attendees.all())) == ("Renamed", [people["ann"]])
    assert training.created_by == people["supervisor"]
    assert AuditEntry.objects.filter(action=Action.TRAINING_SAVED).count() == 2
    listing = client.get(reverse("training_list")).content.decode()
    assert "Renamed" in listing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"date": "2099-01-01"}, "date", "A training is recorded once it has taken place."),
        ({"attendees": []}, "attendees", "Choose at least one therapist who attended."),
        ({"title": ""}, "title", "This field is required."),
        ({"kind": "lecture"}, "kind", "Select a valid choice."),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_stored(
    client, clinic, change, field, message
):
    _org, people = clinic
    client.force_login(people["admin"])
    response = client.post(reverse("training_new"), form_data(people["ann"]) | change)
    assert response.status_code == 200
    assert any(error.startswith(message) for error in response.context["form"].errors[field])
    assert "Nothing was saved" in response.content.decode()
    assert not Training.objects.exists()
    assert not AuditEntry.objects.filter(action=Action.TRAINING_SAVED).exists()


@pytest.mark.django_db
def test_attendees_come_from_the_organisation_only(client, clinic):
    _org, people = clinic
    client.force_login(people["admin"])
    response = client.post(reverse("training_new"), form_data(people["ann"], people["outsider"]))
    assert response.status_code == 200
    assert "attendees" in response.context["form"].errors
    assert not Training.objects.exists()
    choices = {
        user
        for (user,) in response.context["form"].fields["attendees"].queryset.values_list("username")
    }
    assert "otto" not in choices and {"ann", "ben"} <= choices


@pytest.mark.django_db
def test_a_therapist_may_not_and_another_organisation_does_not_see_it(client, clinic):
    org, people = clinic
    training = Training.objects.create(
        organization=org, title="Workshop", kind=TrainingKind.WORKSHOP, date=TRAINING_DAY
    )
    training.attendees.add(people["ann"])
    pages = [
        reverse("training_list"),
        reverse("training_new"),
        reverse("training_edit", args=[training.pk]),
        reverse("training_evaluation", args=[training.pk]),
    ]
    client.force_login(people["ann"])
    assert [client.get(url).status_code for url in pages] == [403] * 4
    client.force_login(people["other_admin"])
    assert [client.get(url).status_code for url in pages] == [200, 200, 404, 404]
    assert client.post(pages[2], form_data(people["outsider"])).status_code == 404
    client.force_login(people["admin"])
    assert [client.get(url).status_code for url in pages] == [200] * 4


def monthly_world(clients: int):
    """Six therapists (three attending) with `clients` clients between them, each rated in
    February and June, and one episode each closed in June."""
    org = factories.organization()
    admin = factories.user(org, role=Role.ADMIN)
    therapists = [factories.user(org) for _ in range(6)]
    for number in range(clients):
        therapist = therapists[number % 6]
        episode = closed_episode(org, therapist, datetime.date(2026, 6, 10))
        for month, mean in ((FEB, 36), (JUN, 38 if number % 6 < 3 else 36)):
            AllianceMonth.objects.create(
                episode=episode,
                therapist=therapist,
                month=month,
                total_sum=Decimal(mean * 10),
                count=10,
                concerns=0,
            )
    training = Training.objects.create(
        organization=org, title="Workshop", kind=TrainingKind.WORKSHOP, date=TRAINING_DAY
    )
    training.attendees.add(*therapists[:3])
    return admin, training


@pytest.mark.django_db
def test_the_evaluation_page_shows_the_difference_and_its_counts(client):
    admin, training = monthly_world(18)
    client.force_login(admin)
    response = client.get(reverse("training_evaluation", args=[training.pk]))
    page = response.content.decode()
    mean = {figure.rule.key: figure for figure in response.context["result"].figures}["mean_rating"]
    assert mean.difference == 2.0 and mean.interval == (2.0, 2.0)
    assert "January 2026 to March 2026" in page and "May 2026 to July 2026" in page
    assert "3 whole months" in page
    # Six episodes closed after in each group, none before: too few, said in words.
    assert "0 closed episodes before the training among attendees: too few to judge" in page
    assert 'id="chart-mean_rating"' in page


@pytest.mark.django_db
def test_a_window_outside_the_limits_falls_back_with_a_note(client):
    admin, training = monthly_world(6)
    client.force_login(admin)
    url = reverse("training_evaluation", args=[training.pk])
    for days in ("10", "400", "many"):
        response = client.get(url, {"days": days})
        assert response.context["days"] == 90
        assert "from 30 to 365" in response.content.decode()
    assert client.get(url, {"days": "30"}).context["windows"].months == 1


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_evaluation_page_costs_the_same_for_5_and_50_clients(client):
    counts = []
    for clients in (5, 50):
        admin, training = monthly_world(clients)
        client.force_login(admin)
        counts.append(count_queries(client, reverse("training_evaluation", args=[training.pk])))
    assert counts[0] == counts[1]
