import math
from decimal import Decimal

import pytest

from alliance_app.measures import (
    ChangeDirection,
    EpisodeOutcome,
    classify_episode,
    cutoff_a,
    cutoff_b,
    cutoff_c,
    default_catalogue,
    effect_size,
    reliable_change,
    reliable_change_index,
    reliable_change_threshold,
)

CATALOGUE = default_catalogue()
ADULT = CATALOGUE.get("outcome-adult")
CHILD = CATALOGUE.get("outcome-child")


def test_it_computes_the_reliable_change_index_of_a_worked_example():
    # S_diff = sqrt(2) * 7.0 * sqrt(1 - 0.80) = 1.414214 * 7.0 * 0.447214 = 4.427189
    # RC = (30 - 20) / 4.427189 = 2.258770 (> 1.96: a reliable improvement)
    assert reliable_change_index(20, 30, sd_pre=7.0, reliability=0.80) == pytest.approx(
        2.258770, abs=1e-6
    )
    assert reliable_change_index(30, 20, sd_pre=7.0, reliability=0.80) == pytest.approx(
        -2.258770, abs=1e-6
    )


def test_it_computes_the_smallest_reliable_change():
    # 1.96 * 4.427189 = 8.677290: with these norms a change of 8.7 points is needed.
    assert reliable_change_threshold(7.0, 0.80) == pytest.approx(8.677290, abs=1e-6)
    # With z = 1 the threshold is S_diff itself.
    assert reliable_change_threshold(7.0, 0.80, z=1) == pytest.approx(4.427189, abs=1e-6)


def test_it_gives_no_error_term_for_a_perfectly_unreliable_zero():
    # r = 0 is allowed: S_diff = sqrt(2) * sd.
    assert reliable_change_index(0, 10, sd_pre=5.0, reliability=0) == pytest.approx(
        10 / (math.sqrt(2) * 5.0)
    )


@pytest.mark.parametrize(
    ("sd", "reliability"), [(0, 0.8), (-1, 0.8), (7.0, 1.0), (7.0, -0.1), (7.0, 1.5)]
)
def test_it_rejects_impossible_norms(sd, reliability):
    with pytest.raises(ValueError):
        reliable_change_index(20, 30, sd_pre=sd, reliability=reliability)
    with pytest.raises(ValueError):
        reliable_change_threshold(sd, reliability)


def test_it_rejects_a_non_positive_z():
    with pytest.raises(ValueError):
        reliable_change_threshold(7.0, 0.8, z=0)


def test_it_computes_the_three_jacobson_truax_cutoffs():
    # Clinical m1 = 19.0, s1 = 7.0; functional m0 = 30.0, s0 = 6.0.
    # a = 19 + 2 * 7 = 33.0; b = 30 - 2 * 6 = 18.0
    # c = (6 * 19 + 7 * 30) / (6 + 7) = (114 + 210) / 13 = 324 / 13 = 24.923077
    assert cutoff_a(19.0, 7.0) == pytest.approx(33.0)
    assert cutoff_b(30.0, 6.0) == pytest.approx(18.0)
    assert cutoff_c(19.0, 7.0, 30.0, 6.0) == pytest.approx(24.923077, abs=1e-6)


def test_it_turns_cutoffs_around_when_lower_scores_are_better():
    # A symptom scale: clinical m1 = 30, s1 = 7; functional m0 = 10, s0 = 6.
    # a = 30 - 2 * 7 = 16.0; b = 10 + 2 * 6 = 22.0; c = (6 * 30 + 7 * 10) / 13 = 250 / 13
    assert cutoff_a(30.0, 7.0, higher_is_better=False) == pytest.approx(16.0)
    assert cutoff_b(10.0, 6.0, higher_is_better=False) == pytest.approx(22.0)
    assert cutoff_c(30.0, 7.0, 10.0, 6.0) == pytest.approx(250 / 13)


def test_it_puts_cutoff_c_midway_when_the_spreads_are_equal():
    assert cutoff_c(20.0, 5.0, 30.0, 5.0) == pytest.approx(25.0)


def test_it_rejects_a_zero_spread_in_cutoffs():
    with pytest.raises(ValueError):
        cutoff_c(19.0, 0.0, 30.0, 0.0)
    with pytest.raises(ValueError):
        cutoff_a(19.0, 0.0)
    with pytest.raises(ValueError):
        cutoff_b(30.0, -6.0)


@pytest.mark.parametrize(
    ("first", "latest", "direction"),
    [
        ("20.0", "25.0", ChangeDirection.IMPROVED),
        ("20.0", "24.9", ChangeDirection.NONE),
        ("20.0", "15.0", ChangeDirection.DETERIORATED),
        ("20.0", "15.1", ChangeDirection.NONE),
        ("20.0", "20.0", ChangeDirection.NONE),
    ],
)
def test_it_counts_a_change_of_exactly_five_as_reliable(first, latest, direction):
    assert reliable_change(ADULT, Decimal(first), Decimal(latest)) is direction


def test_it_refuses_reliable_change_on_a_scale_without_a_value():
    with pytest.raises(ValueError, match="session-adult"):
        reliable_change(CATALOGUE.get("session-adult"), Decimal("30.0"), Decimal("38.0"))


@pytest.mark.parametrize(
    ("instrument", "first", "latest", "outcome"),
    [
        # From the clinical range to above the cut-off, reliably.
        (ADULT, "18.0", "26.0", EpisodeOutcome.RECOVERED),
        (ADULT, "20.1", "25.1", EpisodeOutcome.RECOVERED),
        # +5.0 but 25.0 is still in the clinical range.
        (ADULT, "20.0", "25.0", EpisodeOutcome.IMPROVED),
        # Reliably better but still clinical.
        (ADULT, "10.0", "20.0", EpisodeOutcome.IMPROVED),
        # Improved, but started above the cut-off: nothing to recover from.
        (ADULT, "26.0", "31.0", EpisodeOutcome.IMPROVED),
        # Crossed the cut-off without a reliable change: +4.9.
        (ADULT, "22.0", "26.9", EpisodeOutcome.UNCHANGED),
        (ADULT, "30.0", "25.0", EpisodeOutcome.DETERIORATED),
        (ADULT, "30.0", "25.1", EpisodeOutcome.UNCHANGED),
        # The same totals mean recovery for a child (cut-off 32) but not for an adult (25).
        (CHILD, "27.0", "32.1", EpisodeOutcome.RECOVERED),
        (ADULT, "27.0", "32.1", EpisodeOutcome.IMPROVED),
    ],
)
def test_it_classifies_an_episode(instrument, first, latest, outcome):
    assert classify_episode(instrument, Decimal(first), Decimal(latest)) is outcome


def test_it_computes_an_effect_size_by_hand():
    # Changes: 20-10 = 10, 25-20 = 5, 35-30 = 5; mean change = 20 / 3 = 6.6667.
    # Intakes 10, 20, 30: mean 20, squared deviations 100 + 0 + 100 = 200,
    # sample variance 200 / (3 - 1) = 100, SD = 10. Effect size = 6.6667 / 10 = 0.6667.
    intakes = [Decimal("10.0"), Decimal("20.0"), Decimal("30.0")]
    latest = [Decimal("20.0"), Decimal("25.0"), Decimal("35.0")]
    assert effect_size(intakes, latest) == pytest.approx(2 / 3)


def test_it_gives_a_negative_effect_size_for_a_group_that_got_worse():
    # Changes -4 and -2: mean -3. Intakes 12 and 16: SD = sqrt(((-2)^2 + 2^2) / 1) = 2.8284.
    assert effect_size([12.0, Decimal("16.0")], [8.0, Decimal("14.0")]) == pytest.approx(
        -3 / math.sqrt(8)
    )


@pytest.mark.parametrize(
    ("intakes", "latest"),
    [([], []), ([20.0], [30.0]), ([20.0, 20.0, 20.0], [25.0, 30.0, 35.0])],
)
def test_it_gives_no_effect_size_without_spread(intakes, latest):
    assert effect_size(intakes, latest) is None


def test_it_refuses_unpaired_totals():
    with pytest.raises(ValueError, match="2 intake totals but 3 latest totals"):
        effect_size([20.0, 25.0], [30.0, 31.0, 32.0])
