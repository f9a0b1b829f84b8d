"""The client's own outcome course as a small SVG picture, drawn on the server.

Client mode loads no chart library (its page stays under 100 KB, DESIGN.md §4), and a client
shown their course needs no hover, zoom or toolbar: a line through their totals on a fixed
0–40 scale, each point's session number below it, a few light guide lines. No cutoff, no band,
no flags: the picture is for the conversation, not for judging. Pure Python, so the geometry is
tested without a page; the caller passes every word, already translated, and the number format.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from math import ceil

TOTAL_MAX = Decimal("40")
GUIDES = (Decimal("0"), Decimal("10"), Decimal("20"), Decimal("30"), Decimal("40"))
# At most this many session numbers under the axis; more would run into each other.
MAX_SESSION_LABELS = 12


@dataclass(frozen=True)
class ProgressPoint:
    session: int  # the session's number in the episode
    total: Decimal


@dataclass(frozen=True)
class Frame:
    """The picture's size in SVG units and the plot area inside its margins."""

    width: int = 640
    height: int = 320
    left: int = 48
    right: int = 28
    top: int = 28
    bottom: int = 48
    # The points keep this far from the ends of the guide lines, so that the first total written
    # above its point stays clear of the scale's numbers.
    inset: int = 28

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


def x_of(session: int, first: int, last: int, frame: Frame) -> float:
    """Sessions spaced by their numbers, so a session without a rating leaves its gap; one
    point alone sits in the middle."""
    if first == last:
        return frame.left + frame.plot_width / 2
    span = frame.plot_width - 2 * frame.inset
    return frame.left + frame.inset + span * (session - first) / (last - first)


def y_of(total: Decimal, frame: Frame) -> float:
    """Higher totals higher up, 0 on the bottom line and 40 on the top one."""
    return frame.top + frame.plot_height * float(1 - total / TOTAL_MAX)


def labelled_sessions(sessions: Sequence[int]) -> list[int]:
    """The session numbers written under the axis: all of them up to MAX_SESSION_LABELS, else
    every n-th from the first, and always the last."""
    step = ceil(len(sessions) / MAX_SESSION_LABELS)
    shown = list(sessions[::step])
    if sessions and shown[-1] != sessions[-1]:
        shown[-1] = sessions[-1]
    return shown


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def progress_svg(
    points: Sequence[ProgressPoint],
    *,
    title: str,
    session_word: str,
    shown: Callable[[Decimal], str] = lambda total: f"{total:.1f}",
    frame: Frame = Frame(),
) -> str:
    """The picture for `points` (in session order, at least one). `title` names it for screen
    readers; `session_word` names the row of session numbers; `shown` writes a total. The guide
    lines' labels are whole numbers, written alike in every language we ship."""
    if not points:
        raise ValueError("a progress picture needs at least one rating")
    first, last = points[0].session, points[-1].session
    xy = [(x_of(point.session, first, last, frame), y_of(point.total, frame)) for point in points]
    bottom = frame.top + frame.plot_height
    parts = [
        f'<svg class="progress-chart" viewBox="0 0 {frame.width} {frame.height}" role="img"'
        f' aria-labelledby="progress-chart-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="progress-chart-title">{escape(title)}</title>',
    ]
    for guide in GUIDES:
        y = _number(y_of(guide, frame))
        parts.append(
            f'<line class="progress-guide" x1="{frame.left}" y1="{y}"'
            f' x2="{frame.width - frame.right}" y2="{y}"/>'
        )
        parts.append(
            f'<text class="progress-scale" x="{frame.left - 10}" y="{y}" text-anchor="end"'
            f' dominant-baseline="middle">{int(guide)}</text>'
        )
    for session in labelled_sessions([point.session for point in points]):
        x = _number(x_of(session, first, last, frame))
        parts.append(
            f'<text class="progress-session" x="{x}" y="{bottom + 22}"'
            f' text-anchor="middle">{session}</text>'
        )
    parts.append(
        f'<text class="progress-axis" x="{_number(frame.left + frame.plot_width / 2)}"'
        f' y="{frame.height - 4}" text-anchor="middle">{escape(session_word)}</text>'
    )
    if len(xy) > 1:
        path = " ".join(f"{_number(x)},{_number(y)}" for x, y in xy)
        parts.append(f'<polyline class="progress-line" points="{path}"/>')
    for x, y in xy:
        parts.append(f'<circle class="progress-point" cx="{_number(x)}" cy="{_number(y)}" r="7"/>')
    # The first and the latest total written above their points: where it began, where it is.
    for index in sorted({0, len(points) - 1}):
        x, y = xy[index]
        parts.append(
            f'<text class="progress-total" x="{_number(x)}" y="{_number(y - 16)}"'
            f' text-anchor="middle">{escape(shown(points[index].total))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
