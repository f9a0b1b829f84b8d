"""Content-addressed caching of the expensive parts of a page.

A page's data is read fresh on every request; what is cached is only the work of turning it into
HTML (or a chart), under a key made from *that data*: every loaded field of every row shown
(related rows and prefetched lists included), the viewer's rights and the address when the
caller passes them, the active language and the time zone. A changed rating or flag is another
key, so nothing shown is ever stale; an entry left behind by old data is simply never asked for
again and expires.
"""

import functools
import hashlib
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Model, QuerySet
from django.utils import timezone
from django.utils.translation import get_language

# Entries are never stale, only unused once their data changes: the timeout just bounds memory.
TIMEOUT = 600
# Raised whenever the Python behind a fragment (a filter, a display method) changes what it
# renders; a template's edit needs nothing (`_templates`).
VERSION = 1


def fingerprint(*values: Any) -> str:
    """A digest of `values` and of the language and time zone they are shown in.

    The values are pickled, rows as their loaded content (`_ContentPickler`); a value that
    cannot be pickled raises, rather than being keyed on its identity."""
    zone = timezone.get_current_timezone_name()
    content = (VERSION, _templates(), get_language() or "", zone, values)
    buffer = io.BytesIO()
    _ContentPickler(buffer, protocol=5).dump(content)
    return hashlib.blake2b(buffer.getbuffer(), digest_size=20).hexdigest()


def cached(name: str, key: str, build: Callable[[], Any]) -> Any:
    """The value built for `key` (a `fingerprint`), built by `build` when not yet cached."""
    full_key = f"fragment:{name}:{key}"
    value = cache.get(full_key)
    if value is None:
        value = build()
        cache.set(full_key, value, TIMEOUT)
    return value


@functools.cache
def _templates() -> str:
    """A digest of every template's text, read once a process: an entry rendered by an older
    template (or an include of it) is not served after a deployment that changed it."""
    digest = hashlib.blake2b(digest_size=16)
    for engine in settings.TEMPLATES:
        for directory in map(Path, engine.get("DIRS", [])):
            for path in sorted(directory.rglob("*.html")):
                digest.update(str(path.relative_to(directory)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


class _ContentPickler(pickle.Pickler):
    """Pickles a row as every attribute it was read (or annotated, or decorated) with, its
    related rows read alongside (select_related) and its prefetched lists: what a page can show
    of it, and nothing of how it was fetched."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Model):
            state = {
                name: value
                for name, value in vars(obj).items()
                if name not in ("_state", "_prefetched_objects_cache")
            }
            state["_related"] = obj._state.fields_cache
            prefetched = getattr(obj, "_prefetched_objects_cache", {})
            state["_prefetched"] = {name: list(rows) for name, rows in prefetched.items()}
            # The state comes after the row is memoised, so a relation back to it is a reference.
            return (_row, (obj._meta.label,), state)
        if isinstance(obj, QuerySet):
            raise TypeError("a queryset has no content until it is read: pass a list")
        return NotImplemented


def _row(label: str) -> None:
    """Names a row in a fingerprint; fingerprints are never unpickled."""
