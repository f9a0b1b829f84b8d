"""Reads for the dashboards: each aggregates in the database in a fixed number of queries."""

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from alliance_app.clinic.models import Client, Closure, Episode, TherapySession
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import (
    OPEN_STATUSES,
    AllianceMonth,
    Flag,
    OutcomeEnds,
    Rater,
    Rating,
)
from alliance_app.measures import AgeBand, ChangeDirection, FlagRules, Scale

from . import stats
from .stats import RATING_COLUMNS

RATING_FIELDS = {
    "rating_id": "pk",
    "client_id": "session__episode__client_id",
    "episode_id": "session__episode_id",
    "therapist_id": "session__episode__therapist_id",
    "session_number": "session__number",
    "session_date": "session__date",
}


def rating_rows(ratings: QuerySet[Rating]) -> list[dict]:
    """Ratings as the rows dashboards.stats and dashboards.charts read."""
    plain = [column for column in RATING_COLUMNS if column not in RATING_FIELDS]
    aliased = {alias: F(path) for alias, path in RATING_FIELDS.items() if alias in RATING_COLUMNS}
    return list(ratings.order_by().values(*plain, **aliased))


def figures(therapist_ids: Collection[int], *, rules: FlagRules) -> stats.Figures:
    """What the team and organisation pages need of these therapists, in three queries.

    The episodes are counted here; the ratings were summed as they were stored
    (`feedback.rollups`): the monthly alliance sums are added up per therapist, and each
    episode's first and latest outcome is one row. So the cost follows the number of episodes
    and months, not the years of ratings behind them. Outcomes are judged by the organisation's
    `rules`, as its flags are.
    """
    ids = list(therapist_ids)
    caseloads = [
        stats.Caseload(**row)
        for row in Episode.objects.filter(therapist_id__in=ids)
        .order_by()
        .values("therapist_id")
        .annotate(
            active_clients=Count("client_id", filter=Q(closed__isnull=True), distinct=True),
            closed_episodes=Count("pk", filter=Q(closed__isnull=False), distinct=True),
            unplanned_closures=Count("pk", filter=Q(closure=Closure.UNPLANNED), distinct=True),
            sessions=Count("sessions"),
        )
    ]
    alliance = [
        stats.MonthlySums(**row)
        for row in AllianceMonth.objects.filter(therapist_id__in=ids)
        .order_by()
        .values("therapist_id", "month")
        .annotate(total_sum=Sum("total_sum"), count=Sum("count"), concerns=Sum("concerns"))
    ]
    ends = (
        OutcomeEnds.objects.filter(
            therapist_id__in=ids,
            # One client outcome rating per session: two session numbers mean two ratings.
            first_number__lt=F("latest_number"),
        )
        .order_by()
        .values(
            "episode_id",
            "instrument",
            "first_total",
            "latest_total",
            "client_id",
            "therapist_id",
        )
    )
    return stats.Figures(
        caseloads=caseloads,
        alliance=alliance,
        outcomes=[stats.classify(**row, rules=rules) for row in ends],
    )


@dataclass(frozen=True)
class CaseloadRow:
    pk: int
    code: str
    age_band: str
    therapist: str
    sessions: int
    last_session: object
    intake_total: Decimal | None
    latest_total: Decimal | None
    change: Decimal | None
    direction: ChangeDirection | None
    latest_session_total: Decimal | None
    in_clinical_range: bool
    alliance_concern: bool
    open_flags: int
    top_severity: int

    @property
    def statuses(self) -> list[str]:
        found = []
        if self.in_clinical_range:
            found.append("clinical")
        if self.direction == ChangeDirection.IMPROVED:
            found.append("improving")
        if self.direction == ChangeDirection.DETERIORATED:
            found.append("deteriorating")
        if self.alliance_concern:
            found.append("alliance_concern")
        return found


def caseload(clients: QuerySet[Client], *, rules: FlagRules) -> list[CaseloadRow]:
    """Active clients with their current episode's figures, sorted by need: open flags first.

    Statuses and badges are judged by the organisation's `rules`, the thresholds its flags use.

    One query, and no join to group: every figure is a correlated subquery on the client's open
    episode, so each runs once per client; the outcome's intake and latest totals come from the
    episode's summary row, the latest alliance from the session index read backwards.
    """
    alliance = Rating.objects.filter(
        session__episode=OuterRef("episode_id"),
        rater=Rater.CLIENT,
        rater_label="",
        scale=Scale.SESSION,
    )
    ends = OutcomeEnds.objects.filter(episode_id=OuterRef("episode_id"))
    sessions = TherapySession.objects.filter(episode=OuterRef("episode_id"))
    open_flags = Flag.objects.filter(client=OuterRef("pk"), status__in=OPEN_STATUSES)
    rows = (
        clients.filter(active=True)
        .annotate(
            episode_id=Subquery(
                Episode.objects.filter(client=OuterRef("pk"), closed__isnull=True).values("pk")[:1]
            )
        )
        .annotate(
            session_count=Coalesce(_count(sessions, "episode"), Value(0)),
            last_session=Subquery(sessions.order_by("-date").values("date")[:1]),
            intake_id=Subquery(ends.values("first_id")[:1]),
            intake_total=Subquery(ends.values("first_total")[:1]),
            latest_id=Subquery(ends.values("latest_id")[:1]),
            latest_total=Subquery(ends.values("latest_total")[:1]),
            latest_session_total=Subquery(
                alliance.order_by("-session__number").values("total")[:1]
            ),
            open_flag_count=Coalesce(_count(open_flags, "client"), Value(0)),
            top_severity=Coalesce(
                Subquery(open_flags.order_by("-severity").values("severity")[:1]), Value(0)
            ),
        )
        .values(
            "pk",
            "code",
            "age_band",
            "primary_therapist__first_name",
            "primary_therapist__last_name",
            "primary_therapist__username",
            "session_count",
            "last_session",
            "intake_id",
            "intake_total",
            "latest_id",
            "latest_total",
            "latest_session_total",
            "open_flag_count",
            "top_severity",
        )
    )
    result = [_caseload_row(row, rules) for row in rows]
    result.sort(key=lambda r: (-r.top_severity, -r.open_flags, r.code))
    return result


def _count(rows: QuerySet, outer: str) -> Subquery:
    """How many of `rows` there are for the outer row they point to through `outer`."""
    counted = rows.order_by().values(outer).annotate(n=Count("pk")).values("n")[:1]
    return Subquery(counted, output_field=IntegerField())


def _caseload_row(row: dict, rules: FlagRules) -> CaseloadRow:
    band = AgeBand(row["age_band"])
    outcome_scale = rules.thresholds(catalogue().for_client(Scale.OUTCOME, band))
    session_scale = rules.thresholds(catalogue().for_client(Scale.SESSION, band))
    change = direction = None
    if row["latest_id"] is not None and row["latest_id"] != row["intake_id"]:
        change = row["latest_total"] - row["intake_total"]
        direction = outcome_scale.direction(row["intake_total"], row["latest_total"])
    name = " ".join(
        part
        for part in (row["primary_therapist__first_name"], row["primary_therapist__last_name"])
        if part
    )
    latest_alliance = row["latest_session_total"]
    return CaseloadRow(
        pk=row["pk"],
        code=row["code"],
        age_band=row["age_band"],
        therapist=name or row["primary_therapist__username"],
        sessions=row["session_count"],
        last_session=row["last_session"],
        intake_total=row["intake_total"],
        latest_total=row["latest_total"],
        change=change,
        direction=direction,
        latest_session_total=latest_alliance,
        in_clinical_range=row["latest_total"] is not None
        and outcome_scale.is_clinical(row["latest_total"]),
        alliance_concern=latest_alliance is not None and session_scale.is_clinical(latest_alliance),
        open_flags=row["open_flag_count"],
        top_severity=row["top_severity"],
    )
