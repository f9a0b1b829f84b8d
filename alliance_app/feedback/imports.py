"""Ratings entered after the fact: paper forms from a CSV file, and records from other systems.

Every row is checked first and each problem explained by line and field, in words; then the rows
go through the one submit service (`services.rating_submit`) like any rating, with their flags.
Each row's idempotency key is derived from what it says, so importing a file twice stores nothing
the second time: the service answers the second time with the rating it stored the first.
"""

import csv
import io
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from alliance_app.accounts.models import Organization, User
from alliance_app.clinic.access import clients_visible_to
from alliance_app.clinic.models import Client, Episode, SessionFormat, TherapySession
from alliance_app.clinic.services import episode_opened_later, session_held_on, session_on
from alliance_app.measures import MISSING, NOT_A_NUMBER, Scale, ScoreError, parse_item_score

from .models import ITEM_MAX, Flag, Rater, Rating
from .services import instrument_for_client, rating_submit, score_error_message

COLUMNS = (
    "client_code",
    "date",
    "session_number",
    "scale",
    "rater",
    "rater_label",
    "item_1",
    "item_2",
    "item_3",
    "item_4",
)
ITEM_COLUMNS = COLUMNS[6:]
EXAMPLE_ROW = ("C-0001", "2026-03-02", "1", "outcome", "client", "", "4.5", "6.0", "5.5", "5.0")
MAX_ROWS = 5000
MAX_BYTES = 2 * 1024 * 1024
LABEL_MAX = 60
SESSION_NUMBER_MAX = 32767  # the largest number the session's column holds

# Fixed for good: a row's key must come out the same in every release, or a file imported
# again after an upgrade would be stored twice.
KEY_NAMESPACE = uuid.UUID("5d0f3b7e-8a47-4c1e-9a0e-2f6f1c4b7a10")

_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WHOLE_NUMBER_RE = re.compile(r"[0-9]+")
_SCALE_ORDER = {Scale.OUTCOME: 0, Scale.SESSION: 1}


@dataclass(frozen=True)
class RowIn:
    """One rating as read, every field the raw text, so that the checker can say what is wrong.

    `extra` holds the cells beyond the template's columns, if the row has any.
    """

    line: int
    client_code: str
    date: str
    session_number: str
    scale: str
    rater: str
    rater_label: str
    items: tuple[str, str, str, str]
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one field of one line (`field` is a column name, "row" for the whole
    row, "file" for the file)."""

    line: int
    field: str
    message: str


@dataclass
class ImportReport:
    """What an import found and did. `ready` rows are new and fine: stored, unless this was a dry
    run or the whole file was refused for its problems. `already` rows were imported before."""

    rows: int
    stored: int
    already: int
    problems: list[RowProblem]
    dry_run: bool
    flags: int
    ready: int = 0
    already_lines: list[int] = field(default_factory=list)
    clients: dict[int, str] = field(default_factory=dict)  # the known clients named: id: code

    @property
    def problem_lines(self) -> int:
        return len({problem.line for problem in self.problems})


@dataclass(frozen=True)
class _Stored:
    """What the database already holds for the rows' clients' open episodes."""

    opened: dict[int, date]  # client id: the day their open episode opened
    sessions: dict[tuple[int, int], TherapySession]  # (client id, number)
    slots: dict[tuple, Rating]  # `_Checked.slot`: the rating filling it


@dataclass(frozen=True)
class _Checked:
    """A row that passed every check of its own fields."""

    line: int
    client: Client
    held: date
    number: int
    scale: Scale
    rater: str
    label: str
    items: tuple[Decimal, ...]
    key: uuid.UUID

    @property
    def slot(self) -> tuple:
        """The one rating a session holds per scale and rater (the database's unique rule)."""
        return (self.client.pk, self.number, self.scale, self.rater, self.label.casefold())


def row_key(
    *,
    organization: Organization,
    client_code: str,
    session_number: int,
    scale: str,
    rater: str,
    rater_label: str,
    items: Sequence[Decimal],
) -> uuid.UUID:
    """The idempotency key of an imported rating: the same row gives the same key, always.

    The label is compared as `services.rater_label_for` compares it (case and spacing aside),
    and the items as numbers ("7.50" is 7.5).
    """
    label = " ".join(rater_label.split()).casefold()
    parts = [str(organization.pk), client_code, str(session_number), str(scale), str(rater), label]
    parts += [f"{Decimal(item):.1f}" for item in items]
    return uuid.uuid5(KEY_NAMESPACE, "\x1f".join(parts))


def csv_decode(data: bytes) -> tuple[str, list[RowProblem]]:
    """The text of an uploaded file, or a problem saying how to save it."""
    if len(data) > MAX_BYTES:
        message = _("The file is larger than %(size)s MB: split it into smaller files.")
        return "", [_file_problem(message % {"size": MAX_BYTES // 2**20})]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return "", [
            _file_problem(
                _("The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.")
            )
        ]


def csv_rows(text: str) -> tuple[list[RowIn], list[RowProblem]]:
    """The rows of a CSV file in the template's columns, or the problems of its header and size.

    Commas or semicolons separate the cells (spreadsheets in many languages save semicolons);
    the header names the columns in the template's order. Blank lines are skipped.
    """
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        return [], [_file_problem(_("The file is not a CSV text file."))]
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return [], [_file_problem(_("The file is empty."))]
        names = tuple(cell.strip().lower() for cell in header)
        if names != COLUMNS:
            return [], [
                RowProblem(
                    1,
                    "header",
                    _("The first line must name the columns: %(columns)s.")
                    % {"columns": ", ".join(COLUMNS)},
                )
            ]
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) == MAX_ROWS:
                return [], [
                    _file_problem(
                        _("The file has more than %(rows)s rows: split it into smaller files.")
                        % {"rows": number_format(MAX_ROWS, force_grouping=True)}
                    )
                ]
            rows.append(_row_in(reader.line_num, cells))
    except csv.Error:
        return [], [
            RowProblem(
                reader.line_num, "file", _("This line is not valid CSV (look for a stray quote).")
            )
        ]
    return rows, []


def csv_template() -> str:
    """The template to download: the header and one example row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow(EXAMPLE_ROW)
    return out.getvalue()


def rows_import(
    *,
    organization: Organization,
    user: User,
    rows: Sequence[RowIn],
    channel: str,
    dry_run: bool,
    only_valid: bool = False,
) -> ImportReport:
    """Check `rows` and, unless this is a dry run, store them as `user` entered them.

    Only clients `user` sees in `organization` are known (`clinic.access`); any other code is an
    unknown client, whichever organisation has it. Without `only_valid` the rows are stored all
    together or, when any row has a problem, not at all; with it, every row without a problem is
    stored and the others are reported.
    """
    clients = _clients_named(organization, user, rows)
    problems, checked = _check(organization, clients, rows)
    keys = _stored_keys(checked)
    closed = [row for row in checked if keys.get(row.key) is True]
    problems += [
        RowProblem(row.line, "row", _("Imported before, into an episode of care now closed."))
        for row in closed
    ]
    problems.sort(key=_problem_order)
    checked = [row for row in checked if keys.get(row.key) is not True]
    already = [row for row in checked if row.key in keys]
    new = [row for row in checked if row.key not in keys]
    report = ImportReport(
        rows=len(rows),
        stored=0,
        already=len(already),
        problems=problems,
        dry_run=dry_run,
        flags=0,
        ready=len(new),
        already_lines=sorted(row.line for row in already),
        clients={client.pk: code for code, client in clients.items()},
    )
    if dry_run or (problems and not only_valid) or not checked:
        return report
    formats = _formats(checked)
    stored_ids: list[int] = []
    try:
        with transaction.atomic():
            for row in sorted(checked, key=_store_order):
                try:
                    with transaction.atomic():
                        rating = _store(row, formats, user, channel)
                except ValidationError as refused:
                    report.problems.append(RowProblem(row.line, "row", _said(refused)))
                    if not only_valid:
                        raise _Refused from None
                    continue
                if rating is not None:
                    stored_ids.append(rating.pk)
    except _Refused:
        report.problems.sort(key=_problem_order)
        return report
    report.stored = len(stored_ids)
    report.ready = len(stored_ids)
    report.flags = Flag.objects.filter(rating__in=stored_ids).count()
    report.problems.sort(key=_problem_order)
    return report


class _Refused(Exception):
    """A row was refused while the whole file was being stored: nothing of it may stay."""


def _store(
    row: _Checked, formats: dict[tuple[int, int], str], user: User, channel: str
) -> Rating | None:
    """Store one checked row; the stored rating, or None when it was stored before."""
    session = session_on(
        client=row.client,
        number=row.number,
        held=row.held,
        format=formats[row.client.pk, row.number],
    )
    instrument = instrument_for_client(row.client, row.scale)
    result = rating_submit(
        session=session,
        instrument_code=instrument.code,
        scores=dict(zip(instrument.item_keys, row.items, strict=True)),
        idempotency_key=row.key,
        rater=row.rater,
        rater_label=row.label,
        channel=channel,
        entered_by=user,
    )
    return result.rating if result.created else None


def _check(
    organization: Organization, clients: dict[str, Client], rows: Sequence[RowIn]
) -> tuple[list[RowProblem], list[_Checked]]:
    """Every problem of `rows`, and the rows without one, in a fixed number of queries."""
    problems: list[RowProblem] = []
    fields_fine: list[_Checked] = []
    for row in rows:
        found, row_problems = _check_fields(row, organization, clients)
        problems += row_problems
        if found is not None:
            fields_fine.append(found)
    stored = _stored_for(fields_fine)
    seen_slots: dict[tuple, _Checked] = {}
    seen_days: dict[tuple[int, int], _Checked] = {}
    checked = []
    for row in fields_fine:
        problem = _check_against_others(row, stored, seen_slots, seen_days)
        if problem is not None:
            problems.append(problem)
            continue
        seen_slots[row.slot] = row
        seen_days.setdefault((row.client.pk, row.number), row)
        checked.append(row)
    problems.sort(key=_problem_order)
    return problems, checked


def _check_fields(
    row: RowIn, organization: Organization, clients: dict[str, Client]
) -> tuple[_Checked | None, list[RowProblem]]:
    """The row's fields read and checked one by one: all of a row's problems at once."""
    if row.extra:
        message = _("This row has %(found)s columns; the template has %(expected)s.") % {
            "found": len(COLUMNS) + len(row.extra),
            "expected": len(COLUMNS),
        }
        return None, [RowProblem(row.line, "row", message)]
    problems: list[RowProblem] = []

    def problem(column: str, message: str) -> None:
        problems.append(RowProblem(row.line, column, message))

    code = row.client_code.strip()
    client = clients.get(code)
    if not code:
        problem("client_code", _("Give the client's code."))
    elif client is None:
        problem("client_code", _("Unknown client: no client you can see has this code."))
    held = _read_date(row.date, problem)
    number = _read_session_number(row.session_number, problem)
    scale = _read_choice(row.scale, Scale)
    if scale is None:
        problem(
            "scale",
            _("Unknown scale “%(value)s”: write outcome or session.")
            % {"value": row.scale.strip()},
        )
    rater = _read_choice(row.rater, Rater)
    if rater is None:
        problem(
            "rater",
            _("Unknown rater “%(value)s”: write %(raters)s.")
            % {"value": row.rater.strip(), "raters": ", ".join(Rater.values)},
        )
    label = " ".join(row.rater_label.split())
    if rater == Rater.CLIENT and label:
        problem("rater_label", _("The client's own rating has no rater label: leave it empty."))
    elif rater is not None and rater != Rater.CLIENT and not label:
        problem("rater_label", _("Name this rater (for example Mother or Sam)."))
    elif len(label) > LABEL_MAX:
        problem(
            "rater_label",
            _("A rater label has at most %(max)s characters.") % {"max": LABEL_MAX},
        )
    item_max = ITEM_MAX
    if client is not None and scale is not None:
        try:
            item_max = instrument_for_client(client, scale).item_max
        except LookupError:
            problem(
                "scale",
                _("No %(scale)s is set up for this client's age group.")
                % {"scale": _scale_name(scale)},
            )
    items = []
    for column, text in zip(ITEM_COLUMNS, row.items, strict=True):
        try:
            items.append(parse_item_score(text, item_max))
        except ScoreError as error:
            problem(column, _item_message(error.code))
    if problems:
        return None, problems
    key = row_key(
        organization=organization,
        client_code=code,
        session_number=number,
        scale=scale,
        rater=rater,
        rater_label=label,
        items=items,
    )
    return _Checked(row.line, client, held, number, scale, rater, label, tuple(items), key), []


def _check_against_others(
    row: _Checked,
    stored: _Stored,
    seen_slots: dict[tuple, _Checked],
    seen_days: dict[tuple[int, int], _Checked],
) -> RowProblem | None:
    """The row held against the client's stored sessions and ratings and the file's earlier
    rows: the first conflict found, or None."""
    earlier = seen_slots.get(row.slot)
    if earlier is not None:
        if earlier.key == row.key:
            return RowProblem(
                row.line, "row", _("The same rating as line %(line)s.") % {"line": earlier.line}
            )
        return RowProblem(
            row.line,
            "row",
            _("Line %(line)s already gives this rater's %(scale)s for session %(number)s.")
            % {"line": earlier.line, "scale": _scale_name(row.scale), "number": row.number},
        )
    same_session = seen_days.get((row.client.pk, row.number))
    if same_session is not None and same_session.held != row.held:
        return RowProblem(
            row.line,
            "date",
            _("Line %(line)s gives session %(number)s on %(held)s.")
            % {
                "line": same_session.line,
                "number": row.number,
                "held": same_session.held.isoformat(),
            },
        )
    session = stored.sessions.get((row.client.pk, row.number))
    if session is not None and session.date != row.held:
        return RowProblem(row.line, "date", session_held_on(row.number, session.date))
    opened = stored.opened.get(row.client.pk)
    if session is None and opened is not None and row.held < opened:
        return RowProblem(row.line, "date", episode_opened_later(opened))
    if (
        session is not None
        and session.format == SessionFormat.INDIVIDUAL
        and row.rater != Rater.CLIENT
    ):
        return RowProblem(
            row.line,
            "rater",
            _("Session %(number)s is an individual session: only the client rates it.")
            % {"number": row.number},
        )
    rating = stored.slots.get(row.slot)
    if rating is not None and rating.idempotency_key != row.key:
        message = (
            _("Already rated in session %(number)s: this %(scale)s is stored with other scores.")
            if rating.items != row.items
            else _("Already rated in session %(number)s: this %(scale)s is stored already.")
        )
        return RowProblem(
            row.line, "row", message % {"number": row.number, "scale": _scale_name(row.scale)}
        )
    return None


def _clients_named(
    organization: Organization, user: User, rows: Sequence[RowIn]
) -> dict[str, Client]:
    """The clients the rows name that `user` sees in `organization`, by code."""
    membership = getattr(user, "membership", None)
    if membership is None or membership.organization_id != organization.pk:
        return {}
    codes = {row.client_code.strip() for row in rows} - {""}
    return {
        client.code: client
        for client in clients_visible_to(membership)
        .filter(code__in=codes)
        .select_related("organization", "primary_therapist")
    }


def _stored_for(rows: list[_Checked]) -> _Stored:
    """The open episodes, sessions and ratings of the rows' clients, in three queries."""
    if not rows:
        return _Stored({}, {}, {})
    client_ids = {row.client.pk for row in rows}
    episodes = Episode.objects.filter(client__in=client_ids, closed__isnull=True)
    sessions = TherapySession.objects.filter(
        episode__client__in=client_ids, episode__closed__isnull=True
    ).select_related("episode")
    ratings = Rating.objects.filter(
        session__episode__client__in=client_ids, session__episode__closed__isnull=True
    ).select_related("session__episode")
    return _Stored(
        opened={episode.client_id: episode.opened for episode in episodes},
        sessions={(session.episode.client_id, session.number): session for session in sessions},
        slots={
            (
                rating.session.episode.client_id,
                rating.session.number,
                rating.scale,
                rating.rater,
                rating.rater_label.casefold(),
            ): rating
            for rating in ratings
        },
    )


def _stored_keys(rows: list[_Checked]) -> dict[uuid.UUID, bool]:
    """The rows' keys already stored, each with whether its episode of care has closed since."""
    if not rows:
        return {}
    stored = Rating.objects.filter(idempotency_key__in=[row.key for row in rows])
    return {
        key: closed is not None
        for key, closed in stored.values_list("idempotency_key", "session__episode__closed")
    }


def _formats(rows: list[_Checked]) -> dict[tuple[int, int], str]:
    """The format of each session the rows name, for sessions the import starts: individual
    when only the client rates it, a couple's session with a partner, else a family's."""
    raters: dict[tuple[int, int], set[str]] = {}
    for row in rows:
        raters.setdefault((row.client.pk, row.number), set()).add(row.rater)
    formats = {}
    for session, who in raters.items():
        if who == {Rater.CLIENT}:
            formats[session] = SessionFormat.INDIVIDUAL
        elif Rater.PARTNER in who:
            formats[session] = SessionFormat.COUPLE
        else:
            formats[session] = SessionFormat.FAMILY
    return formats


def _store_order(row: _Checked) -> tuple:
    """As the ratings were given: by client, day and session, the outcome scale at the start
    and the session scale at the end, the client before other raters."""
    return (
        row.client.code,
        row.held,
        row.number,
        _SCALE_ORDER[row.scale],
        row.rater != Rater.CLIENT,
        row.label.casefold(),
        row.line,
    )


def _read_date(text: str, problem: Callable[[str, str], None]) -> date | None:
    text = text.strip()
    if not text:
        problem("date", _("Give the date of the session."))
        return None
    if not _ISO_DATE_RE.fullmatch(text):
        problem("date", _("Write the date as YYYY-MM-DD, for example 2026-03-14."))
        return None
    try:
        held = date.fromisoformat(text)
    except ValueError:
        problem("date", _("There is no such day."))
        return None
    if held > timezone.localdate():
        problem("date", _("This date is in the future."))
        return None
    return held


def _read_session_number(text: str, problem: Callable[[str, str], None]) -> int | None:
    text = text.strip()
    if not text:
        problem("session_number", _("Give the session number."))
        return None
    if not _WHOLE_NUMBER_RE.fullmatch(text):
        problem("session_number", _("The session number is a whole number, such as 3."))
        return None
    number = int(text)
    if number < 1:
        problem("session_number", _("Session numbers start at 1."))
        return None
    if number > SESSION_NUMBER_MAX:
        problem("session_number", _("This session number is too large."))
        return None
    return number


def _read_choice(text: str, choices: type[StrEnum]) -> StrEnum | None:
    value = text.strip().lower()
    return choices(value) if value in {str(choice) for choice in choices} else None


def _item_message(code: str) -> str:
    if code == MISSING:
        return _("Give this item's score.")
    if code == NOT_A_NUMBER:
        return _("This is not a number: write a score such as 7.5.")
    return score_error_message(code)


def _scale_name(scale: Scale) -> str:
    return _("outcome rating") if scale is Scale.OUTCOME else _("session rating")


def _said(error: ValidationError) -> str:
    return " ".join(error.messages)


def _row_in(line: int, cells: list[str]) -> RowIn:
    padded = cells + [""] * (len(COLUMNS) - len(cells))
    return RowIn(
        line=line,
        client_code=padded[0],
        date=padded[1],
        session_number=padded[2],
        scale=padded[3],
        rater=padded[4],
        rater_label=padded[5],
        items=tuple(padded[6:10]),
        extra=tuple(cells[len(COLUMNS) :]),
    )


def _file_problem(message: str) -> RowProblem:
    return RowProblem(1, "file", message)


def _problem_order(problem: RowProblem) -> tuple:
    order = {name: index for index, name in enumerate(("file", "header", "row", *COLUMNS))}
    return (problem.line, order.get(problem.field, len(order)))
