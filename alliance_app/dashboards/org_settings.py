"""What a change of the organisation's settings would do, said before it is saved; and saving it.

The numbers come from the rules the flags use (`measures.flags_for`, `measures.ruptures_for`,
`Thresholds.direction`), run in Python over this month's session ratings of the organisation and
its active clients' outcome ends, once with the settings in force and once with the new ones. The
work is a few queries whatever the number of ratings: one for the month's session-rating series,
one for the active clients' first and latest outcome totals, one for the SD each rupture rule is
built on, and one each for the two-factor and e-mail lines, each only when its setting changed.

Flags are stored when a rating is submitted (`feedback.services.rating_submit`) and never
recomputed, so a change applies to ratings stored from then on. Two derived records do follow at
once, as in the Django admin: the monthly concern counts of the team pages (`rollups.rebuild`)
and the rupture records of the supervision pages (`ruptures.rebuild`, raising no flags).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate, groupby
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_app.accounts.models import Organization, User
from alliance_app.clinic.contacts import erase_all_contacts
from alliance_app.clinic.models import ClientContact, Episode
from alliance_app.feedback import rollups, ruptures
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import ITEM_FIELDS, OutcomeEnds, Rater, Rating, rater_key
from alliance_app.measures import (
    ChangeDirection,
    FlagKind,
    FlagRules,
    RatingPoint,
    RuptureRules,
    Scale,
    flags_for,
    ruptures_for,
)

# The settings an organisation admin changes on the settings page, in the form's order.
SETTINGS_FIELDS = (
    "name",
    "time_zone",
    "alliance_cutoff",
    "alliance_drop",
    "low_item",
    "reliable_change",
    "no_change_sessions",
    "no_change_every",
    "rupture_k",
    "rupture_min_drop",
    "rupture_baseline_window",
    "rupture_repair_window",
    "rupture_sd",
    "ask_tension",
    "expected_quantile",
    "expected_min_episodes",
    "require_two_factor",
    "client_email",
)
RUPTURE_SETTINGS = frozenset(
    {
        "rupture_k",
        "rupture_min_drop",
        "rupture_baseline_window",
        "rupture_repair_window",
        "rupture_sd",
    }
)
SESSION_FLAG_SETTINGS = frozenset({"alliance_cutoff", "alliance_drop", "low_item"})
EXPECTED_SETTINGS = frozenset({"expected_quantile", "expected_min_episodes"})


@dataclass(frozen=True)
class PreviewLine:
    """One sentence of the preview, about one or more changed settings (`fields`)."""

    fields: tuple[str, ...]
    text: str
    link: str = ""
    link_text: str = ""


@dataclass(frozen=True)
class SessionSeries:
    """One rater's session ratings in one episode, and which of its sessions fall in the month."""

    points: list[RatingPoint]
    in_month: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class FlagCounts:
    """How many of the month's session ratings by clients there are (`rated`), and how many of
    them have each kind of flag by the rules in force (`now`) and by the new ones (`then`)."""

    rated: int
    now: dict[FlagKind, int]
    then: dict[FlagKind, int]

    @classmethod
    def of(cls, series: Sequence[SessionSeries], before: FlagRules, after: FlagRules):
        rated, now = flag_counts(series, before)
        _rated, then = flag_counts(series, after)
        return cls(rated, now, then)


def month_of(organization: Organization, now: datetime | None = None) -> tuple[date, date]:
    """The first day of this calendar month in the organisation's time zone, and of the next."""
    moment = now or datetime.now(tz=ZoneInfo("UTC"))
    today = moment.astimezone(ZoneInfo(organization.time_zone)).date()
    first = today.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def settings_preview(
    current: Organization,
    proposed: Organization,
    changed: Iterable[str],
    *,
    now: datetime | None = None,
) -> list[PreviewLine]:
    """A line for each changed setting (or group of them) saying what it would do.

    `current` is the organisation as stored, `proposed` the same with the new values (a
    validated, unsaved copy). The month is the current one in the stored time zone.
    """
    changed = set(changed)
    month = month_of(current, now)
    series = (
        month_series(current, month) if changed & (SESSION_FLAG_SETTINGS | RUPTURE_SETTINGS) else []
    )
    before, after = current.flag_rules(), proposed.flag_rules()
    lines: list[PreviewLine] = []
    if "name" in changed:
        lines.append(
            _line("name", _("The organisation will be called “%(name)s”.") % _name(proposed))
        )
    if "time_zone" in changed:
        lines.append(
            _line(
                "time_zone",
                _("Dates and times will be shown in %(zone)s, and today's session dated by it.")
                % {"zone": proposed.time_zone},
            )
        )
    if changed & SESSION_FLAG_SETTINGS:
        counts = FlagCounts.of(series, before, after)
        if "alliance_cutoff" in changed:
            lines.append(_concerns_line(counts, after))
        if "alliance_drop" in changed:
            lines.append(_drops_line(counts, after))
        if "low_item" in changed:
            lines.append(_low_items_line(counts, after))
    if changed & {"no_change_sessions", "no_change_every"}:
        lines.append(_no_change_line(proposed))
    if "reliable_change" in changed:
        lines.append(_reliable_change_line(current, before, after))
    if changed & RUPTURE_SETTINGS:
        lines.append(_ruptures_line(series, current, proposed, changed & RUPTURE_SETTINGS))
    if "ask_tension" in changed:
        lines.append(_tension_line(proposed))
    if changed & EXPECTED_SETTINGS:
        lines.append(_expected_line(changed & EXPECTED_SETTINGS))
    if "require_two_factor" in changed:
        lines.append(_two_factor_line(current, proposed))
    if "client_email" in changed:
        lines.append(_client_email_line(current, proposed))
    return lines


def month_series(organization: Organization, month: tuple[date, date]) -> list[SessionSeries]:
    """Every rater's session-rating series, whole, in the episodes with a session rating dated
    in `month`: a drop and a rupture are judged against the rater's earlier ratings."""
    first, following = month
    in_month = Q(session__date__gte=first, session__date__lt=following)
    rated = Rating.objects.filter(
        in_month, scale=Scale.SESSION.value, session__episode__client__organization=organization
    ).values("session__episode_id")
    rows = (
        Rating.objects.filter(scale=Scale.SESSION.value, session__episode_id__in=rated)
        .order_by("session__episode_id", "rater", "rater_label", "session__number")
        .values_list(
            "session__episode_id",
            "rater",
            "rater_label",
            "session__number",
            "session__date",
            "instrument",
            "total",
            *ITEM_FIELDS,
        )
    )
    instruments = catalogue()
    found = []
    for _key, group in groupby(rows, key=lambda row: row[:3]):
        points, dated = [], set()
        for _episode, rater, label, number, day, code, total, *items in group:
            points.append(
                RatingPoint(
                    number, rater_key(rater, label), instruments.get(code), tuple(items), total
                )
            )
            if first <= day < following:
                dated.add(number)
        if dated:
            found.append(SessionSeries(points, frozenset(dated)))
    return found


def flag_counts(
    series: Sequence[SessionSeries], rules: FlagRules
) -> tuple[int, dict[FlagKind, int]]:
    """How many of the month's session ratings by clients there are, and how many of them
    `flags_for` finds each kind of flag for under `rules` (a rating counts once per kind)."""
    counts: dict[FlagKind, int] = defaultdict(int)
    rated = 0
    for one in series:
        for point in one.points:
            if point.rater != Rater.CLIENT or point.session_number not in one.in_month:
                continue
            rated += 1
            for kind in {finding.kind for finding in flags_for(point, one.points, rules)}:
                counts[kind] += 1
    return rated, counts


def rupture_count(series: Sequence[SessionSeries], rules: RuptureRules, s: Decimal) -> int:
    """How many of the month's session ratings, by any rater, `ruptures_for` finds ruptures.

    The rule runs only over the series where one could be: a usual level is a mean of earlier
    totals, never above the highest of them, so a month's total less than the threshold below
    every earlier total of its rater is no rupture, whatever the window.
    """
    threshold = rules.threshold(s)
    return sum(
        1
        for one in series
        if _may_rupture(one, threshold)
        for rupture in ruptures_for(one.points, s=s, rules=rules)
        if rupture.session_number in one.in_month
    )


def _may_rupture(one: SessionSeries, threshold: Decimal) -> bool:
    points = sorted(one.points, key=lambda point: point.session_number)
    highest = accumulate((point.total for point in points), max)
    return any(
        point.session_number in one.in_month and earlier - point.total >= threshold
        for point, earlier in zip(points[1:], highest, strict=False)
    )


def reliable_changes(
    organization: Organization, rules_pair: Sequence[FlagRules]
) -> list[dict[ChangeDirection, int]]:
    """For each of the rules, how many active clients' open episodes have reliably improved and
    deteriorated from their first to their latest outcome rating (`Thresholds.direction`)."""
    ends = OutcomeEnds.objects.filter(
        episode__client__organization=organization,
        episode__client__active=True,
        episode__closed__isnull=True,
    ).values_list("instrument", "first_total", "latest_total")
    counted = [defaultdict(int) for _rules in rules_pair]
    for code, first_total, latest_total in ends:
        instrument = catalogue().get(code)
        for rules, counts in zip(rules_pair, counted, strict=True):
            counts[rules.thresholds(instrument).direction(first_total, latest_total)] += 1
    return counted


def settings_save(*, organization: Organization, changed: Sequence[str]) -> int:
    """Store the changed settings, and bring what follows from them up to date in the same
    transaction: the monthly concern counts after a new alliance cutoff, the rupture records after
    a new rupture rule, and no client's e-mail address kept once the organisation stops keeping
    them. Flags already raised stay as they are. Returns how many addresses were erased."""
    with transaction.atomic():
        organization.save(update_fields=list(changed))
        if "alliance_cutoff" in changed:
            rollups.rebuild(Episode.objects.filter(client__organization=organization))
        if RUPTURE_SETTINGS & set(changed):
            ruptures.rebuild(organization)
        if "client_email" in changed and not organization.client_email:
            return erase_all_contacts(organization)
    return 0


def _line(fields: str | Iterable[str], text: str, **link) -> PreviewLine:
    names = (fields,) if isinstance(fields, str) else tuple(sorted(fields))
    return PreviewLine(names, text, **link)


def _name(organization: Organization) -> dict[str, str]:
    return {"name": organization.name}


def _cutoff_words(rules: FlagRules) -> str:
    if rules.alliance_cutoff is None:
        return _("each scale's own alliance cutoff")
    return _("an alliance cutoff of %(cutoff)s") % {
        "cutoff": ruptures.points_shown(rules.alliance_cutoff)
    }


def _concerns_line(counts: FlagCounts, after: FlagRules) -> PreviewLine:
    rated, now, then = counts.rated, counts.now, counts.then
    text = _(
        "With %(cutoff)s, %(then)s of this month's %(rated)s session ratings by clients would "
        "count as alliance concerns, against %(now)s now. The team pages count this and past "
        "months again by the new cutoff."
    ) % {
        "cutoff": _cutoff_words(after),
        "then": then[FlagKind.LOW_ALLIANCE],
        "rated": rated,
        "now": now[FlagKind.LOW_ALLIANCE],
    }
    return _line("alliance_cutoff", text)


def _drops_line(counts: FlagCounts, after: FlagRules) -> PreviewLine:
    rated, now, then = counts.rated, counts.now, counts.then
    text = _(
        "With an alliance drop of %(drop)s points, %(then)s of this month's %(rated)s session "
        "ratings by clients would count as a drop since the client's previous session rating, "
        "against %(now)s now."
    ) % {
        "drop": ruptures.points_shown(after.alliance_drop),
        "then": then[FlagKind.ALLIANCE_DROP],
        "rated": rated,
        "now": now[FlagKind.ALLIANCE_DROP],
    }
    return _line("alliance_drop", text)


def _low_items_line(counts: FlagCounts, after: FlagRules) -> PreviewLine:
    rated, now, then = counts.rated, counts.now, counts.then
    text = _(
        "With a low item score of %(low)s, %(then)s of this month's %(rated)s session ratings by "
        "clients would have a low item, against %(now)s now."
    ) % {
        "low": ruptures.points_shown(after.low_item),
        "then": then[FlagKind.LOW_ITEM],
        "rated": rated,
        "now": now[FlagKind.LOW_ITEM],
    }
    return _line("low_item", text)


def _no_change_line(proposed: Organization) -> PreviewLine:
    text = _(
        "A client without reliable improvement will be reviewed at sessions %(sessions)s, then "
        "every %(every)s sessions."
    ) % {
        "sessions": ", ".join(str(number) for number in proposed.no_change_sessions),
        "every": proposed.no_change_every,
    }
    return _line({"no_change_sessions", "no_change_every"}, text)


def _reliable_change_line(
    current: Organization, before: FlagRules, after: FlagRules
) -> PreviewLine:
    now, then = reliable_changes(current, (before, after))
    if after.reliable_change is None:
        value = _("each outcome scale's own reliable change")
    else:
        value = _("a reliable change of %(points)s points") % {
            "points": ruptures.points_shown(after.reliable_change)
        }
    text = _(
        "With %(value)s, %(improved)s of the %(clients)s active clients with outcome ratings "
        "would count as reliably improved and %(deteriorated)s as reliably deteriorated, "
        "against %(improved_now)s and %(deteriorated_now)s now."
    ) % {
        "clients": sum(now.values()),
        "value": value,
        "improved": then[ChangeDirection.IMPROVED],
        "deteriorated": then[ChangeDirection.DETERIORATED],
        "improved_now": now[ChangeDirection.IMPROVED],
        "deteriorated_now": now[ChangeDirection.DETERIORATED],
    }
    return _line("reliable_change", text)


def _ruptures_line(series, current: Organization, proposed: Organization, fields) -> PreviewLine:
    s_now = ruptures.sd_in_force(current).value
    s_then = (
        s_now if proposed.rupture_sd == current.rupture_sd else ruptures.sd_in_force(proposed).value
    )
    rules = proposed.rupture_rules()
    now = rupture_count(series, current.rupture_rules(), s_now)
    then = rupture_count(series, rules, s_then)
    text = ngettext(
        "With a rupture threshold of %(threshold)s points (%(k)s × SD %(sd)s, at least "
        "%(min_drop)s) against the mean of up to %(window)s previous sessions, this month's "
        "session ratings would hold %(then)s rupture, against %(now)s now. The supervision "
        "pages find past ruptures again by the new rule.",
        "With a rupture threshold of %(threshold)s points (%(k)s × SD %(sd)s, at least "
        "%(min_drop)s) against the mean of up to %(window)s previous sessions, this month's "
        "session ratings would hold %(then)s ruptures, against %(now)s now. The supervision "
        "pages find past ruptures again by the new rule.",
        then,
    ) % {
        "threshold": ruptures.points_shown(rules.threshold(s_then)),
        "k": ruptures.points_shown(rules.k),
        "sd": ruptures.points_shown(s_then),
        "min_drop": ruptures.points_shown(rules.min_drop),
        "window": rules.baseline_window,
        "then": then,
        "now": now,
    }
    return _line(fields, text)


def _tension_line(proposed: Organization) -> PreviewLine:
    if proposed.ask_tension:
        text = _("After the session scale, clients will be asked whether there was tension.")
    else:
        text = _("Clients will no longer be asked about tension; their answers so far are kept.")
    return _line("ask_tension", text)


def _expected_line(fields) -> PreviewLine:
    return _line(
        fields,
        _(
            "The expected-response band in use stays as it is: fit it again for the new "
            "setting to apply."
        ),
        link=reverse("expected_response"),
        link_text=_("Expected response"),
    )


def _two_factor_line(current: Organization, proposed: Organization) -> PreviewLine:
    if not proposed.require_two_factor:
        return _line(
            "require_two_factor",
            _("Members who have an authenticator keep using it; nobody else is asked for one."),
        )
    confirmed = TOTPDevice.objects.filter(confirmed=True).values("user_id")
    without = (
        User.objects.filter(membership__organization=current, is_active=True)
        .exclude(pk__in=confirmed)
        .count()
    )
    text = ngettext(
        "Every member must confirm logins with an authenticator app: %(count)s member has none "
        "yet and will be asked to set one up at their next login.",
        "Every member must confirm logins with an authenticator app: %(count)s members have none "
        "yet and will be asked to set one up at their next login.",
        without,
    ) % {"count": without}
    return _line("require_two_factor", text)


def _client_email_line(current: Organization, proposed: Organization) -> PreviewLine:
    if proposed.client_email:
        return _line(
            "client_email",
            _(
                "Therapists may store a client's e-mail address, apart from the client's record, "
                "to send rating links."
            ),
        )
    stored = ClientContact.objects.filter(client__organization=current).count()
    text = ngettext(
        "Therapists will no longer store clients' e-mail addresses: %(count)s client's e-mail "
        "address will be erased.",
        "Therapists will no longer store clients' e-mail addresses: %(count)s clients' e-mail "
        "addresses will be erased.",
        stored,
    ) % {"count": stored}
    return _line("client_email", text)
