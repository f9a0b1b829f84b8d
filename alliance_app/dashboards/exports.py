"""Exports of what a user may see, in chunks: a large organisation's export stays small in memory.

CSV streams chunk by chunk; Excel is written by xlsxwriter in constant-memory mode (rows go to
disk as they are written) to a temporary file that is then streamed.
"""

import tempfile
from collections.abc import Iterator

import pandas as pd
from django.db.models import F, QuerySet

from alliance_app.clinic.models import Client, Episode
from alliance_app.feedback.models import Rater, Rating
from alliance_app.measures import Scale

from . import stats
from .selectors import rating_rows

CHUNK = 2000

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


def rating_chunks(clients: QuerySet[Client]) -> Iterator[pd.DataFrame]:
    """Every rating of these clients; at least one (perhaps empty) frame, so headers always come."""
    # The ids first: the visibility filter (an OR of three conditions) inside the join leads
    # PostgreSQL to misjudge how many clients match and to read every rating.
    client_ids = list(clients.values_list("pk", flat=True))
    ratings = (
        Rating.objects.filter(session__episode__client__in=client_ids)
        .order_by("session__episode__client__code", "session__episode_id", "session__number", "pk")
        .values_list(*RATING_COLUMNS.values())
        .iterator(chunk_size=CHUNK)
    )
    batch: list[tuple] = []
    yielded = False
    for row in ratings:
        batch.append(row)
        if len(batch) == CHUNK:
            yield _ratings_frame(batch)
            batch, yielded = [], True
    if batch or not yielded:
        yield _ratings_frame(batch)


def _ratings_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(RATING_COLUMNS))
    frame["stored_at"] = frame["stored_at"].map(lambda moment: moment.isoformat())
    return frame


def outcome_chunks(clients: QuerySet[Client]) -> Iterator[pd.DataFrame]:
    """Each episode's outcome (first against latest client outcome rating), chunk by chunk."""
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
            )[:CHUNK]
        )
        ratings = Rating.objects.filter(
            session__episode_id__in=[episode["pk"] for episode in chunk],
            scale=Scale.OUTCOME,
            rater=Rater.CLIENT,
            rater_label="",
        )
        outcomes = {row.episode_id: row for row in stats.episode_outcomes(rating_rows(ratings))}
        yield pd.DataFrame(
            [_outcome_line(episode, outcomes.get(episode["pk"])) for episode in chunk],
            columns=OUTCOME_COLUMNS,
        )
        if len(chunk) < CHUNK:
            return
        last_pk = chunk[-1]["pk"]


def _outcome_line(episode: dict, outcome) -> list:
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


def csv_stream(chunks: Iterator[pd.DataFrame]) -> Iterator[str]:
    for index, frame in enumerate(chunks):
        yield frame.to_csv(index=False, header=index == 0)


def excel_file(chunks: Iterator[pd.DataFrame], sheet: str):
    """The chunks as one worksheet in a temporary .xlsx file, opened for reading."""
    # Not a `with`: the caller's FileResponse reads the file and closes it.
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115
    with pd.ExcelWriter(
        handle, engine="xlsxwriter", engine_kwargs={"options": {"constant_memory": True}}
    ) as writer:
        row = 0
        for frame in chunks:
            frame.to_excel(writer, sheet_name=sheet, index=False, header=row == 0, startrow=row)
            row += len(frame) + (1 if row == 0 else 0)
    handle.seek(0)
    return handle
