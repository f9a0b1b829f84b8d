"""Reads for the dashboards: each aggregates in the database in a fixed number of queries."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
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
    Reflection,
    ReflectionOption,
    ReflectionOptionKind,
    Rupture,
)
from alliance_app.feedback.reflections import option_label
from alliance_app.measures import (
    DEFAULT_RUPTURE_RULES,
    AgeBand,
    ChangeDirection,
    FlagRules,
    RuptureRules,
    RuptureStatus,
    Scale,
    Thresholds,
)
from alliance_app.measures.expected import ExpectedResponse

from . import ruptures, stats
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


def figures(
    therapist_ids: Collection[int],
    *,
    rules: FlagRules,
    rupture_rules: RuptureRules = DEFAULT_RUPTURE_RULES,
    expected: ExpectedResponse | None = None,
) -> stats.Figures:
    """What the team and organisation pages need of these therapists, in four queries.

    The episodes are counted here; the ratings were summed as they were stored
    (`feedback.rollups`): the monthly alliance sums are added up per therapist, and each
    episode's first and latest outcome is one row. So the cost follows the number of episodes
    and months, not the years of ratings behind them. Outcomes are judged by the organisation's
    `rules`, as its flags are. Ruptures (the client's own series, `feedback.ruptures`) are
    counted by therapist and status, and each episode with outcomes learns what its ruptures came
    to (`ruptures.group_of`, with the organisation's `rupture_rules`). With a band in use
    (`expected`), the same rows tell which open episodes' latest outcome is off track: the
    episode's state and the client's age band come with them, so that costs no query.
    """
    ids = list(therapist_ids)
    # Each episode's sessions counted from the session index, not joined: a join would repeat
    # every episode once per session, to be counted back with DISTINCT.
    sessions = _count(TherapySession.objects.filter(episode=OuterRef("pk")), "episode")
    caseloads = [
        stats.Caseload(**row)
        for row in Episode.objects.filter(therapist_id__in=ids)
        .order_by()
        .values("therapist_id")
        .annotate(
            active_clients=Count("client_id", filter=Q(closed__isnull=True), distinct=True),
            closed_episodes=Count("pk", filter=Q(closed__isnull=False)),
            unplanned_closures=Count("pk", filter=Q(closure=Closure.UNPLANNED)),
            sessions=Coalesce(Sum(sessions), Value(0)),
        )
    ]
    alliance = [
        stats.MonthlySums(**row)
        for row in AllianceMonth.objects.filter(therapist_id__in=ids)
        .order_by()
        .values("therapist_id", "month")
        .annotate(total_sum=Sum("total_sum"), count=Sum("count"), concerns=Sum("concerns"))
    ]
    own = _client_ruptures(Rupture.objects.all())
    # The therapists named too, so that the planner may read their ruptures from their index
    # rather than every rupture of the table.
    episode_ruptures = own.filter(therapist_id__in=ids, episode_id=OuterRef("episode_id"))
    rated = (
        AllianceMonth.objects.filter(episode_id=OuterRef("episode_id"))
        .order_by()
        .values("episode_id")
        .annotate(n=Sum("count"))
        .values("n")[:1]
    )
    # With a band in use, each open episode's latest outcome is judged against it: the episode's
    # state and the client's age band come with the same rows.
    judged = (
        {
            "is_open": ExpressionWrapper(
                Q(episode__closed__isnull=True), output_field=BooleanField()
            ),
            "age_band": F("client__age_band"),
        }
        if expected is not None
        else {}
    )
    ends = (
        OutcomeEnds.objects.filter(
            therapist_id__in=ids,
            # One client outcome rating per session: two session numbers mean two ratings.
            first_number__lt=F("latest_number"),
        )
        .order_by()
        .annotate(
            unrepaired=Exists(episode_ruptures.filter(status=RuptureStatus.UNREPAIRED.value)),
            pending=Exists(episode_ruptures.filter(status=RuptureStatus.PENDING.value)),
            repaired=Exists(episode_ruptures.filter(status=RuptureStatus.REPAIRED.value)),
            rated_sessions=Coalesce(Subquery(rated, output_field=IntegerField()), Value(0)),
            **judged,
        )
        .values(
            "episode_id",
            "instrument",
            "first_total",
            "latest_total",
            "client_id",
            "therapist_id",
            "unrepaired",
            "pending",
            "repaired",
            "rated_sessions",
            "latest_number",
            *judged,
        )
    )
    outcomes, groups = [], {}
    off_track: dict[int, int] | None = None if expected is None else {}
    min_rated = rupture_rules.min_previous + 1
    # Thousands of episodes, a handful of instruments: each instrument's thresholds once.
    thresholds = {}
    for row in ends:
        number = row.pop("latest_number")
        if off_track is not None and _off_track(row, number, expected):
            off_track[row["therapist_id"]] = off_track.get(row["therapist_id"], 0) + 1
        groups[row["episode_id"]] = ruptures.group_of(
            unrepaired=row.pop("unrepaired"),
            pending=row.pop("pending"),
            repaired=row.pop("repaired"),
            rated_sessions=row.pop("rated_sessions"),
            min_rated=min_rated,
        )
        code = row["instrument"]
        if code not in thresholds:
            thresholds[code] = rules.thresholds(catalogue().get(code))
        outcomes.append(stats.classify(**row, thresholds=thresholds[code]))
    statuses = [
        ruptures.StatusCount(**row)
        for row in own.filter(therapist_id__in=ids)
        .order_by()
        .values("therapist_id", "status")
        .annotate(count=Count("pk"))
    ]
    return stats.Figures(
        caseloads=caseloads,
        alliance=alliance,
        outcomes=outcomes,
        rupture_statuses=statuses,
        rupture_groups=groups,
        off_track=off_track,
    )


def _off_track(row: dict, number: int, expected: ExpectedResponse) -> bool:
    """Whether an open episode's latest client outcome, at session `number`, is below the
    not-on-track line (the episode's state and band are taken out of the row)."""
    is_open, band = row.pop("is_open"), row.pop("age_band")
    return is_open and expected.below_boundary(
        band, row["first_total"], number, row["latest_total"]
    )


def _client_ruptures(rows: QuerySet[Rupture]) -> QuerySet[Rupture]:
    """The ruptures of the client's own series: the ratings the monthly sums count."""
    return rows.filter(rater=Rater.CLIENT, rater_label="")


def rupture_counts(
    therapist_ids: Collection[int],
) -> tuple[list[ruptures.RatedCount], list[ruptures.StatusCount]]:
    """Each therapist's client session ratings and the ruptures in them by status, in two
    queries: what `ruptures.rates_by` divides."""
    ids = list(therapist_ids)
    rated = [
        ruptures.RatedCount(**row)
        for row in AllianceMonth.objects.filter(therapist_id__in=ids)
        .order_by()
        .values("therapist_id")
        .annotate(count=Sum("count"))
    ]
    statuses = [
        ruptures.StatusCount(**row)
        for row in _client_ruptures(Rupture.objects.filter(therapist_id__in=ids))
        .order_by()
        .values("therapist_id", "status")
        .annotate(count=Count("pk"))
    ]
    return rated, statuses


def rupture_tallies(
    therapist_ids: Collection[int], *, since: date | None, monthly: bool
) -> ruptures.Tallies:
    """What the supervision figures of these therapists, pooled, are computed from, in four
    queries: ruptures counted by status, part and sessions to repair; the client session ratings
    and tension answers summed; the markers and strategies of the reflections they wrote,
    counted.

    `since` (a month's first day) leaves out earlier months: the rupture's and the rating's
    session month, the flagged session's date for reflections. `monthly` keeps months apart,
    for the chart by month.
    """
    ids = list(therapist_ids)
    months = ("month",) if monthly else ()
    found = _client_ruptures(Rupture.objects.filter(therapist_id__in=ids))
    sessions = AllianceMonth.objects.filter(therapist_id__in=ids)
    # A reflection is the treating therapist's own account (`feedback.access.may_reflect`):
    # theirs are the ones they wrote, read from the author's index.
    reflections = Reflection.objects.filter(author_id__in=ids)
    if since is not None:
        found = found.filter(month__gte=since)
        sessions = sessions.filter(month__gte=since)
        reflections = reflections.filter(flag__rating__session__date__gte=since)
    rupture_rows = [
        ruptures.RuptureTally(**row)
        for row in found.order_by()
        .values(*months, "status", "dimensions", "sessions_to_repair")
        .annotate(count=Count("pk"))
    ]
    session_rows = [
        ruptures.SessionSums(**row)
        for row in sessions.order_by()
        .values("month")
        .annotate(
            rated=Sum("count"),
            answered=Sum("tensions_answered"),
            tensions=Sum("tensions"),
            resolution_sum=Sum("tension_resolution_sum"),
        )
    ]
    choices = []
    for path in ("marker", "strategies"):
        counted = (
            reflections.filter(**{f"{path}__isnull": False})
            .order_by()
            .values(
                kind=F(f"{path}__kind"),
                code=F(f"{path}__code"),
                label=F(f"{path}__label"),
                position=F(f"{path}__position"),
            )
            .annotate(count=Count("pk"))
        )
        choices += [
            ruptures.ChoiceTally(
                **row | {"label": option_label(ReflectionOption(**_option_fields(row)))}
            )
            for row in counted
        ]
    return ruptures.Tallies(
        ruptures=rupture_rows,
        sessions=session_rows,
        choices=choices,
        # Each reflection names one marker.
        reflections=sum(row.count for row in choices if row.kind == ReflectionOptionKind.MARKER),
    )


def _option_fields(row: dict) -> dict:
    return {key: row[key] for key in ("kind", "code", "label")}


def rupture_list(therapist_id: int, *, since: date | None, clients: QuerySet[Client]) -> list:
    """The ruptures of one therapist's episodes (every rater's series), of the `clients` the
    viewer may see, newest month first: the supervision page's list of sequences.

    Two queries: the therapist's ruptures from their index, then which of those few clients the
    viewer sees; asked in one, the visibility rules would have the database read every client.
    """
    rows = Rupture.objects.filter(therapist_id=therapist_id)
    if since is not None:
        rows = rows.filter(month__gte=since)
    found = list(
        rows.order_by("-month", "episode_id", "rater", "rater_label", "session_number").values(
            "episode_id",
            "month",
            "rater",
            "rater_label",
            "session_number",
            "total",
            "baseline",
            "drop",
            "dimensions",
            "status",
            "repaired_number",
            "sessions_to_repair",
            client_id=F("episode__client_id"),
            code=F("episode__client__code"),
        )
    )
    listed = {row["client_id"] for row in found}
    seen = set(clients.filter(pk__in=listed).values_list("pk", flat=True)) if listed else set()
    return ruptures.episode_sequences(row for row in found if row["client_id"] in seen)


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
    # Below the expected-response band's not-on-track line at the latest outcome rating.
    off_track: bool = False

    @property
    def statuses(self) -> list[str]:
        found = []
        if self.in_clinical_range:
            found.append("clinical")
        if self.direction == ChangeDirection.IMPROVED:
            found.append("improving")
        if self.direction == ChangeDirection.DETERIORATED:
            found.append("deteriorating")
        if self.off_track:
            found.append("off_track")
        if self.alliance_concern:
            found.append("alliance_concern")
        return found


def caseload(
    clients: QuerySet[Client], *, rules: FlagRules, expected: ExpectedResponse | None = None
) -> list[CaseloadRow]:
    """Active clients with their current episode's figures, sorted by need: open flags first.

    Statuses and badges are judged by the organisation's `rules`, the thresholds its flags use,
    and "off track" by its expected-response band in use (`expected`), as the not-on-track flag.

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
            latest_number=Subquery(ends.values("latest_number")[:1]),
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
            "latest_number",
            "latest_session_total",
            "open_flag_count",
            "top_severity",
        )
    )
    # What each age band's scales are judged by, asked once per band rather than once per row.
    judged = {
        band: (
            rules.thresholds(catalogue().for_client(Scale.OUTCOME, band)),
            rules.thresholds(catalogue().for_client(Scale.SESSION, band)),
        )
        for band in AgeBand
    }
    result = [_caseload_row(row, judged, expected) for row in rows]
    result.sort(key=lambda r: (-r.top_severity, -r.open_flags, r.code))
    return result


def _count(rows: QuerySet, outer: str) -> Subquery:
    """How many of `rows` there are for the outer row they point to through `outer`."""
    counted = rows.order_by().values(outer).annotate(n=Count("pk")).values("n")[:1]
    return Subquery(counted, output_field=IntegerField())


def _caseload_row(
    row: dict,
    judged: dict[AgeBand, tuple[Thresholds, Thresholds]],
    expected: ExpectedResponse | None,
) -> CaseloadRow:
    outcome_scale, session_scale = judged[AgeBand(row["age_band"])]
    change = direction = None
    off_track = False
    if row["latest_id"] is not None and row["latest_id"] != row["intake_id"]:
        change = row["latest_total"] - row["intake_total"]
        direction = outcome_scale.direction(row["intake_total"], row["latest_total"])
        off_track = expected is not None and expected.below_boundary(
            row["age_band"], row["intake_total"], row["latest_number"], row["latest_total"]
        )
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
        off_track=off_track,
    )
