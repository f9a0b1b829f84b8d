"""Teaching case sets: the list, putting one together, its handout and the handout as a PDF.

Supervisors teach from the ruptures of the therapists they supervise, admins from the whole
organisation's (`cases.ruptures_in_scope`); a therapist gets 403, anyone of another organisation
404. The handout names no client and gives no dates (`cases.case_views`); each view and download
is still recorded in the audit trail, as the exports are.
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from alliance_app.accounts.access import require_role
from alliance_app.accounts.models import Membership, Role
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.dashboards import charts
from alliance_app.feedback.models import (
    BordinChoice,
    ReflectionOption,
    ReflectionOptionKind,
    RuptureStatusChoice,
)
from alliance_app.feedback.reflections import option_label

from . import cases
from .models import Case, CaseSet
from .pdf import handout_pdf

TRAINERS = (Role.ADMIN, Role.SUPERVISOR)
SHOWN_AT_MOST = 200


class CaseSetForm(forms.ModelForm):
    class Meta:
        model = CaseSet
        fields = ["title", "show_therapist", "questions"]
        widgets = {"questions": forms.Textarea(attrs={"rows": 6})}

    def clean_questions(self):
        questions = self.cleaned_data["questions"]
        if not any(line.strip() for line in questions.splitlines()):
            raise forms.ValidationError(gettext_lazy("Give at least one discussion question."))
        return questions


def _case_set(request: HttpRequest, pk: int) -> CaseSet:
    membership = require_role(request, *TRAINERS)
    return get_object_or_404(CaseSet, pk=pk, organization=membership.organization)


@login_required
@require_GET
def case_set_list(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, *TRAINERS)
    sets = (
        CaseSet.objects.filter(organization=membership.organization)
        .annotate(size=Count("cases"))
        .select_related("created_by")
    )
    return render(request, "research/case_set_list.html", {"case_sets": sets})


def _options(membership: Membership, kind: str) -> list[tuple[str, str]]:
    options = ReflectionOption.objects.filter(organization=membership.organization, kind=kind)
    return [(option.code, option_label(option)) for option in options]


@login_required
def case_set_new(request: HttpRequest) -> HttpResponse:
    membership = require_role(request, *TRAINERS)
    scope = cases.ruptures_in_scope(membership)
    chosen = {
        "dimension": request.GET.get("dimension", ""),
        "status": request.GET.get("status", ""),
        "marker": request.GET.get("marker", ""),
        "strategy": request.GET.get("strategy", ""),
    }
    if chosen["dimension"] not in BordinChoice.values:
        chosen["dimension"] = ""
    if chosen["status"] not in RuptureStatusChoice.values:
        chosen["status"] = ""
    form = CaseSetForm(request.POST or None)
    errors = []
    ticked = request.POST.getlist("ruptures") if request.method == "POST" else []
    if request.method == "POST":
        try:
            ids = list(dict.fromkeys(int(value) for value in ticked))
        except ValueError:
            ids = None
        allowed = set(scope.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
        if ids is None or set(ids) - allowed:
            errors.append(_("Some of the ruptures ticked are not among those you may teach from."))
        elif not ids:
            errors.append(_("Tick at least one rupture."))
        if form.is_valid() and not errors:
            with transaction.atomic():
                case_set = form.save(commit=False)
                case_set.organization = membership.organization
                case_set.created_by = request.user
                case_set.save()
                Case.objects.bulk_create(
                    Case(case_set=case_set, rupture_id=pk, position=position)
                    for position, pk in enumerate(ids, 1)
                )
            return redirect("case_set_detail", pk=case_set.pk)
    listed = cases.filtered(scope, **chosen).select_related("therapist", "rating")
    listed = list(listed.order_by("-month", "-pk")[:SHOWN_AT_MOST])
    reflections = cases.reflections_by_rating(rupture.rating_id for rupture in listed)
    rows = [(rupture, reflections.get(rupture.rating_id)) for rupture in listed]
    return render(
        request,
        "research/case_set_form.html",
        {
            "form": form,
            "errors": errors,
            "rows": rows,
            "ticked": set(ticked),
            "chosen": chosen,
            "dimensions": BordinChoice.choices,
            "statuses": RuptureStatusChoice.choices,
            "markers": _options(membership, ReflectionOptionKind.MARKER),
            "strategies": _options(membership, ReflectionOptionKind.STRATEGY),
            "shown_at_most": SHOWN_AT_MOST,
        },
    )


def case_chart(case: cases.CaseView) -> str:
    """The session totals and outcome totals by session number, the V marked."""
    numbers = [n for n, _total in case.sessions]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": _("Session total"),
            "x": numbers,
            "y": [float(total) for _n, total in case.sessions],
        }
    ]
    if case.outcomes:
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _("Outcome total"),
                "x": [n for n, _total in case.outcomes],
                "y": [float(total) for _n, total in case.outcomes],
                "line": {"dash": "dot"},
            }
        )
    marks = [(case.session_number, float(case.total), _("Rupture"), charts.FLAG_COLOUR)]
    back = dict(case.sessions).get(case.repaired_number) if case.repaired_number else None
    if back is not None:
        marks.append((case.repaired_number, float(back), _("Repair"), charts.REPAIR_COLOUR))
    for number, total, name, colour in marks:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [number],
                "y": [total],
                "marker": {
                    "color": colour,
                    "size": 14,
                    "symbol": "diamond-open",
                    "line": {"width": 3},
                },
            }
        )
    layout = {
        "font": {"family": charts.FONT_FAMILY, "size": 12},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 44, "r": 12, "t": 12, "b": 56},
        "xaxis": {"title": {"text": _("Session")}, "dtick": 1, "showgrid": False},
        "yaxis": {"range": [0, 40.5], "dtick": 10, "gridcolor": "#e5e5e5"},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.3, "x": 0},
    }
    return charts.chart_json({"data": data, "layout": layout})


def _record(request: HttpRequest, case_set: CaseSet, what: str) -> None:
    audit_record(
        request,
        action=Action.EXPORT_DOWNLOADED,
        organization=case_set.organization,
        object_type="case_set",
        object_id=str(case_set.pk),
        detail=f"{what}: {case_set.title}"[:200],
    )


@login_required
@require_GET
def case_set_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case_set = _case_set(request, pk)
    views = cases.case_views(case_set)
    _record(request, case_set, "case handout viewed")
    return render(
        request,
        "research/case_handout.html",
        {
            "case_set": case_set,
            "cases": [(view, case_chart(view), f"case-chart-{view.number}") for view in views],
            "chart_config": charts.chart_json(charts.chart_config()),
        },
    )


@login_required
@require_GET
def case_set_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    case_set = _case_set(request, pk)
    content = handout_pdf(case_set, cases.case_views(case_set))
    _record(request, case_set, "case handout downloaded as PDF")
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="case-set-{case_set.pk}.pdf"'
    return response
