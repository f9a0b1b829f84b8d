"""The expected response: the course an outcome total usually takes from a given intake, and the
lower boundary below which a client is "not on track".

After Finch, Lambert & Schaalje 2001 (Clin Psychol Psychother 8:231-242), who fitted expected
recovery curves by intake severity on log(session number) for 11,492 patients and flagged those
who fell outside a tolerance interval around them; PCOMS vendors draw the same two lines (a target
and a lower boundary) fitted on their own, undisclosed data. Here both lines are fitted on the
organisation's own closed episodes (`feedback.expected_fit`) and travel as a few numbers each:

    expected total at session s = a + b * intake + c * ln(s) + d * intake * ln(s)

one such line for the median course and one for the boundary quantile (by default the 10th
percentile: nine in ten clients who started at that intake are above it by then). A line is
drawn from session 2, since session 1 is the intake itself, up to the last session the fit saw
enough ratings of; intakes outside the range the fit saw are read as its nearest end, so a line
never extrapolates beyond its data.

Pure Python: the flag at submit time and the band on a chart evaluate stored numbers, and the
statistics library is needed only to fit them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from .flags import Finding, FlagKind, FlagRules, RatingPoint, gettext_noop
from .instruments import Scale

SCHEMA = "alliance-expected-response/1"
TERMS = ("intercept", "intake", "log_session", "intake_log_session")
BANDS = ("adult", "adolescent", "child")
# The boundary quantile: a client below it is doing worse than nine in ten who started alike.
# Finch et al. 2001 built the warning line from a tolerance interval around the expected curve;
# its exact percentile is not confirmed here, and 0.10 is the usual one-sided 90% choice.
DEFAULT_QUANTILE = 0.10
# Fewer closed episodes than this and no band is shown: a quantile line from a few dozen
# episodes is mostly noise (Finch et al. fitted on thousands).
DEFAULT_MIN_EPISODES = 100
FIRST_SESSION = 2  # session 1 is the intake the lines start from
TOTAL_MIN, TOTAL_MAX = 0.0, 40.0
TENTH = Decimal("0.1")


class ParametersInvalid(ValueError):
    """Parameters that cannot be used, with every reason in words."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Line:
    """One fitted line: its four coefficients on intake and ln(session)."""

    intercept: float
    intake: float
    log_session: float
    intake_log_session: float

    def at(self, intake: float, session: int) -> float:
        log_s = math.log(session)
        return (
            self.intercept
            + self.intake * intake
            + self.log_session * log_s
            + self.intake_log_session * intake * log_s
        )

    def as_dict(self) -> dict[str, float]:
        return {term: getattr(self, term) for term in TERMS}


@dataclass(frozen=True)
class BandLines:
    """The median course and the boundary for one age band's instrument.

    `pooled`: fitted with the other bands, the band as a covariate, because the band alone had
    too few episodes. `intakes`: the lowest and highest intake the fit saw.
    """

    median: Line
    boundary: Line
    episodes: int
    intakes: tuple[float, float]
    pooled: bool = False


@dataclass(frozen=True)
class Expected:
    """Where a client who started at `intake` is expected to be at `session`, to the tenth."""

    session: int
    intake: Decimal
    median: Decimal
    boundary: Decimal


@dataclass(frozen=True)
class ExpectedResponse:
    """A fit in use: the quantile, the sessions it covers and each band's lines.

    `source` is empty for a fit made here from the organisation's episodes, else the description
    of where the parameters were fitted (shown on every page as "fitted elsewhere").
    """

    quantile: float
    max_session: int
    bands: Mapping[str, BandLines]
    fit_id: int | None = None
    version: int | None = None
    source: str = ""
    episodes: int = 0
    fitted_at: str = ""
    extra: Mapping[str, object] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.quantile < 0.5:
            raise ValueError("the boundary quantile lies between 0 and 0.5")
        if self.max_session < FIRST_SESSION:
            raise ValueError(f"max_session must be at least {FIRST_SESSION}")

    @property
    def fitted_elsewhere(self) -> bool:
        return bool(self.source)

    def covers(self, band: str, session: int) -> bool:
        return band in self.bands and FIRST_SESSION <= session <= self.max_session

    def expected(self, band: str, intake: Decimal, session: int) -> Expected | None:
        """The median and the boundary at `session` for a client of `band` who started at
        `intake`; None where the fit has no line (another band, session 1, past its sessions)."""
        if not self.covers(band, session):
            return None
        lines = self.bands[band]
        low, high = lines.intakes
        seen = min(high, max(low, float(intake)))
        return Expected(
            session=session,
            intake=Decimal(intake),
            median=_tenth(lines.median.at(seen, session)),
            boundary=_tenth(lines.boundary.at(seen, session)),
        )

    def below_boundary(self, band: str, intake: Decimal, session: int, total: Decimal) -> bool:
        """Whether `total` at `session` is off track: below the boundary rounded to the tenth,
        the rule of `not_on_track_finding`, for pages that judge a rating without a flag."""
        expected = self.expected(band, intake, session)
        return expected is not None and total < expected.boundary

    def course(self, band: str, intake: Decimal, last: int | None = None) -> list[Expected]:
        """The band from session 2 to `last` (by default as far as the fit goes)."""
        end = self.max_session if last is None else min(last, self.max_session)
        found = (self.expected(band, intake, session) for session in range(FIRST_SESSION, end + 1))
        return [point for point in found if point is not None]

    def as_json(self) -> dict:
        """The documented JSON form (`from_json` reads it back)."""
        return {
            "schema": SCHEMA,
            "quantile": self.quantile,
            "max_session": self.max_session,
            "source": self.source,
            "episodes": self.episodes,
            "fitted_at": self.fitted_at,
            "fit_id": self.fit_id,
            "version": self.version,
            "bands": {
                band: {
                    "median": lines.median.as_dict(),
                    "boundary": lines.boundary.as_dict(),
                    "episodes": lines.episodes,
                    "intakes": list(lines.intakes),
                    "pooled": lines.pooled,
                }
                for band, lines in self.bands.items()
            },
        }

    @classmethod
    def from_json(cls, data: object, *, source: str | None = None) -> ExpectedResponse:
        """Read parameters in the documented form, or raise ParametersInvalid with every problem.

        `source`, when given, replaces the file's own (an upload is always "fitted elsewhere").
        """
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise ParametersInvalid(["The file must hold one JSON object."])
        if data.get("schema") != SCHEMA:
            problems.append(f'"schema" must be "{SCHEMA}".')
        quantile = _number(data, "quantile", problems)
        if quantile is not None and not 0 < quantile < 0.5:
            problems.append('"quantile" must lie between 0 and 0.5 (e.g. 0.1).')
        max_session = data.get("max_session")
        if not isinstance(max_session, int) or isinstance(max_session, bool):
            problems.append('"max_session" must be a whole number.')
        elif not FIRST_SESSION <= max_session <= 100:
            problems.append(f'"max_session" must be from {FIRST_SESSION} to 100.')
        bands = _bands(data.get("bands"), problems)
        if problems:
            raise ParametersInvalid(problems)
        episodes = data.get("episodes", 0)
        return cls(
            quantile=float(quantile),
            max_session=max_session,
            bands=MappingProxyType(bands),
            fit_id=data.get("fit_id") if isinstance(data.get("fit_id"), int) else None,
            version=data.get("version") if isinstance(data.get("version"), int) else None,
            source=str(data.get("source") or "") if source is None else source,
            episodes=episodes if isinstance(episodes, int) and episodes >= 0 else 0,
            fitted_at=str(data.get("fitted_at") or ""),
        )


def _number(data: Mapping, key: str, problems: list[str], where: str = "") -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f'{where}"{key}" must be a number.')
        return None
    return float(value)


def _bands(raw: object, problems: list[str]) -> dict[str, BandLines]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append(f'"bands" must name at least one of {", ".join(BANDS)}.')
        return {}
    bands = {}
    for band, entry in raw.items():
        where = f"bands.{band}: "
        if band not in BANDS:
            problems.append(f"{where}unknown age band; use {', '.join(BANDS)}.")
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"{where}must be an object with median and boundary.")
            continue
        lines = {}
        for name in ("median", "boundary"):
            terms = entry.get(name)
            if not isinstance(terms, Mapping):
                problems.append(f'{where}"{name}" must be an object with {", ".join(TERMS)}.')
                continue
            values = [_number(terms, term, problems, f"{where}{name}.") for term in TERMS]
            if None not in values:
                lines[name] = Line(*values)
        intakes = entry.get("intakes", [TOTAL_MIN, TOTAL_MAX])
        if (
            not isinstance(intakes, Sequence)
            or len(intakes) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in intakes)
            or not TOTAL_MIN <= intakes[0] <= intakes[1] <= TOTAL_MAX
        ):
            problems.append(f'{where}"intakes" must be [lowest, highest] within 0 to 40.')
            continue
        episodes = entry.get("episodes", 0)
        if len(lines) == 2:
            bands[band] = BandLines(
                median=lines["median"],
                boundary=lines["boundary"],
                episodes=episodes if isinstance(episodes, int) and episodes >= 0 else 0,
                intakes=(float(intakes[0]), float(intakes[1])),
                pooled=bool(entry.get("pooled", False)),
            )
    return bands


def _tenth(value: float) -> Decimal:
    clamped = min(TOTAL_MAX, max(TOTAL_MIN, value))
    return Decimal(repr(clamped)).quantize(TENTH, rounding=ROUND_HALF_UP)


def not_on_track_finding(
    *,
    total: Decimal,
    session: int,
    intake: Decimal,
    band: str,
    model: ExpectedResponse | None,
    rules: FlagRules,
) -> Finding | None:
    """The not-on-track flag of an outcome rating, or None.

    A client's outcome total below the boundary at that session, for their band and intake, is
    not on track (Lambert's signal system: Finch, Lambert & Schaalje 2001; feedback on such
    clients improved their outcomes, Lambert et al. 2001, Psychother Res 11:49-68). The total is
    compared with the boundary rounded to the tenth, the same number the explanation shows, so a
    total exactly on the boundary is on track.
    """
    if model is None:
        return None
    expected = model.expected(band, intake, session)
    if expected is None or not total < expected.boundary:
        return None
    message = gettext_noop(
        "Outcome %(total)s at session %(session)s; clients who started near %(intake)s are "
        "usually above %(boundary)s by now (half of them above %(median)s)."
    )
    params = {
        "total": str(Decimal(total).quantize(TENTH)),
        "session": str(session),
        "intake": str(Decimal(intake).quantize(TENTH)),
        "boundary": str(expected.boundary),
        "median": str(expected.median),
    }
    kind = FlagKind.NOT_ON_TRACK
    return Finding(kind=kind, severity=rules.severity_of(kind), message=message, params=params)


def not_on_track_for(
    new: RatingPoint,
    history: Iterable[RatingPoint],
    *,
    model: ExpectedResponse | None,
    band: str,
    rules: FlagRules,
    client: str = "client",
) -> Finding | None:
    """The not-on-track finding of a stored rating, given the episode's other ratings.

    The band is fitted on clients' own outcome ratings, so only the client's (rater key
    `client`) outcome ratings are held against it, from their intake: their first outcome rating
    in an earlier session. Other raters' ratings and later sessions in `history` never count.
    """
    if model is None or new.rater != client or new.instrument.scale is not Scale.OUTCOME:
        return None
    earlier = [
        point
        for point in history
        if point.rater == client
        and point.instrument.scale is Scale.OUTCOME
        and point.session_number < new.session_number
    ]
    if not earlier:
        return None
    intake = min(earlier, key=lambda point: point.session_number)
    return not_on_track_finding(
        total=new.total,
        session=new.session_number,
        intake=intake.total,
        band=band,
        model=model,
        rules=rules,
    )


# --- Validation: how well the signal predicts how an episode ended ---------------------------


@dataclass(frozen=True)
class EpisodeCourse:
    """One closed episode as the validation sees it: the intake, the later outcome totals by
    session, and the reliable change of its instrument."""

    band: str
    intake: Decimal
    later: tuple[tuple[int, Decimal], ...]  # (session, total), sessions after the intake
    reliable_change: Decimal

    @property
    def end(self) -> Decimal:
        return max(self.later)[1] if self.later else self.intake

    @property
    def improved(self) -> bool:
        """Ended reliably better (Jacobson & Truax 1991): the rest ended deteriorated or
        unchanged, the outcome the signal is meant to foresee."""
        return self.end - self.intake >= self.reliable_change


def signalled(course: EpisodeCourse, model: ExpectedResponse, by_session: int | None) -> bool:
    """Whether the episode fell below the boundary at any rated session up to `by_session`
    (None: at any session the fit covers)."""
    for session, total in course.later:
        if by_session is not None and session > by_session:
            continue
        expected = model.expected(course.band, course.intake, session)
        if expected is not None and total < expected.boundary:
            return True
    return False


@dataclass(frozen=True)
class Accuracy:
    """The 2x2 table of a signal against episodes that ended without reliable improvement."""

    flagged_bad: int
    flagged_good: int
    missed_bad: int
    quiet_good: int

    @property
    def episodes(self) -> int:
        return self.flagged_bad + self.flagged_good + self.missed_bad + self.quiet_good

    @property
    def sensitivity(self) -> float | None:
        return _share(self.flagged_bad, self.flagged_bad + self.missed_bad)

    @property
    def specificity(self) -> float | None:
        return _share(self.quiet_good, self.quiet_good + self.flagged_good)

    @property
    def ppv(self) -> float | None:
        return _share(self.flagged_bad, self.flagged_bad + self.flagged_good)

    @property
    def flagged_share(self) -> float | None:
        return _share(self.flagged_bad + self.flagged_good, self.episodes)

    def as_dict(self) -> dict:
        return {
            "flagged_bad": self.flagged_bad,
            "flagged_good": self.flagged_good,
            "missed_bad": self.missed_bad,
            "quiet_good": self.quiet_good,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "ppv": self.ppv,
            "flagged_share": self.flagged_share,
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def signal_accuracy(
    courses: Iterable[EpisodeCourse], model: ExpectedResponse, *, by_session: int | None
) -> Accuracy:
    """How well "below the boundary by session `by_session`" foresees an episode that ended
    deteriorated or unchanged. Episodes of a band the model has no line for are left out."""
    cells = [0, 0, 0, 0]
    for course in courses:
        if course.band not in model.bands:
            continue
        flagged = signalled(course, model, by_session)
        bad = not course.improved
        cells[
            {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}[(flagged, bad)]
        ] += 1
    return Accuracy(*cells)


@dataclass(frozen=True)
class CalibrationPoint:
    """At one session: the ratings seen, their mean against the mean expected median, and the
    share below the expected median (0.5 if calibrated) and below the boundary (the quantile)."""

    session: int
    ratings: int
    observed_mean: float
    expected_median_mean: float
    below_median: float
    below_boundary: float

    def as_dict(self) -> dict:
        return {
            "session": self.session,
            "ratings": self.ratings,
            "observed_mean": self.observed_mean,
            "expected_median_mean": self.expected_median_mean,
            "below_median": self.below_median,
            "below_boundary": self.below_boundary,
        }


def calibration(
    courses: Iterable[EpisodeCourse], model: ExpectedResponse
) -> list[CalibrationPoint]:
    """Observed against expected, session by session, over the episodes' later ratings."""
    sums: dict[int, list[float]] = {}
    for course in courses:
        for session, total in course.later:
            expected = model.expected(course.band, course.intake, session)
            if expected is None:
                continue
            row = sums.setdefault(session, [0, 0.0, 0.0, 0, 0])
            row[0] += 1
            row[1] += float(total)
            row[2] += float(expected.median)
            row[3] += total < expected.median
            row[4] += total < expected.boundary
    return [
        CalibrationPoint(
            session=session,
            ratings=n,
            observed_mean=observed / n,
            expected_median_mean=median / n,
            below_median=below_median / n,
            below_boundary=below_boundary / n,
        )
        for session, (n, observed, median, below_median, below_boundary) in sorted(sums.items())
    ]
