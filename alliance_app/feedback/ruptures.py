"""Ruptures kept up to date from the ratings, and the SD their threshold is built on.

The rule is `measures.rupture`; this module applies it to stored ratings. A rupture row
(`models.Rupture`) is derived: whenever a session rating is stored, the rater's series in that
episode is run through the rule again and its rows rewritten, so a later repair marks the rupture
repaired and a rating entered late (on paper, out of session order) moves the baseline as the
rule says. A rupture found for the first time raises a `rupture` flag on its rating; flags are
never removed, whatever later ratings show.

The SD in force for an organisation is, in order: the fixed SD its admin set; the pooled
within-client SD last measured from its ratings (`sd_measure`, run by `manage.py
rebuild_ruptures`); the documented fallback (`measures.DEFAULT_SD_FALLBACK`). It changes only when
measured, so that the threshold stays put between two measurements and the pages can say which
one is in force.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import groupby

from django.db import transaction
from django.utils import timezone

from alliance_app.accounts.models import Organization
from alliance_app.clinic.models import Episode
from alliance_app.measures import (
    DEFAULT_SD_FALLBACK,
    ONE_DECIMAL,
    FlagKind,
    FlagRules,
    RuptureRules,
    Scale,
    pooled_within_sd,
    rupture_finding,
    ruptures_for,
)
from alliance_app.measures import Rupture as Found

from . import statements
from .models import Flag, Rating, Rupture, RuptureSD
from .points import as_point

BATCH = 2000


class SDSource:
    FIXED = "fixed"
    MEASURED = "measured"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class SDInForce:
    """The SD an organisation's rupture threshold is built on, and where it comes from."""

    value: Decimal
    source: str
    series: int = 0
    degrees_of_freedom: int = 0
    measured_at: datetime | None = None


def points_shown(value: Decimal) -> str:
    """A threshold or SD as a clinician writes it: 1.0, 3.2, 1.12, 1.725; never 3.200."""
    value = value.normalize()
    if value.as_tuple().exponent > -1:
        value = value.quantize(ONE_DECIMAL)
    return f"{value:f}"


def sd_in_force(organization: Organization) -> SDInForce:
    if organization.rupture_sd is not None:
        return SDInForce(organization.rupture_sd, SDSource.FIXED)
    if type(organization).rupture_sd_measured.is_cached(organization):
        # Loaded with the organisation (`select_related("rupture_sd_measured")`): no query.
        measured = getattr(organization, "rupture_sd_measured", None)
    else:
        measured = RuptureSD.objects.filter(organization=organization).first()
    if measured is None:
        return SDInForce(DEFAULT_SD_FALLBACK, SDSource.FALLBACK)
    return SDInForce(
        measured.value,
        SDSource.FALLBACK if measured.is_fallback else SDSource.MEASURED,
        measured.series,
        measured.degrees_of_freedom,
        measured.measured_at,
    )


def sd_measure(organization: Organization) -> RuptureSD:
    """Measure the organisation's pooled within-client SD from every rater's session totals in
    every episode (`measures.pooled_within_sd`), and keep it."""
    totals = (
        Rating.objects.filter(
            scale=Scale.SESSION.value, session__episode__client__organization=organization
        )
        .order_by("session__episode_id", "rater", "rater_label")
        .values_list("session__episode_id", "rater", "rater_label", "total")
    )
    series = (
        [total for *_key, total in rows]
        for _key, rows in groupby(totals.iterator(chunk_size=BATCH), key=lambda row: row[:3])
    )
    pooled = pooled_within_sd(series)
    measured, _created = RuptureSD.objects.update_or_create(
        organization=organization,
        defaults={
            "value": pooled.value,
            "series": pooled.series,
            "degrees_of_freedom": pooled.degrees_of_freedom,
            "is_fallback": pooled.is_fallback,
            "measured_at": timezone.now(),
        },
    )
    return measured


def series_update(
    episode: Episode,
    rater: str,
    rater_label: str,
    *,
    rules: RuptureRules,
    s: Decimal,
    flag_rules: FlagRules,
    raise_flags: bool = True,
    session_ratings: list[Rating] | None = None,
) -> set[int]:
    """Rewrite one rater's rupture rows in one episode from their session ratings, and flag the
    ruptures found for the first time. Returns the ids of the ratings newly flagged.

    `session_ratings`, when the caller has read them, are the episode's session ratings of
    every rater with their sessions; without them this rater's are read here."""
    if session_ratings is None:
        ratings = list(
            Rating.objects.filter(
                session__episode=episode,
                scale=Scale.SESSION.value,
                rater=rater,
                rater_label=rater_label,
            ).select_related("session")
        )
    else:
        ratings = [
            rating
            for rating in session_ratings
            if (rating.rater, rating.rater_label) == (rater, rater_label)
        ]
    found = ruptures_for(
        [as_point(rating) for rating in ratings],
        s=s,
        rules=rules,
        episode_closed=not episode.is_open,
    )
    by_number = {rating.session.number: rating for rating in ratings}
    rows = [_row(episode, by_number[rupture.session_number], rupture) for rupture in found]
    _rows_keep(statements.series_ruptures(episode.pk, rater, rater_label), rows)
    if not raise_flags or not rows:
        return set()
    flagged = set(
        Flag.objects.filter(rating__in=[row.rating for row in rows], kind=FlagKind.RUPTURE.value)
        .order_by()
        .values_list("rating_id", flat=True)
    )
    new = [
        (row.rating, rupture)
        for row, rupture in zip(rows, found, strict=True)
        if row.rating.pk not in flagged
    ]
    Flag.objects.bulk_create(
        Flag.from_finding(
            rupture_finding(rupture, flag_rules), client=episode.client, rating=rating
        )
        for rating, rupture in new
    )
    return {rating.pk for rating, _rupture in new}


def episode_update(episode: Episode) -> None:
    """Run every rater's series of the episode through the rule again: when it closes, a pending
    rupture becomes unrepaired. Raises no flag: a closing episode's flags are resolved."""
    organization = episode.client.organization
    raters = (
        Rating.objects.filter(session__episode=episode, scale=Scale.SESSION.value)
        .order_by("rater", "rater_label")
        .values_list("rater", "rater_label")
        .distinct()
    )
    for rater, label in raters:
        series_update(
            episode,
            rater,
            label,
            rules=organization.rupture_rules(),
            s=sd_in_force(organization).value,
            flag_rules=organization.flag_rules(),
            raise_flags=False,
        )


def rebuild(organization: Organization, *, raise_flags: bool = False) -> int:
    """Recompute every rupture row of the organisation from its ratings; returns how many.

    Run after a bulk insert, after its rupture settings or measured SD changed, or after an
    upgrade (`manage.py rebuild_ruptures`). `raise_flags` also flags ruptures that have no flag
    (demo and bench data); by default a rebuild flags nothing, so a change of rule does not fill
    the inbox with old news.
    """
    rules = organization.rupture_rules()
    s = sd_in_force(organization).value
    flag_rules = organization.flag_rules()
    episodes = Episode.objects.filter(client__organization=organization)
    ratings = (
        Rating.objects.filter(scale=Scale.SESSION.value, session__episode__in=episodes)
        .select_related("session__episode__client")
        .order_by("session__episode_id", "rater", "rater_label", "session__number")
    )
    count = 0
    with transaction.atomic():
        # Rows found again are kept (with the research cases that cite them), the others deleted
        # at the end: a change of rule must not take a teaching case with it.
        stored = {row.rating_id: row for row in Rupture.objects.filter(episode__in=episodes)}
        flagged = (
            set(
                Flag.objects.filter(
                    kind=FlagKind.RUPTURE.value, client__organization=organization
                ).values_list("rating_id", flat=True)
            )
            if raise_flags
            else set()
        )
        rows: list[Rupture] = []
        flags: list[Flag] = []
        series = groupby(
            ratings.iterator(chunk_size=BATCH),
            key=lambda rating: (rating.session.episode_id, rating.rater, rating.rater_label),
        )
        for _key, group in series:
            group = list(group)
            episode = group[0].session.episode
            by_number = {rating.session.number: rating for rating in group}
            found = ruptures_for(
                [as_point(rating) for rating in group],
                s=s,
                rules=rules,
                episode_closed=not episode.is_open,
            )
            for rupture in found:
                rating = by_number[rupture.session_number]
                rows.append(_row(episode, rating, rupture))
                if raise_flags and rating.pk not in flagged:
                    flags.append(
                        Flag.from_finding(
                            rupture_finding(rupture, flag_rules),
                            client=episode.client,
                            rating=rating,
                        )
                    )
            if len(rows) >= BATCH:
                count += _flush(rows, flags, stored)
        count += _flush(rows, flags, stored)
        if stored:
            Rupture.objects.filter(pk__in=[row.pk for row in stored.values()]).delete()
    return count


def _flush(rows: list[Rupture], flags: list[Flag], stored: dict[int, Rupture]) -> int:
    _rows_update(stored, rows)
    Flag.objects.bulk_create(flags, batch_size=BATCH)
    count = len(rows)
    rows.clear()
    flags.clear()
    return count


# What a rupture row says, beyond which rating and series it belongs to.
_FINDINGS = (
    "therapist_id",
    "session_number",
    "month",
    "total",
    "baseline",
    "drop",
    "threshold",
    "dimensions",
    "status",
    "repaired_number",
    "sessions_to_repair",
)


def _rows_keep(stored: list[Rupture], rows: list[Rupture]) -> None:
    """Make the `stored` rows of one series say what `rows` say, in place: a rupture found again
    keeps its row (and the research cases that cite it), a changed one is updated, one no longer
    found is deleted, a new one added. A rating that changes nothing writes nothing."""
    kept = {row.rating_id: row for row in stored}
    _rows_update(kept, rows)
    if kept:
        Rupture.objects.filter(pk__in=[row.pk for row in kept.values()]).delete()


def _rows_update(kept: dict[int, Rupture], rows: list[Rupture]) -> None:
    """Each of `rows` saved over the stored row of its rating, taken out of `kept`, when it
    says something else; added when its rating had none. What is left in `kept` was not found
    again: the caller deletes it."""
    for row in rows:
        old = kept.pop(row.rating_id, None)
        if old is None:
            continue
        row.pk = old.pk
        changed = [name for name in _FINDINGS if _stored(row, name) != _stored(old, name)]
        if changed:
            row.save(update_fields=[name.removesuffix("_id") for name in changed])
    Rupture.objects.bulk_create([row for row in rows if row.pk is None], batch_size=BATCH)


def _stored(row: Rupture, name: str):
    """A value as the database keeps it: decimals at their field's places."""
    value = getattr(row, name)
    places = getattr(Rupture._meta.get_field(name.removesuffix("_id")), "decimal_places", None)
    return round(Decimal(value), places) if places is not None and value is not None else value


def _row(episode: Episode, rating: Rating, rupture: Found) -> Rupture:
    return Rupture(
        rating=rating,
        episode=episode,
        therapist_id=episode.therapist_id,
        rater=rating.rater,
        rater_label=rating.rater_label,
        session_number=rupture.session_number,
        month=rating.session.date.replace(day=1),
        total=rupture.total,
        baseline=rupture.baseline,
        drop=rupture.drop,
        threshold=rupture.threshold,
        dimensions=" ".join(rupture.dimensions),
        status=rupture.status.value,
        repaired_number=rupture.repaired_at,
        sessions_to_repair=rupture.sessions_to_repair,
    )
