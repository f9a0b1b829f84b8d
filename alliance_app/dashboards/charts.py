"""Plotly figures for the dashboards, built on the server and handed to the page as JSON.

Clinics run on closed networks, so the page draws these with plotly.js from our own static files
(DESIGN.md §6); here we only describe the figure, as the plain dicts of plotly's JSON schema
(building it through plotly's Python figure objects took over 100 ms a chart; the tests have
plotly validate every figure we make). Colours are chosen to stay distinguishable with
the common colour-vision deficiencies, and each rater also gets its own marker shape so no
reading depends on colour alone. Text that people typed (rater labels, flag explanations) is
HTML-escaped, because plotly renders a subset of HTML in labels and hover boxes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from html import escape
from typing import Any

import plotly.io as pio
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_lazy

from alliance_app.feedback.models import rater_key
from alliance_app.measures import BordinDimension, Instrument, RuptureStatus, Scale, Thresholds
from alliance_app.measures import score_shown as shown
from alliance_app.measures.expected import Expected, ExpectedResponse

from .ruptures import Estimate, MonthRow
from .stats import CLIENT_RATER, MonthlyMean

RATER_COLOURS = ("#2f6f73", "#e0a458", "#4a5fa8", "#6b6b6b", "#8c5e9e")
# The session scale's lines in colours of their own, so that a rater's two lines differ in the
# legend as well as in their panel; a rater keeps one marker shape across both.
SESSION_COLOURS = ("#7a4f9a", "#a86b1f", "#2c3e7a", "#3d3d3d", "#5d3a6b")
RATER_SYMBOLS = ("circle", "square", "diamond", "triangle-down", "cross")
# Team lines that coincide must not hide each other: each line its own dash, and the markers of
# earlier lines (drawn underneath) larger, so that a covered line still shows around the next.
LINE_DASHES = ("solid", "dot", "dash", "longdash", "dashdot")
TEAM_MARKER_SIZES = (12, 9, 7)
FLAG_COLOUR = "#a4262c"
RUPTURE_COLOUR = "#b45309"
REPAIR_COLOUR = "#1b7837"
PENDING_COLOUR = "#8a97a0"
RUPTURE_KIND = "rupture"
# What `client_chart` reads of each rupture row.
RUPTURE_FIELDS = (
    "rating_id",
    "rater",
    "rater_label",
    "session_number",
    "total",
    "baseline",
    "drop",
    "dimensions",
    "status",
    "repaired_number",
)
CUTOFF_COLOUR = "#555555"
BAND_COLOUR = "#2f6f73"
EXPECTED_COLOUR = "#4a5fa8"
BOUNDARY_COLOUR = "#a4262c"
# The band is drawn this far past the client's latest session: the next sessions' targets, not
# a forecast of the whole treatment.
EXPECTED_AHEAD = 2
FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

LEGEND_ABOVE = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}
SCALE_ROWS = {Scale.OUTCOME.value: 1, Scale.SESSION.value: 2}
TOTAL_MAX = 40
# Alliance totals cluster in the high 30s; the full 0-40 range would flatten every rupture, and
# a rupture of a point or two against a client's own level must show as a V.
SESSION_Y_FLOOR = 30

Point = Mapping[str, Any]
Trend = Mapping[str, Mapping[str, Sequence[Point]]]


def client_chart(
    trend: Trend,
    flags: Iterable[Mapping[str, Any]],
    thresholds: Mapping[str, Thresholds],
    ruptures: Sequence[Mapping[str, Any]] = (),
    expected: ExpectedResponse | None = None,
    band: str = "",
) -> dict[str, Any]:
    """One client's outcome (top) and session (bottom) totals per session, as a plotly dict.

    `trend` is `stats.client_trend(...)`; `flags` are flag rows (rating_id, kind, explanation,
    status); `thresholds` maps every instrument code in the trend to what its ratings are judged
    by in the client's organisation (`FlagRules.thresholds`), for item labels, cut-offs and the
    reliable-change band, so the chart draws the lines the flags were raised against.

    `ruptures` are the episode's rupture rows (rating_id, rater, rater_label, session_number,
    total, baseline, drop, dimensions, status, repaired_number): each is drawn as its V, the dip
    marked with a dotted line down from the rater's usual level and the return marked at the
    repair session, apart from the fixed-cutoff flags. A rupture's own flag is told in the dip's
    hover text rather than drawn a second time on the same point.

    `expected` is the organisation's expected-response band in use and `band` the client's age
    band: from the client's intake, the median course (dashed) and the not-on-track line are
    drawn under the ratings, from the session after the intake to a little past the latest.
    """
    course = _expected_course(trend, expected, band)
    data = _expected_traces(course)
    data += [
        _rater_trace(rater_key, scale, points, thresholds, position)
        for position, (rater_key, series) in enumerate(trend.items())
        for scale, points in series.items()
    ]
    layout = _base_layout() | {
        # Two rows sharing the session axis, as plotly's make_subplots lays them out.
        "xaxis": {"anchor": "y", "domain": [0.0, 1.0], "matches": "x2", "showticklabels": False},
        "yaxis": {"anchor": "x", "domain": [0.56, 1.0]},
        "xaxis2": {"anchor": "y2", "domain": [0.0, 1.0], "title": {"text": gettext("Session")}},
        "yaxis2": {"anchor": "x2", "domain": [0.0, 0.44]},
        "annotations": [
            _subplot_title(gettext("Outcome"), 1.0),
            _subplot_title(gettext("Session (alliance)"), 0.44),
        ],
        "shapes": [],
    }
    for axis in ("xaxis", "xaxis2"):
        layout[axis].update(dtick=1, tick0=1, showgrid=False)
    layout["yaxis"].update(range=[0, TOTAL_MAX], title={"text": gettext("Total")})
    session_floor = _zoomed_floor(point["total"] for point in _points(trend, Scale.SESSION.value))
    layout["yaxis2"].update(range=[session_floor, TOTAL_MAX], title={"text": gettext("Total")})
    data += _add_reference_lines(layout, trend, thresholds)
    if course and expected.fitted_elsewhere:
        layout["annotations"].append(_elsewhere_note(expected.source))
    flags = list(flags)
    drawn = {row["rating_id"] for row in ruptures}
    data += _flag_traces(
        trend,
        [f for f in flags if not (f["kind"] == RUPTURE_KIND and f["rating_id"] in drawn)],
    )
    data += _rupture_traces(trend, ruptures, flags)
    return _figure(data, layout)


def _expected_course(trend: Trend, expected: ExpectedResponse | None, band: str) -> list[Expected]:
    intake = _client_intake(trend)
    if expected is None or intake is None:
        return []
    latest = max(point["session_number"] for point in _points(trend, Scale.OUTCOME.value))
    course = expected.course(
        band,
        Decimal(str(intake["total"])),
        last=max(latest, intake["session_number"]) + EXPECTED_AHEAD,
    )
    return [point for point in course if point.session > intake["session_number"]]


def _expected_traces(course: Sequence[Expected]) -> list[dict[str, Any]]:
    """The not-on-track line, then the median course with the space down to the line lightly
    shaded (plotly fills to the trace drawn just before)."""
    if not course:
        return []
    sessions = [point.session for point in course]
    intake = course[0].intake.quantize(Decimal("0.1"))
    boundary_hover = gettext(
        "Session %(session)s: not-on-track line %(boundary)s for clients who started near "
        "%(intake)s"
    )
    median_hover = gettext(
        "Session %(session)s: half of the clients who started near %(intake)s are above %(median)s"
    )
    values = [
        {"session": p.session, "intake": intake, "boundary": p.boundary, "median": p.median}
        for p in course
    ]
    common = {"type": "scatter", "x": sessions, "mode": "lines", "hoverinfo": "text"}
    return [
        common
        | {
            "y": [float(point.boundary) for point in course],
            "name": gettext("Not-on-track line"),
            "legendgroup": "expected",
            "line": {"color": BOUNDARY_COLOUR, "width": 1.5},
            "hovertext": [boundary_hover % value for value in values],
            **_axes(SCALE_ROWS[Scale.OUTCOME.value]),
        },
        common
        | {
            "y": [float(point.median) for point in course],
            "name": gettext("Expected course (median)"),
            "legendgroup": "expected",
            "line": {"color": EXPECTED_COLOUR, "dash": "dash", "width": 1.5},
            "fill": "tonexty",
            "fillcolor": "rgba(74, 95, 168, 0.08)",
            "hovertext": [median_hover % value for value in values],
            **_axes(SCALE_ROWS[Scale.OUTCOME.value]),
        },
    ]


def _elsewhere_note(source: str) -> dict[str, Any]:
    """Over the outcome plot's left corner: the band was not fitted on this clinic's clients."""
    return {
        "text": gettext("Band fitted elsewhere"),
        "hovertext": escape(gettext("Fitted elsewhere: %(source)s") % {"source": source}),
        "showarrow": False,
        "font": {"color": BOUNDARY_COLOUR, "size": 12},
        "xref": "paper",
        "yref": "paper",
        "x": 0,
        "xanchor": "left",
        "y": 1.0,
        "yanchor": "bottom",
    }


def calibration_chart(points: Sequence[Mapping[str, Any]], quantile: float) -> dict[str, Any]:
    """The validation's calibration by session (`measures.expected.calibration` rows): the
    observed mean outcome against the mean expected median (top), and the share of ratings
    below the not-on-track line against the share the quantile promises (bottom)."""
    sessions = [point["session"] for point in points]
    counts = [point["ratings"] for point in points]
    hover = gettext("Session %(session)s · %(value).1f · %(count)s ratings")
    share_hover = gettext("Session %(session)s · %(value).0f%% below · %(count)s ratings")

    def line(
        key: str,
        name: str,
        colour: str,
        row: int,
        *,
        dash: str = "solid",
        percent: bool = False,
        symbol: str = "circle",
    ) -> dict[str, Any]:
        values = [100 * point[key] if percent else point[key] for point in points]
        text = share_hover if percent else hover
        return {
            "type": "scatter",
            "x": sessions,
            "y": values,
            "mode": "lines+markers",
            "name": name,
            "line": {"color": colour, "dash": dash, "width": 2},
            "marker": {"symbol": symbol, "size": 8},
            "hovertext": [
                text % {"session": s, "value": v, "count": n}
                for s, v, n in zip(sessions, values, counts, strict=True)
            ],
            "hoverinfo": "text",
            "cliponaxis": False,
            **_axes(row),
        }

    data = [
        line("observed_mean", gettext("Observed mean"), RATER_COLOURS[0], 1),
        line(
            "expected_median_mean",
            gettext("Expected median, mean"),
            EXPECTED_COLOUR,
            1,
            dash="dash",
            symbol="square",
        ),
        line(
            "below_boundary",
            gettext("Observed share below the line"),
            BOUNDARY_COLOUR,
            2,
            percent=True,
            symbol="diamond",
        ),
    ]
    layout = _base_layout() | {
        "xaxis": {"anchor": "y", "domain": [0.0, 1.0], "matches": "x2", "showticklabels": False},
        "yaxis": {"anchor": "x", "domain": [0.56, 1.0], "title": {"text": gettext("Total")}},
        "xaxis2": {"anchor": "y2", "domain": [0.0, 1.0], "title": {"text": gettext("Session")}},
        "yaxis2": {
            "anchor": "x2",
            "domain": [0.0, 0.44],
            "title": {"text": gettext("% below")},
            "rangemode": "tozero",
        },
        "annotations": [
            _subplot_title(gettext("Mean outcome"), 1.0),
            _subplot_title(gettext("Below the not-on-track line"), 0.44),
        ],
        "shapes": [],
    }
    for axis in ("xaxis", "xaxis2"):
        layout[axis].update(dtick=1, showgrid=False)
    nominal = 100 * quantile
    label = gettext("nominal %(share).0f%%") % {"share": nominal}
    _add_cutoff(layout, Decimal(str(nominal)), label, _suffix(2))
    return _figure(data, layout)


def monthly_chart(
    monthly: Sequence[MonthlyMean], line_names: Mapping[int, str], cutoff: Decimal
) -> dict[str, Any]:
    """Each line's (therapist's or team's) monthly mean session rating, with the alliance
    cut-off for reference.

    The caller passes the organisation's cut-off for the adult session instrument, the one most
    ratings use; the means themselves mix whatever session instruments the clients filled in.
    """
    by_line: dict[int, list[MonthlyMean]] = {}
    for row in monthly:
        by_line.setdefault(row.line_id, []).append(row)
    data = []
    hover = gettext("%(name)s<br>%(month)s: mean %(mean).1f over %(count)s ratings")
    for position, (line_id, rows) in enumerate(sorted(by_line.items())):
        name = line_names.get(line_id, gettext("Therapist %(id)s") % {"id": line_id})
        data.append(
            {
                "type": "scatter",
                "x": [row.month.isoformat() for row in rows],
                "y": [row.mean for row in rows],
                "mode": "lines+markers",
                "name": escape(name),
                "line": {
                    "color": _cycle(RATER_COLOURS, position),
                    "width": 2,
                    "dash": _cycle(LINE_DASHES, position),
                },
                "marker": {
                    "symbol": _cycle(RATER_SYMBOLS, position),
                    "size": TEAM_MARKER_SIZES[min(position, len(TEAM_MARKER_SIZES) - 1)],
                },
                "hovertext": [
                    hover
                    % {
                        "name": escape(name),
                        "month": row.month.strftime("%Y-%m"),
                        "mean": row.mean,
                        "count": row.count,
                    }
                    for row in rows
                ],
                "hoverinfo": "text",
                "cliponaxis": False,
            }
        )
    layout = _base_layout() | {
        # The legend above the plot: on a narrow screen the months' labels turn upright and
        # would run into it below. No axis title: the ticks name the months.
        "xaxis": {"dtick": "M1", "tickformat": "%b %Y", "automargin": True},
        "legend": LEGEND_ABOVE,
        "yaxis": {
            "title": {"text": gettext("Mean session rating")},
            "range": [_zoomed_floor(row.mean for row in monthly), TOTAL_MAX],
        },
        "shapes": [],
        "annotations": [],
    }
    _add_cutoff(layout, cutoff, gettext("alliance cutoff %(cutoff)s") % {"cutoff": cutoff}, "")
    return _figure(data, layout)


def chart_config() -> dict[str, Any]:
    """plotly.js options for every chart: no vendor logo, resizes with the page, and no tool
    bar, whose small icons pop up over the chart at a touch on a tablet and offer nothing a
    reader of these charts needs (the hover text and legend stay)."""
    return {
        "displaylogo": False,
        "displayModeBar": False,
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
    thresholds: Mapping[str, Thresholds],
    position: int,
) -> dict[str, Any]:
    name = f"{_scale_name(scale)} · {_rater_name(rater_key)}"
    return {
        "type": "scatter",
        "x": [point["session_number"] for point in points],
        "y": [point["total"] for point in points],
        "mode": "lines+markers",
        "name": name,
        "line": {
            "color": _cycle(
                SESSION_COLOURS if scale == Scale.SESSION.value else RATER_COLOURS, position
            ),
            "width": 2,
        },
        "marker": {"symbol": _cycle(RATER_SYMBOLS, position), "size": 9},
        "hovertext": [
            _point_hover(name, point, thresholds[point["instrument"]].instrument)
            for point in points
        ],
        "hoverinfo": "text",
        "cliponaxis": False,
        **_axes(SCALE_ROWS[scale]),
    }


def _point_hover(name: str, point: Point, instrument: Instrument) -> str:
    lines = [
        name,
        gettext("Session %(number)s · %(date)s")
        % {
            "number": point["session_number"],
            "date": date_format(point["session_date"], "SHORT_DATE_FORMAT"),
        },
        gettext("Total %(total).1f") % {"total": point["total"]},
    ]
    lines += [
        f"{escape(item.label)}: {score:.1f}"
        for item, score in zip(instrument.items, point["items"], strict=True)
    ]
    return "<br>".join(lines)


def _add_reference_lines(
    layout: dict[str, Any], trend: Trend, thresholds: Mapping[str, Thresholds]
) -> list[dict[str, Any]]:
    """The cut-off lines and the reliable-change band; returns the legend entries naming the
    cut-offs. The names go in the legend, not beside the lines, where they would sit on the
    latest session's points and flags."""
    legend = []
    # Raters may use different instruments (a child's scale, a parent's), so draw each
    # distinct cut-off once rather than assuming one.
    for scale, row in SCALE_ROWS.items():
        used = {thresholds[point["instrument"]].cutoff for point in _points(trend, scale)}
        for cutoff in sorted(used):
            label = (
                gettext("clinical cutoff %(cutoff)s")
                if scale == Scale.OUTCOME.value
                else gettext("alliance cutoff %(cutoff)s")
            )
            layout["shapes"].append(_cutoff_line(cutoff, _suffix(row)))
            legend.append(_legend_line(label % {"cutoff": cutoff}, _suffix(row)))
    intake = _client_intake(trend)
    if intake is None:
        return legend
    change = thresholds[intake["instrument"]].reliable_change
    if change is None:
        return legend
    total = Decimal(str(intake["total"]))
    low, high = float(total - change), float(total + change)
    suffix = _suffix(SCALE_ROWS[Scale.OUTCOME.value])
    layout["shapes"].append(
        {
            "type": "rect",
            "xref": f"x{suffix} domain",
            "yref": f"y{suffix}",
            "x0": 0,
            "x1": 1,
            "y0": low,
            "y1": high,
            "fillcolor": BAND_COLOUR,
            "opacity": 0.12,
            "line": {"width": 0},
            "layer": "below",
        }
    )
    layout["annotations"].append(
        _axis_note(gettext("reliable-change band"), low, suffix, x=0, xanchor="left", top=False)
    )
    return legend


def _add_cutoff(layout: dict[str, Any], cutoff: Decimal, label: str, suffix: str) -> None:
    """A dashed line across the plot at the cut-off, labelled under its right end."""
    layout["shapes"].append(_cutoff_line(cutoff, suffix))
    layout["annotations"].append(
        _axis_note(escape(label), float(cutoff), suffix, x=1, xanchor="right", top=True)
    )


def _cutoff_line(cutoff: Decimal, suffix: str) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": f"x{suffix} domain",
        "yref": f"y{suffix}",
        "x0": 0,
        "x1": 1,
        "y0": float(cutoff),
        "y1": float(cutoff),
        "line": {"color": CUTOFF_COLOUR, "dash": "dash", "width": 1.5},
    }


def _legend_line(label: str, suffix: str) -> dict[str, Any]:
    """A legend entry drawn like a cut-off line, with no points of its own."""
    return {
        "type": "scatter",
        "x": [None],
        "y": [None],
        "mode": "lines",
        "name": escape(label),
        "line": {"color": CUTOFF_COLOUR, "dash": "dash", "width": 1.5},
        "hoverinfo": "skip",
        "showlegend": True,
        **_axes(int(suffix or 1)),
    }


def _axis_note(
    text: str, y: float, suffix: str, *, x: int, xanchor: str, top: bool
) -> dict[str, Any]:
    return {
        "text": text,
        "showarrow": False,
        "font": {"color": CUTOFF_COLOUR},
        "xref": f"x{suffix} domain",
        "yref": f"y{suffix}",
        "x": x,
        "xanchor": xanchor,
        "y": y,
        "yanchor": "top" if top else "bottom",
    }


def _subplot_title(text: str, y: float) -> dict[str, Any]:
    return {
        "text": text,
        "showarrow": False,
        "font": {"size": 16},
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "xanchor": "center",
        "y": y,
        "yanchor": "bottom",
    }


def _suffix(row: int) -> str:
    # plotly names the first axes "x"/"y" and the next "x2"/"y2".
    return "" if row == 1 else str(row)


def _axes(row: int) -> dict[str, str]:
    return {"xaxis": f"x{_suffix(row)}", "yaxis": f"y{_suffix(row)}"}


def _client_intake(trend: Trend) -> Point | None:
    # The band is drawn around the client's own first outcome rating: intake is the client's
    # baseline, and collateral raters' scores are never mixed in.
    points = trend.get(CLIENT_RATER, {}).get(Scale.OUTCOME.value, [])
    return min(points, key=lambda point: point["session_number"], default=None)


def _flag_traces(trend: Trend, flags: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    explanations: dict[Any, list[str]] = {}
    for flag in flags:
        explanations.setdefault(flag["rating_id"], []).append(
            f"⚠ {escape(flag['explanation'])} ({escape(flag['status'])})"
        )
    traces = []
    for scale, row in SCALE_ROWS.items():
        flagged = [point for point in _points(trend, scale) if point["rating_id"] in explanations]
        if not flagged:
            continue
        traces.append(
            {
                "type": "scatter",
                "x": [point["session_number"] for point in flagged],
                "y": [point["total"] for point in flagged],
                "mode": "markers",
                "name": gettext("Flag"),
                "legendgroup": "flags",
                # One legend entry for the flags of both scales.
                "showlegend": not traces,
                "marker": {
                    "symbol": "triangle-up",
                    "size": 14,
                    "color": FLAG_COLOUR,
                    "line": {"color": "#ffffff", "width": 1},
                },
                "hovertext": [
                    gettext("Session %(number)s · total %(total).1f")
                    % {"number": point["session_number"], "total": point["total"]}
                    + "<br>"
                    + "<br>".join(explanations[point["rating_id"]])
                    for point in flagged
                ],
                "hoverinfo": "text",
                "cliponaxis": False,
                **_axes(row),
            }
        )
    return traces


_FELL_MOST = {
    BordinDimension.BOND: gettext_lazy("the bond item"),
    BordinDimension.GOALS: gettext_lazy("goals"),
    BordinDimension.TASKS: gettext_lazy("tasks"),
    BordinDimension.GENERAL: gettext_lazy("the session as a whole"),
}


def rupture_hover(rupture: Mapping[str, Any]) -> str:
    """A rupture in words: "Rupture: 36.5, 3.0 below the usual 39.5; goals fell most"."""
    parts = [str(_FELL_MOST[BordinDimension(code)]) for code in rupture["dimensions"].split()]
    if len(parts) == 1:
        fell = gettext("%(part)s fell most") % {"part": parts[0]}
    else:
        fell = gettext("%(parts)s fell most, equally") % {"parts": gettext(" and ").join(parts)}
    return gettext("Rupture: %(total)s, %(drop)s below the usual %(baseline)s; %(fell)s") % {
        "total": shown(rupture["total"]),
        "drop": shown(rupture["drop"]),
        "baseline": shown(rupture["baseline"]),
        "fell": fell,
    }


def _rupture_outcome(rupture: Mapping[str, Any]) -> str:
    if rupture["status"] == RuptureStatus.REPAIRED:
        return gettext("Repaired at session %(number)s") % {"number": rupture["repaired_number"]}
    if rupture["status"] == RuptureStatus.UNREPAIRED:
        return gettext("Not repaired")
    return gettext("Not yet repaired: the next sessions will tell")


def _rupture_traces(
    trend: Trend, ruptures: Sequence[Mapping[str, Any]], flags: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The V of each rupture on the session axes: the dip, the fall from the usual level, and
    the return; one legend entry for each kind of mark."""
    if not ruptures:
        return []
    flag_status, other_flags = {}, {}
    for flag in flags:
        if flag["kind"] == RUPTURE_KIND:
            flag_status[flag["rating_id"]] = flag["status"]
        else:
            # The dip's marker covers the point: its other flags are told with it.
            other_flags.setdefault(flag["rating_id"], []).append(
                f"⚠ {escape(flag['explanation'])} ({escape(flag['status'])})"
            )
    totals = {
        (rater_key, point["session_number"]): point["total"]
        for rater_key, series in trend.items()
        for point in series.get(Scale.SESSION.value, [])
    }
    dips, falls, repairs = [], {"x": [], "y": []}, []
    for rupture in ruptures:
        key = rater_key(rupture["rater"], rupture["rater_label"])
        number, baseline = rupture["session_number"], rupture["baseline"]
        who = "" if key == CLIENT_RATER else f"{_rater_name(key)} · "
        lines = [who + rupture_hover(rupture), _rupture_outcome(rupture)]
        if rupture["rating_id"] in flag_status:
            lines.append(
                gettext("Flag: %(status)s") % {"status": escape(flag_status[rupture["rating_id"]])}
            )
        lines += other_flags.get(rupture["rating_id"], [])
        dips.append((number, float(rupture["total"]), "<br>".join(lines)))
        # A short level line at the usual level, and the fall from it down to the dip.
        falls["x"] += [number - 0.3, number + 0.3, None, number, number, None]
        level = float(baseline)
        falls["y"] += [level, level, None, level, float(rupture["total"]), None]
        repaired_at = rupture["repaired_number"]
        if rupture["status"] == RuptureStatus.REPAIRED and (key, repaired_at) in totals:
            total = totals[key, repaired_at]
            text = gettext("Repaired at session %(number)s: %(total).1f, back near %(baseline)s")
            values = {"number": repaired_at, "total": total, "baseline": shown(baseline)}
            repairs.append((repaired_at, total, who + text % values))
    traces = [
        {
            "type": "scatter",
            "x": falls["x"],
            "y": falls["y"],
            "mode": "lines",
            "name": gettext("Usual level"),
            "legendgroup": "ruptures",
            "showlegend": False,
            "line": {"color": RUPTURE_COLOUR, "dash": "dot", "width": 1.5},
            "hoverinfo": "skip",
            "cliponaxis": False,
            **_axes(SCALE_ROWS[Scale.SESSION.value]),
        },
        _mark_trace(gettext("Rupture"), "ruptures", dips, "triangle-down", RUPTURE_COLOUR),
    ]
    if repairs:
        traces.append(
            _mark_trace(gettext("Repair"), "repairs", repairs, "circle-open", REPAIR_COLOUR)
        )
    return traces


def _mark_trace(
    name: str, group: str, points: list[tuple[int, float, str]], symbol: str, colour: str
) -> dict[str, Any]:
    return {
        "type": "scatter",
        "x": [x for x, _y, _text in points],
        "y": [y for _x, y, _text in points],
        "mode": "markers",
        "name": name,
        "legendgroup": group,
        "marker": {
            "symbol": symbol,
            "size": 16,
            "color": colour,
            "line": {"color": colour if symbol.endswith("-open") else "#ffffff", "width": 2.5},
        },
        "hovertext": [text for _x, _y, text in points],
        "hoverinfo": "text",
        "cliponaxis": False,
        **_axes(SCALE_ROWS[Scale.SESSION.value]),
    }


DIMENSION_NAMES = {
    BordinDimension.BOND: gettext_lazy("Bond"),
    BordinDimension.GOALS: gettext_lazy("Goals"),
    BordinDimension.TASKS: gettext_lazy("Tasks"),
    BordinDimension.GENERAL: gettext_lazy("Session as a whole"),
}


def profile_chart(lines: Sequence[tuple[str, Mapping[str, Estimate]]]) -> dict[str, Any]:
    """The Bordin profile: each line's (the therapist's, the team's) share of ruptures by the
    part of the alliance that fell most, as horizontal bars. A line with too few ruptures for
    shares is left out; the page says so."""
    order = list(BordinDimension)
    data = []
    for position, (name, profile) in enumerate(lines):
        shares = [profile[code.value].shown for code in order]
        if any(share is None for share in shares):
            continue
        basis = profile[order[0].value].basis
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": escape(name),
                "y": [str(DIMENSION_NAMES[code]) for code in order],
                "x": [round(100 * share, 1) for share in shares],
                "marker": {"color": _cycle(RATER_COLOURS, position)},
                "hovertext": [
                    gettext("%(name)s: %(share).0f%% of %(count)s ruptures")
                    % {"name": escape(name), "share": 100 * share, "count": basis}
                    for share in shares
                ],
                "hoverinfo": "text",
            }
        )
    layout = _base_layout() | {
        "barmode": "group",
        "xaxis": {"title": {"text": gettext("Share of ruptures (%)")}, "range": [0, 100]},
        "yaxis": {"autorange": "reversed"},
        "margin": {"l": 130, "r": 16, "t": 16, "b": 40},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.28, "x": 0},
    }
    return _figure(data, layout)


def rupture_month_chart(months: Sequence[MonthRow]) -> dict[str, Any]:
    """Ruptures per month, stacked by what became of them."""
    x = [row.month.isoformat() for row in months]
    data = []
    for status, name, colour in (
        (RuptureStatus.REPAIRED, gettext("Repaired"), REPAIR_COLOUR),
        (RuptureStatus.UNREPAIRED, gettext("Unrepaired"), RUPTURE_COLOUR),
        (RuptureStatus.PENDING, gettext("Pending"), PENDING_COLOUR),
    ):
        counts = [getattr(row, status.value) for row in months]
        if not any(counts):
            continue
        data.append(
            {
                "type": "bar",
                "name": name,
                "x": x,
                "y": counts,
                "marker": {"color": colour},
                "hovertext": [
                    gettext("%(month)s: %(count)s %(status)s of %(rated)s rated sessions")
                    % {
                        "month": row.month.strftime("%Y-%m"),
                        "count": count,
                        "status": name.lower(),
                        "rated": row.rated,
                    }
                    for row, count in zip(months, counts, strict=True)
                ],
                "hoverinfo": "text",
            }
        )
    tallest = max((row.repaired + row.unrepaired + row.pending for row in months), default=0)
    layout = _base_layout() | {
        "barmode": "stack",
        "xaxis": {"dtick": "M1", "tickformat": "%b %Y", "automargin": True},
        # Whole ruptures: one tick each while there are few, plotly's own steps beyond.
        "yaxis": {
            "title": {"text": gettext("Ruptures")},
            "rangemode": "tozero",
            **({"dtick": 1} if tallest <= 10 else {}),
        },
        "legend": {
            "orientation": "h",
            "traceorder": "normal",
            "yanchor": "bottom",
            "y": 1.02,
            "x": 0,
        },
        "margin": {"l": 56, "r": 16, "t": 40, "b": 40},
    }
    return _figure(data, layout)


def _zoomed_floor(totals: Iterable[float]) -> int:
    # Zoom in on the high range, but never so far that a low rating falls off the chart.
    lowest = min(totals, default=TOTAL_MAX)
    return min(SESSION_Y_FLOOR, 5 * math.floor((lowest - 1) / 5))


def _base_layout() -> dict[str, Any]:
    return {
        "template": _template(),
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


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    # No empty shape or annotation lists, as plotly itself would write the figure.
    return {"data": data, "layout": {key: value for key, value in layout.items() if value != []}}


@cache
def _template() -> dict[str, Any]:
    # plotly.js has no named templates: the figure carries the template's layout defaults.
    # Built once per process; the scatter styles of its data part are plotly.js's own defaults.
    return {"layout": json.loads(pio.templates["plotly_white"].layout.to_json())}
