"""Rupture and repair figures for the supervision, team and organisation pages (DESIGN.md §5).

Pure: every figure is computed from rows the database has already counted
(`selectors.rupture_tallies`, `selectors.figures`): the rupture rows counted by status, part of
the alliance and sessions to repair; the client's session ratings and tension answers summed per
month (`AllianceMonth`); the reflections' choices counted; each episode's outcome ends with what
its ruptures came to. So the cost follows the number of therapists and months, never the ratings
behind them.

Only the client's own series count (rater "client", no label): they are the ratings
`AllianceMonth.count` holds, so that "ruptures per 100 rated sessions" divides like by like, and
a partner's ruptures never enter a therapist's rate (DESIGN.md §2, multiple raters).

A rate from two ratings is noise. Each figure says what it rests on (`Estimate`), and below a
minimum the page says so in words ("fewer than 20 rated sessions") instead of showing a number.
The minima are ours, chosen so that one more event cannot move a figure by more than a few
points; no source sets them.
"""

from __future__ import annotations

import datetime
import statistics
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from alliance_app.feedback.models import BordinChoice, Rater, RuptureStatusChoice
from alliance_app.measures import BordinDimension, EpisodeOutcome, RuptureStatus

from .stats import EpisodeOutcomeRow, MonthlySums, _effect_size, _round


class Basis(StrEnum):
    """What a figure rests on, and so how many of it are needed before the figure is shown."""

    RATED_SESSIONS = "rated_sessions"
    ENDED_RUPTURES = "ended_ruptures"
    REPAIRS = "repairs"
    RUPTURES = "ruptures"
    TENSION_ANSWERS = "tension_answers"
    TENSIONS = "tensions"
    EPISODES = "episodes"
    COMPARED_EPISODES = "compared_episodes"


MINIMUM = {
    Basis.RATED_SESSIONS: 20,
    Basis.ENDED_RUPTURES: 5,
    Basis.REPAIRS: 3,
    Basis.RUPTURES: 5,
    Basis.TENSION_ANSWERS: 20,
    Basis.TENSIONS: 3,
    Basis.EPISODES: 5,
    Basis.COMPARED_EPISODES: 20,
}

SHORTFALL = {
    Basis.RATED_SESSIONS: ngettext_lazy(
        "fewer than %(count)s rated session", "fewer than %(count)s rated sessions", "count"
    ),
    Basis.ENDED_RUPTURES: ngettext_lazy(
        "fewer than %(count)s ended rupture", "fewer than %(count)s ended ruptures", "count"
    ),
    Basis.REPAIRS: ngettext_lazy(
        "fewer than %(count)s repair", "fewer than %(count)s repairs", "count"
    ),
    Basis.RUPTURES: ngettext_lazy(
        "fewer than %(count)s rupture", "fewer than %(count)s ruptures", "count"
    ),
    Basis.TENSION_ANSWERS: ngettext_lazy(
        "fewer than %(count)s answers to the tension question",
        "fewer than %(count)s answers to the tension question",
        "count",
    ),
    Basis.TENSIONS: ngettext_lazy(
        "fewer than %(count)s reported tension", "fewer than %(count)s reported tensions", "count"
    ),
    Basis.EPISODES: ngettext_lazy(
        "fewer than %(count)s episode", "fewer than %(count)s episodes", "count"
    ),
    Basis.COMPARED_EPISODES: ngettext_lazy(
        "fewer than %(count)s episode compared", "fewer than %(count)s episodes compared", "count"
    ),
}


@dataclass(frozen=True)
class Estimate:
    """A figure, how many observations it rests on, and of what kind.

    `shown` is the value only when the basis reaches the minimum for its kind; otherwise
    `shortfall` says, in words, why there is no number. Without any observation the value is
    None, never a zero.
    """

    value: float | None
    basis: int
    kind: Basis

    @property
    def needed(self) -> int:
        return MINIMUM[self.kind]

    @property
    def enough(self) -> bool:
        """Enough observations to show the figure (which may still be None: no spread to
        divide by, for an effect size)."""
        return self.basis >= self.needed

    @property
    def shown(self) -> float | None:
        return self.value if self.enough else None

    @property
    def shortfall(self) -> str:
        return "" if self.enough else str(SHORTFALL[self.kind] % {"count": self.needed})


def _estimate(basis: int, kind: Basis, value: Callable[[], float | None]) -> Estimate:
    return Estimate(value() if basis else None, basis, kind)


# -- rows the database counted ------------------------------------------------------------------


@dataclass(frozen=True)
class RuptureTally:
    """Ruptures of the client's own series with one status, part of the alliance (the
    space-separated codes of `Rupture.dimensions`) and number of sessions to repair; per month
    when the tallies were asked by month."""

    status: str
    dimensions: str
    sessions_to_repair: int | None
    count: int
    month: datetime.date | None = None


@dataclass(frozen=True)
class SessionSums:
    """The client's own session ratings in a month: how many, and their tension answers."""

    month: datetime.date
    rated: int
    answered: int
    tensions: int
    resolution_sum: int


@dataclass(frozen=True)
class ChoiceTally:
    """How many reflections chose one option (a marker, or a strategy)."""

    kind: str
    code: str
    label: str
    position: int
    count: int


@dataclass(frozen=True)
class Tallies:
    """What a supervision figure is computed from, for one set of therapists."""

    ruptures: Sequence[RuptureTally] = ()
    sessions: Sequence[SessionSums] = ()
    choices: Sequence[ChoiceTally] = ()
    reflections: int = 0


# -- one set of therapists' figures -------------------------------------------------------------

DIMENSIONS = tuple(BordinDimension)


@dataclass(frozen=True)
class RuptureSummary:
    """The supervision page's figures for one therapist, or pooled over a team."""

    rated_sessions: int
    ruptures: int
    rate: Estimate  # ruptures per 100 rated sessions
    repaired: int
    unrepaired: int
    pending: int
    repaired_share: Estimate  # of the ended ones: repaired + unrepaired
    median_to_repair: Estimate  # sessions
    tension_answers: int
    tensions: int
    tension_rate: Estimate
    mean_resolution: Estimate  # 1 (not at all) to 5 (completely)
    profile: Mapping[str, Estimate]  # dimension code: share of ruptures
    reflections: int


def summarise(tallies: Tallies) -> RuptureSummary:
    statuses: Counter[str] = Counter()
    repairs: list[int] = []
    parts: dict[str, Fraction] = {code.value: Fraction(0) for code in DIMENSIONS}
    for row in tallies.ruptures:
        statuses[row.status] += row.count
        if row.status == RuptureStatus.REPAIRED and row.sessions_to_repair is not None:
            repairs += [row.sessions_to_repair] * row.count
        codes = row.dimensions.split()
        for code in codes:
            # A tie between items counts the rupture once, shared between its parts.
            parts[code] += Fraction(row.count, len(codes))
    ruptures = sum(statuses.values())
    repaired = statuses[RuptureStatus.REPAIRED]
    unrepaired = statuses[RuptureStatus.UNREPAIRED]
    rated = sum(row.rated for row in tallies.sessions)
    answered = sum(row.answered for row in tallies.sessions)
    tensions = sum(row.tensions for row in tallies.sessions)
    resolution = sum(row.resolution_sum for row in tallies.sessions)
    return RuptureSummary(
        rated_sessions=rated,
        ruptures=ruptures,
        rate=_estimate(rated, Basis.RATED_SESSIONS, lambda: _round(100 * ruptures / rated, 1)),
        repaired=repaired,
        unrepaired=unrepaired,
        pending=statuses[RuptureStatus.PENDING],
        repaired_share=_estimate(
            repaired + unrepaired,
            Basis.ENDED_RUPTURES,
            lambda: repaired / (repaired + unrepaired),
        ),
        median_to_repair=_estimate(
            len(repairs), Basis.REPAIRS, lambda: _round(statistics.median(repairs), 1)
        ),
        tension_answers=answered,
        tensions=tensions,
        tension_rate=_estimate(answered, Basis.TENSION_ANSWERS, lambda: tensions / answered),
        mean_resolution=_estimate(
            tensions, Basis.TENSIONS, lambda: _round(Decimal(resolution) / tensions, 1)
        ),
        profile={
            code: _estimate(ruptures, Basis.RUPTURES, lambda part=part: float(part / ruptures))
            for code, part in parts.items()
        },
        reflections=tallies.reflections,
    )


@dataclass(frozen=True)
class ChoiceRow:
    """One marker or strategy, as often as the therapist and the team chose it."""

    code: str
    label: str
    mine: int
    team: int


def choice_rows(mine: Tallies, team: Tallies, kind: str) -> list[ChoiceRow]:
    """The options of `kind` chosen by the therapist or the team, most chosen first."""
    rows: dict[str, ChoiceRow] = {}
    order: dict[str, int] = {}
    for column, tallies in (("mine", mine), ("team", team)):
        for tally in tallies.choices:
            if tally.kind != kind:
                continue
            row = rows.get(tally.code) or ChoiceRow(tally.code, tally.label, 0, 0)
            counts = {"mine": row.mine, "team": row.team}
            counts[column] += tally.count
            rows[tally.code] = ChoiceRow(tally.code, row.label, **counts)
            order[tally.code] = tally.position
    return sorted(rows.values(), key=lambda row: (-row.mine, -row.team, order[row.code]))


@dataclass(frozen=True)
class MonthRow:
    """A month's ruptures by what became of them, and the client session ratings given."""

    month: datetime.date
    repaired: int
    unrepaired: int
    pending: int
    rated: int


def by_month(tallies: Tallies) -> list[MonthRow]:
    """Every month with a rated session or a rupture, in order (tallies asked by month)."""
    counts: dict[datetime.date, Counter[str]] = {}
    for row in tallies.ruptures:
        if row.month is not None:
            counts.setdefault(row.month, Counter())[row.status] += row.count
    for row in tallies.sessions:
        counts.setdefault(row.month, Counter())["rated"] += row.rated
    return [
        MonthRow(
            month=month,
            repaired=found[RuptureStatus.REPAIRED],
            unrepaired=found[RuptureStatus.UNREPAIRED],
            pending=found[RuptureStatus.PENDING],
            rated=found["rated"],
        )
        for month, found in sorted(counts.items())
    ]


# -- team and organisation lines ----------------------------------------------------------------


@dataclass(frozen=True)
class RatedCount:
    """One therapist's client session ratings (the monthly sums' `count`, added up)."""

    therapist_id: int
    count: int


@dataclass(frozen=True)
class StatusCount:
    """One therapist's ruptures (client's own series) with one status."""

    therapist_id: int
    status: str
    count: int


@dataclass(frozen=True)
class LineRates:
    """A team table line's rupture rate and share repaired."""

    rated_sessions: int
    ruptures: int
    rate: Estimate
    repaired_share: Estimate


def rates_by(
    alliance: Sequence[MonthlySums | RatedCount],
    statuses: Sequence[StatusCount],
    line_of: Mapping[int, Hashable],
    lines: Iterable[Hashable],
) -> dict[Hashable, LineRates]:
    """Each line's (a therapist's, a team's) rates, summed over the therapists `line_of` puts in
    it, as `stats.statistics_by` sums the other figures; therapists in no line are left out."""
    grouped: dict[Hashable, tuple[list, list]] = {line: ([], []) for line in lines}
    for position, rows in enumerate((alliance, statuses)):
        for row in rows:
            group = grouped.get(line_of.get(row.therapist_id))
            if group is not None:
                group[position].append(row)
    return {line: _rates(*group) for line, group in grouped.items()}


def rates_total(
    alliance: Sequence[MonthlySums | RatedCount], statuses: Sequence[StatusCount]
) -> LineRates:
    return _rates(alliance, statuses)


def _rates(
    alliance: Sequence[MonthlySums | RatedCount], statuses: Sequence[StatusCount]
) -> LineRates:
    rated = sum(row.count for row in alliance)
    found = Counter()
    for row in statuses:
        found[row.status] += row.count
    ruptures = sum(found.values())
    repaired, unrepaired = found[RuptureStatus.REPAIRED], found[RuptureStatus.UNREPAIRED]
    return LineRates(
        rated_sessions=rated,
        ruptures=ruptures,
        rate=_estimate(rated, Basis.RATED_SESSIONS, lambda: _round(100 * ruptures / rated, 1)),
        repaired_share=_estimate(
            repaired + unrepaired,
            Basis.ENDED_RUPTURES,
            lambda: repaired / (repaired + unrepaired),
        ),
    )


# -- outcomes of episodes with and without ruptures ---------------------------------------------


class RuptureGroup(StrEnum):
    """What an episode's ruptures came to, as Larsson et al. 2018 grouped therapies."""

    REPAIRED = "repaired"
    UNREPAIRED = "unrepaired"
    NONE = "none"
    # Not yet known: a rupture still within its repair window.
    PENDING = "pending"
    # Too few client session ratings for the rule to find a rupture at all.
    SHORT = "short"


COMPARED = (RuptureGroup.REPAIRED, RuptureGroup.UNREPAIRED, RuptureGroup.NONE)

# Larsson, Falkenström, Andersson & Holmqvist 2018 (Psychother Res 28:123-136): 605 naturalistic
# therapies rated session by session. Their rupture criterion is not ours, so the page shows
# these beside our shares, not as a target.
LARSSON_2018 = {
    RuptureGroup.REPAIRED: 0.147,
    RuptureGroup.UNREPAIRED: 0.107,
    RuptureGroup.NONE: 0.745,
}
LARSSON_2018_THERAPIES = 605


def group_of(
    *, unrepaired: bool, pending: bool, repaired: bool, rated_sessions: int, min_rated: int
) -> RuptureGroup:
    """An episode's group from its client series' ruptures.

    Any unrepaired rupture makes the episode "unrepaired", whatever else happened in it. One
    still pending (within its repair window, episode open) leaves the group unknown: it may yet
    be repaired or not, so the episode waits outside the comparison rather than counting as
    repaired or as without ruptures. Otherwise any repair makes it "repaired". An episode without
    ruptures counts as "none" only if the client gave enough session ratings (`min_rated`: the
    rule's previous totals and one more) for a rupture to have been found.
    """
    if unrepaired:
        return RuptureGroup.UNREPAIRED
    if pending:
        return RuptureGroup.PENDING
    if repaired:
        return RuptureGroup.REPAIRED
    if rated_sessions < min_rated:
        return RuptureGroup.SHORT
    return RuptureGroup.NONE


@dataclass(frozen=True)
class GroupOutcome:
    """The outcomes of one group's episodes, first against latest client outcome rating."""

    group: RuptureGroup
    episodes: int
    share: Estimate  # of the compared episodes
    larsson_share: float
    mean_change: Estimate
    effect_size: Estimate
    improved_share: Estimate  # reliably improved, recovered included

    @property
    def label(self) -> str:
        return str(GROUP_LABELS[self.group])


@dataclass(frozen=True)
class OutcomeGroups:
    rows: list[GroupOutcome]
    compared: int
    pending: int
    short: int
    larsson_therapies: int = field(default=LARSSON_2018_THERAPIES)


IMPROVED = (EpisodeOutcome.RECOVERED, EpisodeOutcome.IMPROVED)


def outcome_groups(
    outcomes: Sequence[EpisodeOutcomeRow], groups: Mapping[int, RuptureGroup]
) -> OutcomeGroups:
    """The episodes with outcomes (`stats.Figures.outcomes`) by what their ruptures came to.

    An episode missing from `groups` had no rupture row and too few ratings to say: "short".
    Shares are of the episodes compared (repaired, unrepaired, none); pending and short ones are
    counted apart.
    """
    members: dict[RuptureGroup, list[EpisodeOutcomeRow]] = {group: [] for group in RuptureGroup}
    for row in outcomes:
        members[groups.get(row.episode_id, RuptureGroup.SHORT)].append(row)
    compared = sum(len(members[group]) for group in COMPARED)
    return OutcomeGroups(
        rows=[_group_outcome(group, members[group], compared) for group in COMPARED],
        compared=compared,
        pending=len(members[RuptureGroup.PENDING]),
        short=len(members[RuptureGroup.SHORT]),
    )


def _group_outcome(
    group: RuptureGroup, rows: Sequence[EpisodeOutcomeRow], compared: int
) -> GroupOutcome:
    n = len(rows)
    return GroupOutcome(
        group=group,
        episodes=n,
        share=_estimate(compared, Basis.COMPARED_EPISODES, lambda: n / compared),
        larsson_share=LARSSON_2018[group],
        mean_change=_estimate(
            n, Basis.EPISODES, lambda: _round(sum((row.change for row in rows), Decimal(0)) / n, 1)
        ),
        effect_size=_estimate(n, Basis.EPISODES, lambda: _effect_size(rows)),
        improved_share=_estimate(
            n, Basis.EPISODES, lambda: sum(row.outcome in IMPROVED for row in rows) / n
        ),
    )


GROUP_LABELS = {
    RuptureGroup.REPAIRED: _("Repaired rupture"),
    RuptureGroup.UNREPAIRED: _("Unrepaired rupture"),
    RuptureGroup.NONE: _("No rupture"),
}


# -- the list of episodes with their rupture-repair sequences -----------------------------------


@dataclass(frozen=True)
class RuptureStep:
    """One rupture of a sequence, and its repair if there was one."""

    rater: str  # "" for the client's own series
    session_number: int
    total: Decimal
    baseline: Decimal
    drop: Decimal
    dimensions: tuple[str, ...]
    status: str
    repaired_number: int | None
    sessions_to_repair: int | None

    @property
    def dimension_labels(self) -> list[str]:
        labels = dict(BordinChoice.choices)
        return [str(labels[code]) for code in self.dimensions]

    @property
    def status_label(self) -> str:
        return str(RuptureStatusChoice(self.status).label)


@dataclass(frozen=True)
class EpisodeSequence:
    episode_id: int
    client_id: int
    code: str
    latest_month: datetime.date
    steps: list[RuptureStep]


def episode_sequences(rows: Iterable[Mapping]) -> list[EpisodeSequence]:
    """Rupture rows (newest month first) as one entry per episode, the episode with the latest
    rupture first; within an episode the client's series first, each in session order."""
    episodes: dict[int, dict] = {}
    for row in rows:
        episode = episodes.setdefault(
            row["episode_id"],
            {"client_id": row["client_id"], "code": row["code"], "month": row["month"], "rows": []},
        )
        episode["rows"].append(row)
    return [
        EpisodeSequence(
            episode_id=episode_id,
            client_id=episode["client_id"],
            code=episode["code"],
            latest_month=episode["month"],
            steps=[
                _step(row)
                for row in sorted(
                    episode["rows"],
                    key=lambda row: (
                        row["rater"] != Rater.CLIENT or row["rater_label"] != "",
                        row["rater"],
                        row["rater_label"],
                        row["session_number"],
                    ),
                )
            ],
        )
        for episode_id, episode in episodes.items()
    ]


def _step(row: Mapping) -> RuptureStep:
    own = row["rater"] == Rater.CLIENT and not row["rater_label"]
    rater = "" if own else str(Rater(row["rater"]).label)
    if row["rater_label"]:
        rater = f"{rater} ({row['rater_label']})"
    return RuptureStep(
        rater=rater,
        session_number=row["session_number"],
        total=row["total"],
        baseline=row["baseline"],
        drop=row["drop"],
        dimensions=tuple(row["dimensions"].split()),
        status=row["status"],
        repaired_number=row["repaired_number"],
        sessions_to_repair=row["sessions_to_repair"],
    )
