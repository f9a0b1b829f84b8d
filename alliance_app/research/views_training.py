"""Trainings: recording one and its before/after evaluation (DESIGN.md §5, training).

Admins and supervisors of the organisation record trainings and read their evaluations; a
therapist gets 403, anyone of another organisation 404. The evaluation reads summary rows only
(three grouped queries over the windows' months, `evaluation_rows`), so it costs the same however
many clients and ratings lie behind it; the computation is `research.evaluation`, done once per
change of the data (`accounts.cached`).
"""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from alliance_app.accounts.access import require_role
from alliance_app.accounts.cached import keyed_result
from alliance_app.accounts.models import Membership, Role, User
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.models import Closure, Episode
from alliance_app.dashboards import charts
from alliance_app.feedback.models import AllianceMonth, Rater, Rupture
from alliance_app.measures import RuptureStatus

from . import evaluation
from .evaluation import GROUP_NAMES, WINDOW_NAMES, Evaluation, FigureResult, Group, Window, Windows
from .forms import TrainingForm
from .models import Training

ORGANISERS = (Role.ADMIN, Role.SUPERVISOR)


def clinicians(membership: Membership) -> QuerySet[User]:
    """The organisation's therapists, supervisors with a caseload among them: who may attend."""
    return User.objects.filter(
        membership__organization=membership.organization,
        membership__role__in=[Role.THERAPIST, Role.SUPERVISOR],
    ).order_by("first_name", "last_name", "username")


def _training(request: HttpRequest, pk: int) -> tuple[Membership, Training]:
    membership = require_role(request, *ORGANISERS)
    training = get_object_or_404(Training, pk=pk, organization=membership.organization)
    return membership, training


@login_required
def training_list(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, *ORGANISERS)
    trainings = (
        Training.objects.filter(organization=membership.organization)
        .annotate(attended=Count("attendees"))
        .order_by("-date", "-pk")
    )
    return render(request, "research/training_list.html", {"trainings": trainings})


@login_required
def training_new(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, *ORGANISERS)
    return _edit(request, membership, Training(organization=membership.organization))


@login_required
def training_edit(request: HttpRequest, pk: int) -> HttpResponse:
    membership, training = _training(request, pk)
    return _edit(request, membership, training)


def _edit(request: HttpRequest, membership: Membership, training: Training) -> HttpResponse:
    form = TrainingForm(request.POST or None, instance=training, therapists=clinicians(membership))
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            saved = form.save(commit=False)
            if saved.pk is None:
                saved.created_by = request.user
            saved.save()
            form.save_m2m()
            audit_record(request, action=Action.TRAINING_SAVED, obj=saved, detail=saved.title)
        return redirect("training_evaluation", pk=saved.pk)
    return render(request, "research/training_form.html", {"form": form, "training": training})


def evaluation_rows(therapist_ids: list[int], windows: Windows) -> list[dict[str, Any]]:
    """The therapists' summary rows over the windows, per therapist and month, in three queries:
    the client's own session ratings and tension answers, the ruptures of the client's own series
    by the month they happened, and the episodes closed in a month with their outcome ends."""
    start, end = windows.before_first, windows.end
    alliance = (
        AllianceMonth.objects.filter(
            therapist_id__in=therapist_ids, month__gte=start, month__lt=end
        )
        .order_by()
        .values("therapist_id", "month")
        .annotate(
            rated=Sum("count"),
            total_sum=Sum("total_sum"),
            concerns=Sum("concerns"),
            tension_answers=Sum("tensions_answered"),
            tensions=Sum("tensions"),
        )
    )
    ruptures = (
        Rupture.objects.filter(
            therapist_id__in=therapist_ids,
            month__gte=start,
            month__lt=end,
            rater=Rater.CLIENT,
            rater_label="",
        )
        .order_by()
        .values("therapist_id", "month")
        .annotate(
            ruptures=Count("pk"),
            repaired=Count("pk", filter=Q(status=RuptureStatus.REPAIRED.value)),
            unrepaired=Count("pk", filter=Q(status=RuptureStatus.UNREPAIRED.value)),
        )
    )
    # Two session numbers mean two outcome ratings: an effect size needs a change.
    measured = Q(outcome_ends__first_number__lt=F("outcome_ends__latest_number"))
    first, latest = F("outcome_ends__first_total"), F("outcome_ends__latest_total")
    closed = (
        Episode.objects.filter(therapist_id__in=therapist_ids, closed__gte=start, closed__lt=end)
        .order_by()
        .annotate(month=TruncMonth("closed"))
        .values("therapist_id", "month")
        .annotate(
            closed=Count("pk"),
            unplanned=Count("pk", filter=Q(closure=Closure.UNPLANNED)),
            outcomes=Count("pk", filter=measured),
            intake_sum=Sum(first, filter=measured),
            intake_squares=Sum(first * first, filter=measured),
            change_sum=Sum(latest - first, filter=measured),
        )
    )
    return [*alliance, *ruptures, *closed]


@login_required
def training_evaluation(request: HttpRequest, pk: int) -> HttpResponse:
    membership, training = _training(request, pk)
    days, days_note = _days(request.GET.get("days"))
    context, key = keyed_result(
        "training_evaluation",
        [membership.organization, training, days],
        lambda: _evaluation_context(membership, training, days),
    )
    # The page's HTML is the result's (and the training's, a part of its key): kept under it.
    return render(
        request,
        "research/training_evaluation.html",
        {"training": training, "days_note": days_note, **context, "result_key": key},
    )


def _evaluation_context(membership: Membership, training: Training, days: int) -> dict[str, Any]:
    windows = Windows.around(training.date, days)
    ids = list(clinicians(membership).values_list("pk", flat=True))
    attendees = list(
        training.attendees.filter(pk__in=ids).values_list(
            "pk", "first_name", "last_name", "username"
        )
    )
    attendee_ids = {row[0] for row in attendees}
    sums = evaluation.therapist_sums(evaluation_rows(ids, windows), windows)
    result = evaluation.evaluate(sums, attendee_ids, windows)
    return {
        "attendees": [(" ".join(filter(None, row[1:3])) or row[3]) for row in attendees],
        "without_ratings": len(attendee_ids - set(sums)),
        "days": days,
        "limits": (evaluation.MIN_DAYS, evaluation.MAX_DAYS),
        "windows": windows,
        "after_unfinished": windows.end > timezone.localdate(),
        "result": result,
        "rows": _rows(result),
        "counts": _count_rows(result),
        "draws": evaluation.DRAWS,
        "minimum_therapists": evaluation.MIN_THERAPISTS,
        "chart_config": charts.chart_json(charts.chart_config()),
    }


def _days(raw: str | None) -> tuple[int, str]:
    if raw is None or raw == "":
        return evaluation.DEFAULT_DAYS, ""
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if evaluation.MIN_DAYS <= days <= evaluation.MAX_DAYS:
        return days, ""
    return evaluation.DEFAULT_DAYS, _(
        "The window is a whole number of days from %(low)s to %(high)s; shown with %(days)s."
    ) % {"low": evaluation.MIN_DAYS, "high": evaluation.MAX_DAYS, "days": evaluation.DEFAULT_DAYS}


def _rows(result: Evaluation) -> list[dict[str, Any]]:
    return [
        {
            "figure": figure,
            "cells": [figure.cell(group, window) for group in Group for window in Window],
            "chart": charts.chart_json(_chart(figure)),
            "charted": any(cell.value is not None for cell in figure.cells.values()),
        }
        for figure in result.figures
    ]


def _count_rows(result: Evaluation) -> list[dict[str, Any]]:
    labels = (
        ("therapists", _("Therapists with rated sessions")),
        ("rated", _("Rated sessions")),
        ("ruptures", _("Ruptures")),
        ("repaired", _("Repaired")),
        ("unrepaired", _("Unrepaired")),
        ("tension_answers", _("Answers to the tension question")),
        ("tensions", _("Tensions reported")),
        ("concerns", _("Ratings below the cut-off")),
        ("closed", _("Episodes closed")),
        ("unplanned", _("Of them unplanned")),
        ("outcomes", _("Closed with two outcome ratings")),
    )
    return [
        {
            "label": label,
            "values": [result.counts[group, window][key] for group in Group for window in Window],
        }
        for key, label in labels
    ]


def _chart(figure: FigureResult) -> dict[str, Any]:
    """Before and after, a line per group; a point with too few behind it is hollow."""
    x = [str(WINDOW_NAMES[window]).capitalize() for window in Window]
    data = []
    for position, group in enumerate(Group):
        cells = [figure.cell(group, window) for window in Window]
        colour = charts.RATER_COLOURS[position]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": escape(str(GROUP_NAMES[group]).capitalize()),
                "x": x,
                "y": [cell.value for cell in cells],
                "line": {"color": colour, "width": 2},
                "marker": {
                    "size": 11,
                    "color": [colour if cell.enough else "#ffffff" for cell in cells],
                    "line": {"color": colour, "width": 2},
                },
                "hovertext": [
                    _("%(value)s from %(count)s %(basis)s%(few)s")
                    % {
                        "value": "—" if cell.value is None else cell.value,
                        "count": cell.basis,
                        "basis": figure.rule.basis_name,
                        "few": "" if cell.enough else _(": too few to judge"),
                    }
                    for cell in cells
                ],
                "hoverinfo": "text",
            }
        )
    layout = charts._base_layout() | {
        "xaxis": {"type": "category"},
        "yaxis": {"automargin": True},
        "legend": charts.LEGEND_ABOVE,
        "margin": {"l": 56, "r": 16, "t": 40, "b": 40},
        "height": 280,
    }
    return charts._figure(data, layout)
