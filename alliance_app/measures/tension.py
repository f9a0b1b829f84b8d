"""The client's own word about tension in the session (DESIGN.md §5).

After the session scale the client may answer one more question, in our own words: was there a
moment today of unease, of not being heard, or of being at odds with the therapist (yes / no); and
on yes, how far it was sorted out, from 1 (not at all) to 5 (completely). The pair is modelled on
the rupture items of the Post-Session Questionnaire (Muran, Safran, Gorman, Samstag,
Eubanks-Carter & Winston 2009, Psychotherapy 46:233-248), which ask whether a rupture occurred and
how far it was resolved; it is not their wording. Session scores cluster near the ceiling, and
clients report tension that their scores hide, so a yes is flagged whatever the total.

A yes raises a `client_reported_tension` flag at the organisation's severity for the kind, one
step higher when the client says it was sorted out at most `unresolved_at` (default 2: "not at
all" or "a little"): tension left standing at the end of a session is the likelier to end the
therapy (Muran et al. 2009 found unresolved ruptures went with drop-out).
"""

from __future__ import annotations

from dataclasses import dataclass

from .flags import DEFAULT_RULES, Finding, FlagKind, FlagRules, Severity, gettext_noop

RESOLUTION_MIN = 1
RESOLUTION_MAX = 5


@dataclass(frozen=True)
class TensionAnswer:
    """The client's answer: whether there was tension, and on yes how far it was sorted out."""

    tension: bool
    resolution: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tension, bool):
            raise ValueError("tension is yes or no")
        if self.tension:
            if not (
                isinstance(self.resolution, int)
                and not isinstance(self.resolution, bool)
                and RESOLUTION_MIN <= self.resolution <= RESOLUTION_MAX
            ):
                raise ValueError(
                    f"a yes needs a resolution from {RESOLUTION_MIN} to {RESOLUTION_MAX}"
                )
        elif self.resolution is not None:
            raise ValueError("a no has no resolution")


@dataclass(frozen=True)
class TensionRules:
    """`unresolved_at`: a resolution at or below it raises the flag one severity higher."""

    unresolved_at: int = 2

    def __post_init__(self) -> None:
        if not (
            isinstance(self.unresolved_at, int)
            and RESOLUTION_MIN - 1 <= self.unresolved_at <= RESOLUTION_MAX
        ):
            raise ValueError(
                f"unresolved_at must be from {RESOLUTION_MIN - 1} (never) to {RESOLUTION_MAX}"
            )


DEFAULT_TENSION_RULES = TensionRules()

_MESSAGES = {
    1: gettext_noop(
        "The client felt tension with you in this session and says it was not sorted out."
    ),
    2: gettext_noop(
        "The client felt tension with you in this session and says it was sorted out a little."
    ),
    3: gettext_noop(
        "The client felt tension with you in this session and says it was partly sorted out."
    ),
    4: gettext_noop(
        "The client felt tension with you in this session and says it was mostly sorted out."
    ),
    5: gettext_noop(
        "The client felt tension with you in this session and says it was completely sorted out."
    ),
}


def tension_finding(
    answer: TensionAnswer,
    flag_rules: FlagRules = DEFAULT_RULES,
    rules: TensionRules = DEFAULT_TENSION_RULES,
) -> Finding | None:
    """The flag a tension answer raises: none for a no."""
    if not answer.tension:
        return None
    assert answer.resolution is not None  # a yes always has one (TensionAnswer)
    severity = flag_rules.severity_of(FlagKind.CLIENT_REPORTED_TENSION)
    if answer.resolution <= rules.unresolved_at:
        severity = Severity(min(severity + 1, Severity.HIGH))
    return Finding(
        kind=FlagKind.CLIENT_REPORTED_TENSION,
        severity=severity,
        message=_MESSAGES[answer.resolution],
        params={"resolution": str(answer.resolution)},
    )
