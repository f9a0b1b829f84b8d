"""Dashboard statistics: episode outcomes, therapist and team figures, monthly alliance means.

The team and organisation figures start from rows the database has already summed (`Figures`:
per-therapist counts, and from the summary rows kept as ratings are stored, `feedback.rollups`,
per-month alliance sums and each episode's first and latest outcome), so their cost does not grow
with the number of ratings; a caseload's export and a client's chart hand us `.values()` rows,
which pandas groups. Every clinical judgement (cut-offs, reliable change,
classification, effect size) is delegated to `alliance_app.measures` so a dashboard can never
disagree with the flag shown next to it. Results are plain dataclasses, dicts and lists, so
templates and JSON use them without knowing about pandas.

Only the client's own ratings (rater "client", no label) enter these figures: partners, parents
and other collaterals rate the same sessions, and mixing their scores in would silently average
across raters (DESIGN.md §2, multiple raters).
"""

from __future__ import annotations

import datetime
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import Rater
from alliance_app.measures import EpisodeOutcome, FlagRules, Scale, Thresholds, effect_size

if TYPE_CHECKING:
    from .ruptures import RuptureGroup, StatusCount

Row = Mapping[str, Any]

RATING_COLUMNS = (
    "rating_id",
    "client_id",
    "episode_id",
    "therapist_id",
    "session_id",
    "session_number",
    "session_date",
    "scale",
    "instrument",
    "rater",
    "rater_label",
    "total",
    "item_1",
    "item_2",
    "item_3",
    "item_4",
)
ITEM_COLUMNS = ("item_1", "item_2", "item_3", "item_4")

CLIENT_RATER = Rater.CLIENT.value


@dataclass(frozen=True)
class EpisodeOutcomeRow:
    """One episode's first and latest client outcome totals and what they amount to."""

    episode_id: int
    client_id: int
    therapist_id: int
    instrument: str
    first_total: Decimal
    latest_total: Decimal
    change: Decimal
    outcome: EpisodeOutcome


@dataclass(frozen=True)
class TherapistStats:
    """A caseload's figures; `therapist_id` is None for the team or organisation line.

    Every figure that needs data it lacks is None rather than 0, so a template can say
    "no ratings yet" instead of showing a misleading zero.
    """

    therapist_id: int | None
    active_clients: int
    sessions: int
    mean_session_rating: float | None
    alliance_concern_share: float | None
    closed_episodes: int
    effect_size: float | None
    outcome_shares: dict[str, float | None]
    episodes_with_outcome: int
    dropout_rate: float | None
    # Active clients whose latest outcome is below the not-on-track line, and their share of
    # the active clients; None while the organisation has no expected-response band.
    off_track: int | None = None
    off_track_share: float | None = None


@dataclass(frozen=True)
class MonthlyMean:
    """The mean client session rating of one chart line (a therapist, or a team) in one month."""

    line_id: int
    month: datetime.date
    mean: float
    count: int


def episode_outcomes(ratings: Iterable[Row], *, rules: FlagRules) -> list[EpisodeOutcomeRow]:
    """Classify every episode with at least two client outcome ratings, first against latest.

    Open episodes count too (DESIGN.md §2): a therapist needs to see where a current client stands,
    not only how finished ones ended. The intake rating's instrument judges the change, because
    its cut-off defines the range the client started in, by the organisation's `rules`.
    """
    return _episode_outcomes(_frame(ratings, RATING_COLUMNS), rules)


@dataclass(frozen=True)
class Caseload:
    """One therapist's episodes and sessions, counted by the database."""

    therapist_id: int
    active_clients: int
    closed_episodes: int
    unplanned_closures: int
    sessions: int


@dataclass(frozen=True)
class MonthlySums:
    """One therapist's client session ratings in one calendar month, summed by the database.

    `concerns` counts the ratings below the organisation's alliance cut-off for their instrument
    (`FlagRules.thresholds`), as the flags do.
    """

    therapist_id: int
    month: datetime.date
    total_sum: Decimal
    count: int
    concerns: int


@dataclass(frozen=True)
class Figures:
    """What the team and organisation pages are computed from: a few hundred rows at most per
    therapist, however many ratings lie behind them."""

    caseloads: Sequence[Caseload]
    alliance: Sequence[MonthlySums]
    outcomes: Sequence[EpisodeOutcomeRow]
    # The client series' ruptures by therapist and status, and what the ruptures of each episode
    # in `outcomes` came to (`dashboards.ruptures`).
    rupture_statuses: Sequence[StatusCount] = ()
    rupture_groups: Mapping[int, RuptureGroup] = field(default_factory=dict)
    # Per therapist, their open episodes off track (`selectors.figures`); None without a band.
    off_track: Mapping[int, int] | None = None


def therapist_statistics(figures: Figures) -> list[TherapistStats]:
    """One line per therapist who holds an episode, ordered by therapist id.

    Therapists are taken from the caseloads, so someone with episodes but no ratings yet still
    gets a line (with None figures) instead of vanishing from the team table.
    """
    ids = sorted(row.therapist_id for row in figures.caseloads)
    lines = statistics_by(figures, {pk: pk for pk in ids}, ids)
    return [replace(lines[pk], therapist_id=pk) for pk in ids]


def statistics_by(
    figures: Figures, line_of: Mapping[int, Hashable], lines: Iterable[Hashable]
) -> dict[Hashable, TherapistStats]:
    """The figures of each line (a team, say), summed over the therapists `line_of` puts in it.

    Every line asked for gets its figures, None where it has no data; therapists in no line are
    left out. The rows are sorted into lines in one pass. Summing, not averaging the therapists'
    figures: a therapist with three ratings must not weigh as much as one with three hundred.
    """
    grouped: dict[Hashable, tuple[list, list, list]] = {line: ([], [], []) for line in lines}
    for position, rows in enumerate((figures.caseloads, figures.alliance, figures.outcomes)):
        for row in rows:
            group = grouped.get(line_of.get(row.therapist_id))
            if group is not None:
                group[position].append(row)
    return {line: _line(*group, figures.off_track) for line, group in grouped.items()}


def totals_row(figures: Figures) -> TherapistStats:
    """The figures over everyone, summed from the rows (see `statistics_by`)."""
    return _line(figures.caseloads, figures.alliance, figures.outcomes, figures.off_track)


def _line(
    caseloads: Sequence[Caseload],
    alliance: Sequence[MonthlySums],
    outcomes: Sequence[EpisodeOutcomeRow],
    off_track: Mapping[int, int] | None = None,
) -> TherapistStats:
    closed = sum(row.closed_episodes for row in caseloads)
    rated = sum(row.count for row in alliance)
    # A client has at most one open episode, so summing never counts anyone twice.
    active = sum(row.active_clients for row in caseloads)
    behind = (
        None if off_track is None else sum(off_track.get(row.therapist_id, 0) for row in caseloads)
    )
    return TherapistStats(
        therapist_id=None,
        active_clients=active,
        sessions=sum(row.sessions for row in caseloads),
        mean_session_rating=_mean(sum((row.total_sum for row in alliance), Decimal(0)), rated),
        alliance_concern_share=_share(sum(row.concerns for row in alliance), rated),
        closed_episodes=closed,
        effect_size=_effect_size(outcomes),
        outcome_shares=_outcome_shares(outcomes),
        episodes_with_outcome=len(outcomes),
        dropout_rate=_share(sum(row.unplanned_closures for row in caseloads), closed),
        off_track=behind,
        off_track_share=None if behind is None else _share(behind, active),
    )


def monthly_session_means(
    alliance: Iterable[MonthlySums], line_of: Mapping[int, int] | None = None
) -> list[MonthlyMean]:
    """Mean client session rating per therapist and calendar month, for the trend chart.

    With `line_of` (therapist id to, say, team id) the months of the therapists sharing a line
    are added together first, so each line's mean weighs every rating once; therapists it does
    not name are left out. Months are keyed by their first day so that the chart's date axis
    places them correctly.
    """
    sums: dict[tuple[int, datetime.date], tuple[Decimal, int]] = {}
    for row in alliance:
        line = row.therapist_id if line_of is None else line_of.get(row.therapist_id)
        if line is None or not row.count:
            continue
        total, count = sums.get((line, row.month), (Decimal(0), 0))
        sums[line, row.month] = (total + row.total_sum, count + row.count)
    return [
        MonthlyMean(line_id=line, month=month, mean=_mean(total, count), count=count)
        for (line, month), (total, count) in sorted(sums.items())
    ]


def classify(
    *,
    episode_id: int,
    client_id: int,
    therapist_id: int,
    instrument: str,
    first_total: Decimal,
    latest_total: Decimal,
    thresholds: Thresholds,
) -> EpisodeOutcomeRow:
    """An episode's outcome from its first and latest client outcome totals, judged by the
    organisation's `thresholds` for the intake's instrument (`FlagRules.thresholds`)."""
    return EpisodeOutcomeRow(
        episode_id=episode_id,
        client_id=client_id,
        therapist_id=therapist_id,
        instrument=instrument,
        first_total=first_total,
        latest_total=latest_total,
        change=latest_total - first_total,
        outcome=thresholds.classify(first_total, latest_total),
    )


def client_trend(ratings: Iterable[Row]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """One episode's ratings as chart series: {rater key: {scale: [point, ...]}}.

    The rater key is the rater ("client") or "rater:label" ("partner:Sam"), the same key the
    flag rules use, so each rater gets their own line and scores are never merged. The client
    comes first, then the other raters alphabetically; scales in the order outcome, session.
    Each point holds rating_id (to place flags), session_number, session_date, instrument (for
    item labels and cut-offs), total and items (the four item scores), numbers as floats.

    Session numbers restart with each episode, so ratings from two episodes would share an
    x position; that is a caller's mistake and raises ValueError rather than drawing nonsense.
    """
    # Plain Python: one episode holds tens of ratings, too few for a data frame to pay.
    rows = sorted(ratings, key=lambda row: row["session_number"])
    if len({row["episode_id"] for row in rows}) > 1:
        raise ValueError("client_trend needs the ratings of one episode")
    series: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        key = f"{row['rater']}:{row['rater_label']}" if row["rater_label"] else row["rater"]
        series.setdefault(key, {}).setdefault(row["scale"], []).append(_trend_point(row))
    keys = sorted(series, key=lambda key: (key != CLIENT_RATER, key))
    scales = [scale.value for scale in Scale]
    return {
        key: {scale: series[key][scale] for scale in scales if scale in series[key]} for key in keys
    }


def _trend_point(row: Row) -> dict[str, Any]:
    return {
        "rating_id": row["rating_id"],
        "session_number": int(row["session_number"]),
        "session_date": row["session_date"],
        "instrument": row["instrument"],
        "total": float(row["total"]),
        "items": [float(row[column]) for column in ITEM_COLUMNS],
    }


def _frame(rows: Iterable[Row], columns: Sequence[str]) -> pd.DataFrame:
    # Naming the columns gives an empty input the same shape as a full one, so no figure
    # needs a special case for "no rows".
    return pd.DataFrame.from_records(list(rows), columns=list(columns))


def _client_ratings(ratings: pd.DataFrame, scale: Scale) -> pd.DataFrame:
    own = (ratings["rater"] == CLIENT_RATER) & (ratings["rater_label"] == "")
    return ratings[own & (ratings["scale"] == scale.value)]


def _episode_outcomes(ratings: pd.DataFrame, rules: FlagRules) -> list[EpisodeOutcomeRow]:
    outcome = _client_ratings(ratings, Scale.OUTCOME).sort_values(["episode_id", "session_number"])
    ends = outcome.groupby("episode_id", sort=True).agg(
        client_id=("client_id", "first"),
        therapist_id=("therapist_id", "first"),
        instrument=("instrument", "first"),
        first_total=("total", "first"),
        latest_total=("total", "last"),
        ratings=("total", "size"),
    )
    return [
        classify(
            episode_id=int(episode.Index),
            client_id=int(episode.client_id),
            therapist_id=int(episode.therapist_id),
            instrument=episode.instrument,
            first_total=episode.first_total,
            latest_total=episode.latest_total,
            thresholds=rules.thresholds(catalogue().get(episode.instrument)),
        )
        for episode in ends[ends["ratings"] >= 2].itertuples()
    ]


def _effect_size(outcomes: Sequence[EpisodeOutcomeRow]) -> float | None:
    size = effect_size(
        [row.first_total for row in outcomes], [row.latest_total for row in outcomes]
    )
    return None if size is None else _round(size, 2)


def _outcome_shares(outcomes: Sequence[EpisodeOutcomeRow]) -> dict[str, float | None]:
    # Every key is always present so a stacked bar or a template never meets a missing one.
    counts = {outcome.value: 0 for outcome in EpisodeOutcome}
    for row in outcomes:
        counts[row.outcome.value] += 1
    return {key: _share(count, len(outcomes)) for key, count in counts.items()}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(total: Decimal, count: int) -> float | None:
    # Decimal arithmetic keeps a mean of 36.05 exactly 36.05, so it rounds half up to 36.1
    # as a clinician rounding by hand would; the float 36.05 is 36.0499... and would show 36.0.
    return _round(Decimal(total) / count, 1) if count else None


def _round(value: Decimal | float, places: int) -> float:
    # repr gives the shortest decimal that reads back as the same float, so 2.675 stays 2.675
    # and rounds half up to 2.68, where round() would take the binary 2.67499... down to 2.67.
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
