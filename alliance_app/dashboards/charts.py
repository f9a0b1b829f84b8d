"""Plotly figures for the dashboards, built on the server and handed to the page as JSON.

Clinics run on closed networks, so the page draws these with plotly.js from our own static files
(DESIGN.md §6); here we only describe the figure. Colours are chosen to stay distinguishable with
the common colour-vision deficiencies, and each rater also gets its own marker shape so no
reading depends on colour alone. Text that people typed (rater labels, flag explanations) is
HTML-escaped, because plotly renders a subset of HTML in labels and hover boxes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext
from plotly.subplots import make_subplots

from alliance_app.feedback.instruments import catalogue
from alliance_app.measures import AgeBand, Instrument, Scale

from .stats import CLIENT_RATER, MonthlyMean

RATER_COLOURS = ("#2f6f73", "#e0a458", "#4a5fa8", "#6b6b6b", "#8c5e9e")
RATER_SYMBOLS = ("circle", "square", "diamond", "triangle-down", "cross")
FLAG_COLOUR = "#a4262c"
CUTOFF_COLOUR = "#555555"
BAND_COLOUR = "#2f6f73"
FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

SCALE_ROWS = {Scale.OUTCOME.value: 1, Scale.SESSION.value: 2}
TOTAL_MAX = 40
# Alliance totals cluster in the high 30s; the full 0-40 range would flatten every rupture.
SESSION_Y_FLOOR = 20

Point = Mapping[str, Any]
Trend = Mapping[str, Mapping[str, Sequence[Point]]]


def client_chart(
    trend: Trend, flags: Iterable[Mapping[str, Any]], instruments: Mapping[str, Instrument]
) -> dict[str, Any]:
    """One client's outcome (top) and session (bottom) totals per session, as a plotly dict.

    `trend` is `stats.client_trend(...)`; `flags` are flag rows (rating_id, kind, explanation,
    status); `instruments` maps every instrument code in the trend to its Instrument, for item
    labels, cut-offs and the reliable-change value.
    """
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=(gettext("Outcome"), gettext("Session (alliance)")),
    )
    for position, (rater_key, series) in enumerate(trend.items()):
        for scale, points in series.items():
            figure.add_trace(
                _rater_trace(rater_key, scale, points, instruments, position),
                row=SCALE_ROWS[scale],
                col=1,
            )
    _add_reference_lines(figure, trend, instruments)
    _add_flag_markers(figure, trend, flags)
    _style_client_chart(figure, trend)
    return _plain(figure)


def monthly_chart(
    monthly: Sequence[MonthlyMean], therapist_names: Mapping[int, str]
) -> dict[str, Any]:
    """Each therapist's monthly mean session rating, with the alliance cut-off for reference.

    The cut-off drawn is the adult session instrument's, the one most ratings use; the means
    themselves mix whatever session instruments the clients filled in.
    """
    figure = go.Figure()
    by_therapist: dict[int, list[MonthlyMean]] = {}
    for row in monthly:
        by_therapist.setdefault(row.therapist_id, []).append(row)
    for position, (therapist_id, rows) in enumerate(sorted(by_therapist.items())):
        name = therapist_names.get(therapist_id, gettext("Therapist %(id)s") % {"id": therapist_id})
        figure.add_trace(
            go.Scatter(
                x=[row.month.isoformat() for row in rows],
                y=[row.mean for row in rows],
                mode="lines+markers",
                name=escape(name),
                line={"color": _cycle(RATER_COLOURS, position), "width": 2},
                marker={"symbol": _cycle(RATER_SYMBOLS, position), "size": 8},
                hovertext=[
                    gettext("%(name)s<br>%(month)s: mean %(mean).1f over %(count)s ratings")
                    % {
                        "name": escape(name),
                        "month": row.month.strftime("%Y-%m"),
                        "mean": row.mean,
                        "count": row.count,
                    }
                    for row in rows
                ],
                hoverinfo="text",
                cliponaxis=False,
            )
        )
    cutoff = catalogue().for_client(Scale.SESSION, AgeBand.ADULT).cutoff
    _add_cutoff(figure, cutoff, gettext("alliance cutoff %(cutoff)s") % {"cutoff": cutoff})
    figure.update_layout(**_base_layout())
    figure.update_xaxes(title_text=gettext("Month"), dtick="M1", tickformat="%b %Y")
    figure.update_yaxes(
        title_text=gettext("Mean session rating"),
        range=[_zoomed_floor(row.mean for row in monthly), TOTAL_MAX],
    )
    return _plain(figure)


def chart_config() -> dict[str, Any]:
    """plotly.js options for every chart: no vendor logo, resizes with the page, no lasso tools."""
    return {
        "displaylogo": False,
        "responsive": True,
        "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
    }


def chart_json(figure: Mapping[str, Any]) -> str:
    """Serialise a figure for a `<script type="application/json">` element.

    `<`, `>` and `&` become JSON escapes (as Django's json_script does), so no label a person
    typed, such as "</script>", can end the element early; the JSON decodes unchanged.
    """
    text = json.dumps(figure, allow_nan=False, separators=(",", ":"))
    for character, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(character, escaped)
    return text


def _rater_trace(
    rater_key: str,
    scale: str,
    points: Sequence[Point],
    instruments: Mapping[str, Instrument],
    position: int,
) -> go.Scatter:
    name = f"{_scale_name(scale)} · {_rater_name(rater_key)}"
    return go.Scatter(
        x=[point["session_number"] for point in points],
        y=[point["total"] for point in points],
        mode="lines+markers",
        name=name,
        line={"color": _cycle(RATER_COLOURS, position), "width": 2},
        marker={"symbol": _cycle(RATER_SYMBOLS, position), "size": 9},
        hovertext=[_point_hover(name, point, instruments[point["instrument"]]) for point in points],
        hoverinfo="text",
        cliponaxis=False,
    )


def _point_hover(name: str, point: Point, instrument: Instrument) -> str:
    lines = [
        name,
        gettext("Session %(number)s · %(date)s")
        % {"number": point["session_number"], "date": point["session_date"].isoformat()},
        gettext("Total %(total).1f") % {"total": point["total"]},
    ]
    lines += [
        f"{escape(item.label)}: {score:.1f}"
        for item, score in zip(instrument.items, point["items"], strict=True)
    ]
    return "<br>".join(lines)


def _add_reference_lines(
    figure: go.Figure, trend: Trend, instruments: Mapping[str, Instrument]
) -> None:
    # Raters may use different instruments (a child's scale, a parent's), so draw each
    # distinct cut-off once rather than assuming one.
    for scale, row in SCALE_ROWS.items():
        used = {instruments[point["instrument"]] for point in _points(trend, scale)}
        for cutoff in sorted({instrument.cutoff for instrument in used}):
            label = (
                gettext("clinical cutoff %(cutoff)s")
                if scale == Scale.OUTCOME.value
                else gettext("alliance cutoff %(cutoff)s")
            )
            _add_cutoff(figure, cutoff, label % {"cutoff": cutoff}, row=row)
    intake = _client_intake(trend)
    if intake is None:
        return
    change = instruments[intake["instrument"]].reliable_change
    if change is None:
        return
    total = Decimal(str(intake["total"]))
    figure.add_hrect(
        y0=float(total - change),
        y1=float(total + change),
        fillcolor=BAND_COLOUR,
        opacity=0.12,
        line_width=0,
        layer="below",
        annotation_text=gettext("reliable-change band"),
        annotation_position="bottom left",
        annotation_font_color=CUTOFF_COLOUR,
        row=SCALE_ROWS[Scale.OUTCOME.value],
        col=1,
    )


def _add_cutoff(figure: go.Figure, cutoff: Decimal, label: str, row: int | None = None) -> None:
    figure.add_hline(
        y=float(cutoff),
        line_dash="dash",
        line_color=CUTOFF_COLOUR,
        line_width=1.5,
        annotation_text=escape(label),
        annotation_position="bottom right",
        annotation_font_color=CUTOFF_COLOUR,
        row=row,
        col=None if row is None else 1,
    )


def _client_intake(trend: Trend) -> Point | None:
    # The band is drawn around the client's own first outcome rating: intake is the client's
    # baseline, and collateral raters' scores are never mixed in.
    points = trend.get(CLIENT_RATER, {}).get(Scale.OUTCOME.value, [])
    return min(points, key=lambda point: point["session_number"], default=None)


def _add_flag_markers(figure: go.Figure, trend: Trend, flags: Iterable[Mapping[str, Any]]) -> None:
    explanations: dict[Any, list[str]] = {}
    for flag in flags:
        explanations.setdefault(flag["rating_id"], []).append(
            f"⚠ {escape(flag['explanation'])} ({escape(flag['status'])})"
        )
    shown_in_legend = False
    for scale, row in SCALE_ROWS.items():
        flagged = [point for point in _points(trend, scale) if point["rating_id"] in explanations]
        if not flagged:
            continue
        figure.add_trace(
            go.Scatter(
                x=[point["session_number"] for point in flagged],
                y=[point["total"] for point in flagged],
                mode="markers",
                name=gettext("Flag"),
                legendgroup="flags",
                showlegend=not shown_in_legend,
                marker={
                    "symbol": "triangle-up",
                    "size": 14,
                    "color": FLAG_COLOUR,
                    "line": {"color": "#ffffff", "width": 1},
                },
                hovertext=[
                    gettext("Session %(number)s · total %(total).1f")
                    % {"number": point["session_number"], "total": point["total"]}
                    + "<br>"
                    + "<br>".join(explanations[point["rating_id"]])
                    for point in flagged
                ],
                hoverinfo="text",
                cliponaxis=False,
            ),
            row=row,
            col=1,
        )
        shown_in_legend = True


def _style_client_chart(figure: go.Figure, trend: Trend) -> None:
    figure.update_layout(**_base_layout())
    figure.update_xaxes(dtick=1, tick0=1, showgrid=False)
    figure.update_xaxes(title_text=gettext("Session"), row=2, col=1)
    figure.update_yaxes(range=[0, TOTAL_MAX], title_text=gettext("Total"), row=1, col=1)
    figure.update_yaxes(
        range=[
            _zoomed_floor(point["total"] for point in _points(trend, Scale.SESSION.value)),
            TOTAL_MAX,
        ],
        title_text=gettext("Total"),
        row=2,
        col=1,
    )


def _zoomed_floor(totals: Iterable[float]) -> int:
    # Zoom in on the high range, but never so far that a low rating falls off the chart.
    lowest = min(totals, default=TOTAL_MAX)
    return min(SESSION_Y_FLOOR, 5 * math.floor((lowest - 1) / 5))


def _base_layout() -> dict[str, Any]:
    return {
        "template": "plotly_white",
        "font": {"family": FONT_FAMILY, "size": 13},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 56, "r": 24, "t": 40, "b": 40},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.16, "x": 0},
        "hovermode": "closest",
        "hoverlabel": {"font": {"family": FONT_FAMILY}},
    }


def _points(trend: Trend, scale: str) -> list[Point]:
    return [point for series in trend.values() for point in series.get(scale, [])]


def _scale_name(scale: str) -> str:
    return gettext("Outcome") if scale == Scale.OUTCOME.value else gettext("Session")


def _rater_name(rater_key: str) -> str:
    rater, _, label = rater_key.partition(":")
    return f"{rater} ({escape(label)})" if label else rater


def _cycle(values: Sequence[str], position: int) -> str:
    return values[position % len(values)]


def _plain(figure: go.Figure) -> dict[str, Any]:
    # plotly's own encoder turns numpy arrays, dates and NaN into JSON; reading it back gives
    # plain dicts and lists that json.dumps, templates and tests all understand.
    return json.loads(figure.to_json())
