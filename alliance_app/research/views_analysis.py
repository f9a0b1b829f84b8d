"""The alliance-outcome page: the stored fit of the organisation or one of its teams, never a fit
made in the request (`manage.py fit_alliance_outcome` makes them; `research.analysis` says how).

Admins see the organisation and every team; supervisors the organisation and the teams they
supervise, since the organisation's figure is a pooled estimate that names nobody; therapists
get 403. A team of another organisation, or one a supervisor does not supervise, is a 404.
"""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alliance_app.accounts.access import require_role
from alliance_app.accounts.models import Membership, Role, Team
from alliance_app.dashboards import charts

from . import analysis
from .models import AllianceOutcomeFit, AnalysisStatus

TERM_LABELS = {
    analysis.INTERCEPT: gettext_lazy("Intercept"),
    "alliance_within": gettext_lazy("Session rating above the client's own mean (within)"),
    "alliance_between": gettext_lazy("Client's mean session rating (between)"),
    "outcome_now": gettext_lazy("Outcome in the same session"),
    "session_number": gettext_lazy("Session number (the trend over treatment)"),
}


@login_required
def alliance_outcome(request: HttpRequest, team_pk: int | None = None) -> HttpResponse:
    membership = require_role(request, Role.ADMIN, Role.SUPERVISOR)
    teams = list(_teams_for(membership))
    team = None
    if team_pk is not None:
        team = next((t for t in teams if t.pk == team_pk), None)
        if team is None:
            raise Http404
    # The status of every scope shown, without their results (an organisation's fits number its
    # teams); then the one fit shown, whole.
    fits = {
        row.team_id: row
        for row in AllianceOutcomeFit.objects.filter(
            Q(team__isnull=True) | Q(team__in=[t.pk for t in teams]),
            organization_id=membership.organization_id,
        ).only("team_id", "status")
    }
    shown = fits.get(team.pk if team else None)
    stored = AllianceOutcomeFit.objects.get(pk=shown.pk) if shown else None
    result = analysis.result_from(stored.results) if stored else None
    fitted = result is not None and result.status == AnalysisStatus.FITTED
    context: dict[str, Any] = {
        "team": team,
        "scope_name": str(team) if team else str(membership.organization),
        "scopes": _scopes(membership, teams, fits, team),
        "stored": stored,
        "result": result,
        "fitted": fitted,
        "fluckiger": {
            "r": analysis.FLUCKIGER_R,
            "low": analysis.FLUCKIGER_CI[0],
            "high": analysis.FLUCKIGER_CI[1],
            "studies": analysis.FLUCKIGER_STUDIES,
        },
    }
    if fitted:
        context |= {
            "rows": [(TERM_LABELS[term.name], term) for term in result.terms],
            "within": result.term("alliance_within"),
            "between": result.term("alliance_between"),
            "pairs_per_client": result.pairs / result.clients,
            "chart": charts.chart_json(coefficient_chart(result)),
            "chart_config": charts.chart_json(charts.chart_config()),
        }
    return render(request, "research/alliance_outcome.html", context)


def _teams_for(membership: Membership):
    if membership.role == Role.ADMIN:
        return Team.objects.filter(organization_id=membership.organization_id).order_by("name")
    return membership.supervised_teams.order_by("name")


def _scopes(membership, teams, fits, current) -> list[dict[str, Any]]:
    """The organisation and the teams the viewer may open, each with its fit's status."""
    scopes = [
        {
            "name": str(membership.organization),
            "url": reverse("alliance_outcome"),
            "fit": fits.get(None),
            "current": current is None,
        }
    ]
    scopes += [
        {
            "name": str(team),
            "url": reverse("alliance_outcome_team", args=[team.pk]),
            "fit": fits.get(team.pk),
            "current": current is not None and current.pk == team.pk,
        }
        for team in teams
    ]
    return scopes


def coefficient_chart(result: analysis.FitResult) -> dict[str, Any]:
    """Each fixed effect but the intercept as a point with its 95% interval, on one axis of
    outcome points per unit of the predictor, with zero marked."""
    terms = [term for term in result.terms if term.name != analysis.INTERCEPT]
    labels = [str(TERM_LABELS[term.name]) for term in terms]
    hover = _("%(label)s<br>%(estimate).2f [%(low).2f, %(high).2f]")
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": [round(term.estimate, 3) for term in terms],
                "y": labels,
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [round(term.high - term.estimate, 3) for term in terms],
                    "arrayminus": [round(term.estimate - term.low, 3) for term in terms],
                    "color": charts.RATER_COLOURS[0],
                    "thickness": 2,
                },
                "marker": {"color": charts.RATER_COLOURS[0], "size": 10},
                "hovertext": [
                    hover
                    % {
                        "label": label,
                        "estimate": term.estimate,
                        "low": term.low,
                        "high": term.high,
                    }
                    for label, term in zip(labels, terms, strict=True)
                ],
                "hoverinfo": "text",
                "showlegend": False,
            }
        ],
        "layout": {
            "font": {"family": charts.FONT_FAMILY, "size": 13},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "#ffffff",
            "margin": {"l": 16, "r": 16, "t": 16, "b": 48},
            "xaxis": {
                "title": {"text": _("Change in the next outcome (points)")},
                "zeroline": True,
                "zerolinecolor": charts.CUTOFF_COLOUR,
                "gridcolor": "#e5e5e5",
            },
            # Labels are long: they sit above each point rather than in a left margin that
            # would squeeze the plot to nothing on a phone.
            "yaxis": {"autorange": "reversed", "showticklabels": False},
            "annotations": [
                {
                    "text": label,
                    "x": 0,
                    "xref": "paper",
                    "xanchor": "left",
                    "y": label,
                    "yref": "y",
                    "yshift": 16,
                    "showarrow": False,
                    "font": {"size": 12},
                }
                for label in labels
            ],
            "hovermode": "closest",
        },
    }
