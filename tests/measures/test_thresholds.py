"""One set of thresholds: an instrument's own values, or an organisation's where it sets them."""

from decimal import Decimal

import pytest

from alliance_app.measures import (
    ChangeDirection,
    EpisodeOutcome,
    FlagKind,
    FlagRules,
    RatingPoint,
    Thresholds,
    default_catalogue,
    flags_for,
)

CATALOGUE = default_catalogue()
SESSION_ADULT = CATALOGUE.get("session-adult")
OUTCOME_ADULT = CATALOGUE.get("outcome-adult")
D = Decimal


def test_without_rules_the_instrument_decides():
    assert Thresholds.of(SESSION_ADULT) == Thresholds(SESSION_ADULT, D("36.0"), None)
    assert FlagRules().thresholds(SESSION_ADULT) == Thresholds.of(SESSION_ADULT)
    assert FlagRules().thresholds(OUTCOME_ADULT) == Thresholds(OUTCOME_ADULT, D("25.0"), D("5.0"))


def test_an_organisations_alliance_cutoff_moves_the_session_concern_only():
    rules = FlagRules(alliance_cutoff=D("38.0"))
    session = rules.thresholds(SESSION_ADULT)
    assert session.cutoff == D("38.0")
    assert session.is_clinical(D("37.9"))
    assert not session.is_clinical(D("38.0"))
    # The outcome scale's clinical range is the instrument's own.
    assert rules.thresholds(OUTCOME_ADULT).cutoff == D("25.0")


def test_an_organisations_reliable_change_moves_outcome_judgements():
    outcome = FlagRules(reliable_change=D("6.0")).thresholds(OUTCOME_ADULT)
    assert outcome.direction(D("20.0"), D("26.0")) is ChangeDirection.IMPROVED
    assert outcome.direction(D("20.0"), D("25.9")) is ChangeDirection.NONE
    assert outcome.direction(D("20.0"), D("14.0")) is ChangeDirection.DETERIORATED
    assert outcome.direction(D("20.0"), D("14.1")) is ChangeDirection.NONE
    # 20.0 → 25.5 crosses the cut-off of 25.0: recovered by 5.0, not by 6.0.
    assert Thresholds.of(OUTCOME_ADULT).classify(D("20.0"), D("25.5")) is EpisodeOutcome.RECOVERED
    assert outcome.classify(D("20.0"), D("25.5")) is EpisodeOutcome.UNCHANGED
    assert outcome.classify(D("19.0"), D("25.1")) is EpisodeOutcome.RECOVERED
    # The session scale has no reliable-change value to move.
    assert FlagRules(reliable_change=D("6.0")).thresholds(SESSION_ADULT).reliable_change is None


@pytest.mark.parametrize(
    ("cutoff", "reliable"), [(D("40.1"), None), (D("-0.1"), None), (D("30.0"), D("0.0"))]
)
def test_impossible_thresholds_are_refused(cutoff, reliable):
    with pytest.raises(ValueError):
        Thresholds(OUTCOME_ADULT, cutoff, reliable)


@pytest.mark.parametrize("total", ["37.9", "38.0", "35.9", "36.0"])
def test_the_low_alliance_flag_says_what_the_thresholds_say(total):
    rules = FlagRules(alliance_cutoff=D("38.0"))
    score = D(total)
    items = (score / 4,) * 4
    point = RatingPoint(1, "client", SESSION_ADULT, items, score)
    flagged = FlagKind.LOW_ALLIANCE in {finding.kind for finding in flags_for(point, [], rules)}
    assert flagged is rules.thresholds(SESSION_ADULT).is_clinical(score)
    assert flagged is (score < D("38.0"))


def test_the_deterioration_flag_uses_the_organisations_reliable_change():
    rules = FlagRules(reliable_change=D("6.0"))
    intake = RatingPoint(1, "client", OUTCOME_ADULT, (D("5.0"),) * 4, D("20.0"))

    def kinds(total: str) -> set[FlagKind]:
        latest = RatingPoint(2, "client", OUTCOME_ADULT, (D(total) / 4,) * 4, D(total))
        return {finding.kind for finding in flags_for(latest, [intake], rules)}

    assert FlagKind.DETERIORATION in kinds("14.0")
    assert FlagKind.DETERIORATION not in kinds("14.1")
