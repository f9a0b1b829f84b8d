"""The supervision page: one therapist's ruptures and repairs beside their team's (DESIGN.md §5).

Seen by the therapist themself, the supervisors of their team and the organisation's admins
(`accounts.access.get_visible_therapist`). Every figure comes from summary rows
(`selectors.rupture_tallies`, `dashboards.ruptures`), so the page costs the same number of
queries however many clients lie behind it, and they are computed once per change of the data
and viewer (`accounts.cached`). It says which rupture rule is in force, because the count of
ruptures depends on it (Gumz et al. 2012).
"""

import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.gzip import gzip_page

from alliance_app.accounts.access import (
    PeerScope,
    get_visible_therapist,
    require_membership,
    supervision_peers,
    therapists_visible_to,
)
from alliance_app.accounts.cached import keyed_result
from alliance_app.accounts.models import Membership, Organization, Role, User
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record_each
from alliance_app.clinic.access import clients_visible_to
from alliance_app.feedback.models import ReflectionOptionKind
from alliance_app.feedback.ruptures import SDSource, sd_in_force
from alliance_app.lib.db_router import replica_reads
from alliance_app.measures import pooled_within_sd
from alliance_app.measures import score_shown as shown

from . import charts, ruptures, selectors

# Months back from the current one; "all" is every month.
PERIODS = {"6": 6, "12": 12, "24": 24, "all": None}
DEFAULT_PERIOD = "12"
# `measures.pooled_within_sd`'s defaults: the series and degrees of freedom an SD must rest on.
SD_MIN_SERIES = pooled_within_sd.__kwdefaults__["min_series"]
SD_MIN_DEGREES_OF_FREEDOM = pooled_within_sd.__kwdefaults__["min_degrees_of_freedom"]


@login_required
@replica_reads
def supervision_index(request: HttpRequest) -> HttpResponse:
    """The therapists whose supervision page the user may open; a therapist goes to their own."""
    membership = require_membership(request)
    if membership.role == Role.THERAPIST:
        return redirect("supervision", pk=request.user.pk)
    therapists = list(
        therapists_visible_to(membership)
        .select_related("membership__team")
        .order_by("first_name", "last_name", "username")
    )
    ids = [user.pk for user in therapists]
    rated, statuses = selectors.rupture_counts(ids)
    rates = ruptures.rates_by(rated, statuses, {pk: pk for pk in ids}, ids)
    # A supervisor appears as a therapist only when they carry a caseload of their own.
    rows = [
        (user, rates[user.pk])
        for user in therapists
        if rates[user.pk].rated_sessions or user.membership.role == Role.THERAPIST
    ]
    return render(
        request,
        "dashboards/supervision_index.html",
        {"rows": rows, "minimum": ruptures.MINIMUM},
    )


@gzip_page
@login_required
@replica_reads
def supervision(request: HttpRequest, pk: int) -> HttpResponse:
    therapist = get_visible_therapist(request, pk)
    membership = require_membership(request)
    period = request.GET.get("months", DEFAULT_PERIOD)
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    # The viewer is part of the key: the episodes listed are those of clients they may see.
    (context, opened), key = keyed_result(
        "supervision",
        [therapist, membership, period],
        lambda: _supervision_context(membership, therapist, period),
    )
    audit_record_each(request, action=Action.CLIENT_VIEWED, object_type="client", objects=opened)
    return render(
        request,
        "dashboards/supervision.html",
        # The page shows the result and the parts only: its HTML is kept under the result's key.
        {"therapist": therapist, "periods": _period_choices(), "result_key": key, **context},
    )


def _supervision_context(
    membership: Membership, therapist: User, period: str
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The page's figures and the clients whose episodes it lists (for the audit entries)."""
    since = _since(PERIODS[period], timezone.localdate())
    peers = supervision_peers(membership, therapist)
    mine = selectors.rupture_tallies([therapist.pk], since=since, monthly=True)
    team = selectors.rupture_tallies(peers.ids, since=since, monthly=False) if peers.ids else None
    sequences = selectors.rupture_list(
        therapist.pk, since=since, clients=clients_visible_to(membership)
    )
    mine_summary = ruptures.summarise(mine)
    team_summary = ruptures.summarise(team) if team is not None else None
    name, team_name = str(therapist), _peer_name(peers.scope, therapist, membership.organization)
    profiles = [(name, mine_summary.profile)]
    if team_summary is not None:
        profiles.append((team_name, team_summary.profile))
    empty = ruptures.Tallies()
    profile = charts.profile_chart(profiles)
    context = {
        "period": period,
        "since": since,
        "mine": mine_summary,
        "team": team_summary,
        "team_name": team_name,
        "rule": rule_in_force(membership.organization),
        "markers": ruptures.choice_rows(mine, team or empty, ReflectionOptionKind.MARKER),
        "strategies": ruptures.choice_rows(mine, team or empty, ReflectionOptionKind.STRATEGY),
        "sequences": [(sequence, _client_link(sequence)) for sequence in sequences],
        "profile_chart": charts.chart_json(profile),
        "has_profile": bool(profile["data"]),
        "month_chart": charts.chart_json(charts.rupture_month_chart(ruptures.by_month(mine))),
        "chart_config": charts.chart_json(charts.chart_config()),
    }
    return context, sorted({(str(seq.client_id), seq.code) for seq in sequences})


def _since(months: int | None, today: datetime.date) -> datetime.date | None:
    """The first day of the month `months` - 1 months before today's: "the last 12 months"
    are this month and the 11 before it."""
    if months is None:
        return None
    index = today.year * 12 + today.month - 1 - (months - 1)
    return datetime.date(index // 12, index % 12 + 1, 1)


def _period_choices() -> list[tuple[str, str]]:
    return [
        ("6", _("Last 6 months")),
        ("12", _("Last 12 months")),
        ("24", _("Last 24 months")),
        ("all", _("All time")),
    ]


def _peer_name(scope: PeerScope, therapist: User, organization: Organization) -> str:
    if scope == PeerScope.ORGANIZATION:
        return str(organization)
    if scope == PeerScope.TEAM:
        # The team's own name: teams are often named "North team" already.
        return str(therapist.membership.team)
    return _("Everyone you supervise")


def _client_link(sequence: ruptures.EpisodeSequence) -> str:
    url = reverse("client_detail", args=[sequence.client_id])
    return f"{url}?episode={sequence.episode_id}#chart"


def rule_in_force(organization: Organization) -> list[str]:
    """The rupture rule in force here, in words and numbers, and where its SD comes from."""
    rules = organization.rupture_rules()
    sd = sd_in_force(organization)
    threshold = rules.threshold(sd.value)
    sentences = [
        _(
            "A rupture here is a session total at least %(threshold)s points below the rater's "
            "usual level, the mean of up to %(window)s previous totals (at least %(least)s): "
            "threshold = max(k × SD, minimum drop) = max(%(k)s × %(sd)s, %(min_drop)s) = "
            "%(threshold)s."
        )
        % {
            "threshold": shown(threshold),
            "window": rules.baseline_window,
            "least": rules.min_previous,
            "k": shown(rules.k),
            "sd": shown(sd.value),
            "min_drop": shown(rules.min_drop),
        },
        _(
            "It is repaired when, within %(window)s sessions, a total comes back to within "
            "%(margin)s points of that level (%(tolerance)s × the threshold); after those "
            "sessions, or when the episode closes, it is unrepaired; until then it is pending."
        )
        % {
            "window": rules.repair_window,
            "margin": shown(rules.repair_tolerance * threshold),
            "tolerance": shown(rules.repair_tolerance),
        },
        _sd_sentence(sd),
        _(
            "Gumz et al. 2012 showed that how many ruptures are found depends on the rule "
            "(Strauss et al. 2006 used k = 1, Stiles et al. 2004 k = 2): compare figures only "
            "under the same rule."
        ),
    ]
    return sentences


def _sd_sentence(sd) -> str:
    if sd.source == SDSource.FIXED:
        return _("SD %(sd)s: fixed by the organisation's admin.") % {"sd": shown(sd.value)}
    if sd.source == SDSource.MEASURED:
        return _(
            "SD %(sd)s: the pooled within-client SD of session totals, measured over "
            "%(series)s series (%(df)s degrees of freedom) on %(date)s."
        ) % {
            "sd": shown(sd.value),
            "series": sd.series,
            "df": sd.degrees_of_freedom,
            "date": date_format(timezone.localtime(sd.measured_at), "DATE_FORMAT"),
        }
    needed = {
        "sd": shown(sd.value),
        "series": SD_MIN_SERIES,
        "df": SD_MIN_DEGREES_OF_FREEDOM,
    }
    if sd.measured_at is None:
        return (
            _(
                "SD %(sd)s: the fallback, until the clinic's own SD is measured; that needs "
                "%(series)s series of two or more session ratings (%(df)s degrees of freedom)."
            )
            % needed
        )
    return _(
        "SD %(sd)s: the fallback, while the clinic has fewer than %(series)s series of two or "
        "more session ratings (%(df)s degrees of freedom) to measure its own: %(found)s series "
        "on %(date)s."
    ) % {
        **needed,
        "found": sd.series,
        "date": date_format(timezone.localtime(sd.measured_at), "DATE_FORMAT"),
    }
