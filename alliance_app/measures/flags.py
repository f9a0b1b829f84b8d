"""Flags: deterministic signals, computed when a rating is stored, that ask for a conversation.

Rules and defaults are DESIGN.md §3. Each flag explains itself in plain words with the numbers
that triggered it. Messages are marked with `gettext_noop` so Django's makemessages extracts them
for translation while this package stays free of Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import IntEnum, StrEnum
from itertools import pairwise
from types import MappingProxyType

from .change import Thresholds
from .instruments import Instrument, Scale
from .scoring import ONE_DECIMAL


def gettext_noop(message: str) -> str:
    """Mark `message` for extraction; it is translated where it is shown, not here."""
    return message


class FlagKind(StrEnum):
    LOW_ALLIANCE = "low_alliance"
    ALLIANCE_DROP = "alliance_drop"
    LOW_ITEM = "low_item"
    DETERIORATION = "deterioration"
    NO_CHANGE = "no_change"
    RUPTURE = "rupture"
    CLIENT_REPORTED_TENSION = "client_reported_tension"
    NOT_ON_TRACK = "not_on_track"


class Severity(IntEnum):
    """How soon a flag needs attention; a larger number comes first in lists sorted by need."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3


# Deterioration, no change and a course below the expected boundary describe a state that lasts
# from session to session, unlike a low or falling session rating, which is an event
# (`flags_to_raise` says what follows).
LASTING_KINDS = frozenset({FlagKind.DETERIORATION, FlagKind.NO_CHANGE, FlagKind.NOT_ON_TRACK})


# A reliable worsening or a weak alliance predicts drop-out, so they come first in caseload views.
DEFAULT_SEVERITY: Mapping[FlagKind, Severity] = MappingProxyType(
    {
        FlagKind.DETERIORATION: Severity.HIGH,
        FlagKind.LOW_ALLIANCE: Severity.HIGH,
        FlagKind.ALLIANCE_DROP: Severity.MEDIUM,
        FlagKind.NO_CHANGE: Severity.MEDIUM,
        FlagKind.LOW_ITEM: Severity.LOW,
        FlagKind.RUPTURE: Severity.MEDIUM,
        FlagKind.CLIENT_REPORTED_TENSION: Severity.MEDIUM,
        FlagKind.NOT_ON_TRACK: Severity.MEDIUM,
    }
)


@dataclass(frozen=True)
class FlagRules:
    """An organisation's thresholds; None means "use the instrument's own value".

    `severities` may name only the kinds an organisation wants to change; the rest keep
    DEFAULT_SEVERITY. No change is reviewed at the `no_change_sessions` (increasing), then
    every `no_change_every` sessions after the last of them (`_latest_checkpoint`).
    """

    alliance_cutoff: Decimal | None = None
    alliance_drop: Decimal = Decimal("1.0")
    low_item: Decimal = Decimal("9.0")
    reliable_change: Decimal | None = None
    no_change_sessions: tuple[int, ...] = (3, 6)
    no_change_every: int = 3
    severities: Mapping[FlagKind, Severity] = field(
        default_factory=lambda: DEFAULT_SEVERITY, hash=False
    )

    def __post_init__(self) -> None:
        if self.alliance_cutoff is not None and self.alliance_cutoff < 0:
            raise ValueError("alliance_cutoff must not be negative")
        if not self.alliance_drop > 0:
            raise ValueError("alliance_drop must be positive")
        if self.low_item < 0:
            raise ValueError("low_item must not be negative")
        if self.reliable_change is not None and not self.reliable_change > 0:
            raise ValueError("reliable_change must be positive")
        sessions = self.no_change_sessions
        if not sessions or not all(isinstance(n, int) and n >= 1 for n in sessions):
            raise ValueError("no_change_sessions must be session numbers from 1 up")
        if any(later <= earlier for earlier, later in pairwise(sessions)):
            raise ValueError("no_change_sessions must be increasing, each number once")
        if not (isinstance(self.no_change_every, int) and self.no_change_every >= 1):
            raise ValueError("no_change_every must be a number of sessions from 1 up")

    def severity_of(self, kind: FlagKind) -> Severity:
        return self.severities.get(kind, DEFAULT_SEVERITY[kind])

    def thresholds(self, instrument: Instrument) -> Thresholds:
        """What ratings on `instrument` are judged by here: the organisation's alliance cutoff
        (session scales) and reliable-change value (outcome scales) where set, else the
        instrument's own. Every screen, summary, chart and flag asks this one value."""
        cutoff, reliable = instrument.cutoff, instrument.reliable_change
        if instrument.scale is Scale.SESSION and self.alliance_cutoff is not None:
            cutoff = self.alliance_cutoff
        if instrument.scale is Scale.OUTCOME and self.reliable_change is not None:
            reliable = self.reliable_change
        return Thresholds(instrument, cutoff, reliable)


DEFAULT_RULES = FlagRules()


@dataclass(frozen=True)
class RatingPoint:
    """One stored rating as the rules see it.

    `rater` is an opaque key ("client", "partner:Sam"): ratings by different raters are never
    compared or averaged (DESIGN.md §2, multiple raters).
    """

    session_number: int
    rater: str
    instrument: Instrument
    items: tuple[Decimal, ...]
    total: Decimal

    def __post_init__(self) -> None:
        if len(self.items) != len(self.instrument.items):
            raise ValueError(
                f"{len(self.items)} item scores for {len(self.instrument.items)} items "
                f"of {self.instrument.code!r}"
            )


@dataclass(frozen=True)
class Finding:
    """A flag to raise: `message % params` is the explanation, translated before formatting."""

    kind: FlagKind
    severity: Severity
    message: str
    params: dict[str, str]
    item: str = ""  # the item's key, for a low-item finding

    def explain(self) -> str:
        return self.message % self.params


def flags_for(
    new: RatingPoint, history: Sequence[RatingPoint], rules: FlagRules = DEFAULT_RULES
) -> list[Finding]:
    """Every flag the new rating raises, given the client's other ratings in the episode.

    Only the same rater's ratings of the same scale from earlier sessions count: history may
    hold later sessions (a rating entered late, or a re-computation), and those must not act
    as "previous" or "intake".
    """
    earlier = [
        point
        for point in history
        if point.rater == new.rater
        and point.instrument.scale == new.instrument.scale
        and point.session_number < new.session_number
    ]
    if new.instrument.scale == Scale.SESSION:
        return _session_flags(new, earlier, rules)
    return _outcome_flags(new, earlier, rules)


def _session_flags(
    new: RatingPoint, earlier: Sequence[RatingPoint], rules: FlagRules
) -> list[Finding]:
    thresholds = rules.thresholds(new.instrument)
    findings = _low_alliance(new, thresholds, rules) + _alliance_drop(new, earlier, rules)
    # Below the cut-off the whole alliance is already flagged; item flags then add only noise.
    if not thresholds.is_clinical(new.total):
        findings += _low_items(new, rules)
    return findings


def _low_alliance(new: RatingPoint, thresholds: Thresholds, rules: FlagRules) -> list[Finding]:
    if not thresholds.is_clinical(new.total):
        return []
    cutoff = thresholds.cutoff
    message = gettext_noop(
        "Session rating %(total)s, below %(cutoff)s: ask what could be done differently."
    )
    return [_finding(FlagKind.LOW_ALLIANCE, message, rules, total=new.total, cutoff=cutoff)]


def _alliance_drop(
    new: RatingPoint, earlier: Sequence[RatingPoint], rules: FlagRules
) -> list[Finding]:
    if not earlier:
        return []
    previous = max(earlier, key=lambda point: point.session_number)
    drop = previous.total - new.total
    if drop < rules.alliance_drop:
        return []
    message = gettext_noop(
        "Session rating fell %(drop)s points since the previous session rating "
        "(%(previous)s to %(total)s): ask what changed."
    )
    return [
        _finding(
            FlagKind.ALLIANCE_DROP,
            message,
            rules,
            drop=drop,
            previous=previous.total,
            total=new.total,
        )
    ]


def _low_items(new: RatingPoint, rules: FlagRules) -> list[Finding]:
    message = gettext_noop(
        "%(item)s rated %(score)s, below %(threshold)s: ask about this part of the work together."
    )
    return [
        replace(
            _finding(
                FlagKind.LOW_ITEM,
                message,
                rules,
                item=item.label,
                score=score,
                threshold=rules.low_item,
            ),
            item=item.key,
        )
        for item, score in zip(new.instrument.items, new.items, strict=True)
        if score < rules.low_item
    ]


def _outcome_flags(
    new: RatingPoint, earlier: Sequence[RatingPoint], rules: FlagRules
) -> list[Finding]:
    if not earlier:
        return []
    intake = min(earlier, key=lambda point: point.session_number)
    threshold = _reliable_change(new, rules)
    change = new.total - intake.total
    if change <= -threshold:
        message = gettext_noop(
            "Outcome %(total)s is %(change)s points below intake (%(intake)s): "
            "a reliable worsening; review the plan together."
        )
        return [
            _finding(
                FlagKind.DETERIORATION,
                message,
                rules,
                total=new.total,
                change=-change,
                intake=intake.total,
            )
        ]
    if change < threshold and _first_at_checkpoint(new, earlier, rules):
        message = gettext_noop(
            "No reliable improvement by session %(session)s (%(change)s since intake): "
            "review the plan with the client."
        )
        return [
            _finding(
                FlagKind.NO_CHANGE,
                message,
                rules,
                session=str(new.session_number),
                change=f"{change.quantize(ONE_DECIMAL):+}",
            )
        ]
    return []


def _reliable_change(new: RatingPoint, rules: FlagRules) -> Decimal:
    threshold = rules.thresholds(new.instrument).reliable_change
    if threshold is None:
        raise ValueError(
            f"no reliable-change value for {new.instrument.code!r}; set one in FlagRules"
        )
    return threshold


def _first_at_checkpoint(
    new: RatingPoint, earlier: Sequence[RatingPoint], rules: FlagRules
) -> bool:
    """True when `new` is this rater's first outcome rating at or after its latest checkpoint.

    So a skipped session 3 is still reviewed at session 4, and the review fires once per
    checkpoint instead of at every later session. A rating past several checkpoints at once
    (sessions missed) raises one review, for the latest.
    """
    checkpoint = _latest_checkpoint(new.session_number, rules)
    return checkpoint is not None and all(point.session_number < checkpoint for point in earlier)


def _latest_checkpoint(session_number: int, rules: FlagRules) -> int | None:
    """The latest no-change checkpoint at or before `session_number`; None before the first.

    The checkpoints are the organisation's listed sessions, then every `no_change_every`
    sessions after the last of them, so a client who stays flat is raised again for as long as
    the episode lasts. The defaults, 3 and 6 and then every 3, follow PCOMS practice: review
    the plan with a client who has not improved by the third session, consider a change of
    course by the sixth (Miller, Duncan et al.; Duncan & Reese 2015). PCOMS names no review
    after that, while Lambert's OQ system feeds progress back at every session (Lambert 2010);
    going on at the spacing of PCOMS's own two reviews is our choice between the two, so a
    flat course keeps being asked about without a prompt at every rating.
    """
    listed = rules.no_change_sessions
    if session_number < listed[0]:
        return None
    last = listed[-1]
    if session_number <= last:
        return max(checkpoint for checkpoint in listed if checkpoint <= session_number)
    return last + (session_number - last) // rules.no_change_every * rules.no_change_every


def _finding(kind: FlagKind, message: str, rules: FlagRules, **values: Decimal | str) -> Finding:
    params = {
        name: value if isinstance(value, str) else str(value.quantize(ONE_DECIMAL))
        for name, value in values.items()
    }
    return Finding(kind=kind, severity=rules.severity_of(kind), message=message, params=params)


def flags_to_raise(
    findings: Sequence[Finding], *, rater: str, unacknowledged: Iterable[tuple[FlagKind, str]]
) -> list[Finding]:
    """The findings of one rater's new rating that become flags, given the episode's lasting
    flags (deterioration, no change) that nobody has acknowledged yet, as (kind, rater) pairs.

    A lasting state is raised once and not again while that flag waits unseen: a second flag
    about the same state would only stack up in the inbox. Once someone has acknowledged it, a
    rating still in that state raises it anew, so that a state outlasting the conversation is seen
    again (feedback systems signal at every session a client stays off course: Lambert et al.
    2001, Psychother Res 11:49-68). The rule works per rater, so a partner's deterioration is never
    hidden by the client's; and per episode: callers pass only the rating's own episode's flags,
    and closing an episode resolves its flags, so a new episode starts clean.
    """
    waiting = {kind for kind, flagged_rater in unacknowledged if flagged_rater == rater}
    return [
        finding
        for finding in findings
        if finding.kind not in LASTING_KINDS or finding.kind not in waiting
    ]
