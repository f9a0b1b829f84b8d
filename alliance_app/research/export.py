"""The de-identified research export (DESIGN.md §5, research): one row per rated session and
rater, long format, in a zip with the codebook.

Nothing in it names or dates anyone. Clients, episodes and therapists appear under study
identifiers keyed by a random key made for the export and then dropped (`StudyIds`), so two
exports cannot be linked; dates become days from the episode's opening; raters of one kind are
numbered instead of labelled; no note, label, name or client code is read at all.

Memory stays flat however large the organisation: episodes are read a chunk at a time (by
primary key), each chunk's ratings in one query with their rupture and tension joined, and its
rows written at once to the CSV file and as one row group of the Parquet file, both in a
temporary directory; the zip is built from those files.
"""

import csv
import hashlib
import hmac
import secrets
import tempfile
import zipfile
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.utils import timezone
from django.utils.translation import gettext as _

from alliance_app.accounts.models import Organization
from alliance_app.clinic.models import Episode
from alliance_app.dashboards.supervision import rule_in_force
from alliance_app.feedback.models import ITEM_FIELDS, Rating
from alliance_app.measures import Scale

from . import codebook
from .codebook import COLUMNS, NAMES, Kind
from .models import Training

EPISODE_CHUNK = 200
MEAN_PLACES = Decimal("0.001")
ARROW_TYPES = {
    Kind.STRING: pa.string(),
    Kind.INTEGER: pa.int32(),
    Kind.NUMBER: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
}
SCHEMA = pa.schema(
    [pa.field(column.name, ARROW_TYPES[column.kind], column.nullable) for column in COLUMNS]
)

Line = dict[str, Any]
Progress = Callable[[int, int], None]

RATING_FIELDS = (
    "session__episode_id",
    "session__number",
    "session__date",
    "session__format",
    "scale",
    "instrument",
    "rater",
    "rater_label",
    *ITEM_FIELDS,
    "total",
    "rupture__status",
    "rupture__repaired_number",
    "rupture__sessions_to_repair",
    "rupture__dimensions",
    "tension__tension",
    "tension__resolution",
)


class StudyIds:
    """Identifiers for one export: HMAC-SHA256 of the kind and database id under a random key
    that lives only as long as this object."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def of(self, kind: str, pk: int) -> str:
        return hmac.new(self._key, f"{kind}:{pk}".encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class ExportSummary:
    episodes: int
    rows: int


@dataclass
class _Entry:
    """One rater's ratings in one session, before they become a line."""

    number: int
    day: date
    format: str
    rater: str
    label: str
    session: Any = None
    outcome: Any = None


def trainings_by_therapist(organization: Organization) -> dict[int, list[date]]:
    """The days of the trainings each therapist attended, in order."""
    attended = Training.attendees.through.objects.filter(
        training__organization=organization
    ).values_list("user_id", "training__date")
    days: dict[int, list[date]] = defaultdict(list)
    for user_id, day in attended:
        days[user_id].append(day)
    return {user_id: sorted(found) for user_id, found in days.items()}


def episode_lines(
    episode: dict, ratings: Iterable[Any], *, ids: StudyIds, trainings: dict[int, list[date]]
) -> list[Line]:
    """The export's lines for one episode from its ratings (`RATING_FIELDS`, in session, rater,
    label order), one per session and rater."""
    entries: dict[tuple[int, str, str], _Entry] = {}
    for rating in ratings:
        key = (rating.session__number, rating.rater, rating.rater_label)
        if key not in entries:
            entries[key] = _Entry(
                number=rating.session__number,
                day=rating.session__date,
                format=rating.session__format,
                rater=rating.rater,
                label=rating.rater_label,
            )
        entry = entries[key]
        if rating.scale == Scale.SESSION:
            entry.session = rating
        else:
            entry.outcome = rating
    indexes: dict[tuple[str, str], int] = {}
    series: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
    for entry in entries.values():
        key = (entry.rater, entry.label)
        if key not in indexes:
            indexes[key] = 1 + sum(1 for rater, _label in indexes if rater == entry.rater)
        series[key].append(entry)
    lines = []
    for key, rater_entries in series.items():
        totals = [entry.session.total for entry in rater_entries if entry.session]
        mean = (sum(totals) / len(totals)).quantize(MEAN_PLACES, ROUND_HALF_UP) if totals else None
        following = [*rater_entries[1:], None]
        for entry, after in zip(rater_entries, following, strict=True):
            lines.append(
                _line(episode, entry, after, indexes[key], mean, ids=ids, trainings=trainings)
            )
    lines.sort(key=lambda line: (line["session_number"], line["rater"], line["rater_index"]))
    return lines


def _line(
    episode: dict,
    entry: _Entry,
    after: _Entry | None,
    index: int,
    mean: Decimal | None,
    *,
    ids: StudyIds,
    trainings: dict[int, list[date]],
) -> Line:
    session, outcome = entry.session, entry.outcome
    attended = trainings.get(episode["therapist_id"], [])
    count = bisect_right(attended, entry.day)
    has_rupture = bool(session and session.rupture__status)
    has_tension = bool(session and session.tension__tension is not None)
    return {
        "client_study_id": ids.of("client", episode["client_id"]),
        "episode_study_id": ids.of("episode", episode["pk"]),
        "therapist_study_id": ids.of("therapist", episode["therapist_id"]),
        "age_band": episode["client__age_band"],
        "session_number": entry.number,
        "day_offset": (entry.day - episode["opened"]).days,
        "session_format": entry.format,
        "rater": entry.rater,
        "rater_index": index,
        "session_instrument": session.instrument if session else None,
        **_scale_values("session", session),
        "outcome_instrument": outcome.instrument if outcome else None,
        **_scale_values("outcome", outcome),
        "next_outcome_total": after.outcome.total if after and after.outcome else None,
        "session_total_person_mean": mean if session else None,
        "session_total_deviation": session.total - mean if session else None,
        "rupture": has_rupture,
        "rupture_status": session.rupture__status if has_rupture else None,
        "rupture_repaired_at_session": session.rupture__repaired_number if has_rupture else None,
        "rupture_sessions_to_repair": session.rupture__sessions_to_repair if has_rupture else None,
        "rupture_dimensions": session.rupture__dimensions if has_rupture else None,
        "tension": session.tension__tension if has_tension else None,
        "tension_resolution": session.tension__resolution if has_tension else None,
        "therapist_trainings": count,
        "days_since_training": (entry.day - attended[count - 1]).days if count else None,
        "episode_closure": episode["closure"] or codebook.OPEN,
    }


def _scale_values(scale: str, rating: Any) -> Line:
    fields = (*ITEM_FIELDS, "total")
    values = [getattr(rating, name) for name in fields] if rating else [None] * len(fields)
    names = [f"{scale}_item_{n}" for n in range(1, 5)] + [f"{scale}_total"]
    return dict(zip(names, values, strict=True))


def line_chunks(
    organization: Organization, *, chunk: int = EPISODE_CHUNK, progress: Progress | None = None
) -> Iterator[list[Line]]:
    """The organisation's lines, one list per chunk of episodes (in primary-key order)."""
    ids = StudyIds()
    trainings = trainings_by_therapist(organization)
    episodes = Episode.objects.filter(client__organization=organization).order_by("pk")
    last_pk, done, rows = 0, 0, 0
    while True:
        batch = list(
            episodes.filter(pk__gt=last_pk).values(
                "pk", "opened", "closure", "therapist_id", "client_id", "client__age_band"
            )[:chunk]
        )
        if not batch:
            return
        ratings = defaultdict(list)
        found = (
            Rating.objects.filter(session__episode_id__in=[episode["pk"] for episode in batch])
            .order_by("session__episode_id", "session__number", "rater", "rater_label", "scale")
            .values_list(*RATING_FIELDS, named=True)
        )
        for rating in found:
            ratings[rating.session__episode_id].append(rating)
        lines = [
            line
            for episode in batch
            for line in episode_lines(episode, ratings[episode["pk"]], ids=ids, trainings=trainings)
        ]
        done, rows = done + len(batch), rows + len(lines)
        yield lines
        if progress:
            progress(done, rows)
        if len(batch) < chunk:
            return
        last_pk = batch[-1]["pk"]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _arrow_value(column: codebook.Column, value: Any) -> Any:
    if value is not None and column.kind == Kind.NUMBER:
        return float(value)
    return value


def write_tables(
    organization: Organization,
    csv_path: Path,
    parquet_path: Path,
    *,
    chunk: int = EPISODE_CHUNK,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the lines to `csv_path` and `parquet_path`, one chunk at a time."""
    episodes = rows = 0

    def counted(done: int, written: int) -> None:
        nonlocal episodes
        episodes = done
        if progress:
            progress(done, written)

    with (
        open(csv_path, "w", newline="", encoding="utf-8") as text,
        pq.ParquetWriter(parquet_path, SCHEMA) as parquet,
    ):
        writer = csv.writer(text)
        writer.writerow(NAMES)
        for lines in line_chunks(organization, chunk=chunk, progress=counted):
            writer.writerows([_csv_cell(line[name]) for name in NAMES] for line in lines)
            columns = {
                column.name: [_arrow_value(column, line[column.name]) for line in lines]
                for column in COLUMNS
            }
            parquet.write_table(pa.Table.from_pydict(columns, schema=SCHEMA))
            rows += len(lines)
    return ExportSummary(episodes=episodes, rows=rows)


def readme(organization: Organization, summary: ExportSummary) -> str:
    lines = [
        _("Alliance research export"),
        "",
        _(
            "De-identified session ratings, one row per rated session and rater, long format: "
            "sessions.csv and sessions.parquet hold the same rows; codebook.md describes every "
            "column and the rules behind them. Study identifiers are made for this export only."
        ),
        "",
        _("Generated: %(when)s UTC")
        % {"when": timezone.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M")},
        _("Rows: %(rows)s from %(episodes)s episodes of care")
        % {"rows": summary.rows, "episodes": summary.episodes},
        "",
        _("The rupture rule in force when it was generated:"),
        *(f"- {sentence}" for sentence in rule_in_force(organization)),
        "",
    ]
    return "\n".join(lines)


def export_write(
    organization: Organization,
    out: IO[bytes],
    *,
    chunk: int = EPISODE_CHUNK,
    progress: Progress | None = None,
) -> ExportSummary:
    """The export as a zip written to `out`: sessions.csv, sessions.parquet, codebook.md and
    README.txt."""
    with tempfile.TemporaryDirectory(prefix="alliance-research-") as directory:
        csv_path = Path(directory) / "sessions.csv"
        parquet_path = Path(directory) / "sessions.parquet"
        summary = write_tables(organization, csv_path, parquet_path, chunk=chunk, progress=progress)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(csv_path, "sessions.csv")
            archive.write(parquet_path, "sessions.parquet")
            archive.writestr("codebook.md", codebook.markdown())
            archive.writestr("README.txt", readme(organization, summary))
    return summary
