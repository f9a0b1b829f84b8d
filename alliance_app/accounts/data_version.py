"""The data version: a number that changes whenever anything a cached result reads may have
changed (issue 16; `accounts.cached`).

Every database connection runs each statement through `watch_writes`. An INSERT, UPDATE or
DELETE on a table of the app's own models (not audit entries, the unlock counters or this
version's own row; login times are left out too) does two things:

- it raises this process's *generation* at once, so the process sees its own writes before they
  are committed (and inside tests, whose transaction never commits);
- it asks, once per transaction, for the row's counter to go up *after* the commit, in a
  statement of its own: concurrent rating submissions do not queue on the row's lock while
  their transactions run, and other processes (other servers, other workers) see the new
  number as soon as the data itself is visible.

Every path that writes goes through a connection (views, services, `.update()`,
`bulk_create`, the admin, management commands, imports); only PostgreSQL's COPY does not, so
seeding calls `data_changed()` at its end.

One counter serves the whole installation, not one per organisation: a write in one
organisation costs the others a cache miss, which is cheap next to a missed write path.
"""

import itertools
import re
import threading
import time

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from .models import DataVersion

# The tables whose writes say nothing about what the pages show.
UNWATCHED = frozenset(
    {
        "accounts_dataversion",
        "audit_auditentry",
        "feedback_unlockattempts",
    }
)
# Many-to-many adds are "INSERT OR IGNORE INTO" on SQLite (bulk_create with ignore_conflicts).
WRITE = re.compile(
    r'\s*(?:INSERT\s+(?:OR\s+\w+\s+|IGNORE\s+)?INTO|UPDATE|DELETE\s+FROM)\s+["`]?(\w+)',
    re.IGNORECASE,
)
# Django's `update_last_login`: signing in is not a change to the data.
LAST_LOGIN = re.compile(r'\s*UPDATE\s+"?accounts_user"?\s+SET\s+"?last_login"?\s*=\s*%s\s+WHERE')

_generation = itertools.count(1)
_current_generation = 0
_lock = threading.Lock()
_watched: frozenset[str] | None = None


def watched_tables() -> frozenset[str]:
    """The tables of the app's own models (their many-to-many tables too), less UNWATCHED."""
    global _watched
    if _watched is None:
        _watched = (
            frozenset(
                model._meta.db_table
                for model in apps.get_models(include_auto_created=True)
                if model.__module__.startswith("alliance_app.")
            )
            - UNWATCHED
        )
    return _watched


def writes_watched_table(sql: str) -> bool:
    match = WRITE.match(sql)
    return (
        match is not None
        and match.group(1).lower() in watched_tables()
        and not LAST_LOGIN.match(sql)
    )


def generation() -> int:
    return _current_generation


def _next_generation() -> None:
    global _current_generation
    with _lock:
        _current_generation = next(_generation)


def _sql(connection, template: str) -> str:
    """A statement on the version's row, in this database's quoting: run as plain SQL, since
    every write and every cached page pays for it (the ORM's compiling costs more than the
    statement itself)."""
    quote = connection.ops.quote_name
    return template.format(
        table=quote(DataVersion._meta.db_table), counter=quote("counter"), pk=quote("id")
    )


def data_changed(using: str = DEFAULT_DB_ALIAS) -> None:
    """Raise the stored counter now: for writes the connection did not see (COPY)."""
    _next_generation()
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(connection, "UPDATE {table} SET {counter} = {counter} + 1 WHERE {pk} = 1")
        )
        raised = cursor.rowcount
    if not raised:
        # A flushed database (`manage.py flush`, a transactional test) has lost the row.
        DataVersion.objects.using(using).get_or_create(pk=1, defaults={"counter": first_counter()})


def first_counter() -> int:
    """Where a new row's counter starts: the time in microseconds, so that a database made
    again (or flushed) never meets the keys its predecessor left in a shared cache."""
    return time.time_ns() // 1000


def _bump_pending(connection) -> bool:
    return any(func is _bump for _sids, func, _robust in connection.run_on_commit)


def _bump() -> None:
    try:
        data_changed(DEFAULT_DB_ALIAS)
    except DatabaseError:
        # Migrations that run before the table's own (from scratch, or back in tests) write
        # with nothing cached yet to tell.
        if DataVersion._meta.db_table in connections[DEFAULT_DB_ALIAS].introspection.table_names():
            raise


def writes_pending(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether this thread's connection holds watched writes not committed yet."""
    connection = connections[using]
    return connection.in_atomic_block and _bump_pending(connection)


def watch_writes(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if isinstance(sql, str) and writes_watched_table(sql):
        _next_generation()
        connection = context["connection"]
        if not (connection.in_atomic_block and _bump_pending(connection)):
            transaction.on_commit(_bump, using=connection.alias)
    return result


def install(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: watch the new connection's statements."""
    if watch_writes not in connection.execute_wrappers:
        connection.execute_wrappers.append(watch_writes)


def current(using: str = DEFAULT_DB_ALIAS) -> str | None:
    """The version the data read next from `using` is at (read it before the data), or None
    when a replica has no row yet: then nothing may be cached.

    Committed writes show in the stored counter, which every process shares. This process's own
    writes not committed yet also count, through its generation.
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(_sql(connection, "SELECT {counter} FROM {table} WHERE {pk} = 1"))
        row = cursor.fetchone()
    stored = row[0] if row else None
    if stored is None:
        if using != DEFAULT_DB_ALIAS:
            return None
        # Flushed (`manage.py flush`, a transactional test): a new row, counted from the time.
        row, _made = DataVersion.objects.get_or_create(pk=1, defaults={"counter": first_counter()})
        stored = row.counter
    if writes_pending():
        return f"{stored}.{generation()}"
    return str(stored)
