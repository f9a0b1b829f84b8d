"""The instrument catalogue this deployment uses: the built-in wording plus any licensed sets."""

from functools import cache

from django.conf import settings

from alliance_app.measures import Catalogue, default_catalogue


@cache
def catalogue() -> Catalogue:
    return default_catalogue(extra_dirs=tuple(settings.ALLIANCE_INSTRUMENT_DIRS))
