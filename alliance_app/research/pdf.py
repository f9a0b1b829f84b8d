"""The case handout as a PDF, drawn with reportlab (pure Python): one page per case, the chart of
session totals and outcome totals by session number drawn on the server."""

from __future__ import annotations

import io
from collections.abc import Sequence
from xml.sax.saxutils import escape

from django.utils.translation import gettext as _
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table
from reportlab.platypus.flowables import Flowable

from .cases import CaseView
from .models import CaseSet

SESSION_COLOUR = colors.HexColor("#1f77b4")
OUTCOME_COLOUR = colors.HexColor("#2ca02c")
RUPTURE_COLOUR = colors.HexColor("#d62728")
REPAIR_COLOUR = colors.HexColor("#ff7f0e")


def _chart(case: CaseView, width: float = 16 * cm, height: float = 6 * cm) -> Drawing:
    drawing = Drawing(width, height)
    plot = LinePlot()
    plot.x, plot.y = 1.2 * cm, 0.9 * cm
    plot.width, plot.height = width - 2 * cm, height - 1.6 * cm
    lines = [[(float(n), float(total)) for n, total in case.sessions]]
    styles = [(SESSION_COLOUR, "FilledCircle")]
    if case.outcomes:
        lines.append([(float(n), float(total)) for n, total in case.outcomes])
        styles.append((OUTCOME_COLOUR, "FilledSquare"))
    marks = [(float(case.session_number), float(case.total), RUPTURE_COLOUR)]
    if case.repaired_number is not None:
        repaired = dict(case.sessions).get(case.repaired_number)
        if repaired is not None:
            marks.append((float(case.repaired_number), float(repaired), REPAIR_COLOUR))
    for x, y, _colour in marks:
        lines.append([(x, y)])
        styles.append((_colour, "Diamond"))
    plot.data = lines
    for index, (colour, marker) in enumerate(styles):
        plot.lines[index].strokeColor = colour
        plot.lines[index].symbol = makeMarker(marker, size=7 if marker == "Diamond" else 4)
        plot.lines[index].symbol.fillColor = colour
    numbers = [n for line in lines for n, _y in line]
    plot.xValueAxis.valueMin = min(numbers) - 0.5
    plot.xValueAxis.valueMax = max(numbers) + 0.5
    plot.xValueAxis.valueSteps = sorted(set(numbers))
    plot.xValueAxis.labelTextFormat = "%d"
    plot.yValueAxis.valueMin = 0
    plot.yValueAxis.valueMax = 40
    plot.yValueAxis.valueStep = 10
    drawing.add(plot)
    legend = _("Blue: session totals; green: outcome totals; red: the rupture; orange: the repair.")
    drawing.add(String(1.2 * cm, 0.1 * cm, legend, fontSize=7))
    return drawing


def _case(case: CaseView, case_set: CaseSet, style) -> list[Flowable]:
    h2, body = style["Heading2"], style["BodyText"]
    parts: list[Flowable] = [
        Paragraph(escape(_("Case %(number)s") % {"number": case.number}), h2),
        Paragraph(
            escape(
                _(
                    "Rated by: %(rater)s. The session total fell at session %(session)s to "
                    "%(total)s, from a usual level of %(baseline)s. %(status)s."
                )
                % {
                    "rater": case.rater,
                    "session": case.session_number,
                    "total": case.total,
                    "baseline": case.baseline,
                    "status": case.status_label,
                }
            ),
            body,
        ),
    ]
    if case.repaired_number is not None:
        parts.append(
            Paragraph(escape(_("Back at session %(n)s.") % {"n": case.repaired_number}), body)
        )
    parts.append(
        Paragraph(
            escape(_("Part of the alliance: %(parts)s") % {"parts": ", ".join(case.dimensions)}),
            body,
        )
    )
    if case.therapist:
        parts.append(Paragraph(escape(_("Therapist: %(name)s") % {"name": case.therapist}), body))
    parts += [Spacer(1, 0.2 * cm), _chart(case), Spacer(1, 0.2 * cm)]
    rows = [[_("Item"), _("At the rupture"), _("Earlier sessions' mean")]]
    rows += [
        [item.label, str(item.at_rupture), "—" if item.before is None else str(item.before)]
        for item in case.items
    ]
    parts.append(Table(rows, hAlign="LEFT"))
    if case.outcomes:
        course = ", ".join(f"{n}: {total}" for n, total in case.outcomes)
        parts.append(
            Paragraph(escape(_("Outcome totals by session: %(course)s") % {"course": course}), body)
        )
    if case.marker:
        parts.append(Paragraph(escape(_("What it looked like: %(m)s") % {"m": case.marker}), body))
        parts.append(Paragraph(escape(_("Part named: %(p)s") % {"p": case.part}), body))
        if case.strategies:
            done = ", ".join(case.strategies)
            parts.append(Paragraph(escape(_("What the therapist did: %(s)s") % {"s": done}), body))
        if case.note:
            note = _("The therapist's note: %(n)s") % {"n": case.note}
            parts.append(Paragraph(escape(note), body))
    else:
        parts.append(Paragraph(escape(_("No reflection written.")), body))
    parts.append(Paragraph(escape(_("Questions for discussion")), style["Heading3"]))
    parts += [Paragraph(escape(f"{i}. {q}"), body) for i, q in enumerate(case_set.question_list, 1)]
    return parts


def handout_pdf(case_set: CaseSet, views: Sequence[CaseView]) -> bytes:
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=A4, title=case_set.title, leftMargin=2 * cm, rightMargin=2 * cm
    )
    style = getSampleStyleSheet()
    story: list[Flowable] = [Paragraph(escape(case_set.title), style["Title"])]
    story.append(
        Paragraph(
            escape(_("Ruptures for teaching, told without names or dates: session numbers only.")),
            style["BodyText"],
        )
    )
    for index, case in enumerate(views):
        if index:
            story.append(PageBreak())
        story += _case(case, case_set, style)
    document.build(story)
    return buffer.getvalue()
