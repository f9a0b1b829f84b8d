"""Fitting the expected-response band (`measures.expected_fit`) on small hand-made data sets,
checked against statsmodels' formula interface fitting the same frame independently."""

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from alliance_app.feedback.expected_fit import fit, prepare, validate

D = Decimal


def episodes(count: int, *, band: str = "adult", start: int = 0, seed: int = 1) -> pd.DataFrame:
    """`count` episodes of 5 outcome ratings: intakes spread over 8-30, improving on log(session)
    by an amount that varies between clients, with noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for episode in range(start, start + count):
        intake = round(float(rng.uniform(8, 30)), 1)
        gain = float(rng.normal(3.0, 2.0))
        rows.append((episode, band, 1, intake))
        for session in range(2, 6):
            total = intake + gain * np.log(session) + float(rng.normal(0, 1.5))
            rows.append((episode, band, session, round(min(40.0, max(0.0, total)), 1)))
    return pd.DataFrame(rows, columns=["episode", "band", "session", "total"])


def later_with_intake(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows the fit reads, built here without its code: each rating after the first,
    with the episode's first total as the intake."""
    frame = frame.sort_values(["episode", "session"])
    intake = frame.groupby("episode")["total"].transform("first")
    first = frame.groupby("episode").cumcount() == 0
    return frame.assign(intake=intake)[~first]


@pytest.mark.parametrize("quantile", [0.5, 0.1])
def test_a_band_of_its_own_matches_the_formula_interface(quantile):
    frame = episodes(120)
    result = fit(frame, quantile=0.1, min_episodes=100)
    lines = result.model.bands["adult"]
    line = lines.median if quantile == 0.5 else lines.boundary
    independent = (
        smf.quantreg("total ~ intake * np.log(session)", later_with_intake(frame))
        .fit(q=quantile, max_iter=5000)
        .params
    )
    assert line.intercept == pytest.approx(independent["Intercept"], abs=1e-6)
    assert line.intake == pytest.approx(independent["intake"], abs=1e-6)
    assert line.log_session == pytest.approx(independent["np.log(session)"], abs=1e-6)
    assert line.intake_log_session == pytest.approx(independent["intake:np.log(session)"], abs=1e-6)
    assert not lines.pooled
    assert lines.episodes == 120


def test_a_small_band_is_pooled_with_the_band_as_a_covariate():
    frame = pd.concat([episodes(120, seed=1), episodes(30, band="child", start=1000, seed=2)])
    result = fit(frame, quantile=0.1, min_episodes=100)
    child = result.model.bands["child"]
    assert child.pooled and not result.model.bands["adult"].pooled
    independent = (
        smf.quantreg(
            "total ~ intake * np.log(session) + C(band, Treatment('adult')) "
            "+ C(band, Treatment('adult')):np.log(session)",
            later_with_intake(frame),
        )
        .fit(q=0.5, max_iter=5000)
        .params
    )
    shift = "C(band, Treatment('adult'))[T.child]"
    assert child.median.intercept == pytest.approx(
        independent["Intercept"] + independent[shift], abs=1e-6
    )
    assert child.median.log_session == pytest.approx(
        independent["np.log(session)"] + independent[f"{shift}:np.log(session)"], abs=1e-6
    )
    assert child.median.intake == pytest.approx(independent["intake"], abs=1e-6)


def test_too_few_episodes_no_band_and_the_reason():
    frame = episodes(99)
    result = fit(frame, quantile=0.1, min_episodes=100)
    assert result.model is None
    assert result.episodes == 99
    assert result.reason == (
        "The band needs 100 closed episodes with at least 3 outcome ratings; this clinic has 99."
    )
    assert fit(episodes(100), quantile=0.1, min_episodes=100).model is not None


def test_an_episode_needs_three_outcome_ratings_to_count():
    frame = episodes(100)
    two = frame[(frame["episode"] != 0) | (frame["session"] <= 2)]
    assert fit(two, quantile=0.1, min_episodes=100).episodes == 99


def test_a_band_with_too_few_episodes_gets_no_line():
    frame = pd.concat([episodes(120), episodes(19, band="child", start=1000, seed=3)])
    result = fit(frame, quantile=0.1, min_episodes=100)
    assert "child" not in result.model.bands
    assert result.omitted == {"child": "19 closed episodes; a band needs 20."}


def test_the_lines_reach_the_last_session_with_enough_ratings():
    frame = episodes(120)
    # Session 5 keeps 29 ratings: the lines stop at session 4.
    keep = (frame["session"] < 5) | (frame["episode"] < 29)
    assert fit(frame[keep], quantile=0.1, min_episodes=100).model.max_session == 4
    assert fit(frame, quantile=0.1, min_episodes=100).model.max_session == 5


def test_the_intakes_seen_are_kept():
    frame = episodes(120)
    lines = fit(frame, quantile=0.1, min_episodes=100).model.bands["adult"]
    firsts = frame[frame["session"] == 1]["total"]
    assert lines.intakes == (firsts.min(), firsts.max())


def test_validation_splits_by_episode_with_a_seed():
    prepared = prepare(episodes(200))
    changes = {"adult": D("5.0"), "adolescent": D("5.0"), "child": D("5.0")}
    first = validate(prepared, quantile=0.1, min_episodes=100, reliable_change=changes)
    again = validate(prepared, quantile=0.1, min_episodes=100, reliable_change=changes)
    assert first == again
    assert (first["fit_episodes"], first["held_out_episodes"]) == (140, 60)
    by_three = first["signal"]["by_session_3"]
    assert (
        sum(by_three[cell] for cell in ("flagged_bad", "flagged_good", "missed_bad", "quiet_good"))
        == 60
    )
    assert [point["session"] for point in first["calibration"]] == [2, 3, 4, 5]
    assert sum(point["ratings"] for point in first["calibration"]) == 60 * 4
    other = validate(prepared, quantile=0.1, min_episodes=100, reliable_change=changes, seed=7)
    assert other["signal"] != first["signal"]
