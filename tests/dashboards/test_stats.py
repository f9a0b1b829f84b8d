"""Dashboard statistics on a small hand-made caseload, with every expected figure worked out.

The caseload (instruments: adult outcome cut-off 25.0, child outcome 32.0, session 36.0,
reliable change 5.0):

therapist 1
  episode 1, client 1, adult, closed planned.     outcome 18.0 → 22.0 → 26.0;
                                                  session 38.0, 36.0, 35.9
  episode 2, client 2, adult, closed unplanned.   outcome 20.0 → 22.0; session 34.0, 37.0
  episode 3, client 3, couple, open.              outcome 22.0 → 16.0; session 39.0, 39.0
             partner "Sam" in the same sessions:  outcome 10.0 → 30.0; session 20.0
therapist 2
  episode 4, client 4, child scales, open.        outcome 24.0 → 30.0; session 33.0, 36.0
  episode 5, client 5, adult, closed transferred. outcome 30.0 (one only); session 40.0
therapist 3
  episode 6, client 6, adult, open, one session and no ratings yet.

The partner's ratings must change nothing: counted, they would add a +20 "improvement", a 20.0
session rating and a third alliance concern to therapist 1.

Episode outcomes and trends are computed from rating rows; the team figures (per therapist, the
team line, the monthly means) from what the database sums, so those tests store the caseload and
read it back through `selectors.figures`, on SQLite and on PostgreSQL alike.
"""

import dataclasses
import datetime
from decimal import ROUND_DOWN, Decimal

import pytest

from alliance_app.clinic.models import Client, Episode, TherapySession
from alliance_app.dashboards import selectors
from alliance_app.dashboards.stats import (
    EpisodeOutcomeRow,
    MonthlyMean,
    MonthlySums,
    TherapistStats,
    client_trend,
    episode_outcomes,
    monthly_session_means,
    statistics_by,
    therapist_statistics,
    totals_row,
)
from alliance_app.feedback import rollups
from alliance_app.feedback.models import Channel, Rating
from alliance_app.measures import DEFAULT_RULES, EpisodeOutcome
from tests import factories

pytestmark = pytest.mark.django_db

# episode id: (client id, therapist id, age band of its instruments)
EPISODES = {
    1: (1, 1, "adult"),
    2: (2, 1, "adult"),
    3: (3, 1, "adult"),
    4: (4, 2, "child"),
    5: (5, 2, "adult"),
    6: (6, 3, "adult"),
}

ITEM_STEP = Decimal("0.1")
ITEMS = ("item_1", "item_2", "item_3", "item_4")


def day(month: int, number: int) -> datetime.date:
    return datetime.date(2025, month, number)


def rating(
    rating_id: int,
    episode_id: int,
    session_number: int,
    date: datetime.date,
    scale: str,
    total: str,
    rater: str = "client",
    label: str = "",
    items: tuple[str, str, str, str] | None = None,
) -> dict:
    """One row as the selector's `.values()` yields it; items default to an even split."""
    client_id, therapist_id, age_band = EPISODES[episode_id]
    exact_total = Decimal(total)
    if items is None:
        share = (exact_total / 4).quantize(ITEM_STEP, rounding=ROUND_DOWN)
        item_scores = [share, share, share, exact_total - 3 * share]
    else:
        item_scores = [Decimal(score) for score in items]
    assert sum(item_scores) == exact_total
    return {
        "rating_id": rating_id,
        "client_id": client_id,
        "episode_id": episode_id,
        "therapist_id": therapist_id,
        "session_id": episode_id * 100 + session_number,
        "session_number": session_number,
        "session_date": date,
        "scale": scale,
        "instrument": f"{scale}-{age_band}",
        "rater": rater,
        "rater_label": label,
        "total": exact_total,
        **{f"item_{n}": score for n, score in enumerate(item_scores, start=1)},
    }


RATINGS = [
    # episode 1: intake 18.0 (clinical) to 26.0 (above 25.0), +8.0
    rating(1, 1, 1, day(1, 20), "outcome", "18.0"),
    rating(2, 1, 1, day(1, 20), "session", "38.0"),
    rating(3, 1, 2, day(1, 27), "outcome", "22.0"),
    rating(4, 1, 2, day(1, 27), "session", "36.0"),
    rating(5, 1, 3, day(2, 1), "outcome", "26.0"),
    rating(6, 1, 3, day(2, 1), "session", "35.9"),
    # episode 2: +2.0
    rating(7, 2, 1, day(1, 31), "outcome", "20.0"),
    rating(8, 2, 1, day(1, 31), "session", "34.0"),
    rating(9, 2, 2, day(2, 7), "outcome", "22.0"),
    rating(10, 2, 2, day(2, 7), "session", "37.0"),
    # episode 3, a couple: the client −6.0, the partner's ratings never count
    rating(11, 3, 1, day(2, 10), "outcome", "22.0"),
    rating(12, 3, 1, day(2, 10), "outcome", "10.0", rater="partner", label="Sam"),
    rating(13, 3, 1, day(2, 10), "session", "39.0"),
    rating(14, 3, 1, day(2, 10), "session", "20.0", rater="partner", label="Sam"),
    rating(15, 3, 2, day(2, 17), "outcome", "16.0"),
    rating(16, 3, 2, day(2, 17), "outcome", "30.0", rater="partner", label="Sam"),
    rating(17, 3, 2, day(2, 17), "session", "39.0"),
    # episode 4, a child: +6.0 but still below the child cut-off of 32.0
    rating(18, 4, 1, day(1, 15), "outcome", "24.0"),
    rating(19, 4, 1, day(1, 15), "session", "33.0"),
    rating(20, 4, 2, day(2, 12), "outcome", "30.0"),
    rating(21, 4, 2, day(2, 12), "session", "36.0"),
    # episode 5: one outcome rating is no episode outcome
    rating(22, 5, 1, day(2, 20), "outcome", "30.0"),
    rating(23, 5, 1, day(2, 20), "session", "40.0"),
]

EPISODE_ROWS = [
    {
        "episode_id": episode_id,
        "client_id": client_id,
        "therapist_id": therapist_id,
        "opened": day(1, 1),
        "closed": day(3, 1) if closure else None,
        "closure": closure,
    }
    for (episode_id, (client_id, therapist_id, _)), closure in zip(
        EPISODES.items(), ["planned", "unplanned", "", "", "transferred", ""], strict=True
    )
]

# Sessions held: episode 1: 3, episode 2: 2, episode 3: 2, episode 4: 2, episode 5: 1, episode 6: 1.
SESSIONS_HELD = {1: 3, 2: 2, 3: 2, 4: 2, 5: 1, 6: 1}
SESSION_ROWS = [
    {
        "session_id": episode_id * 100 + number,
        "episode_id": episode_id,
        "therapist_id": EPISODES[episode_id][1],
        "date": day(2, number),
    }
    for episode_id, held in SESSIONS_HELD.items()
    for number in range(1, held + 1)
]

NO_OUTCOMES = dict.fromkeys(("recovered", "improved", "unchanged", "deteriorated"))


@dataclasses.dataclass(frozen=True)
class Team:
    """What the team page shows of the stored rows, in the rows' own ids."""

    therapists: list[TherapistStats]
    totals: TherapistStats
    monthly: list[MonthlyMean]
    outcomes: list[EpisodeOutcomeRow]
    only_therapist_1: TherapistStats


def team(ratings=RATINGS, episodes=EPISODE_ROWS, sessions=SESSION_ROWS) -> Team:
    """Store the rows as one organisation's data and read the team figures back."""
    org = factories.organization()
    therapists = {n: factories.user(org) for n in sorted({row["therapist_id"] for row in episodes})}
    stored = {}
    for row in episodes:
        therapist = therapists[row["therapist_id"]]
        patient = Client.objects.create(
            organization=org,
            code=f"C{row['client_id']}",
            age_band=EPISODES[row["episode_id"]][2],
            primary_therapist=therapist,
        )
        stored[row["episode_id"]] = Episode.objects.create(
            client=patient,
            therapist=therapist,
            opened=row["opened"],
            closed=row["closed"],
            closure=row["closure"],
        )
    held = {(row["episode_id"], int(row["session_id"]) % 100): row["date"] for row in sessions}
    held |= {(row["episode_id"], row["session_number"]): row["session_date"] for row in ratings}
    session_of = {
        (episode_id, number): TherapySession.objects.create(
            episode=stored[episode_id], number=number, date=date
        )
        for (episode_id, number), date in held.items()
    }
    Rating.objects.bulk_create(
        Rating(
            session=session_of[row["episode_id"], row["session_number"]],
            channel=Channel.TABLET,
            **{
                key: row[key]
                for key in ("instrument", "scale", "rater", "rater_label", "total", *ITEMS)
            },
        )
        for row in ratings
    )
    # Stored in bulk, as seed_scale does, so the summary rows are made the same way.
    rollups.rebuild(Episode.objects.filter(pk__in=[episode.pk for episode in stored.values()]))
    figures = selectors.figures([user.pk for user in therapists.values()], rules=DEFAULT_RULES)
    ours = {user.pk: n for n, user in therapists.items()}
    episode_ids = {episode.pk: n for n, episode in stored.items()}
    client_ids = {episode.client_id: EPISODES[n][0] for n, episode in stored.items()}
    return Team(
        therapists=[
            dataclasses.replace(row, therapist_id=ours[row.therapist_id])
            for row in therapist_statistics(figures)
        ],
        totals=totals_row(figures),
        monthly=[
            dataclasses.replace(row, line_id=ours[row.line_id])
            for row in monthly_session_means(figures.alliance)
        ],
        outcomes=sorted(
            (
                dataclasses.replace(
                    row,
                    therapist_id=ours[row.therapist_id],
                    episode_id=episode_ids[row.episode_id],
                    client_id=client_ids[row.client_id],
                )
                for row in figures.outcomes
            ),
            key=lambda row: row.episode_id,
        ),
        only_therapist_1=statistics_by(
            figures, {therapists[1].pk: "one"} if 1 in therapists else {}, ["one"]
        )["one"],
    )


def by_therapist() -> dict[int | None, TherapistStats]:
    return {row.therapist_id: row for row in team().therapists}


# episode outcomes


def test_it_classifies_each_episode_first_against_latest_client_rating():
    assert episode_outcomes(RATINGS, rules=DEFAULT_RULES) == [
        # 18.0 → 26.0: +8 ≥ 5 and out of the clinical range (≤ 25.0)
        EpisodeOutcomeRow(
            1, 1, 1, "outcome-adult", Decimal("18.0"), Decimal("26.0"), Decimal("8.0"),
            EpisodeOutcome.RECOVERED,
        ),
        # +2: under the reliable change of 5
        EpisodeOutcomeRow(
            2, 2, 1, "outcome-adult", Decimal("20.0"), Decimal("22.0"), Decimal("2.0"),
            EpisodeOutcome.UNCHANGED,
        ),
        # −6 ≤ −5; the partner's 10.0 → 30.0 is not the client's episode
        EpisodeOutcomeRow(
            3, 3, 1, "outcome-adult", Decimal("22.0"), Decimal("16.0"), Decimal("-6.0"),
            EpisodeOutcome.DETERIORATED,
        ),
        # +6 on the child scale: 30.0 is still ≤ 32.0, so improved, not recovered
        EpisodeOutcomeRow(
            4, 4, 2, "outcome-child", Decimal("24.0"), Decimal("30.0"), Decimal("6.0"),
            EpisodeOutcome.IMPROVED,
        ),
        # episode 5 has a single outcome rating and episode 6 none: no outcome yet
    ]  # fmt: skip


def test_it_orders_by_session_number_not_by_row_order():
    shuffled = list(reversed(RATINGS))
    assert episode_outcomes(shuffled, rules=DEFAULT_RULES) == episode_outcomes(
        RATINGS, rules=DEFAULT_RULES
    )


def test_it_uses_the_latest_rating_of_an_open_episode_not_the_second():
    ratings = [*RATINGS, rating(24, 3, 3, day(2, 24), "outcome", "21.0")]
    row = next(row for row in episode_outcomes(ratings, rules=DEFAULT_RULES) if row.episode_id == 3)
    # 22.0 → 21.0 (session 3): −1, no longer a reliable worsening
    assert (row.latest_total, row.change, row.outcome) == (
        Decimal("21.0"),
        Decimal("-1.0"),
        EpisodeOutcome.UNCHANGED,
    )


# therapist statistics


def test_it_gives_one_line_per_therapist_with_an_episode_in_id_order():
    assert [row.therapist_id for row in team().therapists] == [1, 2, 3]


def test_it_computes_every_figure_of_a_therapist():
    assert by_therapist()[1] == TherapistStats(
        therapist_id=1,
        # only episode 3 is open
        active_clients=1,
        # 3 + 2 + 2 sessions held
        sessions=7,
        # client session ratings 38.0 + 36.0 + 35.9 + 34.0 + 37.0 + 39.0 + 39.0 = 258.9;
        # 258.9 / 7 = 36.99 → 37.0 (with the partner's 20.0: 278.9 / 8 = 34.9)
        mean_session_rating=37.0,
        # below 36.0: 35.9 and 34.0, so 2 of 7 (36.0 itself is no concern)
        alliance_concern_share=2 / 7,
        # episodes 1 and 2
        closed_episodes=2,
        # changes [+8, +2, −6], intakes [18, 20, 22]: mean change 4 / 3 = 1.333…,
        # sample SD of the intakes 2.0 → 1.333 / 2.0 = 0.667 → 0.67
        effect_size=0.67,
        outcome_shares={
            "recovered": 1 / 3,
            "improved": 0.0,
            "unchanged": 1 / 3,
            "deteriorated": 1 / 3,
        },
        episodes_with_outcome=3,
        # episode 2 unplanned of 2 closed
        dropout_rate=0.5,
    )


def test_it_counts_a_transfer_as_closed_but_not_as_dropout():
    assert by_therapist()[2] == TherapistStats(
        therapist_id=2,
        active_clients=1,
        sessions=3,
        # 33.0 + 36.0 + 40.0 = 109.0; 109.0 / 3 = 36.33 → 36.3
        mean_session_rating=36.3,
        # 33.0 of 3
        alliance_concern_share=1 / 3,
        closed_episodes=1,
        # one episode outcome: no spread of intakes to divide by
        effect_size=None,
        outcome_shares={"recovered": 0.0, "improved": 1.0, "unchanged": 0.0, "deteriorated": 0.0},
        episodes_with_outcome=1,
        # episode 5 was transferred: 0 unplanned of 1 closed
        dropout_rate=0.0,
    )


def test_a_therapist_with_episodes_but_no_ratings_gets_none_figures():
    assert by_therapist()[3] == TherapistStats(
        therapist_id=3,
        active_clients=1,
        sessions=1,
        mean_session_rating=None,
        alliance_concern_share=None,
        closed_episodes=0,
        effect_size=None,
        outcome_shares=NO_OUTCOMES,
        episodes_with_outcome=0,
        dropout_rate=None,
    )


def test_the_partners_ratings_change_nothing():
    without_partner = [row for row in RATINGS if row["rater"] == "client"]
    assert team(without_partner).therapists == team(RATINGS).therapists


def test_a_labelled_client_rater_is_not_the_client():
    # "client" with a label is another person rating as a client (a group member, say).
    relabelled = [{**row, "rater_label": "Jo"} if row["rating_id"] == 6 else row for row in RATINGS]
    # 35.9 no longer counts: 258.9 − 35.9 = 223.0 over 6 = 37.17 → 37.2; concern 1 of 6
    stats = team(relabelled).therapists[0]
    assert (stats.mean_session_rating, stats.alliance_concern_share) == (37.2, 1 / 6)


@pytest.mark.parametrize(
    ("totals", "share"),
    [
        (["36.0"], 0.0),  # the cut-off itself is no concern
        (["35.9"], 1.0),  # one millimetre below is
        (["36.0", "35.9"], 0.5),
    ],
)
def test_the_alliance_concern_boundary_is_below_36(totals, share):
    ratings = [
        rating(n, 1, n, day(1, n), "session", total) for n, total in enumerate(totals, start=1)
    ]
    assert team(ratings, sessions=[]).therapists[0].alliance_concern_share == share


def test_it_judges_child_session_ratings_by_the_child_instrument():
    # the child scale's cut-off is also 36.0: 35.9 is a concern, 36.0 is not
    ratings = [
        rating(1, 4, 1, day(1, 1), "session", "35.9"),
        rating(2, 4, 2, day(1, 8), "session", "36.0"),
    ]
    assert ratings[0]["instrument"] == "session-child"
    assert team(ratings, sessions=[]).therapists[1].alliance_concern_share == 0.5


def test_means_round_half_up_exactly():
    # (36.0 + 36.1) / 2 = 36.05 exactly → 36.1; as a float it is 36.0499…, which round() makes 36.0
    ratings = [
        rating(1, 1, 1, day(1, 1), "session", "36.0"),
        rating(2, 1, 2, day(1, 8), "session", "36.1"),
    ]
    assert team(ratings, sessions=[]).therapists[0].mean_session_rating == 36.1


def test_it_survives_no_rows_at_all():
    nothing = team([], [], [])
    assert (nothing.therapists, nothing.monthly, nothing.outcomes) == ([], [], [])
    assert episode_outcomes([], rules=DEFAULT_RULES) == []
    assert nothing.totals == TherapistStats(
        therapist_id=None,
        active_clients=0,
        sessions=0,
        mean_session_rating=None,
        alliance_concern_share=None,
        closed_episodes=0,
        effect_size=None,
        outcome_shares=NO_OUTCOMES,
        episodes_with_outcome=0,
        dropout_rate=None,
    )


def test_episodes_without_ratings_give_none_figures_not_a_crash():
    stats = team([]).therapists
    assert [row.mean_session_rating for row in stats] == [None, None, None]
    assert [row.effect_size for row in stats] == [None, None, None]
    assert [row.dropout_rate for row in stats] == [0.5, 0.0, None]


# the team line


def test_the_totals_row_is_computed_from_the_rows():
    assert team().totals == TherapistStats(
        therapist_id=None,
        # episodes 3, 4 and 6
        active_clients=3,
        # 7 + 3 + 1
        sessions=11,
        # (258.9 + 109.0) / (7 + 3) = 367.9 / 10 = 36.79 → 36.8
        mean_session_rating=36.8,
        # 35.9, 34.0, 33.0: 3 of 10
        alliance_concern_share=0.3,
        closed_episodes=3,
        # changes [+8, +2, −6, +6], mean 10 / 4 = 2.5; intakes [18, 20, 22, 24], mean 21,
        # squared deviations 9 + 1 + 1 + 9 = 20, sample SD √(20 / 3) = 2.582 → 2.5 / 2.582 = 0.968
        effect_size=0.97,
        outcome_shares={
            "recovered": 0.25,
            "improved": 0.25,
            "unchanged": 0.25,
            "deteriorated": 0.25,
        },
        episodes_with_outcome=4,
        # one unplanned of 3 closed
        dropout_rate=1 / 3,
    )


def test_the_totals_row_is_not_the_mean_of_the_therapists_figures():
    figures = team()
    therapists = {row.therapist_id: row for row in figures.therapists}
    line = figures.totals
    # Therapist 1 has 7 session ratings and therapist 2 has 3: averaging their means
    # (37.0 + 36.3) / 2 = 36.65 would weigh each of therapist 2's ratings more than twice as much
    # as therapist 1's; the team mean weighs every rating once: 367.9 / 10 = 36.79 → 36.8.
    mean_of_means = (therapists[1].mean_session_rating + therapists[2].mean_session_rating) / 2
    assert mean_of_means == pytest.approx(36.65)
    assert line.mean_session_rating == 36.8
    # Shares likewise: (2/7 + 1/3) / 2 = 0.3095 against 3 / 10 = 0.3.
    assert line.alliance_concern_share == 0.3
    # And therapist 2's single episode outcome, too few for an effect size of its own, still
    # counts in the team's effect size (0.97, not therapist 1's 0.67).
    assert (therapists[2].effect_size, line.effect_size) == (None, 0.97)


def test_a_team_line_over_some_therapists_counts_only_theirs():
    # The overview's line per team: over therapist 1 alone it is therapist 1's line.
    figures = team()
    assert figures.only_therapist_1 == dataclasses.replace(figures.therapists[0], therapist_id=None)


def test_the_database_finds_the_episode_ends_the_rows_give():
    # Each episode's first and latest client outcome rating, found by the database through
    # the session index, classify exactly as the same ratings do read row by row.
    assert team().outcomes == episode_outcomes(RATINGS, rules=DEFAULT_RULES)
    later = [*RATINGS, rating(24, 3, 3, day(2, 24), "outcome", "21.0")]
    assert team(later).outcomes == episode_outcomes(later, rules=DEFAULT_RULES)


# monthly means


def test_monthly_means_split_at_the_month_boundary():
    assert team().monthly == [
        # therapist 1, January: 38.0 (20th), 36.0 (27th), 34.0 (31st) = 108.0 / 3 = 36.0
        MonthlyMean(line_id=1, month=day(1, 1), mean=36.0, count=3),
        # February: 35.9 (1st), 37.0, 39.0, 39.0 = 150.9 / 4 = 37.725 → 37.7 (the partner's
        # 20.0 on 10 February not counted)
        MonthlyMean(line_id=1, month=day(2, 1), mean=37.7, count=4),
        # therapist 2: January 33.0; February 36.0 and 40.0 = 38.0
        MonthlyMean(line_id=2, month=day(1, 1), mean=33.0, count=1),
        MonthlyMean(line_id=2, month=day(2, 1), mean=38.0, count=2),
    ]


def test_monthly_means_of_nothing_are_empty():
    assert team([]).monthly == []
    assert team([row for row in RATINGS if row["scale"] == "outcome"]).monthly == []


def test_monthly_means_of_a_team_weigh_every_rating_once():
    months = [
        MonthlySums(1, day(1, 1), Decimal("108.0"), 3, 1),
        MonthlySums(2, day(1, 1), Decimal("33.0"), 1, 1),
        MonthlySums(2, day(2, 1), Decimal("76.0"), 2, 0),
        MonthlySums(3, day(1, 1), Decimal("40.0"), 1, 0),
    ]
    # Therapists 1 and 2 draw team 10's line; therapist 3 is in no team shown.
    assert monthly_session_means(months, {1: 10, 2: 10}) == [
        # (108.0 + 33.0) / 4 = 35.25 → 35.3, not the mean of the means (36.0 + 33.0) / 2 = 34.5
        MonthlyMean(line_id=10, month=day(1, 1), mean=35.3, count=4),
        MonthlyMean(line_id=10, month=day(2, 1), mean=38.0, count=2),
    ]


# one client's trend


def test_the_trend_keeps_each_rater_and_scale_apart_in_session_order():
    couple = [row for row in reversed(RATINGS) if row["episode_id"] == 3]
    trend = client_trend(couple)
    assert list(trend) == ["client", "partner:Sam"]
    assert list(trend["client"]) == ["outcome", "session"]
    assert [point["total"] for point in trend["client"]["outcome"]] == [22.0, 16.0]
    assert [point["total"] for point in trend["partner:Sam"]["outcome"]] == [10.0, 30.0]
    assert [point["total"] for point in trend["partner:Sam"]["session"]] == [20.0]
    assert trend["client"]["session"][0] == {
        "rating_id": 13,
        "session_number": 1,
        "session_date": day(2, 10),
        "instrument": "session-adult",
        "total": 39.0,
        "items": [9.7, 9.7, 9.7, 9.9],
    }


def test_the_trend_of_no_ratings_is_empty():
    assert client_trend([]) == {}


def test_the_trend_refuses_two_episodes():
    # session numbers restart with each episode, so the x axis would be ambiguous
    with pytest.raises(ValueError, match="one episode"):
        client_trend(RATINGS)
