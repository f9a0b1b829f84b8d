"""Results of the expensive pages kept in the cache until the data changes (issue 16).

A result is stored under its name, the data version (`accounts.data_version`, read from the
database the page reads from, before the data) and the parts that choose it: organisation,
therapists, request parameters. The language, the time zone and today's date are always part
of the key, since results hold translated words, dates and windows counted from today. With
REDIS_URL set the cache is Redis, shared by every process; otherwise each process keeps its own.

Only results go in (figures, rows, chart JSON): never a response, whose CSRF token and user
belong to one request. Access checks and audit entries run on every request, outside.
"""

import hashlib
import pickle
import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model
from django.utils import timezone, translation

from alliance_app.lib.db_router import reading_from

from . import data_version

T = TypeVar("T")
# A result stays correct for as long as the data version holds; this only frees the space.
TIMEOUT = 60 * 60
_MISSING = object()


def result_key(name: str, parts: Iterable[Any]) -> str | None:
    """The cache key, or None when the data's version is not known.

    A row among the parts (the organisation with its settings, the viewer's membership, the
    client) stands in the key by its columns' values: it was read before the data version, so a
    change to it that lands in between must still make another key."""
    version = data_version.current(reading_from() or DEFAULT_DB_ALIAS)
    if version is None:
        return None
    chosen = [
        *(_row(part) if isinstance(part, Model) else str(part) for part in parts),
        translation.get_language() or "",
        timezone.get_current_timezone_name(),
        timezone.localdate().isoformat(),
    ]
    digest = hashlib.sha256("\x1f".join(chosen).encode()).hexdigest()[:32]
    return f"result:{name}:{version}:{digest}"


def _row(row: Model) -> str:
    """A row as stored: every column's value (its related rows and whatever else hangs on the
    object are not part of it)."""
    values = [repr(getattr(row, field.attname)) for field in row._meta.concrete_fields]
    return f"{row._meta.label}({','.join(values)})"


def cached_result(name: str, parts: Iterable[Any], compute: Callable[[], T]) -> T:
    """The result `compute()` gives for these parts at the current data version, computed only
    when the cache does not hold it yet."""
    return keyed_result(name, parts, compute)[0]


def keyed_result(name: str, parts: Iterable[Any], compute: Callable[[], T]) -> tuple[T, str]:
    """`cached_result`, with the key the result is kept under: a fragment of the page that shows
    only this result (and the parts) may be cached under it too (`{% fragment %}`), without
    reading the result's rows again to make its key. When the version is not known, nothing is
    cached and the key is one of its own, never met again."""
    key = result_key(name, parts)
    if key is None:
        return compute(), f"uncached:{secrets.token_hex(16)}"
    value = cache.get(key, _MISSING)
    if value is _MISSING:
        value = compute()
        cache.set(key, value, TIMEOUT)
        # What a hit gives: rows as unpickled (Django marks them with its version), so that a
        # fragment keyed on them (`fragments.fingerprint`) is the same on a miss as on a hit,
        # and the caller's changes to them are its own.
        value = pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))  # noqa: S301 (our own)
    return value, key
