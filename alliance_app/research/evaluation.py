"""A training's evaluation: attendees against the other therapists, before and after it
(difference in differences, DESIGN.md §5).

Pure: the rows are per therapist and calendar month, as the summary rows hold them
(`AllianceMonth`, the rupture rows counted by month, the episodes closed in a month with their
outcome ends), so the cost follows therapists and months, never the ratings behind them. Summary
rows are monthly, so the windows are whole calendar months: the `months` wholly before the
training's month and the `months` wholly after it, the training's own month left out.

For each figure, difference in differences = (attendees after − before) − (others after − before).
Its 95% interval is a cluster bootstrap: the therapists of each group are drawn with replacement
(their before and after together, since a therapist's months are not independent of each other),
the sums recomputed and the difference taken again; the 2.5th and 97.5th percentiles of the draws.
The draws come from a seeded generator, so the same data give the same interval.

A difference from a handful of sessions is noise. Below the minima (ours, not from a source: 30
rated sessions or tension answers, 10 ended ruptures or closed episodes per group and window, and
3 therapists per group) the page says so in words instead of giving a number.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from django.utils.translation import gettext_lazy as _

from alliance_app.dashboards.stats import _round

DEFAULT_DAYS = 90
MIN_DAYS, MAX_DAYS = 30, 365
DRAWS = 2000
SEED = 20151204
MIN_THERAPISTS = 3

# The sums kept per therapist and window, in this order in every array.
COLUMNS = (
    "rated",
    "total_sum",
    "concerns",
    "tension_answers",
    "tensions",
    "ruptures",
    "repaired",
    "unrepaired",
    "closed",
    "unplanned",
    "outcomes",
    "intake_sum",
    "intake_squares",
    "change_sum",
)
_AT = {name: position for position, name in enumerate(COLUMNS)}


class Group(StrEnum):
    ATTENDEES = "attendees"
    OTHERS = "others"


class Window(StrEnum):
    BEFORE = "before"
    AFTER = "after"


GROUP_NAMES = {Group.ATTENDEES: _("attendees"), Group.OTHERS: _("other therapists")}
WINDOW_NAMES = {Window.BEFORE: _("before the training"), Window.AFTER: _("after the training")}


def _add_months(month: datetime.date, count: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + count
    return datetime.date(index // 12, index % 12 + 1, 1)


def months_for(days: int) -> int:
    """`days` in whole calendar months of 365/12 days, at least one: 90 days are 3 months."""
    return max(1, round(days * 12 / 365))


@dataclass(frozen=True)
class Windows:
    """The calendar months before and after a training's month."""

    training_month: datetime.date
    months: int

    @classmethod
    def around(cls, date: datetime.date, days: int) -> Windows:
        return cls(date.replace(day=1), months_for(days))

    @property
    def before_first(self) -> datetime.date:
        return _add_months(self.training_month, -self.months)

    @property
    def before_last(self) -> datetime.date:
        return _add_months(self.training_month, -1)

    @property
    def after_first(self) -> datetime.date:
        return _add_months(self.training_month, 1)

    @property
    def after_last(self) -> datetime.date:
        return _add_months(self.training_month, self.months)

    @property
    def end(self) -> datetime.date:
        """The day after the last month of the after window."""
        return _add_months(self.training_month, self.months + 1)

    def window_of(self, month: datetime.date) -> Window | None:
        if self.before_first <= month <= self.before_last:
            return Window.BEFORE
        if self.after_first <= month <= self.after_last:
            return Window.AFTER
        return None


Sums = np.ndarray  # [..., len(COLUMNS)]


def _divide(top: Sums, bottom: Sums, scale: float = 1.0) -> Sums:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, scale * top / np.where(bottom > 0, bottom, 1), np.nan)


def _column(sums: Sums, name: str) -> Sums:
    return sums[..., _AT[name]]


def _effect_size(sums: Sums) -> Sums:
    """Mean change over the SD of the intakes (n − 1), from the sums, as `measures.effect_size`."""
    n = _column(sums, "outcomes")
    intake, squares = _column(sums, "intake_sum"), _column(sums, "intake_squares")
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.where(n > 1, (squares - intake**2 / np.where(n > 0, n, 1)) / (n - 1), np.nan)
        # Sums of squares lose a little to rounding: a spread this small is no spread.
        spread = np.where(variance > 1e-9, np.sqrt(np.abs(variance)), np.nan)
        return _divide(_column(sums, "change_sum"), n) / spread


@dataclass(frozen=True)
class FigureRule:
    """One figure of the evaluation: what it is, how it is computed from the sums, what it rests
    on and how many of that it needs."""

    key: str
    label: Any
    unit: Any
    places: int
    compute: Callable[[Sums], Sums]
    basis: Callable[[Sums], Sums]
    basis_name: Any
    minimum: int

    def __reduce__(self):
        # Cached evaluations are pickled: a rule travels as its key, its computations being
        # lambdas.
        return _figure_rule, (self.key,)


def _figure_rule(key: str) -> FigureRule:
    return next(rule for rule in FIGURES if rule.key == key)


def _ended(sums: Sums) -> Sums:
    return _column(sums, "repaired") + _column(sums, "unrepaired")


FIGURES = (
    FigureRule(
        "rupture_rate",
        _("Ruptures per 100 rated sessions"),
        _("per 100 sessions"),
        1,
        lambda s: _divide(_column(s, "ruptures"), _column(s, "rated"), 100),
        lambda s: _column(s, "rated"),
        _("rated sessions"),
        30,
    ),
    FigureRule(
        "repair_share",
        _("Share of ended ruptures repaired"),
        _("percentage points"),
        1,
        lambda s: _divide(_column(s, "repaired"), _ended(s), 100),
        _ended,
        _("ended ruptures"),
        10,
    ),
    FigureRule(
        "tension_share",
        _("Client-reported tension (share of answers)"),
        _("percentage points"),
        1,
        lambda s: _divide(_column(s, "tensions"), _column(s, "tension_answers"), 100),
        lambda s: _column(s, "tension_answers"),
        _("answers to the tension question"),
        30,
    ),
    FigureRule(
        "mean_rating",
        _("Mean session rating"),
        _("points"),
        2,
        lambda s: _divide(_column(s, "total_sum"), _column(s, "rated")),
        lambda s: _column(s, "rated"),
        _("rated sessions"),
        30,
    ),
    FigureRule(
        "concern_share",
        _("Share of alliance concerns"),
        _("percentage points"),
        1,
        lambda s: _divide(_column(s, "concerns"), _column(s, "rated"), 100),
        lambda s: _column(s, "rated"),
        _("rated sessions"),
        30,
    ),
    FigureRule(
        "effect_size",
        _("Outcome effect size of episodes closed"),
        _("effect size"),
        2,
        _effect_size,
        lambda s: _column(s, "outcomes"),
        _("closed episodes with two outcome ratings"),
        10,
    ),
    FigureRule(
        "dropout",
        _("Drop-out (unplanned endings of episodes closed)"),
        _("percentage points"),
        1,
        lambda s: _divide(_column(s, "unplanned"), _column(s, "closed"), 100),
        lambda s: _column(s, "closed"),
        _("closed episodes"),
        10,
    ),
)


@dataclass(frozen=True)
class Cell:
    """One group's figure in one window, with what it rests on."""

    value: float | None
    basis: int
    enough: bool


@dataclass(frozen=True)
class FigureResult:
    rule: FigureRule
    cells: Mapping[tuple[Group, Window], Cell]
    difference: float | None  # difference in differences, when every cell has enough
    interval: tuple[float, float] | None
    shortfalls: list[str]

    def cell(self, group: str, window: str) -> Cell:
        return self.cells[Group(group), Window(window)]


@dataclass(frozen=True)
class Evaluation:
    windows: Windows
    therapists: Mapping[Group, int]
    counts: Mapping[tuple[Group, Window], dict[str, int]]
    figures: list[FigureResult]
    shortfalls: list[str]  # about the groups as a whole


def therapist_sums(rows: Iterable[Mapping[str, Any]], windows: Windows) -> dict[int, np.ndarray]:
    """Per therapist, the sums of the window months as a [2, len(COLUMNS)] array (before, after).

    Each row is one therapist's month ("therapist_id", "month") with any of the COLUMNS; a
    column a row lacks counts nothing. Therapists with no rated session in either window are
    left out, as are months outside the windows.
    """
    frame = pd.DataFrame.from_records(list(rows), columns=["therapist_id", "month", *COLUMNS])
    frame[list(COLUMNS)] = frame[list(COLUMNS)].astype(float).fillna(0.0)
    frame["window"] = [windows.window_of(month) for month in frame["month"]]
    frame = frame[frame["window"].notna()]
    summed = frame.groupby(["therapist_id", "window"])[list(COLUMNS)].sum()
    result = {}
    for therapist_id in summed.index.get_level_values(0).unique():
        block = np.zeros((2, len(COLUMNS)))
        for position, window in enumerate(Window):
            if (therapist_id, window) in summed.index:
                block[position] = summed.loc[(therapist_id, window)].to_numpy()
        if block[:, _AT["rated"]].sum() > 0:
            result[int(therapist_id)] = block
    return result


def evaluate(
    sums: Mapping[int, np.ndarray],
    attendees: Collection[int],
    windows: Windows,
    *,
    draws: int = DRAWS,
    seed: int = SEED,
) -> Evaluation:
    """The difference in differences of every figure, with its bootstrap interval."""
    groups = {
        Group.ATTENDEES: np.array([sums[pk] for pk in sorted(sums) if pk in attendees]),
        Group.OTHERS: np.array([sums[pk] for pk in sorted(sums) if pk not in attendees]),
    }
    groups = {
        group: block if len(block) else np.zeros((0, 2, len(COLUMNS)))
        for group, block in groups.items()
    }
    therapists = {group: len(block) for group, block in groups.items()}
    totals = {group: block.sum(axis=0) for group, block in groups.items()}
    rng = np.random.default_rng(seed)
    # Multinomial counts are the same draw as picking n therapists with replacement, without
    # an array of draws × therapists × sums.
    resampled = {
        group: (
            rng.multinomial(len(block), np.full(len(block), 1 / len(block)), size=draws)
            @ block.reshape(len(block), -1)
        ).reshape(draws, 2, len(COLUMNS))
        if len(block)
        else None
        for group, block in groups.items()
    }
    shortfalls = [
        str(
            _(
                "%(count)s %(group)s with rated sessions in the windows: "
                "too few to judge (at least %(needed)s)"
            )
            % {"count": count, "group": GROUP_NAMES[group], "needed": MIN_THERAPISTS}
        )
        for group, count in therapists.items()
        if count < MIN_THERAPISTS
    ]
    figures = [_figure(rule, totals, resampled, not shortfalls) for rule in FIGURES]
    counts = {
        (group, window): {
            "therapists": int((groups[group][:, position, _AT["rated"]] > 0).sum()),
            **{name: round(float(totals[group][position, _AT[name]])) for name in _COUNTED},
        }
        for group in Group
        for position, window in enumerate(Window)
    }
    return Evaluation(windows, therapists, counts, figures, shortfalls)


_COUNTED = (
    "rated",
    "ruptures",
    "repaired",
    "unrepaired",
    "tension_answers",
    "tensions",
    "concerns",
    "closed",
    "unplanned",
    "outcomes",
)


def _difference(rule: FigureRule, attendees: Sums, others: Sums) -> Sums:
    """[..., 2, columns] sums of each group to the difference in differences."""
    a, o = rule.compute(attendees), rule.compute(others)
    return (a[..., 1] - a[..., 0]) - (o[..., 1] - o[..., 0])


def _figure(
    rule: FigureRule,
    totals: Mapping[Group, Sums],
    resampled: Mapping[Group, Sums | None],
    groups_enough: bool,
) -> FigureResult:
    cells, shortfalls = {}, []
    for group in Group:
        values, bases = rule.compute(totals[group]), rule.basis(totals[group])
        for position, window in enumerate(Window):
            basis = round(float(bases[position]))
            value = float(values[position])
            enough = basis >= rule.minimum
            cells[group, window] = Cell(
                None if math.isnan(value) else _round(value, rule.places), basis, enough
            )
            if not enough:
                shortfalls.append(
                    str(
                        _(
                            "%(count)s %(basis)s %(window)s among %(group)s: "
                            "too few to judge (at least %(needed)s)"
                        )
                        % {
                            "count": basis,
                            "basis": rule.basis_name,
                            "window": WINDOW_NAMES[window],
                            "group": GROUP_NAMES[group],
                            "needed": rule.minimum,
                        }
                    )
                )
    difference = interval = None
    judged = groups_enough and not shortfalls
    if judged:
        exact = float(_difference(rule, totals[Group.ATTENDEES], totals[Group.OTHERS]))
        if not math.isnan(exact):
            difference = _round(exact, rule.places)
            draws = _difference(rule, resampled[Group.ATTENDEES], resampled[Group.OTHERS])
            finite = draws[np.isfinite(draws)]
            # An interval from a few surviving draws would look sure of itself; none then.
            if len(finite) >= 0.95 * len(draws):
                low, high = np.percentile(finite, [2.5, 97.5])
                interval = (_round(float(low), rule.places), _round(float(high), rule.places))
    return FigureResult(rule, cells, difference, interval, shortfalls)
