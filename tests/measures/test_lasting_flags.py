"""A lasting state is flagged once per rater while its flag waits unacknowledged."""

from alliance_app.measures import Finding, FlagKind, Severity, flags_to_raise


def finding(kind: FlagKind) -> Finding:
    return Finding(kind=kind, severity=Severity.HIGH, message="m", params={})


DETERIORATION = finding(FlagKind.DETERIORATION)
NO_CHANGE = finding(FlagKind.NO_CHANGE)
LOW_ALLIANCE = finding(FlagKind.LOW_ALLIANCE)


def test_nothing_waiting_raises_everything():
    found = [DETERIORATION, LOW_ALLIANCE]
    assert flags_to_raise(found, rater="client", unacknowledged=[]) == found


def test_a_waiting_lasting_flag_of_the_same_rater_holds_back_its_kind_only():
    waiting = [(FlagKind.DETERIORATION, "client")]
    found = [DETERIORATION, NO_CHANGE]
    assert flags_to_raise(found, rater="client", unacknowledged=waiting) == [NO_CHANGE]


def test_another_raters_waiting_flag_hides_nothing():
    waiting = [(FlagKind.DETERIORATION, "client")]
    assert flags_to_raise([DETERIORATION], rater="partner:Sam", unacknowledged=waiting) == [
        DETERIORATION
    ]
    # A label makes another rater: "partner:Sam" is not "partner:Alex".
    waiting = [(FlagKind.DETERIORATION, "partner:Alex")]
    assert flags_to_raise([DETERIORATION], rater="partner:Sam", unacknowledged=waiting) == [
        DETERIORATION
    ]


def test_events_are_never_held_back():
    waiting = [(FlagKind.LOW_ALLIANCE, "client")]
    assert flags_to_raise([LOW_ALLIANCE], rater="client", unacknowledged=waiting) == [LOW_ALLIANCE]


def test_findings_keep_their_order_and_values():
    found = [NO_CHANGE, LOW_ALLIANCE, DETERIORATION]
    kept = flags_to_raise(found, rater="client", unacknowledged=[(FlagKind.NO_CHANGE, "client")])
    assert kept == [LOW_ALLIANCE, DETERIORATION]
    assert kept[1] is DETERIORATION
