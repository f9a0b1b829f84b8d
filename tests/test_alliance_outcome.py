"""The alliance-outcome analysis: the model recovers a known within-client effect from simulated
data, the pairs read from the database are exactly the ones the rule gives, too few data say so,
the command stores the fits, and the page reads only what is stored, for those who may see it.
"""

import io
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.clinic.models import Episode, TherapySession
from alliance_app.feedback.models import Channel, Rating
from alliance_app.research import analysis
from alliance_app.research.models import AllianceOutcomeFit, AnalysisStatus
from alliance_app.research.views_analysis import coefficient_chart
from tests import factories

TRUE_WITHIN = 0.5
TRUE_BETWEEN = 0.2


def simulate(seed: int = 12, clients: int = 120, sessions: int = 8) -> pd.DataFrame:
    """Clients with their own alliance level; each session's rating wanders about it, and the
    next outcome rises 0.5 per point above the client's level and 0.2 per point of the level
    above 36, beside the current outcome, a trend over sessions and the client's own intercept."""
    rng = np.random.default_rng(seed)
    rows = []
    for episode in range(clients):
        level, intercept, outcome = rng.normal(36, 2), rng.normal(0, 3), rng.normal(20, 4)
        for number in range(1, sessions + 1):
            alliance = level + rng.normal(0, 1.5)
            following = (
                10
                + TRUE_WITHIN * (alliance - level)
                + TRUE_BETWEEN * (level - 36)
                + 0.5 * outcome
                + 0.4 * number
                + intercept
                + rng.normal(0, 2)
            )
            rows.append((episode, None, number, alliance, outcome, following))
            outcome = following
    return pd.DataFrame(rows, columns=list(analysis.PAIR_COLUMNS))


@cache
def simulated_fit() -> analysis.FitResult:
    return analysis.fit(simulate())


def test_the_model_recovers_the_within_and_between_effects_within_their_intervals():
    result = simulated_fit()
    assert result.status == AnalysisStatus.FITTED
    assert (result.clients, result.pairs) == (120, 960)
    within, between = result.term("alliance_within"), result.term("alliance_between")
    assert within.low < TRUE_WITHIN < within.high
    assert between.low < TRUE_BETWEEN < between.high
    assert within.p < 0.001
    assert [term.name for term in result.terms] == [
        "const",
        "alliance_within",
        "alliance_between",
        "outcome_now",
        "session_number",
    ]
    # Per within-client SD of alliance: the estimate and its interval scaled by that SD.
    assert result.per_sd == pytest.approx(
        (
            within.estimate * result.within_sd,
            within.low * result.within_sd,
            within.high * result.within_sd,
        )
    )
    assert within.high - within.low == pytest.approx(2 * 1.959964 * within.se)


def test_person_mean_centring_splits_each_session_rating():
    pairs = pd.DataFrame(
        [
            (1, None, 1, 36.0, 20.0, 22.0),
            (1, None, 2, 38.0, 22.0, 25.0),
            (2, None, 1, 34.0, 18.0, 19.0),
        ],
        columns=list(analysis.PAIR_COLUMNS),
    )
    frame = analysis.prepare(pairs)
    assert frame["alliance_mean"].tolist() == [37.0, 37.0, 34.0]
    assert frame["alliance_within"].tolist() == [-1.0, 1.0, 0.0]
    # Centred on the mean of the pairs, (36 + 38 + 34) / 3 = 36.
    assert frame["alliance_between"].tolist() == [1.0, 1.0, -2.0]


def test_too_few_clients_or_pairs_is_said_with_the_counts():
    few = simulate(clients=29, sessions=8)
    result = analysis.fit(few)
    assert result.status == AnalysisStatus.TOO_FEW
    assert result.terms == []
    assert result.message == (
        "29 clients and 232 session pairs: the model needs at least 30 clients and 200 pairs."
    )
    short = analysis.fit(simulate(clients=40, sessions=4))
    assert (short.status, short.clients, short.pairs) == (AnalysisStatus.TOO_FEW, 40, 160)


def test_no_variation_within_clients_is_too_few_not_a_failure():
    flat = simulate(clients=40, sessions=6)
    flat["alliance"] = flat.groupby("episode")["alliance"].transform("mean")
    result = analysis.fit(flat)
    assert result.status == AnalysisStatus.TOO_FEW
    assert "vary" in result.message


def test_a_stored_result_reads_back_the_same():
    result = simulated_fit()
    stored = analysis._clean(result.as_json())
    assert analysis.result_from(stored) == result


# From the database


def _rating(session, scale: str, total: str, rater: str = "client", label: str = "") -> Rating:
    # Three equal items in tenths and the rest in the fourth, so the items sum to the total.
    item = Decimal(int(Decimal(total) * 10 / 4)) / 10
    return Rating(
        session=session,
        instrument="outcome-adult" if scale == "outcome" else "session-adult",
        scale=scale,
        rater=rater,
        rater_label=label,
        item_1=item,
        item_2=item,
        item_3=item,
        item_4=Decimal(total) - 3 * item,
        total=Decimal(total),
        channel=Channel.PAPER,
    )


def _episode_with(org, therapist, code: str, sessions: dict[int, dict[str, str]]) -> Episode:
    patient = factories.client(org, therapist, code=code)
    episode = factories.episode(patient)
    ratings = []
    for number, scales in sessions.items():
        session = TherapySession.objects.create(
            episode=episode, number=number, date=date(2026, 1, 5) + timedelta(days=7 * number)
        )
        ratings += [_rating(session, scale, total) for scale, total in scales.items()]
    Rating.objects.bulk_create(ratings)
    return episode


@pytest.mark.django_db
def test_the_pairs_read_from_the_database_follow_the_rule():
    org, other = factories.organization(), factories.organization()
    north = factories.team(org, "North")
    ann = factories.user(org, team=north)
    # Session 3 has no outcome rating, so session 2's next outcome is session 4's, and session
    # 3 makes no pair; session 4 has no later outcome. A partner's ratings do not count.
    first = _episode_with(
        org,
        ann,
        "A-1",
        {
            1: {"outcome": "20.0", "session": "36.0"},
            2: {"outcome": "22.0", "session": "38.0"},
            3: {"session": "37.0"},
            4: {"outcome": "25.0", "session": "39.0"},
        },
    )
    partner_session = first.sessions.get(number=1)
    Rating.objects.bulk_create(
        [_rating(partner_session, "session", "10.0", rater="partner", label="Sam")]
    )
    # Outcome only in session 1: no pair.
    _episode_with(org, ann, "A-2", {1: {"outcome": "20.0"}, 2: {"session": "30.0"}})
    second = _episode_with(
        org,
        factories.user(org),
        "A-3",
        {1: {"outcome": "15.0", "session": "30.0"}, 2: {"outcome": "16.5", "session": "31.0"}},
    )
    _episode_with(
        other,
        factories.user(other),
        "B-1",
        {1: {"outcome": "1.0", "session": "1.0"}, 2: {"outcome": "2.0"}},
    )
    chunks = []
    pairs = analysis.session_pairs(org, chunk=2, progress=chunks.append)
    assert chunks == [2, 1]
    assert pairs.drop(columns="team").to_dict("records") == [
        {
            "episode": first.pk,
            "session_number": 1,
            "alliance": 36.0,
            "outcome_now": 20.0,
            "next_outcome": 22.0,
        },
        {
            "episode": first.pk,
            "session_number": 2,
            "alliance": 38.0,
            "outcome_now": 22.0,
            "next_outcome": 25.0,
        },
        {
            "episode": second.pk,
            "session_number": 1,
            "alliance": 30.0,
            "outcome_now": 15.0,
            "next_outcome": 16.5,
        },
    ]
    # The second therapist has no team.
    assert pairs["team"].fillna(0).tolist() == [north.pk, north.pk, 0]
    frame = analysis.prepare(pairs)
    assert frame["alliance_mean"].tolist() == [37.0, 37.0, 30.0]
    assert frame["alliance_within"].tolist() == [-1.0, 1.0, 0.0]


def _simulated_clinic(org, team, clients: int, seed: int = 3) -> None:
    """The simulation's clients as rated sessions, by one therapist of `team`."""
    therapist = factories.user(org, team=team)
    frame = simulate(seed=seed, clients=clients, sessions=6)
    for episode, rows in frame.groupby("episode"):
        sessions = {}
        for row in rows.itertuples():
            sessions[row.session_number] = {
                "outcome": _total(row.outcome_now),
                "session": _total(row.alliance),
            }
        sessions[len(rows) + 1] = {"outcome": _total(rows["next_outcome"].iloc[-1])}
        _episode_with(org, therapist, f"S-{team.pk}-{episode}", sessions)


def _total(value: float) -> str:
    # Four equal items in tenths: a total in steps of 0.4 within the scale.
    return f"{min(40.0, max(0.0, round(value / 0.4) * 0.4)):.1f}"


@pytest.mark.django_db
def test_the_command_stores_a_fit_for_the_organisation_and_each_team():
    org = factories.organization()
    big, small = factories.team(org, "Big"), factories.team(org, "Small")
    _simulated_clinic(org, big, 40)
    _simulated_clinic(org, small, 3, seed=4)
    out = io.StringIO()
    call_command(
        "fit_alliance_outcome", organization_slug=org.slug, stdout=out, stderr=io.StringIO()
    )
    fits = {row.team_id: row for row in AllianceOutcomeFit.objects.filter(organization=org)}
    assert set(fits) == {None, big.pk, small.pk}
    assert (fits[None].status, fits[None].clients, fits[None].sessions) == ("fitted", 43, 258)
    assert (fits[big.pk].status, fits[big.pk].clients, fits[big.pk].sessions) == (
        "fitted",
        40,
        240,
    )
    assert (fits[small.pk].status, fits[small.pk].clients) == ("too_few", 3)
    within = analysis.result_from(fits[None].results).term("alliance_within")
    assert within.low < TRUE_WITHIN < within.high
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{org.slug} · organisation: fitted (43 clients, 258 session pairs)")
    assert lines[2] == (
        f"{org.slug} · Small: too_few (3 clients, 18 session pairs): 3 clients and 18 session "
        "pairs: the model needs at least 30 clients and 200 pairs."
    )
    # Fitting again replaces the fits rather than adding to them.
    call_command(
        "fit_alliance_outcome", organization_slug=org.slug, stdout=out, stderr=io.StringIO()
    )
    assert AllianceOutcomeFit.objects.filter(organization=org).count() == 3


@pytest.mark.django_db
def test_the_command_refuses_an_unknown_organisation():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no organisation 'nowhere'"):
        call_command("fit_alliance_outcome", organization_slug="nowhere", stdout=io.StringIO())
    assert AllianceOutcomeFit.objects.count() == 0


# The page


def _store(org, team=None, result: analysis.FitResult | None = None) -> AllianceOutcomeFit:
    result = result or simulated_fit()
    return AllianceOutcomeFit.objects.create(
        organization=org,
        team=team,
        status=result.status,
        clients=result.clients,
        sessions=result.pairs,
        results=analysis._clean(result.as_json()),
    )


class Clinic:
    def __init__(self, clients: int = 0):
        self.org = factories.organization("Clinic A")
        self.north, self.south = (
            factories.team(self.org, "North"),
            factories.team(self.org, "South"),
        )
        self.therapist = factories.user(self.org, team=self.north)
        self.supervisor = factories.user(self.org, role=Role.SUPERVISOR)
        self.supervisor.membership.supervised_teams.add(self.north)
        self.admin = factories.user(self.org, role=Role.ADMIN)
        for n in range(clients):
            factories.client(self.org, self.therapist, code=f"Q{n:03}")


@pytest.mark.django_db
def test_the_page_shows_the_stored_fit(client):
    clinic = Clinic()
    _store(clinic.org)
    client.force_login(clinic.admin)
    response = client.get(reverse("alliance_outcome"))
    assert response.status_code == 200
    page = response.content.decode()
    within = simulated_fit().term("alliance_within")
    assert f"{within.estimate:.2f}" in page
    assert f"{within.low:.2f} – {within.high:.2f}" in page
    assert "120 clients (episodes of care), 960 session pairs, 8.0 pairs per client" in page
    assert "r = 0.278 (0.256 to 0.299) across 295 studies" in page
    assert "Falkenström et al. 2017" in page
    assert 'id="coefficient-chart"' in page
    # The teams have no fit yet, and say so in the list.
    assert page.count("(not fitted)") == 2


@pytest.mark.django_db
def test_the_page_says_when_nothing_is_fitted_or_too_few(client):
    clinic = Clinic()
    client.force_login(clinic.supervisor)
    page = client.get(reverse("alliance_outcome")).content.decode()
    assert "Not fitted yet: run" in page and "manage.py fit_alliance_outcome" in page
    assert "coefficient-chart" not in page
    _store(clinic.org, clinic.north, analysis.fit(simulate(clients=5, sessions=3)))
    page = client.get(reverse("alliance_outcome_team", args=[clinic.north.pk])).content.decode()
    assert (
        "5 clients and 15 session pairs: the model needs at least 30 clients and 200 pairs." in page
    )
    assert "coefficient-chart" not in page


@pytest.mark.django_db
def test_who_may_open_what(client):
    clinic = Clinic()
    _store(clinic.org)
    _store(clinic.org, clinic.north)
    other = factories.organization("Clinic B")
    other_admin = factories.user(other, role=Role.ADMIN)
    north, south = (
        reverse("alliance_outcome_team", args=[t.pk]) for t in (clinic.north, clinic.south)
    )
    client.force_login(clinic.therapist)
    assert client.get(reverse("alliance_outcome")).status_code == 403
    client.force_login(clinic.supervisor)
    assert client.get(north).status_code == 200
    assert client.get(south).status_code == 404
    page = client.get(reverse("alliance_outcome")).content.decode()
    assert "North" in page and "South" not in page
    client.force_login(clinic.admin)
    assert client.get(south).status_code == 200
    client.force_login(other_admin)
    assert client.get(north).status_code == 404
    page = client.get(reverse("alliance_outcome")).content.decode()
    assert "Not fitted yet" in page
    assert "Clinic A" not in page and "North" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.ADMIN, Role.SUPERVISOR])
def test_the_page_runs_the_same_number_of_queries_for_5_and_50_clients(client, role):
    counts = []
    for size in (5, 50):
        clinic = Clinic(clients=size)
        _store(clinic.org)
        _store(clinic.org, clinic.north)
        client.force_login(clinic.admin if role == Role.ADMIN else clinic.supervisor)
        url = reverse("alliance_outcome_team", args=[clinic.north.pk])
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        counts.append(len(captured))
    # The login session, the user with their membership; the teams they see; the statuses of
    # the fits of the scopes shown; the fit shown.
    assert counts == [5, 5]


@pytest.mark.django_db
def test_the_page_reads_one_fits_results_however_many_teams_have_one(client):
    counts = []
    for teams in (2, 30):
        clinic = Clinic()
        _store(clinic.org)
        for number in range(teams):
            _store(clinic.org, factories.team(clinic.org, f"Team {number}"))
        client.force_login(clinic.admin)
        client.get(reverse("alliance_outcome"))
        with CaptureQueriesContext(connection) as captured:
            page = client.get(reverse("alliance_outcome")).content.decode()
        counts.append(len(captured))
        # The scopes still say which have no fit (North and South), read without their results.
        assert page.count("(not fitted)") == 2
        fits = [q["sql"] for q in captured.captured_queries if "allianceoutcomefit" in q["sql"]]
        (whole,) = [sql for sql in fits if '"results"' in sql]
        assert '"research_allianceoutcomefit"."id" =' in whole
    assert counts == [5, 5]


def test_the_coefficient_chart_is_a_valid_figure():
    figure = coefficient_chart(simulated_fit())
    go.Figure(figure)
    points = figure["data"][0]
    within = simulated_fit().term("alliance_within")
    assert points["x"][0] == round(within.estimate, 3)
    assert points["error_x"]["array"][0] == round(within.high - within.estimate, 3)
    assert len(points["y"]) == 4


def test_client_ids_never_reach_the_stored_results():
    assert set(simulated_fit().as_json()) == {
        "status",
        "message",
        "clients",
        "pairs",
        "terms",
        "within_sd",
        "per_sd",
        "standardised",
        "client_variance",
        "residual_variance",
        "notes",
        "min_clients",
        "min_pairs",
    }
