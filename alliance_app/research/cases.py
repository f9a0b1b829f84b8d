"""Teaching cases: ruptures in scope, and each one told without anything that could name the client.

A case shows session numbers only (no dates), no client code and no ids; the rater's session
totals and the client's outcome totals by session number; the items at the rupture beside their
mean over the earlier sessions of the same series; the therapist's reflection, with its note only
where the therapist agreed to its use in teaching; the therapist's name only when the case set
says so. The handout reads its cases in a fixed number of queries, however many there are.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils.translation import get_language

from alliance_app.accounts.access import therapists_visible_to
from alliance_app.accounts.models import Membership
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import (
    ITEM_FIELDS,
    BordinChoice,
    Rater,
    Rating,
    Reflection,
    Rupture,
    RuptureStatusChoice,
)
from alliance_app.feedback.reflections import option_label
from alliance_app.measures import FlagKind, RuptureStatus, Scale

from .models import CaseSet

STATUSES = tuple(RuptureStatus)


def ruptures_in_scope(membership: Membership) -> QuerySet[Rupture]:
    """The ruptures a trainer may teach from: those of the therapists they may see."""
    return Rupture.objects.filter(
        therapist__in=therapists_visible_to(membership),
        episode__client__organization=membership.organization,
    )


def dimension_q(code: str) -> Q:
    """`Rupture.dimensions` holds one or more space-separated codes."""
    return (
        Q(dimensions=code)
        | Q(dimensions__startswith=f"{code} ")
        | Q(dimensions__endswith=f" {code}")
        | Q(dimensions__contains=f" {code} ")
    )


def filtered(
    ruptures: QuerySet[Rupture],
    *,
    dimension: str = "",
    status: str = "",
    marker: str = "",
    strategy: str = "",
) -> QuerySet[Rupture]:
    if dimension:
        ruptures = ruptures.filter(dimension_q(dimension))
    if status:
        ruptures = ruptures.filter(status=status)
    reflected = "rating__flags__reflection"
    if marker:
        ruptures = ruptures.filter(
            rating__flags__kind=FlagKind.RUPTURE.value, **{f"{reflected}__marker__code": marker}
        )
    if strategy:
        ruptures = ruptures.filter(
            rating__flags__kind=FlagKind.RUPTURE.value,
            **{f"{reflected}__strategies__code": strategy},
        )
    return ruptures.distinct()


def reflections_by_rating(rating_ids) -> dict[int, Reflection]:
    """The reflection on each rating's rupture flag, with its marker and strategies: two queries."""
    found = (
        Reflection.objects.filter(flag__rating_id__in=list(rating_ids), flag__kind=FlagKind.RUPTURE)
        .select_related("marker", "flag")
        .prefetch_related("strategies")
    )
    return {reflection.flag.rating_id: reflection for reflection in found}


@dataclass(frozen=True)
class ItemFall:
    label: str
    at_rupture: Decimal
    before: Decimal | None  # mean of the earlier sessions of the series


@dataclass
class CaseView:
    number: int
    session_number: int
    status: str
    status_label: str
    repaired_number: int | None
    sessions_to_repair: int | None
    rater: str
    dimensions: list[str]
    baseline: Decimal
    total: Decimal
    sessions: list[tuple[int, Decimal]] = field(default_factory=list)
    outcomes: list[tuple[int, Decimal]] = field(default_factory=list)
    items: list[ItemFall] = field(default_factory=list)
    marker: str = ""
    part: str = ""
    strategies: list[str] = field(default_factory=list)
    note: str = ""
    therapist: str = ""


def case_views(case_set: CaseSet) -> list[CaseView]:
    """The case set's cases, de-identified, in their order: five queries whatever their number."""
    cases = list(
        case_set.cases.select_related("rupture", "rupture__rating", "rupture__therapist").order_by(
            "position"
        )
    )
    ruptures = [case.rupture for case in cases]
    episode_ids = {rupture.episode_id for rupture in ruptures}
    series: dict[tuple, list[Rating]] = defaultdict(list)
    ratings = Rating.objects.filter(session__episode_id__in=episode_ids).select_related("session")
    for rating in ratings.order_by("session__number", "pk"):
        key = (rating.session.episode_id, rating.scale, rating.rater, rating.rater_label)
        series[key].append(rating)
    reflections = reflections_by_rating(rupture.rating_id for rupture in ruptures)
    statuses = dict(RuptureStatusChoice.choices)
    dimensions = dict(BordinChoice.choices)
    views = []
    for number, rupture in enumerate(ruptures, 1):
        at = rupture.rating
        own = series[(rupture.episode_id, at.scale, rupture.rater, rupture.rater_label)]
        earlier = [r for r in own if r.session.number < rupture.session_number]
        instrument = catalogue().translated(at.instrument, get_language())
        labels = [item.label for item in instrument.items]
        items = []
        for position, name in enumerate(ITEM_FIELDS[: len(labels)]):
            before = [getattr(r, name) for r in earlier if getattr(r, name) is not None]
            items.append(
                ItemFall(
                    labels[position],
                    getattr(at, name),
                    (sum(before) / len(before)).quantize(Decimal("0.1")) if before else None,
                )
            )
        outcome = series[(rupture.episode_id, Scale.OUTCOME.value, Rater.CLIENT.value, "")]
        view = CaseView(
            number=number,
            session_number=rupture.session_number,
            status=rupture.status,
            status_label=str(statuses[rupture.status]),
            repaired_number=rupture.repaired_number,
            sessions_to_repair=rupture.sessions_to_repair,
            # The kind of rater only: a label may carry a name.
            rater=str(Rater(rupture.rater).label),
            dimensions=[str(dimensions[code]) for code in rupture.dimensions.split()],
            baseline=rupture.baseline,
            total=rupture.total,
            sessions=[(r.session.number, r.total) for r in own],
            outcomes=[(r.session.number, r.total) for r in outcome],
            items=items,
        )
        reflection = reflections.get(rupture.rating_id)
        if reflection is not None:
            view.marker = option_label(reflection.marker)
            view.part = str(reflection.get_dimension_display())
            view.strategies = [option_label(option) for option in reflection.strategies.all()]
            if reflection.teaching_consent:
                view.note = reflection.note
        if case_set.show_therapist:
            therapist = rupture.therapist
            view.therapist = therapist.get_full_name() or therapist.username
        views.append(view)
    return views
