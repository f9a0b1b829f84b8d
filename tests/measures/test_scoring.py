from decimal import Decimal

import pytest

from alliance_app.measures import (
    MISSING,
    NOT_A_NUMBER,
    OUT_OF_RANGE,
    TOO_PRECISE,
    UNKNOWN_ITEM,
    RatingInvalid,
    ScoredRating,
    ScoreError,
    Thresholds,
    default_catalogue,
    parse_item_score,
    score_rating,
)

OUTCOME_ADULT = default_catalogue().get("outcome-adult")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0", "10.0"),
        (10, "10.0"),
        ("0.0", "0.0"),
        (0, "0.0"),
        ("5.50", "5.5"),
        (" 7.3 ", "7.3"),
        (7.3, "7.3"),
        (Decimal("4.20"), "4.2"),
        ("-0.0", "0.0"),
        (".5", "0.5"),
        ("6", "6.0"),
    ],
)
def test_it_accepts_a_score_in_range_with_one_decimal(value, expected):
    score = parse_item_score(value)
    assert isinstance(score, Decimal)
    assert str(score) == expected


def test_it_accepts_every_millimetre_of_the_line_exactly():
    for tenths in range(101):
        text = f"{tenths // 10}.{tenths % 10}"
        assert parse_item_score(text) == Decimal(tenths) / 10
        assert parse_item_score(float(text)) == Decimal(text)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("10.1", OUT_OF_RANGE),
        (10.1, OUT_OF_RANGE),
        ("-0.1", OUT_OF_RANGE),
        (11, OUT_OF_RANGE),
        ("5.55", TOO_PRECISE),
        (5.55, TOO_PRECISE),
        (Decimal("0.05"), TOO_PRECISE),
        ("abc", NOT_A_NUMBER),
        ("5,5", NOT_A_NUMBER),
        ("1e1", NOT_A_NUMBER),
        ("nan", NOT_A_NUMBER),
        ("NaN", NOT_A_NUMBER),
        (float("nan"), NOT_A_NUMBER),
        (Decimal("NaN"), NOT_A_NUMBER),
        ("inf", NOT_A_NUMBER),
        ("Infinity", NOT_A_NUMBER),
        (float("inf"), NOT_A_NUMBER),
        (float("-inf"), NOT_A_NUMBER),
        (Decimal("Infinity"), NOT_A_NUMBER),
        (True, NOT_A_NUMBER),
        (False, NOT_A_NUMBER),
        ([5], NOT_A_NUMBER),
        (None, MISSING),
        ("", MISSING),
        ("   ", MISSING),
    ],
)
def test_it_rejects_a_bad_score_with_its_code(value, code):
    with pytest.raises(ScoreError) as excinfo:
        parse_item_score(value)
    assert excinfo.value.code == code
    assert isinstance(excinfo.value, ValueError)


def test_it_uses_the_item_max_it_is_given():
    assert parse_item_score("12.5", item_max=Decimal("20.0")) == Decimal("12.5")
    with pytest.raises(ScoreError) as excinfo:
        parse_item_score("20.1", item_max=Decimal("20.0"))
    assert excinfo.value.code == OUT_OF_RANGE


def test_it_scores_items_in_instrument_order_with_an_exact_total():
    rating = score_rating(
        OUTCOME_ADULT, {"overall": "0.4", "social": 0.3, "relationships": "0.2", "personal": 0.1}
    )
    # As floats 0.1 + 0.2 + 0.3 + 0.4 is 1.0000000000000002; as Decimals it is exactly 1.0.
    assert rating == ScoredRating(
        instrument_code="outcome-adult",
        items=(Decimal("0.1"), Decimal("0.2"), Decimal("0.3"), Decimal("0.4")),
        total=Decimal("1.0"),
        item_keys=("personal", "relationships", "social", "overall"),
    )
    assert str(rating.total) == "1.0"


def test_it_gives_the_scores_by_item_key():
    rating = score_rating(
        OUTCOME_ADULT, {"personal": "6.2", "relationships": "7", "social": "5.5", "overall": "6.3"}
    )
    assert rating.as_dict() == {
        "personal": Decimal("6.2"),
        "relationships": Decimal("7.0"),
        "social": Decimal("5.5"),
        "overall": Decimal("6.3"),
    }
    assert rating.total == Decimal("25.0")
    assert Thresholds.of(OUTCOME_ADULT).is_clinical(rating.total)


def test_it_reports_every_problem_at_once():
    values = {"personal": "10.1", "relationships": "", "social": "abc", "bogus": "5.0"}
    with pytest.raises(RatingInvalid) as excinfo:
        score_rating(OUTCOME_ADULT, values)
    assert excinfo.value.errors == {
        "personal": OUT_OF_RANGE,
        "relationships": MISSING,
        "social": NOT_A_NUMBER,
        "overall": MISSING,
        "bogus": UNKNOWN_ITEM,
    }


def test_it_rejects_an_unknown_item_even_when_every_item_is_valid():
    values = {"personal": "5.0", "relationships": "5.0", "social": "5.0", "overall": "5.0"}
    with pytest.raises(RatingInvalid) as excinfo:
        score_rating(OUTCOME_ADULT, {**values, "mood": "5.0"})
    assert excinfo.value.errors == {"mood": UNKNOWN_ITEM}
    assert "mood: unknown_item" in str(excinfo.value)


def test_it_rejects_an_empty_rating_item_by_item():
    with pytest.raises(RatingInvalid) as excinfo:
        score_rating(OUTCOME_ADULT, {})
    assert excinfo.value.errors == dict.fromkeys(OUTCOME_ADULT.item_keys, MISSING)


def test_it_refuses_a_scored_rating_whose_total_is_not_the_sum():
    with pytest.raises(ValueError, match="sum"):
        ScoredRating(
            instrument_code="outcome-adult",
            items=(Decimal("1.0"),),
            total=Decimal("2.0"),
            item_keys=("personal",),
        )
