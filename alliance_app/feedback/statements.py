"""The rating submission's reads and summary updates, written out as SQL.

Every rating a tablet sends runs these, so they are the hottest statements of the app. Django's
ORM spends more CPU building such a statement than the database spends running it (0.4 to 0.7 ms
a statement here, against 0.1 to 0.2 ms for the same SQL sent as it is: `bench/README.md`), and a
submission's share of CPU is what its latency target measures. Each function names the ORM query
it stands for; the tests of the submission's flags, ruptures and summary rows hold them to it.

They run on Django's connection (its transaction, its watch on writes for the data version, its
adapters) and on SQLite and PostgreSQL alike: plain SQL, double-quoted names, `%s` parameters.
Every column comes back converted as its field converts it: through `Model.objects.raw`, or the
same converters applied by `_instance`.
"""

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import NamedTuple
from weakref import WeakKeyDictionary

from django.db import DEFAULT_DB_ALIAS, connection, connections

from alliance_app.accounts.models import Organization
from alliance_app.clinic.models import Client, Episode, TherapySession

from .models import ITEM_FIELDS, AllianceMonth, OutcomeEnds, Rating, Rupture, RuptureSD

_RATING_COLUMNS = ", ".join(
    f'r."{Rating._meta.get_field(name).column}"'
    for name in (
        *("id", "session", "created_at", "instrument", "scale", "rater", "rater_label"),
        *ITEM_FIELDS,
        "total",
    )
)

EPISODE_RATINGS = (
    f'SELECT {_RATING_COLUMNS}, s."number" AS "session_number", s."date" AS "session_date" '  # noqa: S608 -- names of our own
    f'FROM "{Rating._meta.db_table}" r '
    f'INNER JOIN "{TherapySession._meta.db_table}" s ON s."id" = r."session_id" '
    'WHERE s."episode_id" = %s AND r."scale" = %s '
    'ORDER BY s."number", r."rater", r."rater_label"'
)


def episode_ratings(episode_id: int, scale: str) -> list[Rating]:
    """The episode's ratings of one scale in session order, each with its session's number and
    date (`rating.session`, not read again): what the rupture rule and the flags read.

    `Rating.objects.filter(session__episode=…, scale=…).select_related("session")
    .only(<those columns>).order_by("session__number", "rater", "rater_label")`."""
    ratings = list(Rating.objects.raw(EPISODE_RATINGS, [episode_id, scale]))
    for rating in ratings:
        # As loaded with only these columns: anything else of the session is read if asked for.
        rating.session = TherapySession.from_db(
            connection.alias,
            ["id", "episode_id", "number", "date"],
            [rating.session_id, episode_id, rating.session_number, rating.session_date],
        )
    return ratings


SERIES_RUPTURES = (
    f'SELECT * FROM "{Rupture._meta.db_table}" '  # noqa: S608 -- names of our own
    'WHERE "episode_id" = %s AND "rater" = %s AND "rater_label" = %s '
    'ORDER BY "session_number"'
)


def series_ruptures(episode_id: int, rater: str, rater_label: str) -> list[Rupture]:
    """One rater's stored rupture rows in one episode, in session order.

    `Rupture.objects.filter(episode=…, rater=…, rater_label=…).order_by("session_number")`."""
    return list(Rupture.objects.raw(SERIES_RUPTURES, [episode_id, rater, rater_label]))


# The sums a month row keeps, each raised by what a rating adds to it.
MONTH_SUMS = (
    "total_sum",
    "count",
    "concerns",
    "tensions_answered",
    "tensions",
    "tension_resolution_sum",
)
ADD_TO_MONTH = (
    f'UPDATE "{AllianceMonth._meta.db_table}" SET '  # noqa: S608 -- names of our own
    + ", ".join(f'"{name}" = "{name}" + %s' for name in MONTH_SUMS)
    + ' WHERE "episode_id" = %s AND "month" = %s'
)


def add_to_month(episode_id: int, month: date, added: Mapping[str, Decimal | int]) -> int:
    """Add one session rating (`added`: what it adds to each of `MONTH_SUMS`) to its episode's
    month row; how many rows it found (0 or 1).

    `AllianceMonth.objects.filter(episode_id=…, month=…).update(total_sum=F("total_sum") + …,
    count=F("count") + 1, …)`. The sum stays exact on SQLite too: the total goes in as its
    decimal text and the column is read back through its field."""
    with connection.cursor() as cursor:
        cursor.execute(ADD_TO_MONTH, [*(added[name] for name in MONTH_SUMS), episode_id, month])
        return cursor.rowcount


_ENDS = OutcomeEnds._meta.db_table
MOVE_LATEST = (
    f'UPDATE "{_ENDS}" SET "latest_id" = %s, "latest_number" = %s, "latest_total" = %s '  # noqa: S608 -- names of our own
    'WHERE "episode_id" = %s AND "latest_number" < %s'
)
MOVE_FIRST = (
    f'UPDATE "{_ENDS}" SET "first_id" = %s, "first_number" = %s, "first_total" = %s, '  # noqa: S608 -- names of our own
    '"instrument" = %s WHERE "episode_id" = %s AND "first_number" > %s'
)


def move_ends(episode_id: int, rating_id: int, number: int, total: Decimal, instrument: str) -> int:
    """Move the episode's latest outcome end to this rating if it is later, or else its first
    end if it is earlier; how many rows moved (0 or 1).

    `ends.filter(latest_number__lt=number).update(latest_id=…, …) or
    ends.filter(first_number__gt=number).update(first_id=…, …)`."""
    with connection.cursor() as cursor:
        cursor.execute(MOVE_LATEST, [rating_id, number, total, episode_id, number])
        if cursor.rowcount:
            return cursor.rowcount
        cursor.execute(MOVE_FIRST, [rating_id, number, total, instrument, episode_id, number])
        return cursor.rowcount


class Loaded(NamedTuple):
    """A submission's session (with its episode and client) and its organisation's measured
    rupture SD, None when it has none."""

    session: TherapySession
    measured_sd: RuptureSD | None


# Per database connection (each thread has its own), per model: its columns' converters.
_CONVERTERS: WeakKeyDictionary = WeakKeyDictionary()


def _converters(model) -> list[tuple]:
    """Per concrete field of the model: the converters the ORM applies to its column on this
    connection's database, and the column they are given."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    known = _CONVERTERS.setdefault(wrapper, {})
    if model not in known:
        known[model] = []
        for field in model._meta.concrete_fields:
            column = field.get_col(model._meta.db_table)
            converters = wrapper.ops.get_db_converters(column)
            known[model].append((converters + column.get_db_converters(wrapper), column))
    return known[model]


def _instance(model, values: tuple):
    """A model instance from its concrete fields' columns as the database sent them, each
    converted as the ORM converts it (the same converters: SQLite sends dates and times as
    text)."""
    converted = []
    for (converters, column), value in zip(_converters(model), values, strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(connection.alias, names, converted)


def _columns(model) -> str:
    """A model's concrete fields as its table's SQL columns, in their order."""
    table = model._meta.db_table
    return ", ".join(f'"{table}"."{field.column}"' for field in model._meta.concrete_fields)


# Read together, in this order: the session, its episode, its client, the measured SD.
_READ = (TherapySession, Episode, Client, RuptureSD)
_SESSION, _EPISODE, _CLIENT, _SD = (model._meta.db_table for model in _READ)
SESSION_FOR_RATING = (
    f"SELECT {', '.join(_columns(model) for model in _READ)} "  # noqa: S608 -- names of our own
    f'FROM "{_SESSION}" '
    f'INNER JOIN "{_EPISODE}" ON "{_EPISODE}"."id" = "{_SESSION}"."episode_id" '
    f'INNER JOIN "{_CLIENT}" ON "{_CLIENT}"."id" = "{_EPISODE}"."client_id" '
    f'LEFT OUTER JOIN "{_SD}" ON "{_SD}"."organization_id" = "{_CLIENT}"."organization_id" '
    f'WHERE "{_SESSION}"."id" = %s'
)


def session_for_rating(pk: int) -> Loaded | None:
    """The session with its episode and client (`session.episode.client`, not read again), and
    the client's organisation's measured rupture SD.

    `TherapySession.objects.select_related("episode__client").filter(pk=…).first()` and
    `RuptureSD.objects.filter(organization=<the client's>).first()`."""
    with connection.cursor() as cursor:
        cursor.execute(SESSION_FOR_RATING, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    loaded = []
    for model in _READ:
        width = len(model._meta.concrete_fields)
        loaded.append(_instance(model, row[:width]))
        row = row[width:]
    session, episode, client, measured = loaded
    episode.client = client
    session.episode = episode
    return Loaded(session, measured if measured.pk is not None else None)


def keep_measured_sd(organization: Organization, measured: RuptureSD | None) -> None:
    """Remember the organisation's measured rupture SD (or that it has none) as
    `select_related("rupture_sd_measured")` would: `ruptures.sd_in_force` reads no more."""
    type(organization).rupture_sd_measured.related.set_cached_value(organization, measured)
