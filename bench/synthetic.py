"""The expected-response band's synthetic check (issue 13): on `seed_scale` data, whose
trajectory model is known, the fitted median course must come back close to the one that
generated the data.

The generating median at intake x and session s is found by simulation with the generator's own
functions: seed_scale's plans (`seeding.scale.client_plans`: how many sessions, which course and
alliance, which episodes closed), kept as the fit keeps them (closed, at least three sessions,
the band), each drawn from intake x through `seeding.demo.outcome_path`; at session s, the
median of the totals of the episodes that reached it, as the fit sees them. Splitting a total
into items rounded to the tenth (`split_total`) moves it by at most 0.2 and by nothing on
average, so the simulation leaves it out.

Needs Django set up (the seeding modules import the models); no database.
"""

import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from alliance_app.measures.expected import ExpectedResponse
from alliance_app.seeding.demo import outcome_path
from alliance_app.seeding.scale import client_plans

# Within the adult intakes the generator draws (13 to 23): near both ends and the middle.
INTAKES = (14.0, 18.0, 22.0)
SESSIONS = tuple(range(2, 11))
BAND = "adult"
# Simulated clients: some 50,000 closed adult episodes, so the medians' own sampling error is
# about 0.02 points.
CLIENTS = 200_000
SEED = 20011130
FEWEST_RATINGS = 3  # as the fit (`feedback.expected_fit.MIN_RATINGS`)


@dataclass(frozen=True)
class Point:
    intake: float
    session: int
    generating: float
    fitted: float

    @property
    def difference(self) -> float:
        return self.fitted - self.generating


@dataclass(frozen=True)
class Comparison:
    """The fitted median line against the generating median, point by point, in points."""

    points: tuple[Point, ...]

    @property
    def largest(self) -> float:
        return max(abs(point.difference) for point in self.points)

    @property
    def mean(self) -> float:
        return statistics.fmean(abs(point.difference) for point in self.points)

    def as_dict(self) -> dict:
        return {
            "band": BAND,
            "largest_abs_difference": round(self.largest, 2),
            "mean_abs_difference": round(self.mean, 2),
            "points": [
                {
                    "intake": point.intake,
                    "session": point.session,
                    "generating": round(point.generating, 2),
                    "fitted": round(point.fitted, 2),
                }
                for point in self.points
            ],
        }


def generating_medians(
    *,
    sessions_per_client: float,
    intakes: Sequence[float] = INTAKES,
    sessions: Sequence[int] = SESSIONS,
    clients: int = CLIENTS,
    seed: int = SEED,
    band: str = BAND,
) -> dict[tuple[float, int], float]:
    """The median outcome total at each (intake, session) of the episodes the fit sees, for
    seed_scale data with `sessions_per_client` sessions per client on average (what
    `--sessions` / `--clients` asks for: the length of an episode decides which courses it
    may show)."""
    rng = random.Random(seed)  # noqa: S311 -- synthetic data
    plans = [
        entry.plan
        for entry in client_plans(
            rng, clients=clients, sessions=round(clients * sessions_per_client), therapists=1
        )
        if entry.plan.closed
        and entry.plan.age_band == band
        and entry.plan.sessions >= FEWEST_RATINGS
    ]
    last = max(sessions)
    totals: dict[tuple[float, int], list[float]] = {
        (intake, session): [] for intake in intakes for session in sessions
    }
    for plan in plans:
        # The course up to the last session compared is drawn as in the full history.
        short = replace(plan, sessions=min(plan.sessions, last))
        for intake in intakes:
            path = outcome_path(rng, short, intake)
            for session in sessions:
                if session <= plan.sessions:
                    totals[intake, session].append(path[session - 1])
    return {key: statistics.median(values) for key, values in totals.items()}


def compare(
    model: ExpectedResponse, medians: dict[tuple[float, int], float], band: str = BAND
) -> Comparison:
    """The fitted median line (unrounded) against the generating medians."""
    line = model.bands[band].median
    return Comparison(
        tuple(
            Point(intake, session, generating, line.at(intake, session))
            for (intake, session), generating in sorted(medians.items())
        )
    )


def table(comparison: Comparison, intakes: Iterable[float] = INTAKES) -> str:
    """Fitted minus generating, one row per intake, one column per session."""
    by = {(p.intake, p.session): p.difference for p in comparison.points}
    sessions = sorted({p.session for p in comparison.points})
    lines = ["intake  " + " ".join(f"{s:>5}" for s in sessions)]
    for intake in intakes:
        lines.append(f"{intake:6.1f}  " + " ".join(f"{by[intake, s]:+5.2f}" for s in sessions))
    return "\n".join(lines)
