import ast
import dataclasses
import inspect
from decimal import Decimal

import pytest

from alliance_app.measures import (
    FlagKind,
    FlagRules,
    RatingPoint,
    Severity,
    TensionAnswer,
    default_catalogue,
    flags_for,
    rupture_finding,
    ruptures_for,
    tension_finding,
)
from alliance_app.measures import expected as expected_module
from alliance_app.measures import flags as flags_module
from alliance_app.measures import rupture as rupture_module
from alliance_app.measures import tension as tension_module
from alliance_app.measures.expected import SCHEMA, ExpectedResponse, not_on_track_finding

FLAT = {"intercept": 20.0, "intake": 0.0, "log_session": 0.0, "intake_log_session": 0.0}
EXPECTED = {
    "schema": SCHEMA,
    "quantile": 0.1,
    "max_session": 10,
    "bands": {"adult": {"median": FLAT, "boundary": FLAT}},
}

CATALOGUE = default_catalogue()
SESSION = CATALOGUE.get("session-adult")
OUTCOME = CATALOGUE.get("outcome-adult")


def rating(instrument, session_number, items, rater="client"):
    """A rating from item scores written as text, e.g. "9.5 9.5 9.0 9.0" (total 37.0)."""
    scores = tuple(Decimal(score) for score in items.split())
    return RatingPoint(
        session_number=session_number,
        rater=rater,
        instrument=instrument,
        items=scores,
        total=sum(scores, Decimal("0.0")),
    )


def outcome(session_number, total, rater="client"):
    """An outcome rating whose four item scores add up exactly to `total`."""
    quarter = (Decimal(total) / 4).quantize(Decimal("0.1"), rounding="ROUND_DOWN")
    last = Decimal(total) - 3 * quarter
    return rating(OUTCOME, session_number, f"{quarter} {quarter} {quarter} {last}", rater)


def kinds(findings):
    return [finding.kind for finding in findings]


# Session scale: low alliance


def test_it_flags_a_session_total_of_35_9_as_low_alliance():
    (finding,) = flags_for(rating(SESSION, 1, "9.0 9.0 9.0 8.9"), [])
    assert finding.kind is FlagKind.LOW_ALLIANCE
    assert finding.severity is Severity.HIGH
    assert finding.params == {"total": "35.9", "cutoff": "36.0"}
    assert finding.explain() == (
        "Session rating 35.9, below 36.0: ask what could be done differently."
    )


def test_it_does_not_flag_a_session_total_of_exactly_36():
    assert flags_for(rating(SESSION, 1, "9.0 9.0 9.0 9.0"), []) == []


def test_it_uses_the_organisations_alliance_cutoff():
    rules = FlagRules(alliance_cutoff=Decimal("38.0"))
    findings = flags_for(rating(SESSION, 1, "9.5 9.5 9.5 9.4"), [], rules)
    assert kinds(findings) == [FlagKind.LOW_ALLIANCE]
    assert findings[0].params == {"total": "37.9", "cutoff": "38.0"}


def test_it_uses_the_child_session_scales_own_cutoff():
    child = CATALOGUE.get("session-child")
    assert kinds(flags_for(rating(child, 1, "9.0 9.0 9.0 8.9"), [])) == [FlagKind.LOW_ALLIANCE]


# Session scale: drop since the previous session rating


def test_it_flags_a_drop_of_exactly_one_point():
    history = [rating(SESSION, 1, "9.5 9.5 9.5 9.5")]
    (finding,) = flags_for(rating(SESSION, 2, "9.5 9.5 9.0 9.0"), history)
    assert finding.kind is FlagKind.ALLIANCE_DROP
    assert finding.severity is Severity.MEDIUM
    assert finding.params == {"drop": "1.0", "previous": "38.0", "total": "37.0"}
    assert finding.explain() == (
        "Session rating fell 1.0 points since the previous session rating (38.0 to 37.0): "
        "ask what changed."
    )


def test_it_does_not_flag_a_drop_of_0_9():
    history = [rating(SESSION, 1, "9.5 9.5 9.5 9.5")]
    assert flags_for(rating(SESSION, 2, "9.5 9.5 9.1 9.0"), history) == []


def test_it_does_not_flag_a_drop_without_an_earlier_session_rating():
    # The session rating of session 1 is missing; an outcome rating is not a substitute.
    history = [outcome(1, "39.0"), outcome(2, "38.0")]
    assert flags_for(rating(SESSION, 2, "9.0 9.0 9.0 9.0"), history) == []


def test_it_compares_with_the_most_recent_earlier_session_rating():
    # Out of order on purpose, and session 3 was never rated: session 2 is the previous one.
    history = [rating(SESSION, 2, "10.0 10.0 10.0 9.0"), rating(SESSION, 1, "9.0 9.0 9.0 9.5")]
    (finding,) = flags_for(rating(SESSION, 4, "9.5 9.5 9.5 9.5"), history)
    assert finding.kind is FlagKind.ALLIANCE_DROP
    assert finding.params == {"drop": "1.0", "previous": "39.0", "total": "38.0"}


def test_it_raises_both_low_alliance_and_drop_when_both_apply():
    history = [rating(SESSION, 1, "9.5 9.5 9.5 9.5")]
    findings = flags_for(rating(SESSION, 2, "8.0 8.0 8.0 8.0"), history)
    assert kinds(findings) == [FlagKind.LOW_ALLIANCE, FlagKind.ALLIANCE_DROP]


def test_it_uses_the_organisations_drop_threshold():
    history = [rating(SESSION, 1, "9.5 9.5 9.5 9.5")]
    rules = FlagRules(alliance_drop=Decimal("2.0"))
    assert flags_for(rating(SESSION, 2, "9.5 9.5 9.0 9.0"), history, rules) == []


# Session scale: low item


def test_it_flags_an_item_of_8_9_when_the_total_is_fine():
    (finding,) = flags_for(rating(SESSION, 1, "10.0 10.0 8.9 9.0"), [])
    assert finding.kind is FlagKind.LOW_ITEM
    assert finding.severity is Severity.LOW
    assert finding.params == {"item": "How we worked", "score": "8.9", "threshold": "9.0"}
    assert finding.item == "approach"
    assert finding.explain() == (
        "How we worked rated 8.9, below 9.0: ask about this part of the work together."
    )


def test_it_does_not_flag_an_item_of_exactly_9():
    assert flags_for(rating(SESSION, 1, "10.0 10.0 9.0 9.0"), []) == []


def test_it_raises_one_finding_per_low_item():
    findings = flags_for(rating(SESSION, 1, "8.5 10.0 10.0 8.8"), [])
    assert [(f.kind, f.params["item"], f.params["score"]) for f in findings] == [
        (FlagKind.LOW_ITEM, "Being listened to", "8.5"),
        (FlagKind.LOW_ITEM, "The session as a whole", "8.8"),
    ]


def test_it_flags_a_low_item_at_a_total_of_exactly_36():
    findings = flags_for(rating(SESSION, 1, "9.1 9.1 9.0 8.8"), [])
    assert kinds(findings) == [FlagKind.LOW_ITEM]


def test_it_leaves_items_to_the_low_alliance_flag_below_the_cutoff():
    findings = flags_for(rating(SESSION, 1, "8.0 8.0 8.0 8.0"), [])
    assert kinds(findings) == [FlagKind.LOW_ALLIANCE]


# Outcome scale


def test_it_raises_no_outcome_flags_at_the_first_session():
    assert flags_for(outcome(1, "5.0"), []) == []


def test_it_raises_no_outcome_flags_for_a_raters_first_outcome_rating():
    # A partner joining at session 3 has no intake of their own yet.
    history = [outcome(1, "30.0"), outcome(2, "31.0")]
    assert flags_for(outcome(3, "10.0", rater="partner:Sam"), history) == []


def test_it_flags_deterioration_of_exactly_five_points():
    (finding,) = flags_for(outcome(2, "15.0"), [outcome(1, "20.0")])
    assert finding.kind is FlagKind.DETERIORATION
    assert finding.severity is Severity.HIGH
    assert finding.params == {"total": "15.0", "change": "5.0", "intake": "20.0"}
    assert finding.explain() == (
        "Outcome 15.0 is 5.0 points below intake (20.0): a reliable worsening; "
        "review the plan together."
    )


def test_it_does_not_flag_a_worsening_of_4_9():
    assert flags_for(outcome(2, "15.1"), [outcome(1, "20.0")]) == []


def test_it_measures_change_from_the_earliest_rating_not_the_previous_one():
    # From intake (20.0) the change is +5.0; from session 2 (30.0) it would be -5.0.
    history = [outcome(2, "30.0"), outcome(1, "20.0"), outcome(3, "24.0")]
    assert flags_for(outcome(4, "25.0"), history) == []


def test_it_uses_the_organisations_reliable_change():
    rules = FlagRules(reliable_change=Decimal("7.0"))
    assert flags_for(outcome(2, "15.0"), [outcome(1, "20.0")], rules) == []
    (finding,) = flags_for(outcome(2, "13.0"), [outcome(1, "20.0")], rules)
    assert finding.kind is FlagKind.DETERIORATION


def test_it_flags_no_change_at_session_3():
    history = [outcome(1, "20.0"), outcome(2, "22.0")]
    (finding,) = flags_for(outcome(3, "24.9"), history)
    assert finding.kind is FlagKind.NO_CHANGE
    assert finding.severity is Severity.MEDIUM
    assert finding.params == {"session": "3", "change": "+4.9"}
    assert finding.explain() == (
        "No reliable improvement by session 3 (+4.9 since intake): review the plan with the client."
    )


def test_it_does_not_flag_no_change_after_an_improvement_of_exactly_five():
    history = [outcome(1, "20.0"), outcome(2, "22.0")]
    assert flags_for(outcome(3, "25.0"), history) == []


def test_it_shows_a_small_worsening_in_the_no_change_message():
    (finding,) = flags_for(outcome(3, "18.0"), [outcome(1, "20.0")])
    assert finding.params == {"session": "3", "change": "-2.0"}


def test_it_flags_no_change_again_at_session_6():
    history = [outcome(n, "20.0") for n in range(1, 6)]
    assert kinds(flags_for(outcome(6, "21.0"), history)) == [FlagKind.NO_CHANGE]


@pytest.mark.parametrize("session_number", [2, 4, 5, 7, 8])
def test_it_does_not_repeat_no_change_between_checkpoints(session_number):
    history = [outcome(n, "20.0") for n in range(1, session_number)]
    assert flags_for(outcome(session_number, "21.0"), history) == []


def test_it_checks_at_session_4_when_session_3_was_skipped():
    history = [outcome(1, "20.0"), outcome(2, "20.0")]
    (finding,) = flags_for(outcome(4, "21.0"), history)
    assert finding.kind is FlagKind.NO_CHANGE
    assert finding.params["session"] == "4"
    # ... and once only: session 5 follows a rating already past the checkpoint.
    assert flags_for(outcome(5, "21.0"), [*history, outcome(4, "21.0")]) == []


def test_it_raises_one_no_change_when_one_rating_passes_two_checkpoints():
    history = [outcome(1, "20.0"), outcome(2, "20.0")]
    assert kinds(flags_for(outcome(7, "21.0"), history)) == [FlagKind.NO_CHANGE]


def test_it_reports_deterioration_instead_of_no_change():
    history = [outcome(1, "20.0"), outcome(2, "18.0")]
    assert kinds(flags_for(outcome(3, "15.0"), history)) == [FlagKind.DETERIORATION]


def test_it_uses_the_organisations_checkpoints():
    rules = FlagRules(no_change_sessions=(4,))
    history = [outcome(n, "20.0") for n in range(1, 4)]
    assert flags_for(outcome(3, "21.0"), history[:2], rules) == []
    assert kinds(flags_for(outcome(4, "21.0"), history, rules)) == [FlagKind.NO_CHANGE]


def flat(up_to):
    """A client whose outcome stays at 20.0 from session 1 to `up_to`."""
    return [outcome(n, "20.0") for n in range(1, up_to + 1)]


@pytest.mark.parametrize("session_number", [9, 12, 15, 30])
def test_it_keeps_flagging_a_flat_client_every_three_sessions_after_session_6(session_number):
    (finding,) = flags_for(outcome(session_number, "24.9"), flat(session_number - 1))
    assert finding.kind is FlagKind.NO_CHANGE
    assert finding.params == {"session": str(session_number), "change": "+4.9"}


@pytest.mark.parametrize("session_number", [10, 11, 13, 14])
def test_it_does_not_flag_a_flat_client_between_the_repeated_checkpoints(session_number):
    assert flags_for(outcome(session_number, "20.0"), flat(session_number - 1)) == []


def test_it_does_not_flag_a_client_who_improved_reliably_by_session_12():
    assert flags_for(outcome(12, "25.0"), flat(11)) == []


def test_it_reviews_a_skipped_session_12_at_session_13_and_once_only():
    history = flat(11)
    (finding,) = flags_for(outcome(13, "20.0"), history)
    assert finding.params["session"] == "13"
    assert flags_for(outcome(14, "20.0"), [*history, outcome(13, "20.0")]) == []
    assert kinds(flags_for(outcome(15, "20.0"), [*history, outcome(13, "20.0")])) == [
        FlagKind.NO_CHANGE
    ]


def test_it_raises_one_no_change_when_one_rating_passes_two_repeated_checkpoints():
    (finding,) = flags_for(outcome(13, "20.0"), flat(8))
    assert finding.params["session"] == "13"


def test_it_repeats_no_change_at_the_organisations_interval():
    rules = FlagRules(no_change_sessions=(4, 10), no_change_every=5)
    flagged = [n for n in range(2, 22) if flags_for(outcome(n, "20.0"), flat(n - 1), rules)]
    assert flagged == [4, 10, 15, 20]


def test_it_can_review_a_flat_client_at_every_session_after_the_listed_ones():
    rules = FlagRules(no_change_sessions=(3,), no_change_every=1)
    flagged = [n for n in range(2, 7) if flags_for(outcome(n, "20.0"), flat(n - 1), rules)]
    assert flagged == [3, 4, 5, 6]


def test_it_needs_a_reliable_change_value_for_outcome_flags():
    without = dataclasses.replace(OUTCOME, reliable_change=None)
    point = rating(without, 2, "5.0 5.0 5.0 5.0")
    with pytest.raises(ValueError, match="no reliable-change value"):
        flags_for(point, [rating(without, 1, "5.0 5.0 5.0 5.0")])
    rules = FlagRules(reliable_change=Decimal("5.0"))
    intake = rating(without, 1, "6.3 6.3 6.2 6.2")
    assert kinds(flags_for(point, [intake], rules)) == [FlagKind.DETERIORATION]


# History: raters and time


def test_it_never_compares_one_raters_scores_with_anothers():
    partner_history = [
        outcome(1, "10.0", rater="partner:Sam"),
        rating(SESSION, 1, "10.0 10.0 10.0 10.0", rater="partner:Sam"),
    ]
    # Against the partner's intake (10.0) the client's 24.0 would be an improvement; against
    # the client's own (30.0) it is a reliable worsening.
    history = [*partner_history, outcome(1, "30.0")]
    assert kinds(flags_for(outcome(2, "24.0"), history)) == [FlagKind.DETERIORATION]
    # The partner's 40.0 session rating is no "previous" for the client's 38.5.
    assert flags_for(rating(SESSION, 2, "9.5 9.5 9.5 10.0"), partner_history) == []


def test_it_flags_a_partners_low_score_for_the_partner_alone():
    client_history = [outcome(1, "30.0"), rating(SESSION, 1, "9.0 9.0 9.0 9.0")]
    history = [*client_history, outcome(1, "20.0", rater="partner:Sam")]
    (finding,) = flags_for(outcome(2, "14.0", rater="partner:Sam"), history)
    assert finding.params["intake"] == "20.0"
    assert flags_for(outcome(2, "30.0"), history) == []


def test_it_ignores_history_from_later_sessions():
    # A later (or same-session) rating must not act as "previous" or "intake".
    session_history = [rating(SESSION, 1, "9.5 9.5 9.5 9.0"), rating(SESSION, 3, "10 10 10 10")]
    assert flags_for(rating(SESSION, 2, "9.5 9.5 9.5 9.0"), session_history) == []
    outcome_history = [outcome(3, "35.0"), outcome(4, "36.0"), outcome(3, "10.0", rater="x")]
    assert flags_for(outcome(3, "20.0"), outcome_history) == []
    assert flags_for(outcome(2, "20.0"), outcome_history) == []


# Rules and messages


def test_it_lets_an_organisation_change_a_severity():
    rules = FlagRules(severities={FlagKind.LOW_ITEM: Severity.MEDIUM})
    assert rules.severity_of(FlagKind.LOW_ITEM) is Severity.MEDIUM
    assert rules.severity_of(FlagKind.DETERIORATION) is Severity.HIGH
    (finding,) = flags_for(rating(SESSION, 1, "10.0 10.0 8.9 9.0"), [], rules)
    assert finding.severity is Severity.MEDIUM


@pytest.mark.parametrize(
    "rules",
    [
        {"alliance_drop": Decimal("0.0")},
        {"alliance_cutoff": Decimal("-1.0")},
        {"low_item": Decimal("-0.1")},
        {"reliable_change": Decimal("0.0")},
        {"no_change_sessions": (0,)},
        {"no_change_sessions": ()},
        {"no_change_sessions": (6, 3)},
        {"no_change_sessions": (3, 3)},
        {"no_change_every": 0},
    ],
)
def test_it_rejects_impossible_rules(rules):
    with pytest.raises(ValueError):
        FlagRules(**rules)


def test_it_rejects_a_rating_point_with_the_wrong_number_of_items():
    with pytest.raises(ValueError, match="3 item scores for 4 items"):
        RatingPoint(1, "client", SESSION, (Decimal("9.0"),) * 3, Decimal("27.0"))


def _marked_messages(module=flags_module):
    """Every string literal passed to gettext_noop in a module, as makemessages would see it."""
    tree = ast.parse(inspect.getsource(module))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "gettext_noop"
        and isinstance(node.args[0], ast.Constant)
    }


def test_it_marks_every_message_for_translation():
    [rupture] = ruptures_for(
        [rating(SESSION, n, items) for n, items in enumerate(["9.9 9.9 9.9 9.8"] * 2, 1)]
        + [rating(SESSION, 3, "9.0 9.0 9.0 9.5")],
        s=Decimal("1.0"),
    )
    findings = [
        *flags_for(rating(SESSION, 2, "8.0 8.0 8.0 8.0"), [rating(SESSION, 1, "9.5 9.5 9.5 9.5")]),
        *flags_for(rating(SESSION, 1, "10.0 10.0 8.9 9.0"), []),
        *flags_for(outcome(2, "15.0"), [outcome(1, "20.0")]),
        *flags_for(outcome(3, "20.0"), [outcome(1, "20.0")]),
        rupture_finding(rupture),
        tension_finding(TensionAnswer(tension=True, resolution=3)),
        not_on_track_finding(
            total=Decimal("10.0"),
            session=3,
            intake=Decimal("15.0"),
            band="adult",
            model=ExpectedResponse.from_json(EXPECTED),
            rules=FlagRules(),
        ),
    ]
    assert {finding.kind for finding in findings} == set(FlagKind)
    # One message per kind in the flags module; the rupture, tension and expected-response
    # modules word their own.
    assert len(_marked_messages()) == len(FlagKind) - 3
    marked = (
        _marked_messages()
        | _marked_messages(rupture_module)
        | _marked_messages(tension_module)
        | _marked_messages(expected_module)
    )
    for finding in findings:
        assert finding.message in marked
        assert finding.explain() and "%(" not in finding.explain()
