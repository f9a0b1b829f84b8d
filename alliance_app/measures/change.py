"""Reliable and clinically significant change (Jacobson & Truax 1991), generally and per instrument.

The general formulas work for any instrument whose norms are known. A rating is judged by
`Thresholds`: the instrument's own reliable-change value and cut-off (5.0 and 25.0 for the adult
outcome scale, DESIGN.md §2), or an organisation's own where it sets them (`FlagRules.thresholds`).
Flags, screens, summaries and charts all ask that one value, so a page never disagrees with a flag.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .instruments import Instrument, Scale


class ChangeDirection(StrEnum):
    IMPROVED = "improved"
    DETERIORATED = "deteriorated"
    NONE = "none"


class EpisodeOutcome(StrEnum):
    RECOVERED = "recovered"
    IMPROVED = "improved"
    UNCHANGED = "unchanged"
    DETERIORATED = "deteriorated"


def _standard_error_of_difference(sd_pre: float, reliability: float) -> float:
    # S_diff = sqrt(2 * SE^2), SE = s1 * sqrt(1 - r): Jacobson & Truax 1991.
    if not sd_pre > 0:
        raise ValueError(f"standard deviation must be positive, not {sd_pre}")
    if not 0 <= reliability < 1:
        raise ValueError(f"reliability must be in [0, 1), not {reliability}")
    return math.sqrt(2) * sd_pre * math.sqrt(1 - reliability)


def reliable_change_index(pre: float, post: float, sd_pre: float, reliability: float) -> float:
    """RC = (x2 - x1) / S_diff; |RC| > 1.96 is unlikely (p < .05) to be measurement error alone."""
    return (post - pre) / _standard_error_of_difference(sd_pre, reliability)


def reliable_change_threshold(sd_pre: float, reliability: float, z: float = 1.96) -> float:
    """The smallest raw change that counts as reliable: z * S_diff."""
    if not z > 0:
        raise ValueError(f"z must be positive, not {z}")
    return z * _standard_error_of_difference(sd_pre, reliability)


def _require_positive_sd(*sds: float) -> None:
    if not all(sd > 0 for sd in sds):
        raise ValueError(f"standard deviations must be positive, not {sds}")


def cutoff_a(clinical_mean: float, clinical_sd: float, higher_is_better: bool = True) -> float:
    """Cut-off a: two standard deviations beyond the clinical mean, towards health."""
    _require_positive_sd(clinical_sd)
    direction = 1 if higher_is_better else -1
    return clinical_mean + direction * 2 * clinical_sd


def cutoff_b(functional_mean: float, functional_sd: float, higher_is_better: bool = True) -> float:
    """Cut-off b: two standard deviations short of the functional mean, towards illness."""
    _require_positive_sd(functional_sd)
    direction = 1 if higher_is_better else -1
    return functional_mean - direction * 2 * functional_sd


def cutoff_c(
    clinical_mean: float, clinical_sd: float, functional_mean: float, functional_sd: float
) -> float:
    """Cut-off c: the point equally likely (in SD units) to belong to either population.

    c = (s0 * m1 + s1 * m0) / (s0 + s1), the preferred cut-off when both norms are known.
    """
    _require_positive_sd(clinical_sd, functional_sd)
    return (functional_sd * clinical_mean + clinical_sd * functional_mean) / (
        functional_sd + clinical_sd
    )


@dataclass(frozen=True)
class Thresholds:
    """The numbers ratings on one instrument are judged by in one organisation.

    `cutoff` bounds the outcome scale's clinical range (at or below it) or marks an alliance
    concern on the session scale (below it); `reliable_change` is the outcome change that counts
    as reliable (Jacobson & Truax 1991). Made by `Thresholds.of` from the instrument alone, or by
    `FlagRules.thresholds` with an organisation's own values.
    """

    instrument: Instrument
    cutoff: Decimal
    reliable_change: Decimal | None

    def __post_init__(self) -> None:
        if not 0 <= self.cutoff <= self.instrument.max_total:
            raise ValueError(f"cutoff {self.cutoff} is outside 0..{self.instrument.max_total}")
        if self.reliable_change is not None and not self.reliable_change > 0:
            raise ValueError("reliable_change must be positive or null")

    @classmethod
    def of(cls, instrument: Instrument) -> Thresholds:
        return cls(instrument, instrument.cutoff, instrument.reliable_change)

    def is_clinical(self, total: Decimal) -> bool:
        """Outcome: in the clinical range when total <= cutoff. Session: a concern when < cutoff.

        The asymmetry is the published convention (DESIGN.md §2): an adult outcome total of 25.0
        is clinical, while a session total of exactly 36.0 is not an alliance concern.
        """
        if self.instrument.scale is Scale.OUTCOME:
            return total <= self.cutoff
        return total < self.cutoff

    def direction(self, first_total: Decimal, latest_total: Decimal) -> ChangeDirection:
        """Direction of change; the boundary counts.

        DESIGN.md §2: improvement is >= +5, deterioration <= -5 on the adult outcome scale.
        """
        if self.reliable_change is None:
            raise ValueError(f"instrument {self.instrument.code!r} has no reliable-change value")
        change = latest_total - first_total
        if change >= self.reliable_change:
            return ChangeDirection.IMPROVED
        if change <= -self.reliable_change:
            return ChangeDirection.DETERIORATED
        return ChangeDirection.NONE

    def classify(self, first_total: Decimal, latest_total: Decimal) -> EpisodeOutcome:
        """Jacobson-Truax classification of an episode from its first and latest outcome totals.

        Recovered needs both a reliable improvement and a move out of the clinical range:
        crossing the cut-off by a small amount is measurement noise, and a client who started
        above the cut-off cannot recover from a range they were never in.
        """
        direction = self.direction(first_total, latest_total)
        if direction is ChangeDirection.DETERIORATED:
            return EpisodeOutcome.DETERIORATED
        if direction is ChangeDirection.NONE:
            return EpisodeOutcome.UNCHANGED
        if self.is_clinical(first_total) and not self.is_clinical(latest_total):
            return EpisodeOutcome.RECOVERED
        return EpisodeOutcome.IMPROVED


def reliable_change(
    instrument: Instrument, first_total: Decimal, latest_total: Decimal
) -> ChangeDirection:
    """Direction of change by the instrument's own value (`Thresholds.direction`)."""
    return Thresholds.of(instrument).direction(first_total, latest_total)


def classify_episode(
    instrument: Instrument, first_total: Decimal, latest_total: Decimal
) -> EpisodeOutcome:
    """Classification by the instrument's own values (`Thresholds.classify`)."""
    return Thresholds.of(instrument).classify(first_total, latest_total)


def effect_size(
    intake_totals: Sequence[Decimal | float], latest_totals: Sequence[Decimal | float]
) -> float | None:
    """Pre-post effect size for a group of episodes: mean change / SD of the intake totals.

    DESIGN.md §2. The sample SD (n - 1) is used; with fewer than two episodes, or identical
    intakes, there is no spread to divide by, so the answer is None rather than infinity.
    """
    if len(intake_totals) != len(latest_totals):
        raise ValueError(
            f"{len(intake_totals)} intake totals but {len(latest_totals)} latest totals"
        )
    if len(intake_totals) < 2:
        return None
    intakes = [float(total) for total in intake_totals]
    changes = [
        float(latest) - intake for latest, intake in zip(latest_totals, intakes, strict=True)
    ]
    spread = statistics.stdev(intakes)
    if spread == 0:
        return None
    return statistics.fmean(changes) / spread
