"""Writing the therapist's reflection on a rupture or a client-reported tension (DESIGN.md §5).

One reflection per flag, written by the client's own therapist and revised in place: the first
author stays its author, `updated_at` says when it last changed. The choices are the
organisation's options (`feedback.reflections`); an option it has since hidden stays on the
reflections that already carry it, but is not offered for new ones.
"""

from collections.abc import Collection

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alliance_app.accounts.models import User
from alliance_app.measures import BordinDimension, FlagKind

from .models import Flag, FlagStatus, Reflection, ReflectionOption, ReflectionOptionKind
from .reflections import option_label
from .services import flag_acknowledge

# The flags a reflection is written on: the alliance itself was strained.
REFLECTED_KINDS = frozenset({FlagKind.RUPTURE, FlagKind.CLIENT_REPORTED_TENSION})
DIMENSIONS = (BordinDimension.BOND, BordinDimension.GOALS, BordinDimension.TASKS)
NOTE_MAX = 2000
# Said the same by the form and the service.
NOT_OFFERED = gettext_lazy("That choice is not offered by your organisation.")
NO_DIMENSION = gettext_lazy("Choose bond, goals or tasks.")
NO_STRATEGY = gettext_lazy("Tick what you did, or that nothing was done yet.")


def options_offered(
    organization_id: int, kind: str, reflection: Reflection | None = None
) -> QuerySet[ReflectionOption]:
    """The organisation's active options of `kind`, and those the reflection already carries."""
    kept = Q(pk__in=[])
    if reflection is not None:
        kept = (
            Q(pk=reflection.marker_id)
            if kind == ReflectionOptionKind.MARKER
            else Q(pk__in=reflection.strategies.values("pk"))
        )
    return ReflectionOption.objects.filter(
        Q(active=True) | kept, organization_id=organization_id, kind=kind
    ).order_by("position", "pk")


def exclusive_error(strategies: Collection[ReflectionOption]) -> str | None:
    """Why these strategies cannot go together, or None: an option such as "nothing yet"
    stands alone."""
    alone = [option for option in strategies if option.exclusive]
    if alone and len(strategies) > 1:
        return _("“%(option)s” cannot be ticked together with something you did.") % {
            "option": option_label(alone[0])
        }
    return None


def initial_dimension(flag: Flag) -> str | None:
    """The part of the alliance the rupture on the flag's rating points to, if it names one."""
    rupture = getattr(flag.rating, "rupture", None)
    if rupture is None:
        return None
    return next((code for code in rupture.dimensions.split() if code in DIMENSIONS), None)


def _check(
    flag: Flag,
    marker: ReflectionOption,
    dimension: str,
    strategies: Collection[ReflectionOption],
    note: str,
    existing: Reflection | None,
) -> None:
    organization_id = flag.client.organization_id
    errors = {}
    markers = options_offered(organization_id, ReflectionOptionKind.MARKER, existing)
    if not markers.filter(pk=marker.pk).exists():
        errors["marker"] = NOT_OFFERED
    if dimension not in DIMENSIONS:
        errors["dimension"] = NO_DIMENSION
    offered = options_offered(organization_id, ReflectionOptionKind.STRATEGY, existing)
    if not strategies:
        errors["strategies"] = NO_STRATEGY
    elif offered.filter(pk__in=[s.pk for s in strategies]).count() != len(set(strategies)):
        errors["strategies"] = NOT_OFFERED
    elif problem := exclusive_error(strategies):
        errors["strategies"] = problem
    if len(note) > NOTE_MAX:
        errors["note"] = _("Keep the note to %(max)s characters.") % {"max": NOTE_MAX}
    if errors:
        raise ValidationError(errors)


def reflection_save(
    *,
    flag: Flag,
    by: User,
    marker: ReflectionOption,
    dimension: str,
    strategies: Collection[ReflectionOption],
    note: str = "",
    teaching_consent: bool = False,
    acknowledge: bool = False,
) -> Reflection:
    """Write or revise the flag's reflection, and acknowledge the flag if asked and still open.

    All of it or nothing: a refused answer stores nothing and leaves the flag as it was.
    """
    if flag.kind not in REFLECTED_KINDS:
        raise ValidationError(_("A reflection is written on a rupture or a reported tension."))
    note = note.strip()
    with transaction.atomic():
        # The flag's row is the lock: two first saves at once make one reflection, not an error.
        flag = Flag.objects.select_for_update().select_related("client").get(pk=flag.pk)
        reflection = Reflection.objects.filter(flag=flag).first()
        _check(flag, marker, dimension, strategies, note, reflection)
        now = timezone.now()
        if reflection is None:
            reflection = Reflection(flag=flag, author=by, created_at=now)
        reflection.marker = marker
        reflection.dimension = dimension
        reflection.note = note
        reflection.teaching_consent = teaching_consent
        reflection.updated_at = now
        reflection.save()
        reflection.strategies.set(strategies)
        if acknowledge and flag.status == FlagStatus.OPEN:
            flag_acknowledge(flag=flag, by=by)
    return reflection
