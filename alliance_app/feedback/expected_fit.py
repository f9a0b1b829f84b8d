"""Fitting the expected-response band (`measures.expected`) with quantile regression.

Method: for each age band's instrument, statsmodels' `QuantReg` fits two lines on the outcome
totals after the intake of the organisation's closed episodes,

    total ~ intake + ln(session) + intake:ln(session)

once at the median and once at the boundary quantile. Finch, Lambert & Schaalje 2001 fitted the
curve with a mixed model and drew the warning line from a tolerance interval around it; quantile
regression estimates the boundary itself instead, without assuming normal errors of one size:
outcome totals are bounded at 0 and 40, pile up under the ceiling and spread unevenly by intake
and session, where a normal interval from a mixed model's variance would misplace the line. What
it gives up, the within-client correlation, matters for standard errors, which the band does not
use; the quantiles themselves are still estimated consistently (Koenker 2005, Quantile
Regression, ch. 4 on longitudinal data).

A band with at least `min_episodes` closed episodes gets lines of its own. The others, if the
organisation has that many episodes in all and the band at least `min_band_episodes`, share a
pooled fit in which the band shifts the intercept and the slope on ln(session); a band with fewer
gets no line. Validation fits the same way on a seeded 70% of episodes and judges the signal on
the other 30% (`validate`).

No Django here either: `feedback.expected` hands in a frame with one row per outcome rating. It
lives beside that module rather than in `measures`, whose rules import the standard library only.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import numpy as np
import pandas as pd
from statsmodels.regression.quantile_regression import QuantReg

from alliance_app.measures.expected import (
    FIRST_SESSION,
    BandLines,
    EpisodeCourse,
    ExpectedResponse,
    Line,
    calibration,
    signal_accuracy,
)

COLUMNS = ("episode", "band", "session", "total")
MIN_RATINGS = 3  # an episode with an intake and two more outcome ratings shows a course
MIN_BAND_EPISODES = 20
# The lines reach as far as the sessions with this many ratings behind them.
MIN_RATINGS_AT_SESSION = 30
MAX_SESSION_CAP = 40
VALIDATION_SHARE = 0.7
VALIDATION_SEED = 20011
SIGNAL_SESSIONS = (3, 4)


@dataclass(frozen=True)
class Prepared:
    """Each later rating with its episode's intake, and the episodes counted per band."""

    rows: pd.DataFrame  # episode, band, session, total, intake, log_session
    episodes: pd.DataFrame  # episode, band, intake, ratings


def prepare(frame: pd.DataFrame) -> Prepared:
    """Keep episodes with at least MIN_RATINGS outcome ratings; the first is the intake."""
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"the frame lacks {', '.join(sorted(missing))}")
    data = frame.loc[:, list(COLUMNS)].sort_values(["episode", "session"], kind="stable")
    data = data.drop_duplicates(["episode", "session"], keep="first")
    counts = data.groupby("episode")["session"].transform("size")
    data = data[counts >= MIN_RATINGS]
    first = data.groupby("episode").head(1)
    episodes = first.rename(columns={"total": "intake"})[["episode", "band", "intake"]]
    episodes = episodes.assign(
        ratings=data.groupby("episode")["session"].size().reindex(episodes["episode"]).to_numpy()
    ).reset_index(drop=True)
    later = data[data.groupby("episode").cumcount() > 0]
    rows = later.merge(episodes[["episode", "intake"]], on="episode")
    rows = rows.assign(
        total=rows["total"].astype(float),
        intake=rows["intake"].astype(float),
        log_session=np.log(rows["session"].astype(float)),
    )
    return Prepared(rows=rows.reset_index(drop=True), episodes=episodes)


@dataclass(frozen=True)
class FitResult:
    """A fit, or why there is none (`model` None and `reason` set)."""

    model: ExpectedResponse | None
    episodes: int
    band_episodes: dict[str, int]
    reason: str = ""
    omitted: dict[str, str] = field(default_factory=dict)


def _design(rows: pd.DataFrame, bands: list[str] | None = None) -> np.ndarray:
    intake, log_s = rows["intake"].to_numpy(), rows["log_session"].to_numpy()
    columns = [np.ones(len(rows)), intake, log_s, intake * log_s]
    for band in bands or []:
        is_band = (rows["band"] == band).to_numpy(dtype=float)
        columns += [is_band, is_band * log_s]
    return np.column_stack(columns)


def _quantreg(design: np.ndarray, y: np.ndarray, quantile: float) -> np.ndarray:
    return np.asarray(QuantReg(y, design).fit(q=quantile, max_iter=5000).params)


def _line(params: np.ndarray, shift: tuple[float, float] = (0.0, 0.0)) -> Line:
    return Line(
        intercept=float(params[0] + shift[0]),
        intake=float(params[1]),
        log_session=float(params[2] + shift[1]),
        intake_log_session=float(params[3]),
    )


def fit(
    frame: pd.DataFrame | Prepared,
    *,
    quantile: float,
    min_episodes: int,
    min_band_episodes: int = MIN_BAND_EPISODES,
    progress: Callable[[str], None] | None = None,
) -> FitResult:
    """Fit the median course and the boundary on `frame` (one row per outcome rating of a
    closed episode: episode, band, session, total)."""
    prepared = frame if isinstance(frame, Prepared) else prepare(frame)
    rows, episodes = prepared.rows, prepared.episodes
    band_episodes = {str(b): int(n) for b, n in episodes.groupby("band").size().items()}
    total = len(episodes)
    if total < min_episodes:
        return FitResult(
            None,
            total,
            band_episodes,
            reason=f"The band needs {min_episodes} closed episodes with at least {MIN_RATINGS} "
            f"outcome ratings; this clinic has {total}.",
        )
    per_session = rows.groupby("session").size()
    enough = per_session[per_session >= MIN_RATINGS_AT_SESSION].index
    reach = [s for s in range(FIRST_SESSION, MAX_SESSION_CAP + 1) if s in set(enough)]
    # The lines run from session 2 without a gap, as far as each session has enough ratings.
    max_session = FIRST_SESSION
    while max_session + 1 in reach:
        max_session += 1
    intakes = episodes.groupby("band")["intake"].agg(["min", "max"])
    lines: dict[str, BandLines] = {}
    omitted: dict[str, str] = {}
    own = [b for b, n in band_episodes.items() if n >= min_episodes]
    for band in own:
        if progress:
            progress(band)
        band_rows = rows[rows["band"] == band]
        design, y = _design(band_rows), band_rows["total"].to_numpy()
        lines[band] = BandLines(
            median=_line(_quantreg(design, y, 0.5)),
            boundary=_line(_quantreg(design, y, quantile)),
            episodes=band_episodes[band],
            intakes=(float(intakes.loc[band, "min"]), float(intakes.loc[band, "max"])),
        )
    pooled = [b for b, n in band_episodes.items() if b not in own and n >= min_band_episodes]
    for band, n in band_episodes.items():
        if band not in own and band not in pooled:
            omitted[band] = f"{n} closed episodes; a band needs {min_band_episodes}."
    if pooled:
        if progress:
            progress("pooled: " + ", ".join(pooled))
        # The band with most episodes is the reference; each other band shifts the intercept
        # and the slope on ln(session).
        ranked = sorted(band_episodes, key=lambda b: (-band_episodes[b], b))
        reference, shifted = ranked[0], ranked[1:]
        design, y = _design(rows, shifted), rows["total"].to_numpy()
        fitted = {q: _quantreg(design, y, q) for q in (0.5, quantile)}
        for band in pooled:
            shift = dict.fromkeys(fitted, (0.0, 0.0))
            if band != reference:
                at = 4 + 2 * shifted.index(band)
                shift = {q: (fitted[q][at], fitted[q][at + 1]) for q in fitted}
            lines[band] = BandLines(
                median=_line(fitted[0.5], shift[0.5]),
                boundary=_line(fitted[quantile], shift[quantile]),
                episodes=band_episodes[band],
                intakes=(float(intakes.loc[band, "min"]), float(intakes.loc[band, "max"])),
                pooled=True,
            )
    model = ExpectedResponse(
        quantile=quantile,
        max_session=max_session,
        bands=MappingProxyType(dict(sorted(lines.items()))),
        episodes=total,
    )
    return FitResult(model, total, band_episodes, omitted=omitted)


def courses(prepared: Prepared, reliable_change: dict[str, Decimal]) -> list[EpisodeCourse]:
    """The episodes as the validation reads them."""
    later: dict[object, list[tuple[int, Decimal]]] = {}
    for episode, session, total in prepared.rows[["episode", "session", "total"]].itertuples(
        index=False
    ):
        later.setdefault(episode, []).append((int(session), _decimal(total)))
    return [
        EpisodeCourse(
            band=band,
            intake=_decimal(intake),
            later=tuple(later.get(episode, ())),
            reliable_change=reliable_change[band],
        )
        for episode, band, intake in prepared.episodes[["episode", "band", "intake"]].itertuples(
            index=False
        )
    ]


def _decimal(value: float) -> Decimal:
    return Decimal(repr(round(float(value), 1)))


def _subset(prepared: Prepared, episodes: np.ndarray) -> Prepared:
    keep = set(episodes.tolist())
    return Prepared(
        rows=prepared.rows[prepared.rows["episode"].isin(keep)],
        episodes=prepared.episodes[prepared.episodes["episode"].isin(keep)],
    )


def validate(
    prepared: Prepared,
    *,
    quantile: float,
    min_episodes: int,
    reliable_change: dict[str, Decimal],
    seed: int = VALIDATION_SEED,
    share: float = VALIDATION_SHARE,
    min_band_episodes: int = MIN_BAND_EPISODES,
) -> dict:
    """Fit on a seeded `share` of the episodes and judge the signal on the rest.

    The thresholds for a band of its own and for any band at all shrink with the share, so the
    held-out fit is built the way the full one is. On the held-out episodes: sensitivity,
    specificity, positive predictive value and the share flagged of a signal by session 3 and
    by session 4 (and at any session) for an episode that ended deteriorated or unchanged, and
    the calibration by session.
    """
    ids = np.sort(prepared.episodes["episode"].to_numpy())
    shuffled = np.random.default_rng(seed).permutation(ids)
    cut = math.floor(Fraction(str(share)) * len(ids))  # exactly, rounded down
    train, test = _subset(prepared, shuffled[:cut]), _subset(prepared, shuffled[cut:])
    result = fit(
        train,
        quantile=quantile,
        min_episodes=max(1, math.floor(min_episodes * share)),
        min_band_episodes=max(1, math.floor(min_band_episodes * share)),
    )
    held_out = courses(test, reliable_change)
    found = {
        "seed": seed,
        "share": share,
        "fit_episodes": len(train.episodes),
        "held_out_episodes": len(test.episodes),
        "signal": {},
        "calibration": [],
    }
    if result.model is None:
        found["reason"] = result.reason
        return found
    for by in (*SIGNAL_SESSIONS, None):
        key = f"by_session_{by}" if by else "any_session"
        found["signal"][key] = signal_accuracy(held_out, result.model, by_session=by).as_dict()
    found["calibration"] = [point.as_dict() for point in calibration(held_out, result.model)]
    return found


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_memory_mb: float  # the process's peak resident memory, whatever ran before included


def measured(call: Callable[[], object]) -> tuple[object, Measured]:
    """Run `call`, timing it, with the process's peak resident set size after it (Linux reports
    ru_maxrss in KiB)."""
    started = time.perf_counter()
    value = call()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return value, Measured(time.perf_counter() - started, peak)
