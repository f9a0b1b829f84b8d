"""Ruptures and repairs in the alliance: a rater's session total falling below their own level,
and its return (DESIGN.md §5).

A fixed cut-off misses the client who always gives 39.5 and then 36.5, and a drop from the
previous session fires on noise and misses a slow slide. Here each session total is compared with
the same rater's recent level: a rupture is a fall below it by `max(k × s, minimum drop)`, with s a
within-client SD of session totals. Strauss et al. 2006 used 1 SD (k = 1, our default); Stiles et
al. 2004 a stricter 2 SD (k = 2). Gumz, Brähler, Geyer & Erices 2012 (BMC Med Res Methodol 12:10)
showed that the number of ruptures found depends on the criterion, so every threshold is a
parameter and the one in force can be shown (`RuptureRules.threshold`). A repair is the return to
that level within a few sessions, the V-shape of Stiles et al. 2004. The item that fell most names
the part of the alliance after Bordin 1979 (bond, goals, tasks), as Safran & Muran describe
ruptures.

Scores are Decimals and the rules compare exact fractions: a mean of one-decimal totals is never
rounded before it is compared, so a drop that reaches the threshold on paper reaches it here. This
module builds on `flags.RatingPoint`; `flags` must not import it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType

from .flags import DEFAULT_RULES, Finding, FlagKind, FlagRules, RatingPoint, gettext_noop
from .instruments import Scale
from .scoring import ONE_DECIMAL

# Baselines, drops and SDs are kept and shown to the hundredth: the mean of two one-decimal totals
# (39.5 and 38.6 give 39.05) needs it. The rules themselves never compare rounded values.
HUNDREDTH = Decimal("0.01")


class BordinDimension(StrEnum):
    """Bordin's (1979) parts of the working alliance, plus "general" for the session as a whole."""

    BOND = "bond"
    GOALS = "goals"
    TASKS = "tasks"
    GENERAL = "general"


class RuptureStatus(StrEnum):
    PENDING = "pending"
    REPAIRED = "repaired"
    UNREPAIRED = "unrepaired"


# The session scales' item keys (fixtures/instruments/session-*.json): being listened to is the
# bond, what we focused on the goals, how we worked the tasks; the session as a whole is general.
DEFAULT_DIMENSIONS: Mapping[str, BordinDimension] = MappingProxyType(
    {
        "relationship": BordinDimension.BOND,
        "goals": BordinDimension.GOALS,
        "approach": BordinDimension.TASKS,
        "overall": BordinDimension.GENERAL,
    }
)


@dataclass(frozen=True)
class RuptureRules:
    """An organisation's rupture and repair rule; s, the SD, is measured, so the caller passes it.

    - Baseline: the mean of up to `baseline_window` previous totals of the rater, at least
      `min_previous` of them; before that no rupture can be found.
    - Rupture: baseline − total ≥ `threshold(s)` = max(k × s, `min_drop`). k = 1 follows Strauss
      et al. 2006, k = 2 Stiles et al. 2004; the minimum drop keeps a very steady client's
      half-point wobble from counting, and equals the one-point drop flag (`FlagRules`).
    - Repair: a total of at least baseline − `repair_tolerance` × threshold ("back within half the
      threshold of the usual level" by default) within `repair_window` sessions after the rupture.
      The tolerance must stay below 1: at 1 the return line is the rupture line, and one total
      could be both a rupture and its repair.
    - `dimensions` names each item key's part of the alliance; every item of the instrument rated
      must be named.
    """

    baseline_window: int = 3
    min_previous: int = 2
    k: Decimal = Decimal("1.0")
    min_drop: Decimal = Decimal("1.0")
    repair_window: int = 3
    repair_tolerance: Decimal = Decimal("0.5")
    dimensions: Mapping[str, BordinDimension] = field(
        default_factory=lambda: DEFAULT_DIMENSIONS, hash=False
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.min_previous, int) and self.min_previous >= 1):
            raise ValueError("min_previous must be a number of totals from 1 up")
        if not (
            isinstance(self.baseline_window, int) and self.baseline_window >= self.min_previous
        ):
            raise ValueError("baseline_window must be a number of totals, at least min_previous")
        if not self.k > 0:
            raise ValueError("k must be positive")
        if self.min_drop < 0:
            raise ValueError("min_drop must not be negative")
        if not (isinstance(self.repair_window, int) and self.repair_window >= 1):
            raise ValueError("repair_window must be a number of sessions from 1 up")
        if not 0 <= self.repair_tolerance < 1:
            raise ValueError("repair_tolerance must be a fraction of the threshold in [0, 1)")
        unknown = [
            value for value in self.dimensions.values() if not isinstance(value, BordinDimension)
        ]
        if unknown:
            raise ValueError(f"dimensions must be BordinDimension members, not {unknown}")

    def threshold(self, s: Decimal) -> Decimal:
        """The fall below the baseline that counts as a rupture, given the SD of session totals."""
        if not (s.is_finite() and s >= 0):
            raise ValueError(f"s must be a standard deviation, not {s}")
        threshold = max(self.k * s, self.min_drop)
        if not threshold > 0:
            raise ValueError("the threshold is zero: give a positive s or minimum drop")
        return threshold


DEFAULT_RUPTURE_RULES = RuptureRules()

# The SD taken while an organisation has too few series to measure its own (`pooled_within_sd`).
DEFAULT_SD_FALLBACK = Decimal("1.0")


@dataclass(frozen=True)
class Rupture:
    """One rupture in one rater's series; `baseline`, `drop` and `item_drops` are to the hundredth.

    `item_drops` maps each item key to its own baseline minus its score at the rupture session;
    `dimensions` names the item(s) that fell most. A repaired rupture says at which session the
    total came back and how many sessions that took.
    """

    session_number: int
    total: Decimal
    baseline: Decimal
    drop: Decimal
    threshold: Decimal
    dimensions: tuple[BordinDimension, ...]
    item_drops: Mapping[str, Decimal] = field(hash=False)
    status: RuptureStatus
    repaired_at: int | None = None
    sessions_to_repair: int | None = None


@dataclass(frozen=True)
class _Baseline:
    """The mean of the previous totals as an exact fraction; each item's mean, asked only when
    a rupture is found, likewise."""

    previous: Sequence[RatingPoint]
    total: Fraction

    @classmethod
    def of(cls, previous: Sequence[RatingPoint]) -> _Baseline:
        total = sum((Fraction(point.total) for point in previous), Fraction(0)) / len(previous)
        return cls(previous, total)

    @property
    def items(self) -> tuple[Fraction, ...]:
        count = len(self.previous)
        return tuple(
            sum((Fraction(score) for score in scores), Fraction(0)) / count
            for scores in zip(*(point.items for point in self.previous), strict=True)
        )


def ruptures_for(
    series: Iterable[RatingPoint],
    *,
    s: Decimal,
    rules: RuptureRules = DEFAULT_RUPTURE_RULES,
    episode_closed: bool = False,
) -> list[Rupture]:
    """Every rupture in one rater's session ratings in one episode, in session order.

    The ratings may come in any order; they are sorted by session number. Mixing raters, scales or
    item sets is refused, as is a second rating of one session: each rater's series stands alone
    (DESIGN.md §2, multiple raters), so the caller groups by rater.

    Choices where the sources leave one (Gumz et al. 2012 found the simple V the commonest
    pattern, so the rule is built around it):
    - While a rupture is pending, later totals are compared only with its return line: a further
      fall below the same pre-rupture level is the same rupture, not a new one.
    - The repair window counts session numbers, not ratings: sessions t+1 … t+N. A session without
      a rating still passes time, so a rating first given at t+N+1 finds the rupture unrepaired
      and is not its repair. A rating at t+N that has not returned makes it unrepaired too; so does
      closing the episode (`episode_closed`) while it is pending.
    - Once a rupture has ended, repaired or not, the baseline is again the mean of the previous
      totals, the low ones included: a client who settles lower has a new usual level, and a
      further fall is measured from it. The session that repairs a rupture is not itself judged
      as a new rupture.
    """
    points = _one_series(series, rules)
    threshold = rules.threshold(s)
    ruptures: list[Rupture] = []
    open_rupture: Rupture | None = None
    return_line = Fraction(0)
    for index, point in enumerate(points):
        if open_rupture is not None:
            open_rupture = ruptures[-1] = _follow_up(open_rupture, return_line, point, rules)
            within_window = (
                point.session_number - open_rupture.session_number <= rules.repair_window
            )
            if open_rupture.status is not RuptureStatus.PENDING:
                open_rupture = None
            if within_window:
                continue
        previous = points[max(0, index - rules.baseline_window) : index]
        if len(previous) < rules.min_previous:
            continue
        baseline = _Baseline.of(previous)
        if baseline.total - Fraction(point.total) >= Fraction(threshold):
            open_rupture = _rupture(point, baseline, threshold, rules)
            return_line = baseline.total - Fraction(rules.repair_tolerance * threshold)
            ruptures.append(open_rupture)
    if open_rupture is not None and episode_closed:
        ruptures[-1] = replace(open_rupture, status=RuptureStatus.UNREPAIRED)
    return ruptures


def _one_series(series: Iterable[RatingPoint], rules: RuptureRules) -> list[RatingPoint]:
    points = sorted(series, key=lambda point: point.session_number)
    if not points:
        return points
    raters = sorted({point.rater for point in points})
    if len(raters) > 1:
        raise ValueError(f"one rater's series at a time, not {raters}")
    if any(point.instrument.scale is not Scale.SESSION for point in points):
        raise ValueError("ruptures are found in session-scale ratings only")
    item_sets = {point.instrument.item_keys for point in points}
    if len(item_sets) > 1:
        raise ValueError(f"the ratings have different items: {sorted(item_sets)}")
    numbers = [point.session_number for point in points]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"more than one rating of one session in {numbers}")
    unnamed = [key for key in points[0].instrument.item_keys if key not in rules.dimensions]
    if unnamed:
        raise ValueError(f"no Bordin dimension for item(s) {unnamed}")
    return points


def _follow_up(
    rupture: Rupture, return_line: Fraction, point: RatingPoint, rules: RuptureRules
) -> Rupture:
    """The pending rupture after one more of the rater's totals: still pending, repaired or not."""
    sessions_after = point.session_number - rupture.session_number
    if sessions_after > rules.repair_window:
        return replace(rupture, status=RuptureStatus.UNREPAIRED)
    if Fraction(point.total) >= return_line:
        return replace(
            rupture,
            status=RuptureStatus.REPAIRED,
            repaired_at=point.session_number,
            sessions_to_repair=sessions_after,
        )
    if sessions_after == rules.repair_window:
        return replace(rupture, status=RuptureStatus.UNREPAIRED)
    return rupture


def _rupture(
    point: RatingPoint, baseline: _Baseline, threshold: Decimal, rules: RuptureRules
) -> Rupture:
    keys = point.instrument.item_keys
    drops = [
        item_baseline - Fraction(score)
        for item_baseline, score in zip(baseline.items, point.items, strict=True)
    ]
    largest = max(drops)
    dimensions = [
        rules.dimensions[key] for key, drop in zip(keys, drops, strict=True) if drop == largest
    ]
    return Rupture(
        session_number=point.session_number,
        total=point.total,
        baseline=_hundredths(baseline.total),
        drop=_hundredths(baseline.total - Fraction(point.total)),
        threshold=threshold,
        dimensions=tuple(dict.fromkeys(dimensions)),
        item_drops={key: _hundredths(drop) for key, drop in zip(keys, drops, strict=True)},
        status=RuptureStatus.PENDING,
    )


def _hundredths(value: Fraction) -> Decimal:
    # Half up, as a clinician rounds by hand: a mean of 38.535 is shown as 38.54.
    return _decimal(value).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)


def _decimal(value: Fraction) -> Decimal:
    # Exact where the fraction terminates; 40 digits otherwise, far finer than any rounding here.
    with localcontext(prec=40):
        return Decimal(value.numerator) / Decimal(value.denominator)


@dataclass(frozen=True)
class PooledSD:
    """A pooled within-client SD: the value, how many series and degrees of freedom it rests on,
    and whether too few were available, so that `value` is the fallback instead."""

    value: Decimal
    series: int
    degrees_of_freedom: int
    is_fallback: bool


def pooled_within_sd(
    series: Iterable[Sequence[Decimal]],
    *,
    min_series: int = 10,
    min_degrees_of_freedom: int = 30,
    fallback: Decimal = DEFAULT_SD_FALLBACK,
) -> PooledSD:
    """The SD of session totals around each series' own mean, pooled over many series.

    Give one series per rater per episode, so that how far clients differ from each other does not
    count, only how much one rater's totals vary from session to session: the variability a
    rupture must stand out from (Gumz et al. 2012 recommend taking the client's own variability
    into account). The within-series variances are pooled weighted by their degrees of freedom,
    sqrt(Σ (x − mean_i)² / Σ (n_i − 1)), over the series with at least two totals; the value is
    rounded half up to the hundredth.

    With fewer than `min_series` such series or `min_degrees_of_freedom`, the estimate is too
    unsteady to set a threshold by (an SD's standard error is about s / sqrt(2 × df): 13% at 30),
    and `fallback` is returned, marked as such. Its default, 1.0 point, makes the threshold with
    k = 1 equal to the minimum drop and to the one-point drop flag clinicians already know, now
    measured against the client's own level; a new organisation starts with that rule and moves
    to its own SD as ratings accumulate.
    """
    if not (isinstance(min_series, int) and min_series >= 1):
        raise ValueError("min_series must be a number of series from 1 up")
    if not (isinstance(min_degrees_of_freedom, int) and min_degrees_of_freedom >= 1):
        raise ValueError("min_degrees_of_freedom must be from 1 up")
    if not (fallback.is_finite() and fallback > 0):
        raise ValueError("fallback must be a positive standard deviation")
    counted = [[Fraction(total) for total in totals] for totals in series if len(totals) >= 2]
    squares = sum((_sum_of_squares(totals) for totals in counted), Fraction(0))
    degrees_of_freedom = sum(len(totals) - 1 for totals in counted)
    if len(counted) < min_series or degrees_of_freedom < min_degrees_of_freedom:
        return PooledSD(fallback, len(counted), degrees_of_freedom, is_fallback=True)
    with localcontext(prec=40):
        value = _decimal(squares / degrees_of_freedom).sqrt()
    value = value.quantize(HUNDREDTH, rounding=ROUND_HALF_UP)
    return PooledSD(value, len(counted), degrees_of_freedom, is_fallback=False)


def _sum_of_squares(totals: Sequence[Fraction]) -> Fraction:
    mean = sum(totals, Fraction(0)) / len(totals)
    return sum(((total - mean) ** 2 for total in totals), Fraction(0))


@dataclass(frozen=True)
class RuptureExplanation:
    """A rupture in words: `message % params`, the message translated before formatting."""

    message: str
    params: dict[str, str]

    def explain(self) -> str:
        return self.message % self.params


_FELL_MOST = MappingProxyType(
    {
        BordinDimension.BOND: gettext_noop(
            "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
            "the bond item fell most."
        ),
        BordinDimension.GOALS: gettext_noop(
            "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
            "the goals item fell most."
        ),
        BordinDimension.TASKS: gettext_noop(
            "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
            "the tasks item fell most."
        ),
        BordinDimension.GENERAL: gettext_noop(
            "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
            "the rating of the session as a whole fell most."
        ),
    }
)
_FELL_EQUALLY = gettext_noop(
    "Session rating %(total)s, %(drop)s below this client's usual %(baseline)s: "
    "the %(dimensions)s items fell most, equally."
)


# A tie's parts, as the tie's sentence names their items ("the goals and tasks items").
DIMENSION_WORDS: Mapping[BordinDimension, str] = MappingProxyType(
    {
        BordinDimension.BOND: gettext_noop("bond"),
        BordinDimension.GOALS: gettext_noop("goals"),
        BordinDimension.TASKS: gettext_noop("tasks"),
        BordinDimension.GENERAL: gettext_noop("overall"),
    }
)
_AND_LAST = gettext_noop("%(parts)s and %(last)s")
# Not a value of the message: a tie's dimensions by code, so that a page names them in its
# reader's language (`dimensions_named`) rather than in the words stored with the flag.
DIMENSION_CODES = "dimension_codes"


def dimensions_named(
    codes: Sequence[str], translate: Callable[[str], str] = lambda message: message
) -> str:
    """The parts of a tie in words, "goals and tasks" or "bond, goals and tasks", each word
    and the "and" passed through `translate` (a gettext) first."""
    words = [translate(DIMENSION_WORDS[BordinDimension(code)]) for code in codes]
    if len(words) == 1:
        return words[0]
    return translate(_AND_LAST) % {"parts": ", ".join(words[:-1]), "last": words[-1]}


def explain_rupture(rupture: Rupture) -> RuptureExplanation:
    """What a clinician reads about a rupture: the total, the fall, the usual level, the part.

    One sentence per dimension so translators see whole sentences; a tie names its dimensions
    in words (`dimensions_named`) and keeps their codes, to be named again in another language.
    """
    params = {
        "total": str(rupture.total.quantize(ONE_DECIMAL)),
        "drop": score_shown(rupture.drop),
        "baseline": score_shown(rupture.baseline),
        "threshold": score_shown(rupture.threshold),
        "dimensions": dimensions_named(rupture.dimensions),
    }
    if len(rupture.dimensions) == 1:
        return RuptureExplanation(_FELL_MOST[rupture.dimensions[0]], params)
    params[DIMENSION_CODES] = " ".join(rupture.dimensions)
    return RuptureExplanation(_FELL_EQUALLY, params)


def score_shown(value: Decimal) -> str:
    """One decimal like every score, two where the hundredth matters (a mean of 39.05): as the
    flags, the pages and the handouts write a total, a usual level, a drop or a threshold."""
    hundredths = Decimal(value).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)
    tenths = hundredths.quantize(ONE_DECIMAL)
    return str(tenths if tenths == hundredths else hundredths)


def rupture_finding(rupture: Rupture, flag_rules: FlagRules = DEFAULT_RULES) -> Finding:
    """The flag a rupture raises, explained as `explain_rupture` says it, at the organisation's
    severity for the kind. Its repair is shown beside the flag, not by a second flag."""
    explanation = explain_rupture(rupture)
    return Finding(
        kind=FlagKind.RUPTURE,
        severity=flag_rules.severity_of(FlagKind.RUPTURE),
        message=explanation.message,
        params=explanation.params,
    )
