"""The client's progress picture: where each point lands, which numbers are written."""

import re
from decimal import Decimal

import pytest

from alliance_app.feedback.progress_svg import (
    Frame,
    ProgressPoint,
    labelled_sessions,
    progress_svg,
    x_of,
    y_of,
)

FRAME = Frame()  # 640 × 320, plot area from (48, 28) to (612, 272), points 28 inside it


def draw(*pairs: tuple[int, str], **kwargs) -> str:
    points = [ProgressPoint(session, Decimal(total)) for session, total in pairs]
    return progress_svg(points, title="Your course", session_word="Session", **kwargs)


def circles(svg: str) -> list[tuple[float, float]]:
    return [
        (float(x), float(y)) for x, y in re.findall(r'<circle[^>]*cx="([\d.]+)" cy="([\d.]+)"', svg)
    ]


def test_totals_map_onto_the_fixed_0_to_40_scale():
    assert FRAME.plot_width == 564 and FRAME.plot_height == 244
    assert y_of(Decimal("0"), FRAME) == 272
    assert y_of(Decimal("40"), FRAME) == 28
    assert y_of(Decimal("20"), FRAME) == 150
    assert y_of(Decimal("15.0"), FRAME) == pytest.approx(180.5)


def test_sessions_are_spaced_by_their_numbers():
    assert x_of(1, 1, 5, FRAME) == 76  # 28 inside the guide lines, which run from 48 to 612
    assert x_of(5, 1, 5, FRAME) == 584
    assert x_of(2, 1, 5, FRAME) == 203
    assert x_of(4, 4, 4, FRAME) == 330  # one point alone sits in the middle


def test_each_rating_is_one_point_on_one_line():
    svg = draw((1, "15.0"), (2, "20.0"), (4, "30.0"))
    assert circles(svg) == [(76, 180.5), (245.3, 150), (584, 89)]
    assert re.findall(r'<polyline[^>]*points="([^"]+)"', svg) == ["76,180.5 245.3,150 584,89"]


def test_a_single_rating_is_a_point_without_a_line():
    svg = draw((3, "22.5"))
    assert circles(svg) == [(330, 134.8)]  # 134.75, written to one decimal
    assert "<polyline" not in svg


def test_only_the_first_and_latest_totals_are_written_in_the_given_format():
    svg = draw((1, "15.0"), (2, "18.5"), (3, "24.5"), shown=lambda t: f"{t:.1f}".replace(".", ","))
    totals = re.findall(r'class="progress-total"[^>]*>([^<]+)<', svg)
    assert totals == ["15,0", "24,5"]
    assert "18,5" not in svg and "18.5" not in svg


def test_the_guides_are_the_whole_scale_and_nothing_else():
    svg = draw((1, "15.0"), (2, "21.0"))
    assert re.findall(r'class="progress-scale"[^>]*>([^<]+)<', svg) == ["0", "10", "20", "30", "40"]
    assert svg.count("<line ") == 5  # no cutoff line, no band


def test_session_numbers_thin_out_and_keep_the_last():
    assert labelled_sessions([1, 2, 3]) == [1, 2, 3]
    assert labelled_sessions(list(range(1, 13))) == list(range(1, 13))
    assert labelled_sessions(list(range(1, 14))) == [1, 3, 5, 7, 9, 11, 13]
    assert labelled_sessions(list(range(1, 27))) == [1, 4, 7, 10, 13, 16, 19, 22, 26]


def test_words_are_escaped_and_name_the_picture():
    svg = progress_svg(
        [ProgressPoint(1, Decimal("10.0"))], title="A <b> & c", session_word="Sesión <1>"
    )
    assert '<title id="progress-chart-title">A &lt;b&gt; &amp; c</title>' in svg
    assert "Sesión &lt;1&gt;" in svg and "<b>" not in svg
    assert 'role="img"' in svg and 'aria-labelledby="progress-chart-title"' in svg


def test_no_points_is_refused():
    with pytest.raises(ValueError, match="at least one rating"):
        progress_svg([], title="t", session_word="s")
