"""Exports of what a user may see: read from the database in chunks, written row by row.

A large organisation's export stays small in memory: the rows come from generators that fetch
`settings.EXPORT_CHUNK_ROWS` at a time, and `alliance_app.lib.tabular` writes each row as it comes
(CSV streamed, Excel through a temporary file).
"""

from collections.abc import Iterator

from django.conf import settings
from django.db.models import F, QuerySet

from alliance_app.clinic.models import Client, Episode
from alliance_app.feedback.models import Rater, Rating
from alliance_app.lib.tabular import Cell, Table
from alliance_app.measures import FlagRules, Scale

from . import stats
from .selectors import rating_rows

RATING_COLUMNS = {
    "client": "session__episode__client__code",
    "episode": "session__episode_id",
    "session": "session__number",
    "date": "session__date",
    "format": "session__format",
    "scale": "scale",
    "instrument": "instrument",
    "rater": "rater",
    "rater_label": "rater_label",
    "item_1": "item_1",
    "item_2": "item_2",
    "item_3": "item_3",
    "item_4": "item_4",
    "total": "total",
    "channel": "channel",
    "stored_at": "created_at",
}

OUTCOME_COLUMNS = [
    "client",
    "episode",
    "therapist",
    "opened",
    "closed",
    "closure",
    "instrument",
    "first_total",
    "latest_total",
    "change",
    "outcome",
]


def rating_chunks(clients: QuerySet[Client]) -> Table:
    """Every rating of these clients, read from the database chunk by chunk."""
    # The ids first: the visibility filter (an OR of three conditions) inside the join leads
    # PostgreSQL to misjudge how many clients match and to read every rating.
    client_ids = list(clients.values_list("pk", flat=True))
    ratings = (
        Rating.objects.filter(session__episode__client__in=client_ids)
        .order_by("session__episode__client__code", "session__episode_id", "session__number", "pk")
        .values_list(*RATING_COLUMNS.values())
        .iterator(chunk_size=settings.EXPORT_CHUNK_ROWS)
    )
    return Table(header=list(RATING_COLUMNS), rows=ratings)


def outcome_chunks(clients: QuerySet[Client], *, rules: FlagRules) -> Table:
    """Each episode's outcome (first against latest client outcome rating), chunk by chunk,
    judged by the organisation's `rules` as its pages are."""
    rows = _outcome_rows(clients, settings.EXPORT_CHUNK_ROWS, rules)
    return Table(header=OUTCOME_COLUMNS, rows=rows)


def _outcome_rows(clients: QuerySet[Client], size: int, rules: FlagRules) -> Iterator[list[Cell]]:
    episodes = Episode.objects.filter(client__in=clients).order_by("pk")
    last_pk = 0
    while True:
        chunk = list(
            episodes.filter(pk__gt=last_pk).values(
                "pk",
                "opened",
                "closed",
                "closure",
                client_code=F("client__code"),
                therapist_name=F("therapist__username"),
            )[:size]
        )
        ratings = Rating.objects.filter(
            session__episode_id__in=[episode["pk"] for episode in chunk],
            scale=Scale.OUTCOME,
            rater=Rater.CLIENT,
            rater_label="",
        )
        outcomes = {
            row.episode_id: row for row in stats.episode_outcomes(rating_rows(ratings), rules=rules)
        }
        for episode in chunk:
            yield _outcome_line(episode, outcomes.get(episode["pk"]))
        if len(chunk) < size:
            return
        last_pk = chunk[-1]["pk"]


def _outcome_line(episode: dict, outcome: stats.EpisodeOutcomeRow | None) -> list[Cell]:
    return [
        episode["client_code"],
        episode["pk"],
        episode["therapist_name"],
        episode["opened"],
        episode["closed"],
        episode["closure"],
        outcome.instrument if outcome else "",
        outcome.first_total if outcome else None,
        outcome.latest_total if outcome else None,
        outcome.change if outcome else None,
        outcome.outcome.value if outcome else "",
    ]
