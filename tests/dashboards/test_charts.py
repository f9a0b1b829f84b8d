"""Chart figures: what a clinician must be able to read off them is really in the figure.

The client chart is built from a couple's episode (see test_stats): the client's outcome
22.0 → 16.0 (a deterioration flag on session 2) and session 39.0, 39.0; the partner Sam's outcome
10.0 → 30.0 and session 20.0 (a low-alliance flag).
"""

import json
from decimal import Decimal

import plotly.graph_objects as go
import pytest

from alliance_app.dashboards.charts import (
    calibration_chart,
    chart_config,
    chart_json,
    client_chart,
    monthly_chart,
)
from alliance_app.dashboards.stats import MonthlyMean, client_trend
from alliance_app.feedback.instruments import catalogue
from alliance_app.measures import Thresholds
from alliance_app.measures.expected import ExpectedResponse
from tests.dashboards.test_stats import day, rating
from tests.factories import expected_parameters

COUPLE = [
    rating(11, 3, 1, day(2, 10), "outcome", "22.0", items=("5.0", "6.0", "5.5", "5.5")),
    rating(12, 3, 1, day(2, 10), "outcome", "10.0", rater="partner", label="Sam"),
    rating(13, 3, 1, day(2, 10), "session", "39.0"),
    rating(14, 3, 1, day(2, 10), "session", "20.0", rater="partner", label="Sam"),
    rating(15, 3, 2, day(2, 17), "outcome", "16.0"),
    rating(16, 3, 2, day(2, 17), "outcome", "30.0", rater="partner", label="Sam"),
    rating(17, 3, 2, day(2, 17), "session", "39.0"),
]
FLAGS = [
    {
        "rating_id": 15,
        "kind": "deterioration",
        "explanation": "Outcome 16.0 is 6.0 points below intake (22.0)",
        "status": "open",
    },
    {
        "rating_id": 14,
        "kind": "low_alliance",
        "explanation": "Session rating 20.0, below 36.0",
        "status": "acknowledged",
    },
    # a flag on a rating of another episode is not this chart's business
    {"rating_id": 99, "kind": "low_alliance", "explanation": "elsewhere", "status": "open"},
]


def instruments(*codes: str) -> dict:
    """What the chart is told of each instrument: its thresholds, here the instrument's own."""
    return {code: Thresholds.of(catalogue().get(code)) for code in codes}


ADULT = instruments("outcome-adult", "session-adult")


@pytest.fixture
def figure() -> dict:
    return client_chart(client_trend(COUPLE), FLAGS, ADULT)


def traces(figure: dict) -> dict[str, dict]:
    return {trace["name"]: trace for trace in figure["data"]}


def shape_at(figure: dict, kind: str, yref: str) -> list[dict]:
    return [
        shape
        for shape in figure["layout"]["shapes"]
        if shape["type"] == kind and shape["yref"] == yref
    ]


def test_each_rater_gets_a_line_on_each_scale(figure):
    by_name = traces(figure)
    # outcome on the top axis (y), session on the bottom one (y2), both over session numbers
    assert {
        name: (t["yaxis"], t["x"], t["y"])
        for name, t in by_name.items()
        if name != "Flag" and "cutoff" not in name
    } == {
        "Outcome · client": ("y", [1, 2], [22.0, 16.0]),
        "Session · client": ("y2", [1, 2], [39.0, 39.0]),
        "Outcome · partner (Sam)": ("y", [1, 2], [10.0, 30.0]),
        "Session · partner (Sam)": ("y2", [1], [20.0]),
    }
    assert by_name["Outcome · client"]["mode"] == "lines+markers"


def test_a_rater_keeps_its_shape_and_each_scale_has_its_own_colours(figure):
    by_name = traces(figure)
    client = (by_name["Outcome · client"], by_name["Session · client"])
    partner = (by_name["Outcome · partner (Sam)"], by_name["Session · partner (Sam)"])
    assert client[0]["marker"]["symbol"] == client[1]["marker"]["symbol"] == "circle"
    assert partner[0]["marker"]["symbol"] == partner[1]["marker"]["symbol"] == "square"
    assert client[0]["line"]["color"] == "#2f6f73"
    assert partner[1]["line"]["color"] == "#a86b1f"
    # The legend tells every line from every other.
    colours = [trace["line"]["color"] for trace in (*client, *partner)]
    assert len(set(colours)) == 4


def test_the_cutoff_lines_sit_at_the_instruments_cutoffs(figure):
    (outcome_line,) = shape_at(figure, "line", "y")
    (session_line,) = shape_at(figure, "line", "y2")
    assert (outcome_line["y0"], outcome_line["y1"]) == (25.0, 25.0)
    assert (session_line["y0"], session_line["y1"]) == (36.0, 36.0)
    assert outcome_line["line"]["dash"] == session_line["line"]["dash"] == "dash"
    # Named in the legend, not beside the line, where the label would cover the latest flags.
    by_name = traces(figure)
    assert by_name["clinical cutoff 25.0"]["yaxis"] == "y"
    assert by_name["alliance cutoff 36.0"]["yaxis"] == "y2"
    assert by_name["alliance cutoff 36.0"]["x"] == [None]
    assert by_name["alliance cutoff 36.0"]["line"]["dash"] == "dash"
    texts = [a["text"] for a in figure["layout"]["annotations"]]
    assert not [text for text in texts if "cutoff" in text]


def test_the_child_outcome_scale_draws_its_own_cutoff():
    ratings = [rating(1, 4, 1, day(1, 1), "outcome", "24.0")]
    figure = client_chart(client_trend(ratings), [], instruments("outcome-child"))
    (line,) = shape_at(figure, "line", "y")
    assert line["y0"] == 32.0


def test_the_reliable_change_band_spans_intake_plus_and_minus_five(figure):
    # the client's intake is 22.0 (not the partner's 10.0): band 17.0 to 27.0
    (band,) = shape_at(figure, "rect", "y")
    assert (band["y0"], band["y1"]) == (17.0, 27.0)
    assert band["xref"] == "x domain"
    assert "reliable-change band" in [a["text"] for a in figure["layout"]["annotations"]]


def test_without_a_client_outcome_rating_there_is_no_band():
    partner_only = [row for row in COUPLE if row["rater"] == "partner"]
    figure = client_chart(client_trend(partner_only), [], ADULT)
    assert shape_at(figure, "rect", "y") == []


def test_flag_markers_mark_the_flagged_points_only(figure):
    flags = [trace for trace in figure["data"] if trace["name"] == "Flag"]
    assert [(t["yaxis"], t["x"], t["y"]) for t in flags] == [
        ("y", [2], [16.0]),  # the client's deterioration
        ("y2", [1], [20.0]),  # the partner's low session rating
    ]
    assert [t["showlegend"] for t in flags] == [True, False]
    assert flags[0]["marker"]["color"] == "#a4262c"
    assert flags[0]["marker"]["symbol"] == "triangle-up"
    assert "Outcome 16.0 is 6.0 points below intake (22.0) (open)" in flags[0]["hovertext"][0]
    assert "Session rating 20.0, below 36.0 (acknowledged)" in flags[1]["hovertext"][0]


def test_hover_shows_session_date_total_and_labelled_items(figure):
    hover = traces(figure)["Outcome · client"]["hovertext"][0]
    assert hover.split("<br>") == [
        "Outcome · client",
        "Session 1 · 10 Feb 2025",
        "Total 22.0",
        "Me: 5.0",
        "The people closest to me: 6.0",
        "Daily life: 5.5",
        "All in all: 5.5",
    ]
    session_hover = traces(figure)["Session · client"]["hovertext"][0]
    assert "Being listened to: 9.7" in session_hover


def test_the_session_axis_zooms_in_but_keeps_low_ratings_visible(figure):
    # the partner's 20.0 lowers the floor from 30 to 15
    assert figure["layout"]["yaxis"]["range"] == [0, 40]
    assert figure["layout"]["yaxis2"]["range"] == [15, 40]
    client_only = [row for row in COUPLE if row["rater"] == "client"]
    zoomed = client_chart(client_trend(client_only), [], ADULT)
    assert zoomed["layout"]["yaxis2"]["range"] == [30, 40]


def test_text_people_typed_is_escaped_for_plotly():
    ratings = [rating(1, 3, 1, day(2, 10), "session", "30.0", rater="other", label="<b>Jo</b>")]
    flags = [{"rating_id": 1, "kind": "low_alliance", "explanation": "a <i>", "status": "open"}]
    figure = client_chart(client_trend(ratings), flags, ADULT)
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["Session · other (&lt;b&gt;Jo&lt;/b&gt;)", "alliance cutoff 36.0", "Flag"]
    assert "a &lt;i&gt;" in figure["data"][2]["hovertext"][0]


def test_the_layout_is_accessible_and_plain(figure):
    layout = figure["layout"]
    assert layout["font"]["family"].startswith("system-ui")
    assert layout["paper_bgcolor"] == "rgba(0,0,0,0)"
    assert layout["legend"]["orientation"] == "h"
    assert layout["legend"]["y"] < 0
    assert [a["text"] for a in layout["annotations"][:2]] == ["Outcome", "Session (alliance)"]
    assert layout["xaxis"]["matches"] == "x2"


def test_an_empty_trend_gives_a_figure_without_data():
    figure = client_chart(client_trend([]), FLAGS, {})
    assert figure["data"] == []
    assert "shapes" not in figure["layout"]
    json.dumps(figure)


def test_the_client_chart_is_json_ready(figure):
    assert json.loads(json.dumps(figure)) == figure


# ruptures on the client chart

V_SHAPE = [
    rating(21, 1, 1, day(3, 2), "session", "39.5"),
    rating(22, 1, 2, day(3, 9), "session", "39.5"),
    rating(23, 1, 3, day(3, 16), "session", "36.5", items=("10.0", "7.0", "10.0", "9.5")),
    rating(24, 1, 4, day(3, 23), "session", "39.5"),
    rating(25, 1, 3, day(3, 16), "session", "30.0", rater="partner", label="Sam"),
    rating(26, 1, 4, day(3, 23), "session", "33.0", rater="partner", label="Sam"),
]


def rupture_row(rating_id, session, total, baseline, dimensions, status, repaired=None, **rater):
    return {
        "rating_id": rating_id,
        "rater": rater.get("rater", "client"),
        "rater_label": rater.get("label", ""),
        "session_number": session,
        "total": Decimal(total),
        "baseline": Decimal(baseline),
        "drop": Decimal(baseline) - Decimal(total),
        "dimensions": dimensions,
        "status": status,
        "repaired_number": repaired,
    }


V_RUPTURES = [rupture_row(23, 3, "36.5", "39.50", "goals", "repaired", repaired=4)]
V_FLAGS = [
    {"rating_id": 23, "kind": "rupture", "explanation": "Session rating 36.5, …", "status": "open"},
    {"rating_id": 23, "kind": "low_item", "explanation": "Goals 7.0", "status": "open"},
]


def test_a_rupture_is_marked_at_its_dip_below_the_usual_level():
    figure = client_chart(client_trend(V_SHAPE), V_FLAGS, ADULT, V_RUPTURES)
    by_name = traces(figure)
    dip = by_name["Rupture"]
    assert (dip["yaxis"], dip["x"], dip["y"]) == ("y2", [3], [36.5])
    assert dip["marker"]["symbol"] == "triangle-down"
    assert dip["marker"]["color"] != by_name["Flag"]["marker"]["color"]
    # the marker covers the point, so the point's other flags are told with it
    assert dip["hovertext"] == [
        "Rupture: 36.5, 3.0 below the usual 39.5; goals fell most<br>Repaired at session 4"
        "<br>Flag: open<br>⚠ Goals 7.0 (open)"
    ]
    # the dotted fall: a short line at the usual level, then down to the dip
    fall = by_name["Usual level"]
    assert (fall["x"], fall["y"]) == (
        [2.7, 3.3, None, 3, 3, None],
        [39.5, 39.5, None, 39.5, 36.5, None],
    )
    assert fall["line"]["dash"] == "dot" and fall["showlegend"] is False
    assert fall["legendgroup"] == dip["legendgroup"]


def test_a_repair_is_marked_at_the_return():
    figure = client_chart(client_trend(V_SHAPE), V_FLAGS, ADULT, V_RUPTURES)
    repair = traces(figure)["Repair"]
    assert (repair["yaxis"], repair["x"], repair["y"]) == ("y2", [4], [39.5])
    assert repair["marker"]["symbol"] == "circle-open"
    assert repair["hovertext"] == ["Repaired at session 4: 39.5, back near 39.5"]


def test_the_rupture_flag_is_not_drawn_twice_but_other_flags_are():
    figure = client_chart(client_trend(V_SHAPE), V_FLAGS, ADULT, V_RUPTURES)
    (flag,) = [trace for trace in figure["data"] if trace["name"] == "Flag"]
    assert (flag["x"], flag["hovertext"][0].count("⚠")) == ([3], 1)
    assert "Goals 7.0" in flag["hovertext"][0]
    # without its rupture row, the rupture flag is a flag like any other
    plain = client_chart(client_trend(V_SHAPE), V_FLAGS, ADULT)
    (flag,) = [trace for trace in plain["data"] if trace["name"] == "Flag"]
    assert flag["hovertext"][0].count("⚠") == 2
    assert "Rupture" not in traces(plain)


def test_the_legend_has_one_entry_for_ruptures_and_one_for_repairs():
    figure = client_chart(client_trend(V_SHAPE), V_FLAGS, ADULT, V_RUPTURES)
    shown = [t["name"] for t in figure["data"] if t.get("showlegend", True)]
    assert shown.count("Rupture") == shown.count("Repair") == shown.count("Flag") == 1


def test_an_unrepaired_rupture_has_no_return_and_a_tie_names_both_parts():
    found = [rupture_row(23, 3, "36.5", "39.50", "goals tasks", "unrepaired")]
    figure = client_chart(client_trend(V_SHAPE), [], ADULT, found)
    assert "Repair" not in traces(figure)
    assert traces(figure)["Rupture"]["hovertext"] == [
        "Rupture: 36.5, 3.0 below the usual 39.5; goals and tasks fell most, equally"
        "<br>Not repaired"
    ]


def test_a_pending_rupture_waits_and_a_usual_level_keeps_its_hundredths():
    found = [rupture_row(23, 3, "36.5", "39.05", "bond", "pending")]
    figure = client_chart(client_trend(V_SHAPE), [], ADULT, found)
    assert traces(figure)["Rupture"]["hovertext"] == [
        "Rupture: 36.5, 2.55 below the usual 39.05; the bond item fell most"
        "<br>Not yet repaired: the next sessions will tell"
    ]


def test_another_raters_rupture_is_marked_on_their_own_line():
    found = [
        rupture_row(
            25, 3, "30.0", "35.00", "general", "repaired", repaired=4, rater="partner", label="Sam"
        )
    ]
    figure = client_chart(client_trend(V_SHAPE), [], ADULT, found)
    by_name = traces(figure)
    assert (by_name["Rupture"]["y"], by_name["Repair"]["y"]) == ([30.0], [33.0])
    assert by_name["Rupture"]["hovertext"][0].startswith(
        "partner (Sam) · Rupture: 30.0, 5.0 below the usual 35.0; the session as a whole fell most"
    )


# the team chart


def test_the_monthly_chart_draws_one_line_per_therapist_and_the_cutoff():
    monthly = [
        MonthlyMean(line_id=1, month=day(1, 1), mean=36.0, count=3),
        MonthlyMean(line_id=1, month=day(2, 1), mean=37.7, count=4),
        MonthlyMean(line_id=2, month=day(1, 1), mean=33.0, count=1),
    ]
    figure = monthly_chart(monthly, {1: "Alex Moreno"}, Decimal("36.0"))
    assert [(t["name"], t["x"], t["y"]) for t in figure["data"]] == [
        ("Alex Moreno", ["2025-01-01", "2025-02-01"], [36.0, 37.7]),
        ("Therapist 2", ["2025-01-01"], [33.0]),
    ]
    assert figure["data"][0]["hovertext"][1] == "Alex Moreno<br>2025-02: mean 37.7 over 4 ratings"
    (line,) = figure["layout"]["shapes"]
    assert (line["y0"], line["y1"], line["line"]["dash"]) == (36.0, 36.0, "dash")
    assert figure["layout"]["yaxis"]["range"] == [30, 40]  # Therapist 2's 33.0 is in view
    # Lines that coincide stay visible: their own dash, and larger markers underneath.
    first, second = figure["data"]
    assert (first["line"]["dash"], second["line"]["dash"]) == ("solid", "dot")
    assert first["marker"]["size"] > second["marker"]["size"]


def test_the_monthly_chart_of_nothing_is_empty():
    assert monthly_chart([], {}, Decimal("36.0"))["data"] == []


# the figures are plotly's


@pytest.mark.parametrize(
    "build",
    [
        lambda: client_chart(client_trend(COUPLE), FLAGS, ADULT),
        lambda: client_chart(client_trend([]), [], {}),
        lambda: client_chart(client_trend(V_SHAPE), V_FLAGS, ADULT, V_RUPTURES),
        lambda: monthly_chart(
            [MonthlyMean(1, day(1, 1), 36.0, 3)], {1: "<b>Alex</b>"}, Decimal("36.0")
        ),
        lambda: monthly_chart([], {}, Decimal("36.0")),
        lambda: client_chart(
            client_trend(COUPLE),
            FLAGS,
            ADULT,
            expected=ExpectedResponse.from_json(expected_parameters(), source="<i>Net</i>"),
            band="adult",
        ),
        lambda: calibration_chart(
            [
                {
                    "session": 2,
                    "ratings": 40,
                    "observed_mean": 21.5,
                    "expected_median_mean": 21.0,
                    "below_median": 0.45,
                    "below_boundary": 0.125,
                },
                {
                    "session": 3,
                    "ratings": 31,
                    "observed_mean": 22.5,
                    "expected_median_mean": 23.0,
                    "below_median": 0.55,
                    "below_boundary": 0.1,
                },
            ],
            0.1,
        ),
    ],
    ids=[
        "client",
        "empty client",
        "ruptures",
        "monthly",
        "empty monthly",
        "client with band",
        "calibration",
    ],
)
def test_plotly_accepts_every_figure_as_it_stands(build):
    # The figures are written as plain dicts; plotly's own validation rejects any property name
    # or value its JSON schema does not know, and must give back exactly what we wrote.
    figure = build()
    validated = json.loads(go.Figure(figure).to_json())
    assert validated["data"] == json.loads(json.dumps(figure["data"]))
    assert validated["layout"] == json.loads(json.dumps(figure["layout"]))


# embedding


def test_chart_json_cannot_close_the_script_element():
    figure = {"data": [], "layout": {"title": {"text": "</script><script>alert(1)</script> & co"}}}
    text = chart_json(figure)
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert "\\u003c/script\\u003e" in text
    assert json.loads(text) == figure


def test_chart_json_embeds_a_whole_figure(figure):
    assert json.loads(chart_json(figure)) == figure


def test_the_chart_config_hides_the_logo_and_the_tool_bar():
    config = chart_config()
    assert config["displaylogo"] is False
    assert config["displayModeBar"] is False
    assert config["responsive"] is True
    assert {"lasso2d", "select2d"} <= set(config["modeBarButtonsToRemove"])
