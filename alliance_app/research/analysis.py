"""Does a better session rating predict the next session's outcome within clients? (DESIGN.md §5)

The data are session pairs from the client's own ratings (rater "client", no label): in session t
of an episode, the session-scale total and the outcome total, and the outcome total of the next
session of the same episode with an outcome rating. The model is a linear mixed model with a
random intercept per episode (statsmodels `MixedLM`, REML):

    next outcome ~ alliance_within + alliance_between + outcome_now + session_number

where the session total is split by person-mean centring (Falkenström et al. 2017): its
deviation from the episode's mean over its pairs (within) and that mean, centred on the mean of
the pairs (between). The within-client effect is the question: in a session rated better than
usual *for this client*, does the next outcome come out higher? The between-client effect mixes in
everything that differs between clients. Session number detrends: both scales tend to rise over
treatment, and without it a within-client association would partly be the common trend
(Falkenström et al. 2017). Adjusting for the current outcome, a lagged dependent variable, biases
the within estimate somewhat in short series (the same source); the page says so.

Flückiger et al. 2018 (295 studies, > 30,000 patients) found alliance and outcome correlated at
r = .278 [.256, .299] face to face, mostly a between-patient, whole-treatment correlation. The
within-client effect is put beside it per within-client SD of alliance, and as a standardised
coefficient, comparable in size but not the same quantity.

Loading reads the ratings in chunks of episodes and runs in `manage.py fit_alliance_outcome`,
never in a request: fitting on a large organisation takes seconds to minutes. `fit(frame)` is
pure (a data frame in, a `FitResult` out), so it is tested on simulated data with a known effect.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from alliance_app.accounts.models import Organization, Team
from alliance_app.clinic.models import Episode
from alliance_app.feedback.models import Rater, Rating
from alliance_app.measures import Scale

from .models import AllianceOutcomeFit, AnalysisStatus

# Fewer than this and the model says nothing worth reading (a random intercept needs clients, the
# within effect needs pairs); the page says how far short the data fall.
MIN_CLIENTS = 30
MIN_PAIRS = 200
CHUNK_EPISODES = 2000

# Flückiger et al. 2018, face to face: r = .278 [.256, .299] over 295 studies.
FLUCKIGER_R = 0.278
FLUCKIGER_CI = (0.256, 0.299)
FLUCKIGER_STUDIES = 295

PAIR_COLUMNS = ("episode", "team", "session_number", "alliance", "outcome_now", "next_outcome")
# The model's fixed effects, in the order shown.
TERMS = ("alliance_within", "alliance_between", "outcome_now", "session_number")
INTERCEPT = "const"
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Term:
    name: str
    estimate: float
    se: float
    low: float
    high: float
    p: float


@dataclass(frozen=True)
class FitResult:
    status: str
    message: str
    clients: int
    pairs: int
    terms: list[Term] = field(default_factory=list)
    # Outcome points per within-client SD of alliance, with its interval.
    within_sd: float | None = None
    per_sd: tuple[float, float, float] | None = None
    # The within effect in within-client SDs of both scales: the size of a correlation.
    standardised: float | None = None
    client_variance: float | None = None
    residual_variance: float | None = None
    notes: list[str] = field(default_factory=list)
    min_clients: int = MIN_CLIENTS
    min_pairs: int = MIN_PAIRS

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def term(self, name: str) -> Term:
        return next(term for term in self.terms if term.name == name)


def prepare(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs with the session total split into the episode's mean over its pairs
    (`alliance_mean`), the deviation from it (`alliance_within`) and the mean centred on the
    mean of all pairs (`alliance_between`)."""
    frame = pairs.copy()
    frame["alliance_mean"] = frame.groupby("episode")["alliance"].transform("mean")
    frame["alliance_within"] = frame["alliance"] - frame["alliance_mean"]
    frame["alliance_between"] = frame["alliance_mean"] - frame["alliance"].mean()
    return frame


def fit(
    pairs: pd.DataFrame, *, min_clients: int = MIN_CLIENTS, min_pairs: int = MIN_PAIRS
) -> FitResult:
    """Fit the model to session pairs (columns: episode, session_number, alliance, outcome_now,
    next_outcome). Too few clients or pairs: status too_few; a fit that does not converge or
    leaves no usable standard errors: status failed, with what went wrong."""
    clients, count = int(pairs["episode"].nunique()), len(pairs)
    if clients < min_clients or count < min_pairs:
        return FitResult(
            status=AnalysisStatus.TOO_FEW,
            message=(
                f"{clients} clients and {count} session pairs: the model needs at least "
                f"{min_clients} clients and {min_pairs} pairs."
            ),
            clients=clients,
            pairs=count,
            min_clients=min_clients,
            min_pairs=min_pairs,
        )
    frame = prepare(pairs)
    within_sd = float(frame["alliance_within"].std(ddof=1))
    # Totals come in tenths: a spread below this is rounding error, not variation.
    if not within_sd > 1e-6:
        return FitResult(
            status=AnalysisStatus.TOO_FEW,
            message="No client's session totals vary: there is no within-client effect to fit.",
            clients=clients,
            pairs=count,
            min_clients=min_clients,
            min_pairs=min_pairs,
        )
    # Imported here: statsmodels takes a second to import, and only the command fits.
    import statsmodels.api as sm
    from statsmodels.regression.mixed_linear_model import MixedLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    exog = sm.add_constant(frame[list(TERMS)].astype(float), prepend=True, has_constant="add")
    model = MixedLM(frame["next_outcome"].astype(float), exog, groups=frame["episode"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            result = model.fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as error:
            return _failed(clients, count, f"The fit stopped: {error}")
    notes = sorted({str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)})
    if not result.converged:
        return _failed(clients, count, "The fit did not converge. " + " ".join(notes))
    se = result.bse_fe
    if not np.all(np.isfinite(se)):
        return _failed(clients, count, "The fit left no usable standard errors. " + " ".join(notes))
    terms = [
        Term(
            name=name,
            estimate=float(result.fe_params[name]),
            se=float(se[name]),
            low=float(result.fe_params[name] - Z_95 * se[name]),
            high=float(result.fe_params[name] + Z_95 * se[name]),
            p=float(result.pvalues[name]),
        )
        for name in (INTERCEPT, *TERMS)
    ]
    within = next(term for term in terms if term.name == "alliance_within")
    outcome_within = frame["next_outcome"] - frame.groupby("episode")["next_outcome"].transform(
        "mean"
    )
    outcome_sd = float(outcome_within.std(ddof=1))
    return FitResult(
        status=AnalysisStatus.FITTED,
        message="",
        clients=clients,
        pairs=count,
        terms=terms,
        within_sd=within_sd,
        per_sd=(within.estimate * within_sd, within.low * within_sd, within.high * within_sd),
        standardised=within.estimate * within_sd / outcome_sd if outcome_sd > 0 else None,
        client_variance=float(result.cov_re.iloc[0, 0]),
        residual_variance=float(result.scale),
        notes=notes,
        min_clients=min_clients,
        min_pairs=min_pairs,
    )


def _failed(clients: int, count: int, message: str) -> FitResult:
    return FitResult(
        status=AnalysisStatus.FAILED, message=message.strip(), clients=clients, pairs=count
    )


def session_pairs(
    organization: Organization,
    *,
    chunk: int = CHUNK_EPISODES,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Every session pair of the organisation's episodes, with the team of the episode's
    therapist, read from the client's own ratings `chunk` episodes at a time. `progress` is
    told how many episodes each chunk held."""
    episodes = list(
        Episode.objects.filter(client__organization=organization)
        .order_by("pk")
        .values_list("pk", "therapist__membership__team_id")
    )
    teams = dict(episodes)
    rows: list[tuple] = []
    for start in range(0, len(episodes), chunk):
        ids = [pk for pk, _team in episodes[start : start + chunk]]
        ratings = (
            Rating.objects.filter(session__episode_id__in=ids, rater=Rater.CLIENT, rater_label="")
            .order_by("session__episode_id", "session__number")
            .values_list("session__episode_id", "session__number", "scale", "total")
        )
        rows.extend(
            (episode, teams[episode], *pair) for episode, pair in _pairs(ratings.iterator(2000))
        )
        if progress is not None:
            progress(len(ids))
    # A therapist without a team leaves the team blank, not a float NaN in place of the id.
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS)).astype({"team": "Int64"})


def _pairs(ratings: Iterable[tuple]) -> Iterator[tuple[int, tuple[int, float, float, float]]]:
    """(episode, (session number, session total, outcome total, next outcome total)) from
    rating rows ordered by episode and session number."""
    current, sessions = None, {}
    for episode, number, scale, total in ratings:
        if episode != current:
            if current is not None:
                yield from ((current, pair) for pair in _episode_pairs(sessions))
            current, sessions = episode, {}
        sessions.setdefault(number, {})[scale] = float(total)
    if current is not None:
        yield from ((current, pair) for pair in _episode_pairs(sessions))


def _episode_pairs(sessions: dict[int, dict[str, float]]) -> Iterator[tuple]:
    rated = [(n, scales) for n, scales in sorted(sessions.items()) if Scale.OUTCOME in scales]
    for (number, scales), (_next, following) in itertools.pairwise(rated):
        if Scale.SESSION in scales:
            yield number, scales[Scale.SESSION], scales[Scale.OUTCOME], following[Scale.OUTCOME]


def fit_store(
    organization: Organization,
    *,
    pairs: pd.DataFrame | None = None,
    min_clients: int = MIN_CLIENTS,
    min_pairs: int = MIN_PAIRS,
) -> list[tuple[Team | None, AllianceOutcomeFit]]:
    """Fit the organisation and each of its teams on `pairs` (`session_pairs`, read here when
    not given) and store the fits, replacing the last ones. A team's fit is stored whatever its
    status, so its page says why there is no estimate."""
    if pairs is None:
        pairs = session_pairs(organization)
    scopes: list[tuple[Team | None, pd.DataFrame]] = [(None, pairs)]
    scopes += [
        (team, pairs[pairs["team"].eq(team.pk).fillna(False)])
        for team in Team.objects.filter(organization=organization).order_by("name")
    ]
    fitted_at = timezone.now()
    stored = []
    for team, frame in scopes:
        result = fit(frame, min_clients=min_clients, min_pairs=min_pairs)
        with transaction.atomic():
            row, _created = AllianceOutcomeFit.objects.update_or_create(
                organization=organization,
                team=team,
                defaults={
                    "fitted_at": fitted_at,
                    "status": result.status,
                    "clients": result.clients,
                    "sessions": result.pairs,
                    "results": _clean(result.as_json()),
                },
            )
        stored.append((team, row))
    return stored


def result_from(stored: dict[str, Any]) -> FitResult:
    """A stored fit's results back as a `FitResult`."""
    values = dict(stored)
    values["terms"] = [Term(**term) for term in values.get("terms", [])]
    if values.get("per_sd") is not None:
        values["per_sd"] = tuple(values["per_sd"])
    return FitResult(**values)


def _clean(value: Any) -> Any:
    # JSON has no NaN or infinity.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value
