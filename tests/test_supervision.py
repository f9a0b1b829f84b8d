"""The supervision page, and the rupture figures of the team and organisation pages: exact
figures on a small hand-built clinic, who may open what, and query counts that do not grow with
the number of clients.

The clinic (no SD measured, so the fallback 1.0: a rupture is a fall of 1.0 below the mean of up
to 3 previous totals; repaired when back within 0.5 of it within 3 sessions):

North team: Ann, Ben and Cal (no clients), supervised by Sue (a member of North herself).
  Ann  A-1  39.5 39.5 36.5 39.5 36.5 39.5 36.5 39.5 36.5 39.5: ruptures at 3, 5, 7, 9, each
            repaired one session later; the goals item falls each time.
       A-2  39.0 39.0 37.0 37.0 37.0 37.0: a rupture at 3 where goals and tasks fall equally,
            unrepaired at 6.
       A-3  38.0 38.0 36.5 37.0: a rupture at 3 (the bond item), still pending.
       A-4  38.0 × 6: none.
       26 rated sessions, every one answering the tension question: yes in A-4's sessions 1, 2
       and 3, sorted out 4, 2 and 3.
  Ben  B-1  39.0 39.0 37.5 39.0: a rupture at 3 (the session as a whole), repaired at 4.
       B-2  39.0 39.0: too short for a rupture.
South team: Dot, D-1 38.0 38.0 35.0 (pending), supervised by Sid.

Outcome ratings (first, latest): A-1 20.0 → 30.0 (recovered), A-2 20.0 → 21.0 (unchanged),
A-3 20.0 → 22.0 (pending: left out), A-4 20.0 → 26.0 (recovered), B-1 22.0 → 24.0
(unchanged), B-2 20.0 → 20.0 (too short: left out).
"""

import datetime
from decimal import Decimal

import plotly.graph_objects as go
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alliance_app.accounts.access import PeerScope, supervision_peers
from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Episode
from alliance_app.dashboards import charts, ruptures, selectors
from alliance_app.dashboards.ruptures import (
    Basis,
    Estimate,
    RuptureGroup,
    RuptureTally,
    SessionSums,
    Tallies,
    group_of,
    outcome_groups,
    summarise,
)
from alliance_app.dashboards.stats import EpisodeOutcomeRow
from alliance_app.dashboards.supervision import _since, rule_in_force
from alliance_app.feedback.models import Flag, Reflection, ReflectionOption, RuptureSD
from alliance_app.measures import EpisodeOutcome, TensionAnswer
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

HIGH, DIP = "10 10 10 9.5", "10 7 10 9.5"  # 39.5, and 36.5 where the goals item fell
STEADY = "9.5 9.5 9.5 9.5"  # 38.0
A1 = [HIGH, HIGH] + [DIP, HIGH] * 4
A2 = ["10 10 9.5 9.5"] * 2 + ["10 9 8.5 9.5"] * 4  # 39.0, then 37.0: goals and tasks fell 1.0
A3 = [STEADY, STEADY, "8 9.5 9.5 9.5", "8.5 9.5 9.5 9.5"]  # 38.0 38.0 36.5 37.0: the bond
B1 = ["10 10 9.5 9.5", "10 10 9.5 9.5", "10 10 9.5 8", "10 10 9.5 9.5"]  # 37.5: as a whole
YES = {1: 4, 2: 2, 3: 3}  # A-4's sessions with tension, and how far it was sorted out


def series(org, therapist, code, sessions, outcomes=None, tension=None, start=None):
    """A client whose own session ratings are `sessions` (items), one session a day from
    `start`; `outcomes` (first, latest) rated at the first and the last session."""
    client = factories.client(org, therapist, code=code)
    episode = factories.episode(client)
    start = start or datetime.date(2026, 1, 6)
    for number, items in enumerate(sessions, 1):
        session = episode.sessions.create(
            number=number, date=start + datetime.timedelta(days=number - 1), format="individual"
        )
        answer = tension(number) if tension else None
        rate(session, "session-adult", items, tension=answer)
        if outcomes and number in (1, len(sessions)):
            rate(session, "outcome-adult", outcomes[0 if number == 1 else 1])
    return client


def answer(yes: dict[int, int]):
    def tension(number: int) -> TensionAnswer:
        if number in yes:
            return TensionAnswer(tension=True, resolution=yes[number])
        return TensionAnswer(tension=False)

    return tension


class World:
    def __init__(self):
        self.org = org = factories.organization("Harbour Clinic")
        north, south = factories.team(org, "North"), factories.team(org, "South")
        self.ann = factories.user(org, team=north, username="ann")
        self.ben = factories.user(org, team=north, username="ben")
        self.cal = factories.user(org, team=north, username="cal")
        self.sue = factories.user(org, role=Role.SUPERVISOR, team=north, username="sue")
        self.sue.membership.supervised_teams.add(north)
        self.dot = factories.user(org, team=south, username="dot")
        self.sid = factories.user(org, role=Role.SUPERVISOR, username="sid")
        self.sid.membership.supervised_teams.add(south)
        self.admin = factories.user(org, role=Role.ADMIN, username="boss")
        no = answer({})
        self.a1 = series(org, self.ann, "A-1", A1, ("5 5 5 5", "7.5 7.5 7.5 7.5"), no)
        self.a2 = series(org, self.ann, "A-2", A2, ("5 5 5 5", "5 5 5 6"), no)
        self.a3 = series(org, self.ann, "A-3", A3, ("5 5 5 5", "5 5 6 6"), no)
        self.a4 = series(org, self.ann, "A-4", [STEADY] * 6, ("5 5 5 5", "6 6 7 7"), answer(YES))
        self.b1 = series(org, self.ben, "B-1", B1, ("5 5 6 6", "6 6 6 6"))
        self.b2 = series(org, self.ben, "B-2", ["10 10 9.5 9.5"] * 2, ("5 5 5 5", "5 5 5 5"))
        self.d1 = series(org, self.dot, "D-1", [STEADY, STEADY, "9 8.5 8.5 9"])
        self.reflect()

    def reflect(self):
        """Ann reflects on two of A-1's ruptures."""
        options = {
            (option.kind, option.code): option
            for option in ReflectionOption.objects.filter(organization=self.org)
        }
        flags = Flag.objects.filter(client=self.a1, kind="rupture").order_by("rating__session")
        for flag, marker, strategies in (
            (flags[0], "withdrawal", ["clarify", "rationale"]),
            (flags[1], "confrontation", ["clarify"]),
        ):
            reflection = Reflection.objects.create(
                flag=flag, author=self.ann, marker=options["marker", marker], dimension="goals"
            )
            reflection.strategies.set([options["strategy", code] for code in strategies])


@pytest.fixture
def world():
    return World()


def open_page(http, user, name, *args, **params):
    http.force_login(user)
    response = http.get(reverse(name, args=args), params)
    assert response.status_code == 200
    return response


# The figures, from the summary rows


def test_the_therapists_figures_come_from_the_summary_rows(world):
    mine = summarise(selectors.rupture_tallies([world.ann.pk], since=None, monthly=True))
    assert (mine.rated_sessions, mine.ruptures) == (26, 6)
    assert (mine.repaired, mine.unrepaired, mine.pending) == (4, 1, 1)
    assert mine.rate.shown == 23.1  # 6 per 26 rated sessions
    assert mine.repaired_share.shown == 0.8  # 4 of the 5 that ended
    assert mine.median_to_repair.shown == 1
    # A-1's four goals, A-2's tie (half each to goals and tasks), A-3's bond
    assert {code: estimate.shown for code, estimate in mine.profile.items()} == {
        "bond": 1 / 6,
        "goals": 4.5 / 6,
        "tasks": 0.5 / 6,
        "general": 0.0,
    }
    assert (mine.tension_answers, mine.tensions) == (26, 3)
    assert mine.tension_rate.shown == 3 / 26
    assert mine.mean_resolution.shown == 3.0  # (4 + 2 + 3) / 3
    assert mine.reflections == 2


def test_the_team_pools_its_therapists(world):
    team = summarise(
        selectors.rupture_tallies(
            [world.ann.pk, world.ben.pk, world.cal.pk], since=None, monthly=False
        )
    )
    assert (team.rated_sessions, team.ruptures, team.repaired, team.unrepaired) == (32, 7, 5, 1)
    assert team.rate.shown == 21.9  # 7 per 32
    assert team.repaired_share.shown == 5 / 6
    assert team.profile["general"].shown == 1 / 7
    # Ben answered no tension question: the team's rate rests on Ann's 26 answers.
    assert (team.tension_answers, team.tension_rate.shown) == (26, 3 / 26)


def test_markers_and_strategies_are_counted_from_the_reflections(world):
    tallies = selectors.rupture_tallies([world.ann.pk], since=None, monthly=False)
    markers = ruptures.choice_rows(tallies, tallies, "marker")
    strategies = ruptures.choice_rows(tallies, Tallies(), "strategy")
    assert [(row.code, row.mine, row.team) for row in markers] == [
        ("withdrawal", 1, 1),
        ("confrontation", 1, 1),
    ]
    assert [(row.code, row.label, row.mine, row.team) for row in strategies] == [
        ("clarify", "Clarified a misunderstanding", 2, 0),
        ("rationale", "Explained the rationale for the task or goal", 1, 0),
    ]


def test_ruptures_by_month_split_by_status(world):
    # Sessions on 30 and 31 March and 1 April: the rupture falls in April.
    series(world.org, world.ann, "A-5", [HIGH, HIGH, DIP], start=datetime.date(2026, 3, 30))
    months = ruptures.by_month(selectors.rupture_tallies([world.ann.pk], since=None, monthly=True))
    assert [
        (m.month.isoformat(), m.repaired, m.unrepaired, m.pending, m.rated) for m in months
    ] == [
        ("2026-01-01", 4, 1, 1, 26),
        ("2026-03-01", 0, 0, 0, 2),
        ("2026-04-01", 0, 0, 1, 1),
    ]


def test_a_window_leaves_out_earlier_months(world):
    series(world.org, world.ann, "A-5", [HIGH, HIGH, DIP, HIGH], start=datetime.date(2026, 5, 4))
    since = datetime.date(2026, 5, 1)
    recent = summarise(selectors.rupture_tallies([world.ann.pk], since=since, monthly=False))
    assert (recent.rated_sessions, recent.ruptures, recent.repaired, recent.reflections) == (
        4,
        1,
        1,
        0,
    )
    assert recent.rate.shown is None
    assert recent.rate.shortfall == "fewer than 20 rated sessions"


def test_the_last_months_end_with_this_one():
    today = datetime.date(2026, 11, 30)
    assert _since(12, today) == datetime.date(2025, 12, 1)
    assert _since(6, today) == datetime.date(2026, 6, 1)
    assert _since(1, datetime.date(2026, 1, 15)) == datetime.date(2026, 1, 1)
    assert _since(None, today) is None


# The figures, pure


def tallies(*rows, sessions=(), choices=()):
    return Tallies(
        ruptures=[RuptureTally(*row) for row in rows], sessions=sessions, choices=choices
    )


def test_a_tie_counts_a_share_to_each_part():
    found = summarise(
        tallies(
            ("repaired", "goals tasks", 2, 1),
            ("unrepaired", "bond goals tasks", None, 1),
            ("repaired", "bond", 1, 2),
            ("unrepaired", "general", None, 1),
        )
    )
    assert found.ruptures == 5
    shares = {code: estimate.shown for code, estimate in found.profile.items()}
    # goals 1/2 + 1/3, tasks 1/2 + 1/3, bond 1/3 + 2, general 1; of 5
    assert shares == pytest.approx(
        {"bond": (7 / 3) / 5, "goals": (5 / 6) / 5, "tasks": (5 / 6) / 5, "general": 1 / 5}
    )
    assert sum(shares.values()) == pytest.approx(1)
    assert found.median_to_repair.shown == 1  # 1, 1, 2
    assert found.repaired_share.shown == 0.6


def test_the_median_of_an_even_number_of_repairs_lies_between_them():
    found = summarise(tallies(("repaired", "goals", 1, 2), ("repaired", "goals", 3, 2)))
    assert found.median_to_repair.shown == 2.0  # 1 1 3 3


def test_below_each_minimum_the_figure_is_words():
    found = summarise(
        tallies(
            ("repaired", "goals", 1, 2),
            ("unrepaired", "goals", None, 2),
            sessions=[SessionSums(datetime.date(2026, 1, 1), 19, 19, 2, 9)],
        )
    )
    assert (found.rate.shown, found.rate.shortfall) == (None, "fewer than 20 rated sessions")
    assert found.repaired_share.shortfall == "fewer than 5 ended ruptures"
    assert found.median_to_repair.shortfall == "fewer than 3 repairs"
    assert found.tension_rate.shortfall == "fewer than 20 answers to the tension question"
    assert found.mean_resolution.shortfall == "fewer than 3 reported tensions"
    assert found.profile["goals"].shortfall == "fewer than 5 ruptures"
    assert found.rate.value == 21.1  # computed, but not shown: 4 per 19


def test_at_each_minimum_the_figure_is_shown():
    found = summarise(
        tallies(
            ("repaired", "goals", 2, 3),
            ("unrepaired", "tasks", None, 2),
            sessions=[SessionSums(datetime.date(2026, 1, 1), 20, 20, 3, 10)],
        )
    )
    assert found.rate.shown == 25.0
    assert found.repaired_share.shown == 0.6
    assert found.median_to_repair.shown == 2
    assert found.tension_rate.shown == 0.15
    assert found.mean_resolution.shown == 3.3  # 10 / 3, rounded half up
    assert found.profile["tasks"].shown == 0.4
    assert found.rate.shortfall == ""


def test_nothing_at_all_is_not_a_zero():
    found = summarise(Tallies())
    assert found.rate.value is None and found.rate.shortfall == "fewer than 20 rated sessions"
    assert found.profile["bond"].value is None


def test_the_page_writes_a_figure_its_shortfall_or_a_dash():
    from alliance_app.dashboards.templatetags.figures import estimate, estimate_short

    enough = Estimate(0.8, 5, Basis.ENDED_RUPTURES)
    few = Estimate(0.5, 4, Basis.ENDED_RUPTURES)
    no_spread = Estimate(None, 5, Basis.EPISODES)  # an effect size of identical intakes
    nothing = Estimate(None, 0, Basis.RATED_SESSIONS)
    assert (estimate(enough, "percent"), estimate(few, "percent")) == (
        "80%",
        "fewer than 5 ended ruptures",
    )
    assert (estimate(no_spread, "2"), estimate(nothing)) == ("—", "fewer than 20 rated sessions")
    assert [estimate_short(e, "percent") for e in (enough, few, no_spread, nothing)] == [
        "80%",
        "too few",
        "—",
        "—",
    ]


# Outcomes by what the ruptures came to


@pytest.mark.parametrize(
    ("flags", "rated", "group"),
    [
        ({"unrepaired": True, "pending": True, "repaired": True}, 9, RuptureGroup.UNREPAIRED),
        ({"unrepaired": False, "pending": True, "repaired": True}, 9, RuptureGroup.PENDING),
        ({"unrepaired": False, "pending": False, "repaired": True}, 9, RuptureGroup.REPAIRED),
        ({"unrepaired": False, "pending": False, "repaired": False}, 3, RuptureGroup.NONE),
        ({"unrepaired": False, "pending": False, "repaired": False}, 2, RuptureGroup.SHORT),
    ],
)
def test_an_episodes_group(flags, rated, group):
    assert group_of(**flags, rated_sessions=rated, min_rated=3) == group


def outcome(episode_id: int, first: str, latest: str, result: EpisodeOutcome):
    return EpisodeOutcomeRow(
        episode_id=episode_id,
        client_id=episode_id,
        therapist_id=1,
        instrument="outcome-adult",
        first_total=Decimal(first),
        latest_total=Decimal(latest),
        change=Decimal(latest) - Decimal(first),
        outcome=result,
    )


def test_outcomes_by_group_with_larsson_beside_them():
    improved, unchanged = EpisodeOutcome.IMPROVED, EpisodeOutcome.UNCHANGED
    rows, groups = [], {}
    # repaired: 5 episodes, 20 → 26, 18 → 24, 22 → 27, 20 → 22, 16 → 19
    for n, (first, latest, result) in enumerate(
        [
            ("20", "26", improved),
            ("18", "24", improved),
            ("22", "27", EpisodeOutcome.RECOVERED),
            ("20", "22", unchanged),
            ("16", "19", unchanged),
        ]
    ):
        rows.append(outcome(n, first, latest, result))
        groups[n] = RuptureGroup.REPAIRED
    # unrepaired: 5 episodes, each 20 → 19
    for n in range(10, 15):
        rows.append(outcome(n, "20", "19", unchanged))
        groups[n] = RuptureGroup.UNREPAIRED
    # none: 10 episodes, 15 → 20 and 25 → 30 alternately
    for n in range(20, 30):
        first = "15" if n % 2 else "25"
        rows.append(outcome(n, first, str(int(first) + 5), improved))
        groups[n] = RuptureGroup.NONE
    rows.append(outcome(40, "20", "21", unchanged))
    groups[40] = RuptureGroup.PENDING
    rows.append(outcome(41, "20", "21", unchanged))  # no group: too short

    found = outcome_groups(rows, groups)
    assert (found.compared, found.pending, found.short) == (20, 1, 1)
    repaired, unrepaired, none = found.rows
    assert [row.group for row in found.rows] == ["repaired", "unrepaired", "none"]
    assert [row.episodes for row in found.rows] == [5, 5, 10]
    assert [row.share.shown for row in found.rows] == [0.25, 0.25, 0.5]
    assert [row.larsson_share for row in found.rows] == [0.147, 0.107, 0.745]
    assert repaired.mean_change.shown == 4.4  # (6 + 6 + 5 + 2 + 3) / 5
    assert repaired.improved_share.shown == 0.6  # recovered counts as improved
    # intakes 20, 18, 22, 20, 16: SD 2.280; 4.4 / 2.280
    assert repaired.effect_size.shown == 1.93
    assert unrepaired.mean_change.shown == -1.0
    assert unrepaired.effect_size.shown is None  # identical intakes: no spread
    assert unrepaired.improved_share.shown == 0.0
    assert none.effect_size.shown == 0.95  # 5 / SD of five 15s and five 25s (5.27)


def test_a_few_episodes_give_counts_but_no_shares():
    found = outcome_groups(
        [outcome(1, "20", "26", EpisodeOutcome.IMPROVED)], {1: RuptureGroup.REPAIRED}
    )
    repaired = found.rows[0]
    assert repaired.episodes == 1
    assert repaired.share.shortfall == "fewer than 20 episodes compared"
    assert repaired.mean_change.shortfall == "fewer than 5 episodes"


def test_the_team_page_groups_the_episodes_with_outcomes(client, world):
    response = open_page(client, world.sue, "team_statistics")
    found = response.context["rupture_outcomes"]
    # repaired: A-1, B-1; unrepaired: A-2; none: A-4; A-3 pending; B-2 too short
    assert [row.episodes for row in found.rows] == [2, 1, 1]
    assert (found.compared, found.pending, found.short) == (4, 1, 1)
    html = response.content.decode()
    assert "Larsson et al. 2018" in html and "14.7%" in html


def test_the_team_page_gives_each_therapist_a_rupture_rate(client, world):
    response = open_page(client, world.sue, "team_statistics")
    rates = {name: line for name, line, _link in response.context["rupture_rows"]}
    assert set(rates) == {"Ann", "Ben", "Cal"}
    assert (rates["Ann"].ruptures, rates["Ann"].rate.shown) == (6, 23.1)
    assert rates["Ann"].repaired_share.shown == 0.8
    assert (rates["Ben"].ruptures, rates["Ben"].rate.shown) == (1, None)  # 6 rated sessions
    assert rates["Cal"].rated_sessions == 0
    totals = response.context["rupture_totals"]
    assert (totals.rated_sessions, totals.ruptures, totals.rate.shown) == (32, 7, 21.9)
    html = response.content.decode()
    assert f'href="/supervision/{world.ann.pk}/"' in html
    assert "too few" in html


def test_the_overview_gives_each_team_a_rupture_rate(client, world):
    response = open_page(client, world.admin, "overview")
    rates = {name: line for name, line, _link in response.context["rupture_rows"]}
    assert (rates["North"].rated_sessions, rates["North"].ruptures) == (32, 7)
    assert (rates["South"].rated_sessions, rates["South"].ruptures) == (3, 1)
    assert response.context["rupture_outcomes"].compared == 4


# The page


def test_the_page_shows_the_therapist_beside_the_team(client, world):
    response = open_page(client, world.sue, "supervision", world.ann.pk, months="all")
    assert response.context["team_name"] == "North"
    assert response.context["mine"].rate.shown == 23.1
    assert response.context["team"].rate.shown == 21.9
    html = response.content.decode()
    figures = html.split('data-testid="supervision-figures"', 1)[1].split("</table>", 1)[0]
    assert "23.1" in figures and "21.9" in figures and "80%" in figures and "83%" in figures
    assert "withdrawal" in html.lower() and "Clarified a misunderstanding" in html


def test_the_page_says_which_rule_is_in_force(client, world):
    html = open_page(client, world.ann, "supervision", world.ann.pk).content.decode()
    assert (
        "A rupture here is a session total at least 1.0 points below the rater's usual level, "
        "the mean of up to 3 previous totals (at least 2): threshold = max(k × SD, minimum drop) "
        "= max(1.0 × 1.0, 1.0) = 1.0."
    ) in html.replace("&#x27;", "'")
    assert "within 3 sessions, a total comes back to within 0.5 points of that level" in html
    assert "SD 1.0: the fallback, until the clinic&#x27;s own SD is measured" in html
    assert "Gumz et al. 2012" in html


def test_the_rule_names_a_measured_sd_and_its_threshold(world):
    RuptureSD.objects.create(
        organization=world.org,
        value=Decimal("1.12"),
        series=42,
        degrees_of_freedom=310,
        is_fallback=False,
        measured_at=datetime.datetime(2026, 3, 2, 12, tzinfo=datetime.UTC),
    )
    rule = rule_in_force(world.org)
    assert "= max(1.0 × 1.12, 1.0) = 1.12." in rule[0]
    assert "within 0.56 points" in rule[1]
    assert rule[2] == (
        "SD 1.12: the pooled within-client SD of session totals, measured over 42 series "
        "(310 degrees of freedom) on 2 Mar 2026."
    )
    world.org.rupture_k, world.org.rupture_sd = Decimal("2.0"), Decimal("0.80")
    rule = rule_in_force(world.org)
    assert "= max(2.0 × 0.8, 1.0) = 1.6." in rule[0]
    assert rule[2] == "SD 0.8: fixed by the organisation's admin."


def test_the_episode_list_links_each_sequence_to_its_chart(client, world):
    response = open_page(client, world.sue, "supervision", world.ann.pk, months="all")
    listed = {sequence.code: sequence for sequence, _link in response.context["sequences"]}
    assert set(listed) == {"A-1", "A-2", "A-3"}
    a1 = listed["A-1"]
    assert [(s.session_number, s.status, s.repaired_number) for s in a1.steps] == [
        (3, "repaired", 4),
        (5, "repaired", 6),
        (7, "repaired", 8),
        (9, "repaired", 10),
    ]
    assert listed["A-2"].steps[0].dimension_labels == ["Goals", "Tasks"]
    html = response.content.decode()
    episode = world.a1.episodes.get()
    assert f'href="/clients/{world.a1.pk}/?episode={episode.pk}#chart"' in html
    assert "session 3: 36.5, 3.0 below 39.5" in html


def test_the_list_leaves_out_clients_the_viewer_does_not_see(client, world):
    # Ann saw Dot's client X for a while: Sue supervises Ann, but not Dot's clients.
    x = factories.client(world.org, world.dot, code="X-1")
    episode = Episode.objects.create(
        client=x, therapist=world.ann, opened=datetime.date(2026, 1, 5)
    )
    for number, items in enumerate([HIGH, HIGH, DIP], 1):
        session = factories.therapy_session(episode, number=number)
        rate(session, "session-adult", items)

    def listed(viewer):
        response = open_page(client, viewer, "supervision", world.ann.pk, months="all")
        return sorted(sequence.code for sequence, _link in response.context["sequences"])

    assert listed(world.sue) == ["A-1", "A-2", "A-3"]
    assert listed(world.admin) == listed(world.ann) == ["A-1", "A-2", "A-3", "X-1"]
    # the figures are Ann's work, whoever the client's therapist now is
    assert (
        open_page(client, world.sue, "supervision", world.ann.pk, months="all")
        .context["mine"]
        .ruptures
        == 7
    )


def test_viewing_the_page_records_each_client_it_lists(client, world):
    open_page(client, world.admin, "supervision", world.ann.pk, months="all")
    entries = AuditEntry.objects.filter(action=Action.CLIENT_VIEWED)
    assert sorted(entries.values_list("action", "detail", "actor__username")) == [
        (Action.CLIENT_VIEWED, "A-1", "boss"),
        (Action.CLIENT_VIEWED, "A-2", "boss"),
        (Action.CLIENT_VIEWED, "A-3", "boss"),
    ]


def test_the_client_page_opens_the_episode_asked_for(client, world):
    first = world.a1.episodes.get()
    first.closed = datetime.date(2026, 2, 1)
    first.closure = "planned"
    first.save()
    later = factories.episode(world.a1, opened=datetime.date(2026, 3, 1))
    response = open_page(client, world.ann, "client_detail", world.a1.pk)
    assert response.context["episode"] == later
    response = open_page(client, world.ann, "client_detail", world.a1.pk, episode=first.pk)
    assert response.context["episode"] == first
    assert '"name":"Rupture"' in response.context["chart"]
    other = world.a2.episodes.get()
    response = open_page(client, world.ann, "client_detail", world.a1.pk, episode=other.pk)
    assert response.context["episode"] == later  # another client's episode is not shown here


# Who sees whose page, and beside whom


def test_a_therapist_sees_their_own_page_beside_their_team(client, world):
    response = open_page(client, world.ann, "supervision", world.ann.pk)
    assert response.context["team_name"] == "North"
    client.force_login(world.ann)
    assert client.get(reverse("supervision", args=[world.ben.pk])).status_code == 404
    assert client.get(reverse("supervision_index")).url == f"/supervision/{world.ann.pk}/"


def test_a_therapist_in_a_small_team_sees_no_team_figures(client, world):
    assert supervision_peers(world.dot.membership, world.dot) == ([], PeerScope.NONE)
    response = open_page(client, world.dot, "supervision", world.dot.pk)
    assert response.context["team"] is None
    assert "at least three members" in response.content.decode()


def test_supervisors_see_their_teams_only(client, world):
    client.force_login(world.sid)
    assert client.get(reverse("supervision", args=[world.ann.pk])).status_code == 404
    response = open_page(client, world.sid, "supervision", world.dot.pk)
    # Dot is South's only member: beside her own figures, those of everyone Sid supervises.
    assert response.context["team_name"] == "Everyone you supervise"
    listed = [
        user.username
        for user, _rates in open_page(client, world.sue, "supervision_index").context["rows"]
    ]
    assert listed == ["ann", "ben", "cal"]


def test_admins_compare_with_the_organisation(client, world):
    peers = supervision_peers(world.admin.membership, world.ann)
    assert peers.scope == PeerScope.ORGANIZATION
    assert set(peers.ids) == {
        world.ann.pk,
        world.ben.pk,
        world.cal.pk,
        world.dot.pk,
        world.sue.pk,
        world.sid.pk,
    }
    response = open_page(client, world.admin, "supervision", world.ann.pk, months="all")
    assert response.context["team_name"] == "Harbour Clinic"
    assert response.context["team"].ruptures == 8  # North's 7 and Dot's 1
    other = factories.organization()
    outsider = factories.user(other, role=Role.ADMIN)
    client.force_login(outsider)
    assert client.get(reverse("supervision", args=[world.ann.pk])).status_code == 404


# Charts


def test_the_profile_chart_draws_the_shares_shown():
    mine = summarise(tallies(("repaired", "goals", 1, 4), ("unrepaired", "tasks", None, 1)))
    few = summarise(tallies(("repaired", "goals", 1, 1)))
    figure = charts.profile_chart([("Ann", mine.profile), ("Team <North>", few.profile)])
    assert len(figure["data"]) == 1  # the team's one rupture makes no profile
    (bars,) = figure["data"]
    assert bars["y"] == ["Bond", "Goals", "Tasks", "Session as a whole"]
    assert bars["x"] == [0.0, 80.0, 20.0, 0.0]
    assert bars["hovertext"][1] == "Ann: 80% of 5 ruptures"
    go.Figure(figure)


def test_the_month_chart_stacks_ruptures_by_status():
    rows = [
        ruptures.MonthRow(datetime.date(2026, 1, 1), 2, 1, 0, 30),
        ruptures.MonthRow(datetime.date(2026, 2, 1), 0, 0, 1, 12),
    ]
    figure = charts.rupture_month_chart(rows)
    assert [(trace["name"], trace["y"]) for trace in figure["data"]] == [
        ("Repaired", [2, 0]),
        ("Unrepaired", [1, 0]),
        ("Pending", [0, 1]),
    ]
    assert figure["layout"]["barmode"] == "stack"
    assert figure["data"][0]["hovertext"][0] == "2026-01: 2 repaired of 30 rated sessions"
    go.Figure(figure)


# Query counts: constant however many clients there are


def caseload_with_ruptures(org, therapist, clients: int) -> None:
    for n in range(clients):
        series(org, therapist, f"Q{n:03}", [HIGH, HIGH, DIP, HIGH], ("5 5 5 5", "6 6 6 6"))


def count_queries(http, url) -> int:
    http.get(url)  # the first page after logging in also renews the session
    with CaptureQueriesContext(connection) as captured:
        response = http.get(url)
    assert response.status_code == 200
    return len(captured)


PAGES = {
    # the second visit finds the cached result (tests/dashboards/test_query_counts pins the
    # misses): session, user and membership, the therapist, the data version, the audit entries
    "supervision": (Role.SUPERVISOR, lambda w: reverse("supervision", args=[w["therapist"]]), 5),
    "supervision_index": (Role.SUPERVISOR, lambda w: reverse("supervision_index"), 5),
    "team": (Role.SUPERVISOR, lambda w: reverse("team_statistics"), 3),
    "overview": (Role.ADMIN, lambda w: reverse("overview"), 3),
}


@pytest.mark.parametrize("name", PAGES)
def test_each_page_runs_the_same_number_of_queries_for_5_and_50_clients(client, name):
    role, url, pinned = PAGES[name]
    counts = []
    for size in (5, 50):
        org = factories.organization()
        team = factories.team(org)
        therapist = factories.user(org, team=team)
        for _colleague in range(2):
            factories.user(org, team=team)
        supervisor = factories.user(org, role=Role.SUPERVISOR)
        supervisor.membership.supervised_teams.add(team)
        admin = factories.user(org, role=Role.ADMIN)
        caseload_with_ruptures(org, therapist, size)
        viewer = {Role.SUPERVISOR: supervisor, Role.ADMIN: admin}[role]
        client.force_login(viewer)
        counts.append(count_queries(client, url({"therapist": therapist.pk})))
    assert counts == [pinned, pinned]


def test_every_client_has_its_rupture_in_the_pinned_world(client):
    org = factories.organization()
    therapist = factories.user(org, team=factories.team(org))
    caseload_with_ruptures(org, therapist, 5)
    figures = selectors.figures([therapist.pk], rules=org.flag_rules())
    assert [(row.status, row.count) for row in figures.rupture_statuses] == [("repaired", 5)]
