from decimal import ROUND_CEILING, Decimal
from itertools import pairwise

import pytest

from alliance_app.measures import (
    DEFAULT_DIMENSIONS,
    BordinDimension,
    PooledSD,
    RuptureRules,
    RuptureStatus,
    Scale,
    default_catalogue,
    explain_rupture,
    pooled_within_sd,
    ruptures_for,
)
from alliance_app.measures.rupture import dimensions_named
from tests.measures.test_flags import rating as flags_rating

CATALOGUE = default_catalogue()
SESSION = CATALOGUE.get("session-adult")
OUTCOME = CATALOGUE.get("outcome-adult")
ONE = Decimal("1.0")

BOND = BordinDimension.BOND
GOALS = BordinDimension.GOALS
TASKS = BordinDimension.TASKS
GENERAL = BordinDimension.GENERAL


def rating(session_number, items, rater="client", instrument=SESSION):
    """A rating from item scores written as text, e.g. "9.9 9.9 9.9 9.8" (total 39.5)."""
    return flags_rating(instrument, session_number, items, rater)


def total(session_number, value, rater="client"):
    """A session rating whose four items add up exactly to `value`: three equal, then the rest."""
    value = Decimal(value)
    third = (value / 4).quantize(Decimal("0.1"), rounding=ROUND_CEILING)
    return rating(session_number, f"{third} {third} {third} {value - 3 * third}", rater)


def series(*totals, rater="client"):
    """One rater's ratings of sessions 1, 2, 3 … with these totals."""
    return [total(number, value, rater) for number, value in enumerate(totals, start=1)]


def statuses(ruptures):
    return [(rupture.session_number, rupture.status) for rupture in ruptures]


# What the issue asks for


def test_it_finds_a_v_shape_above_the_cutoff_and_its_repair():
    (rupture,) = ruptures_for(series("39.5", "39.5", "39.5", "36.5", "39.5"), s=ONE)
    assert rupture.session_number == 4
    assert rupture.total == Decimal("36.5") >= SESSION.cutoff
    assert rupture.baseline == Decimal("39.50")
    assert rupture.drop == Decimal("3.00")
    assert rupture.threshold == Decimal("1.0")
    assert rupture.status is RuptureStatus.REPAIRED
    assert rupture.repaired_at == 5
    assert rupture.sessions_to_repair == 1


def test_it_finds_a_slide_that_never_falls_a_point_in_one_step():
    totals = ["39.5", "38.6", "37.7", "36.8"]
    assert all(Decimal(a) - Decimal(b) < 1 for a, b in pairwise(totals))
    (rupture,) = ruptures_for(series(*totals), s=ONE)
    assert rupture.session_number == 3
    assert rupture.baseline == Decimal("39.05")
    assert rupture.drop == Decimal("1.35")
    # 36.8 is still below the return line, 39.05 - 0.5, and session 6 has not come yet.
    assert rupture.status is RuptureStatus.PENDING
    assert rupture.repaired_at is None


def test_it_finds_no_rupture_in_a_flat_low_series():
    assert ruptures_for(series(*["33.0"] * 6), s=ONE) == []


def test_it_finds_nothing_in_an_empty_series():
    assert ruptures_for([], s=ONE) == []


# Repair, pending and unrepaired


def test_a_drop_that_never_comes_back_is_pending_until_n_sessions_have_passed():
    ratings = series("39.5", "39.5", "39.5", "36.5", "36.5", "36.5", "36.5")
    assert statuses(ruptures_for(ratings[:6], s=ONE)) == [(4, RuptureStatus.PENDING)]
    (rupture,) = ruptures_for(ratings, s=ONE)
    assert rupture.status is RuptureStatus.UNREPAIRED
    assert rupture.repaired_at is None
    assert rupture.sessions_to_repair is None


def test_closing_the_episode_makes_a_pending_rupture_unrepaired():
    ratings = series("39.5", "39.5", "39.5", "36.5", "36.5")
    (rupture,) = ruptures_for(ratings, s=ONE, episode_closed=True)
    assert rupture.status is RuptureStatus.UNREPAIRED


def test_closing_the_episode_keeps_a_repair():
    ratings = series("39.5", "39.5", "39.5", "36.5", "39.5")
    (rupture,) = ruptures_for(ratings, s=ONE, episode_closed=True)
    assert rupture.status is RuptureStatus.REPAIRED


def test_a_return_at_the_last_session_of_the_window_is_a_repair():
    ratings = series("39.5", "39.5", "39.5", "36.5", "37.0", "37.0", "39.5")
    (rupture,) = ruptures_for(ratings, s=ONE)
    assert (rupture.status, rupture.repaired_at, rupture.sessions_to_repair) == (
        RuptureStatus.REPAIRED,
        7,
        3,
    )


def test_the_window_counts_session_numbers_not_ratings():
    ratings = [*series("39.5", "39.5", "39.5", "36.5"), total(8, "39.5")]
    (rupture,) = ruptures_for(ratings, s=ONE)
    assert rupture.status is RuptureStatus.UNREPAIRED


def test_a_rating_after_the_window_is_judged_as_a_possible_new_rupture():
    ratings = [*series("39.5", "39.5", "39.5", "36.5"), total(9, "30.0")]
    first, second = ruptures_for(ratings, s=ONE)
    assert (first.session_number, first.status) == (4, RuptureStatus.UNREPAIRED)
    # Against 39.5, 39.5 and 36.5: the rupture's own low total is part of the new baseline.
    assert (second.session_number, second.baseline, second.drop) == (
        9,
        Decimal("38.50"),
        Decimal("8.50"),
    )


def test_the_repair_window_is_a_setting():
    ratings = series("39.5", "39.5", "39.5", "36.5", "36.5", "39.5")
    rules = RuptureRules(repair_window=1)
    assert statuses(ruptures_for(ratings, s=ONE, rules=rules)) == [(4, RuptureStatus.UNREPAIRED)]


def test_a_further_fall_while_pending_is_the_same_rupture():
    ratings = series("39.5", "39.5", "39.5", "37.0", "35.0")
    (rupture,) = ruptures_for(ratings, s=ONE)
    assert (rupture.session_number, rupture.drop) == (4, Decimal("2.50"))
    assert rupture.status is RuptureStatus.PENDING


def test_after_an_unrepaired_rupture_a_fall_from_the_new_level_is_a_new_rupture():
    ratings = series("39.5", "39.5", "39.5", "36.5", "36.5", "36.5", "36.5", "34.0")
    first, second = ruptures_for(ratings, s=ONE)
    assert (first.session_number, first.status) == (4, RuptureStatus.UNREPAIRED)
    assert (second.session_number, second.baseline, second.drop) == (
        8,
        Decimal("36.50"),
        Decimal("2.50"),
    )
    assert second.status is RuptureStatus.PENDING


# Series: order and raters


def test_ratings_out_of_session_order_give_the_same_ruptures():
    ratings = series("39.5", "39.5", "39.5", "36.5", "36.5", "39.5", "39.5", "37.0")
    shuffled = [ratings[index] for index in (5, 0, 7, 3, 1, 6, 4, 2)]
    expected = ruptures_for(ratings, s=ONE)
    assert statuses(expected) == [(4, RuptureStatus.REPAIRED), (8, RuptureStatus.PENDING)]
    assert ruptures_for(shuffled, s=ONE) == expected
    assert ruptures_for(reversed(ratings), s=ONE) == expected


def test_it_refuses_to_mix_two_raters_series():
    client = series("39.5", "39.5", "39.5", "36.5")
    partner = series("38.0", "38.0", "38.0", "38.0", rater="partner:Sam")
    with pytest.raises(ValueError, match="one rater's series at a time"):
        ruptures_for(client + partner, s=ONE)


def test_each_raters_series_is_judged_on_its_own():
    client = series("39.5", "39.5", "39.5", "36.5")
    partner = series("36.0", "36.5", "37.0", "36.5", rater="partner:Sam")
    assert statuses(ruptures_for(client, s=ONE)) == [(4, RuptureStatus.PENDING)]
    assert ruptures_for(partner, s=ONE) == []


def test_it_refuses_two_ratings_of_one_session():
    with pytest.raises(ValueError, match="more than one rating of one session"):
        ruptures_for([*series("39.5", "39.5", "39.5"), total(3, "36.5")], s=ONE)


def test_it_refuses_outcome_ratings():
    outcome = rating(1, "5.0 5.0 5.0 5.0", instrument=OUTCOME)
    with pytest.raises(ValueError, match="session-scale ratings only"):
        ruptures_for([outcome], s=ONE)


# The threshold: k × s, at least the minimum drop


def test_k_1_finds_a_rupture_that_k_2_does_not():
    ratings = series("39.5", "39.5", "39.5", "38.0")
    s = Decimal("0.8")
    (rupture,) = ruptures_for(ratings, s=s, rules=RuptureRules(k=Decimal("1")))
    assert (rupture.drop, rupture.threshold) == (Decimal("1.50"), Decimal("1.0"))
    assert RuptureRules(k=Decimal("2")).threshold(s) == Decimal("1.6")
    assert ruptures_for(ratings, s=s, rules=RuptureRules(k=Decimal("2"))) == []


def test_the_threshold_is_k_times_s_unless_the_minimum_drop_is_larger():
    assert RuptureRules().threshold(Decimal("1.23")) == Decimal("1.23")
    assert RuptureRules(k=Decimal("2")).threshold(Decimal("1.23")) == Decimal("2.46")
    assert RuptureRules().threshold(Decimal("0.6")) == Decimal("1.0")
    assert RuptureRules(min_drop=Decimal("0")).threshold(Decimal("0.6")) == Decimal("0.6")


def test_it_refuses_a_threshold_of_zero_or_a_negative_s():
    with pytest.raises(ValueError, match="threshold is zero"):
        RuptureRules(min_drop=Decimal("0")).threshold(Decimal("0"))
    with pytest.raises(ValueError, match="standard deviation"):
        ruptures_for(series("39.5"), s=Decimal("-1"))


# Boundaries


def test_a_drop_exactly_at_the_threshold_is_a_rupture():
    (rupture,) = ruptures_for(series("39.5", "39.5", "39.5", "38.5"), s=ONE)
    assert rupture.drop == rupture.threshold


def test_a_drop_a_tenth_short_of_the_threshold_is_not():
    assert ruptures_for(series("39.5", "39.5", "39.5", "38.6"), s=ONE) == []


def test_means_that_binary_floating_point_misses_compare_exactly():
    assert (36.3 + 36.9 + 37.8) / 3 - 36.0 < 1.0  # what floats would conclude
    (rupture,) = ruptures_for(series("36.3", "36.9", "37.8", "36.0"), s=ONE)
    assert (rupture.baseline, rupture.drop) == (Decimal("37.00"), Decimal("1.00"))

    (rupture,) = ruptures_for(series("38.7", "38.4", "38.4", "37.5"), s=ONE)
    assert (rupture.baseline, rupture.drop) == (Decimal("38.50"), Decimal("1.00"))
    assert ruptures_for(series("38.7", "38.4", "38.4", "37.6"), s=ONE) == []


def test_a_two_decimal_mean_meets_a_two_decimal_threshold_exactly():
    assert (39.5 + 38.6) / 2 - 37.7 < 1.35  # what floats would conclude
    (rupture,) = ruptures_for(series("39.5", "38.6", "37.7"), s=Decimal("1.35"))
    assert rupture.drop == rupture.threshold == Decimal("1.35")


def test_a_return_exactly_to_the_tolerance_line_is_a_repair():
    # Baseline 39.5, threshold 1.0: the line is 39.5 - 0.5 × 1.0 = 39.0.
    (rupture,) = ruptures_for(series("39.5", "39.5", "39.5", "36.5", "39.0"), s=ONE)
    assert (rupture.status, rupture.repaired_at) == (RuptureStatus.REPAIRED, 5)


def test_a_return_a_tenth_below_the_tolerance_line_is_not():
    (rupture,) = ruptures_for(series("39.5", "39.5", "39.5", "36.5", "38.9"), s=ONE)
    assert rupture.status is RuptureStatus.PENDING


def test_a_tolerance_of_zero_needs_the_full_baseline_back():
    rules = RuptureRules(repair_tolerance=Decimal("0"))
    ratings = series("39.5", "39.5", "39.5", "36.5", "39.4", "39.5")
    (rupture,) = ruptures_for(ratings, s=ONE, rules=rules)
    assert (rupture.repaired_at, rupture.sessions_to_repair) == (6, 2)


def test_fewer_previous_totals_than_the_minimum_give_no_baseline():
    assert ruptures_for(series("39.5", "30.0"), s=ONE) == []
    rules = RuptureRules(min_previous=1)
    assert statuses(ruptures_for(series("39.5", "30.0"), s=ONE, rules=rules)) == [
        (2, RuptureStatus.PENDING)
    ]


def test_the_baseline_is_the_mean_of_the_three_most_recent_totals():
    (rupture,) = ruptures_for(series("30.0", "39.5", "39.5", "39.5", "38.5"), s=ONE)
    assert (rupture.session_number, rupture.baseline) == (5, Decimal("39.50"))


# Which part of the alliance ruptured

BEFORE = [rating(number, "9.9 9.9 9.9 9.8") for number in (1, 2, 3)]


def test_the_goals_item_falling_most_names_goals():
    (rupture,) = ruptures_for([*BEFORE, rating(4, "9.9 8.0 9.9 8.7")], s=ONE)
    assert rupture.dimensions == (GOALS,)
    assert rupture.item_drops == {
        "relationship": Decimal("0.00"),
        "goals": Decimal("1.90"),
        "approach": Decimal("0.00"),
        "overall": Decimal("1.10"),
    }
    assert explain_rupture(rupture).explain() == (
        "Session rating 36.5, 3.0 below this client's usual 39.5: the goals item fell most."
    )


def test_the_relationship_item_falling_most_names_the_bond():
    (rupture,) = ruptures_for([*BEFORE, rating(4, "8.4 9.9 9.9 9.8")], s=ONE)
    assert rupture.dimensions == (BOND,)
    assert explain_rupture(rupture).explain() == (
        "Session rating 38.0, 1.5 below this client's usual 39.5: the bond item fell most."
    )


def test_two_items_falling_equally_name_both():
    (rupture,) = ruptures_for([*BEFORE, rating(4, "9.9 8.9 8.9 9.8")], s=ONE)
    assert rupture.dimensions == (GOALS, TASKS)
    assert explain_rupture(rupture).explain() == (
        "Session rating 37.5, 2.0 below this client's usual 39.5: "
        "the goals and tasks items fell most, equally."
    )


def test_only_the_overall_item_falling_most_names_general():
    (rupture,) = ruptures_for([*BEFORE, rating(4, "9.9 9.9 9.9 7.8")], s=ONE)
    assert rupture.dimensions == (GENERAL,)
    assert explain_rupture(rupture).explain() == (
        "Session rating 37.5, 2.0 below this client's usual 39.5: "
        "the rating of the session as a whole fell most."
    )


def test_a_slides_explanation_shows_the_hundredths_of_its_mean():
    (rupture,) = ruptures_for(series("39.5", "38.6", "37.7"), s=ONE)
    explanation = explain_rupture(rupture)
    assert explanation.params["baseline"] == "39.05"
    assert explanation.params["drop"] == "1.35"
    assert explanation.params["threshold"] == "1.0"


def test_the_mapping_from_items_to_dimensions_is_a_setting():
    # A scale whose approach item asks about the topics, as "goals and topics" does.
    rules = RuptureRules(dimensions={**DEFAULT_DIMENSIONS, "approach": GOALS})
    (rupture,) = ruptures_for([*BEFORE, rating(4, "9.9 8.9 8.9 9.8")], s=ONE, rules=rules)
    assert rupture.dimensions == (GOALS,)


def test_it_refuses_items_without_a_dimension():
    rules = RuptureRules(dimensions={"relationship": BOND})
    with pytest.raises(ValueError, match=r"no Bordin dimension for item\(s\) \['goals'"):
        ruptures_for(BEFORE, s=ONE, rules=rules)


def test_the_default_mapping_names_every_session_scales_items():
    session_scales = [item for item in CATALOGUE.all() if item.scale is Scale.SESSION]
    assert {instrument.code for instrument in session_scales} >= {"session-adult", "session-child"}
    for instrument in session_scales:
        assert set(instrument.item_keys) == set(DEFAULT_DIMENSIONS)


# The pooled within-client SD


def test_it_pools_within_series_variances_by_their_degrees_of_freedom():
    totals = [
        ["37.0", "39.0"],  # mean 38: squares 1 + 1 = 2, 1 degree of freedom
        ["36.0", "38.0", "40.0"],  # mean 38: 4 + 0 + 4 = 8, 2
        ["38.0", "40.0"],  # mean 39: 1 + 1 = 2, 1
        ["35.0"],  # one total: no spread, left out
    ]
    series_ = [[Decimal(value) for value in values] for values in totals]
    # sqrt((2 + 8 + 2) / (1 + 2 + 1)) = sqrt(3) = 1.7320…
    assert pooled_within_sd(series_, min_series=3, min_degrees_of_freedom=4) == PooledSD(
        value=Decimal("1.73"), series=3, degrees_of_freedom=4, is_fallback=False
    )


def test_it_falls_back_with_too_few_series_or_degrees_of_freedom():
    series_ = [[Decimal("37.0"), Decimal("39.0")], [Decimal("36.0"), Decimal("40.0")]]
    assert pooled_within_sd(series_) == PooledSD(
        value=Decimal("1.0"), series=2, degrees_of_freedom=2, is_fallback=True
    )
    fewer = pooled_within_sd(series_, min_series=2, min_degrees_of_freedom=3)
    assert fewer.is_fallback
    custom = pooled_within_sd([], fallback=Decimal("1.5"))
    assert custom == PooledSD(Decimal("1.5"), 0, 0, is_fallback=True)


def test_the_pooled_sd_refuses_impossible_settings():
    with pytest.raises(ValueError, match="fallback"):
        pooled_within_sd([], fallback=Decimal("0"))
    with pytest.raises(ValueError, match="min_series"):
        pooled_within_sd([], min_series=0)
    with pytest.raises(ValueError, match="min_degrees_of_freedom"):
        pooled_within_sd([], min_degrees_of_freedom=0)


# The rules refuse impossible parameters


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"k": Decimal("0")}, "k must be positive"),
        ({"k": Decimal("-1")}, "k must be positive"),
        ({"baseline_window": 1, "min_previous": 2}, "baseline_window"),
        ({"min_previous": 0}, "min_previous"),
        ({"min_drop": Decimal("-0.1")}, "min_drop"),
        ({"repair_window": 0}, "repair_window"),
        ({"repair_tolerance": Decimal("-0.1")}, "repair_tolerance"),
        ({"repair_tolerance": Decimal("1")}, "repair_tolerance"),
        ({"repair_tolerance": Decimal("1.5")}, "repair_tolerance"),
        ({"dimensions": {"goals": "goals"}}, "BordinDimension"),
    ],
)
def test_rupture_rules_refuse_impossible_parameters(parameters, message):
    with pytest.raises(ValueError, match=message):
        RuptureRules(**parameters)


def test_rupture_rules_default_to_the_documented_values():
    rules = RuptureRules()
    assert (rules.baseline_window, rules.min_previous, rules.repair_window) == (3, 2, 3)
    assert (rules.k, rules.min_drop, rules.repair_tolerance) == (ONE, ONE, Decimal("0.5"))
    assert rules.dimensions == {
        "relationship": BOND,
        "goals": GOALS,
        "approach": TASKS,
        "overall": GENERAL,
    }


def test_a_tie_keeps_its_parts_by_code_and_names_three_in_a_list():
    (rupture,) = ruptures_for([*BEFORE, rating(4, "9.9 8.9 8.9 9.8")], s=ONE)
    assert explain_rupture(rupture).params["dimension_codes"] == "goals tasks"
    assert dimensions_named(["bond", "goals", "tasks"]) == "bond, goals and tasks"
    assert dimensions_named(["general"]) == "overall"
    spanish = {
        "bond": "vínculo",
        "goals": "objetivos",
        "%(parts)s and %(last)s": "%(parts)s y %(last)s",
    }
    assert dimensions_named(["bond", "goals"], spanish.get) == "vínculo y objetivos"
