"""Believable synthetic histories: the trajectory model behind the demo and the scale data.

Every number comes from a seeded random.Random, so the same seed gives the same clinic.
Outcome totals follow a negatively accelerated curve towards the client's gain (most change
comes early in therapy); session totals sit high with small noise, as alliance ratings do, with
the dips that make a drop or a rupture–repair sequence.
"""

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

ITEM_COUNT = 4
TENTH = Decimal("0.1")
# How far single items stray from the total's share: outcome items differ more (a client may
# be fine at work and struggling at home) than alliance items, which clients rate near the top.
OUTCOME_SPREAD = 1.2
SESSION_SPREAD = 0.2


class Course(StrEnum):
    IMPROVING = "improving"
    FLAT = "flat"
    DETERIORATING = "deteriorating"


class Alliance(StrEnum):
    STEADY = "steady"
    LOW = "low"
    DROP = "drop"
    RUPTURE_REPAIR = "rupture_repair"


@dataclass(frozen=True)
class ClientPlan:
    """What one synthetic client's history should show."""

    course: Course
    alliance: Alliance
    sessions: int
    age_band: str = "adult"
    raters: tuple[str, ...] = ("client",)
    closed: str = ""  # "", "planned", "unplanned"


@dataclass(frozen=True)
class SessionScores:
    number: int
    outcome: dict[str, tuple[Decimal, ...]]  # rater -> four items
    session: dict[str, tuple[Decimal, ...]]


def split_total(rng: random.Random, total: float, spread: float) -> tuple[Decimal, ...]:
    """Four item scores in 0.0–10.0 that add up to about total, varying by `spread` around it.

    The deviations sum to zero, so the path decides the total and the items only share it out.
    """
    deviations = [rng.gauss(0, spread) for _ in range(ITEM_COUNT)]
    mean_deviation = sum(deviations) / ITEM_COUNT
    per_item = total / ITEM_COUNT
    return tuple(
        Decimal(str(round(min(10.0, max(0.0, per_item + d - mean_deviation)), 1))).quantize(TENTH)
        for d in deviations
    )


def outcome_path(rng: random.Random, plan: ClientPlan, intake: float) -> list[float]:
    if plan.course is Course.IMPROVING:
        gain = rng.uniform(7.0, 14.0)
    elif plan.course is Course.DETERIORATING:
        gain = -rng.uniform(6.0, 9.0)
    else:
        gain = rng.uniform(-1.5, 2.5)
    pace = rng.uniform(1.0, 2.2)
    path = []
    for index in range(plan.sessions):
        expected = intake + gain * (1 - math.exp(-index / pace))
        noise = 0.0 if index == 0 else rng.gauss(0, 1.0)
        path.append(min(39.5, max(1.0, expected + noise)))
    return path


def session_path(rng: random.Random, plan: ClientPlan) -> list[float]:
    level = rng.uniform(33.0, 35.0) if plan.alliance is Alliance.LOW else rng.uniform(37.6, 39.2)
    path = [min(40.0, max(20.0, level + rng.gauss(0, 0.3))) for _ in range(plan.sessions)]
    if plan.sessions >= 4 and plan.alliance in (Alliance.DROP, Alliance.RUPTURE_REPAIR):
        # A drop is today's concern (the latest session); a rupture lies further back, so its
        # repair shows in the sessions after it.
        at = (
            plan.sessions - 1
            if plan.alliance is Alliance.DROP
            else rng.randint(2, plan.sessions - 2)
        )
        depth = rng.uniform(1.5, 2.8) if plan.alliance is Alliance.DROP else rng.uniform(4.5, 7.0)
        path[at] = level - depth
        if plan.alliance is Alliance.RUPTURE_REPAIR:
            # The repair: back to the client's own level within one or two sessions.
            path[at + 1] = level - depth / 2
            if at + 2 < plan.sessions:
                path[at + 2] = level + rng.uniform(-0.2, 0.4)
    return path


def history(rng: random.Random, plan: ClientPlan) -> list[SessionScores]:
    """The item scores of every session, for every rater, in session order."""
    paths = {}
    for rater in plan.raters:
        clinical_mid = {"child": 26.0, "adolescent": 22.0}.get(plan.age_band, 19.0)
        intake = rng.uniform(clinical_mid - 6.0, clinical_mid + 4.0)
        paths[rater] = (outcome_path(rng, plan, intake), session_path(rng, plan))
    return [
        SessionScores(
            number=index + 1,
            outcome={
                r: split_total(rng, path[0][index], OUTCOME_SPREAD) for r, path in paths.items()
            },
            session={
                r: split_total(rng, path[1][index], SESSION_SPREAD) for r, path in paths.items()
            },
        )
        for index in range(plan.sessions)
    ]


DEMO_MIX: tuple[tuple[int, dict], ...] = (
    # (how many clients, what their histories show)
    (24, {"course": Course.IMPROVING, "alliance": Alliance.STEADY}),
    (6, {"course": Course.IMPROVING, "alliance": Alliance.STEADY, "closed": "planned"}),
    (6, {"course": Course.FLAT, "alliance": Alliance.STEADY}),
    (3, {"course": Course.FLAT, "alliance": Alliance.LOW, "closed": "unplanned"}),
    (4, {"course": Course.DETERIORATING, "alliance": Alliance.STEADY}),
    (5, {"course": Course.IMPROVING, "alliance": Alliance.DROP}),
    (4, {"course": Course.IMPROVING, "alliance": Alliance.RUPTURE_REPAIR}),
    (2, {"course": Course.FLAT, "alliance": Alliance.LOW}),
    (2, {"course": Course.IMPROVING, "alliance": Alliance.STEADY, "raters": ("client", "partner")}),
    (4, {"course": Course.IMPROVING, "alliance": Alliance.STEADY, "age_band": "child"}),
    (1, {"course": Course.FLAT, "alliance": Alliance.DROP, "age_band": "child"}),
    (3, {"course": Course.IMPROVING, "alliance": Alliance.STEADY, "age_band": "adolescent"}),
)


def demo_plans(rng: random.Random) -> list[ClientPlan]:
    """About sixty clients: most improving, some flat, a few deteriorating, drops and ruptures."""
    plans = []
    for count, traits in DEMO_MIX:
        shows_a_dip = traits["alliance"] in (Alliance.DROP, Alliance.RUPTURE_REPAIR)
        shows_a_course = traits["course"] is not Course.IMPROVING or traits.get("closed")
        fewest = 5 if shows_a_dip else 4 if shows_a_course else 1
        for _ in range(count):
            sessions = rng.randint(fewest, 20)
            plans.append(ClientPlan(sessions=sessions, **traits))
    rng.shuffle(plans)
    return plans
