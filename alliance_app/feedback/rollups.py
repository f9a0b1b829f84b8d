"""Summary rows for the team and organisation pages, kept up to date as ratings are stored.

The dashboards' figures rest on two things per episode: its first and latest outcome rating by
the client (`OutcomeEnds`), and the client's session ratings summed per calendar month
(`AllianceMonth`). Reading them from the ratings costs time in proportion to the years of data;
reading these rows costs a row per episode and month. Only the client's own ratings (rater
"client", no label) count, as in `dashboards.stats`.

`rating_stored` runs in the transaction that stores a rating, so a summary never runs ahead of or
behind its ratings. Both updates are safe when ratings of one episode arrive at once: the ends
move by a conditional update of one row, the sums by increments. A concern is a session rating
below the organisation's alliance cut-off for its instrument (`FlagRules.thresholds`), the line
its low-alliance flags are raised at. `rebuild` recomputes the rows of some episodes from their
ratings: after a bulk insert, after the admin changes sessions, or after an organisation's or an
instrument's cut-off changes (`manage.py rebuild_rollups`).
"""

import operator
from collections.abc import Callable
from decimal import Decimal
from functools import reduce

from django.apps import apps as installed_apps
from django.db import IntegrityError, transaction
from django.db.models import (
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncMonth

from alliance_app.measures import FlagRules, Scale, TensionAnswer, Thresholds

from . import statements
from .instruments import catalogue
from .models import AllianceMonth, OutcomeEnds, Rater

BATCH = 2000
ENDS = (
    "first_id",
    "first_number",
    "first_total",
    "instrument",
    "latest_id",
    "latest_number",
    "latest_total",
)


def rating_stored(rating, thresholds: Thresholds, tension: TensionAnswer | None = None) -> None:
    """Fold a rating just stored, and the tension answer sent with it, into its episode's summary
    rows; `thresholds` are its organisation's for its instrument."""
    if rating.rater != Rater.CLIENT or rating.rater_label:
        return
    if rating.scale == Scale.OUTCOME.value:
        _extend_ends(rating)
    else:
        _add_to_month(rating, int(thresholds.is_clinical(rating.total)), tension)


def _extend_ends(rating) -> None:
    """Move the episode's latest end to a rating later than it, or its first end to one earlier
    than it; a rating between the two moves neither. Each is a conditional update of the one
    row: a concurrent rating's update makes it wait, and its condition is then read again
    against the row as that left it, so an end never moves back."""
    session = rating.session
    number = session.number
    ends = OutcomeEnds.objects.filter(episode_id=session.episode_id)

    def moved() -> int:
        # Written out (`statements`): this runs with every outcome rating a client gives.
        return statements.move_ends(
            session.episode_id, rating.pk, number, rating.total, rating.instrument
        )

    def kept() -> bool:
        """Whether the row is there, moved as this rating asks. A row another rating's
        transaction made after the updates looked is there now: they look again."""
        if moved():
            return True
        if not ends.exists():
            return False
        moved()
        return True

    _upsert(
        kept,
        lambda: OutcomeEnds.objects.create(
            episode_id=session.episode_id,
            client_id=session.episode.client_id,
            therapist_id=session.episode.therapist_id,
            first=rating,
            first_number=number,
            first_total=rating.total,
            instrument=rating.instrument,
            latest=rating,
            latest_number=number,
            latest_total=rating.total,
        ),
    )


def _add_to_month(rating, concern: int, tension: TensionAnswer | None) -> None:
    session = rating.session
    month = session.date.replace(day=1)
    answered = int(tension is not None)
    felt = int(tension is not None and tension.tension)
    resolution = (tension.resolution or 0) if tension is not None else 0
    added = {
        "total_sum": rating.total,
        "count": 1,
        "concerns": concern,
        "tensions_answered": answered,
        "tensions": felt,
        "tension_resolution_sum": resolution,
    }
    _upsert(
        # Written out (`statements`): this runs with every session rating a client gives.
        lambda: statements.add_to_month(session.episode_id, month, added),
        lambda: AllianceMonth.objects.create(
            episode_id=session.episode_id,
            therapist_id=session.episode.therapist_id,
            month=month,
            **added,
        ),
    )


def _upsert(update: Callable[[], int | bool], create: Callable[[], object]) -> None:
    """Update the row (`update` says whether there is one); make it if there is none; if another
    rating's transaction made it a moment ago (the unique key says so), update it after all.
    Portable, unlike INSERT … ON CONFLICT with expressions."""
    if update():
        return
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        if not update():
            raise


def rebuild(episodes: QuerySet, apps=installed_apps) -> None:
    """Recompute the summary rows of these episodes from their ratings.

    `apps` lets a data migration pass its historical models.
    """
    rating_model = apps.get_model("feedback", "Rating")
    ends_model = apps.get_model("feedback", "OutcomeEnds")
    month_model = apps.get_model("feedback", "AllianceMonth")
    organization_model = apps.get_model("accounts", "Organization")
    ids = episodes.order_by().values("pk")
    with transaction.atomic():
        ends_model.objects.filter(episode__in=ids).delete()
        month_model.objects.filter(episode__in=ids).delete()
        own = rating_model.objects.filter(rater=Rater.CLIENT, rater_label="").order_by()
        cutoffs = organization_model.objects.filter(clients__episodes__in=ids).distinct()
        # A migration older than the tension question passes models without it.
        tension_sums = (
            {
                "tensions_answered": Count("tension"),
                "tensions": Count("tension", filter=Q(tension__tension=True)),
                "tension_resolution_sum": Coalesce(Sum("tension__resolution"), 0),
            }
            if any(field.name == "tensions" for field in month_model._meta.get_fields())
            else {}
        )
        for organization in cutoffs.only("pk", "alliance_cutoff"):
            sums = (
                own.filter(
                    scale=Scale.SESSION.value,
                    session__episode__in=ids,
                    session__episode__client__organization=organization,
                )
                .values(
                    episode_id=F("session__episode_id"),
                    therapist_id=F("session__episode__therapist_id"),
                    month=TruncMonth("session__date"),
                )
                .annotate(
                    total_sum=Sum("total"),
                    count=Count("pk"),
                    concerns=Count("pk", filter=_concern(organization.alliance_cutoff)),
                    **tension_sums,
                )
            )
            _insert(month_model, (month_model(**row) for row in sums.iterator(chunk_size=BATCH)))
        outcome = own.filter(scale=Scale.OUTCOME.value, session__episode=OuterRef("pk"))
        first = outcome.order_by("session__number")
        latest = outcome.order_by("-session__number")
        ends = (
            episodes.order_by()
            .annotate(
                first_id=Subquery(first.values("pk")[:1]),
                first_number=Subquery(first.values("session__number")[:1]),
                first_total=Subquery(first.values("total")[:1]),
                instrument=Subquery(first.values("instrument")[:1]),
                latest_id=Subquery(latest.values("pk")[:1]),
                latest_number=Subquery(latest.values("session__number")[:1]),
                latest_total=Subquery(latest.values("total")[:1]),
            )
            .filter(first_id__isnull=False)
            .values(*ENDS, "client_id", "therapist_id", episode_id=F("pk"))
        )
        _insert(ends_model, (ends_model(**row) for row in ends.iterator(chunk_size=BATCH)))


def _insert(model, rows) -> None:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            model.objects.bulk_create(batch)
            batch = []
    model.objects.bulk_create(batch)


def _concern(alliance_cutoff: Decimal | None) -> Q:
    """A session rating below the organisation's cut-off for its instrument (`Thresholds`).

    Built from the organisation's stored cut-off rather than its model's methods, so that a data
    migration, which has only historical models, rebuilds by the same rule.
    """
    rules = FlagRules(alliance_cutoff=alliance_cutoff)
    return reduce(
        operator.or_,
        (
            Q(instrument=instrument.code, total__lt=rules.thresholds(instrument).cutoff)
            for instrument in catalogue().all()
            if instrument.scale == Scale.SESSION
        ),
    )
