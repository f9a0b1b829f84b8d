"""The research export's codebook: every column in order, its type, its values and its meaning,
and the rules behind the derived columns with their sources (DESIGN.md §5, research).

The export (`research.export`) writes exactly these columns in this order, and its Parquet schema
is built from their types; the codebook ships in the zip as Markdown.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from django.utils.functional import Promise, lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from alliance_app.clinic.models import Closure, SessionFormat
from alliance_app.feedback.models import Rater
from alliance_app.measures import (
    RESOLUTION_MAX,
    RESOLUTION_MIN,
    AgeBand,
    BordinDimension,
    RuptureStatus,
)

OPEN = "open"


class Kind(StrEnum):
    """A column's type, as the CSV reader and the Parquet schema take it."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    values: str | Promise
    meaning: str | Promise
    nullable: bool = True


# A translated text with its placeholders filled when it is read, in the reader's language.
_filled = lazy(lambda text, params: str(text) % params, str)


def _listed(values) -> str:
    return ", ".join(str(value) for value in values)


ITEM_RANGE = "0.0–10.0"
TOTAL_RANGE = "0.0–40.0"


def _items(scale: str, what: str | Promise) -> list[Column]:
    items = [
        Column(
            f"{scale}_item_{n}",
            Kind.NUMBER,
            ITEM_RANGE,
            _filled(
                _("Item %(n)s of the %(scale)s scale, in the instrument's order (%(what)s)."),
                {"n": n, "scale": scale, "what": what},
            ),
        )
        for n in range(1, 5)
    ]
    total = Column(
        f"{scale}_total",
        Kind.NUMBER,
        TOTAL_RANGE,
        _filled(_("Total of the four items of the %(scale)s scale."), {"scale": scale}),
    )
    return [*items, total]


COLUMNS: tuple[Column, ...] = (
    Column(
        "client_study_id",
        Kind.STRING,
        _("16 hexadecimal characters"),
        _(
            "The client, under an identifier made for this export only: a keyed hash (HMAC-SHA256) "
            "of the database id with a random key that is thrown away, so another export gives "
            "other identifiers and neither can be traced back."
        ),
        nullable=False,
    ),
    Column(
        "episode_study_id",
        Kind.STRING,
        _("16 hexadecimal characters"),
        _("The episode of care, made as the client's identifier."),
        nullable=False,
    ),
    Column(
        "therapist_study_id",
        Kind.STRING,
        _("16 hexadecimal characters"),
        _("The episode's therapist, made as the client's identifier."),
        nullable=False,
    ),
    Column(
        "age_band",
        Kind.STRING,
        _listed(AgeBand),
        _("The client's age band, which picks the scales' wording and cut-offs."),
        nullable=False,
    ),
    Column(
        "session_number",
        Kind.INTEGER,
        _("1 and up"),
        _("The session's number in the episode."),
        nullable=False,
    ),
    Column(
        "day_offset",
        Kind.INTEGER,
        _("0 and up"),
        _("Days from the episode's opening to the session, in place of dates."),
        nullable=False,
    ),
    Column(
        "session_format",
        Kind.STRING,
        _listed(SessionFormat.values),
        _("Who was in the room."),
        nullable=False,
    ),
    Column(
        "rater",
        Kind.STRING,
        _listed(Rater.values),
        _("Who gave the ratings on this row."),
        nullable=False,
    ),
    Column(
        "rater_index",
        Kind.INTEGER,
        _("1 and up"),
        _(
            "Tells raters of the same kind in one episode apart (two parents: 1 and 2), numbered "
            "in the order they first rated; the labels the clinic gave them are not exported."
        ),
        nullable=False,
    ),
    Column(
        "session_instrument",
        Kind.STRING,
        _("an instrument code, e.g. session-adult"),
        _("The session (alliance) scale rated; empty when the rater gave none this session."),
    ),
    *_items("session", _("relationship, goals and topics, approach, overall")),
    Column(
        "outcome_instrument",
        Kind.STRING,
        _("an instrument code, e.g. outcome-adult"),
        _("The outcome scale rated; empty when the rater gave none this session."),
    ),
    *_items("outcome", _("personal, relationships, social, overall for adults")),
    Column(
        "next_outcome_total",
        Kind.NUMBER,
        TOTAL_RANGE,
        _(
            "The same rater's outcome total at their next rated session in the episode; empty "
            "at their last one, or when they gave no outcome rating then."
        ),
    ),
    Column(
        "session_total_person_mean",
        Kind.NUMBER,
        TOTAL_RANGE,
        _(
            "The mean of the same rater's session totals over the whole episode, to three "
            "decimals (person-mean centring, after Falkenström et al. 2017)."
        ),
    ),
    Column(
        "session_total_deviation",
        Kind.NUMBER,
        "−40.0–40.0",
        _(
            "session_total minus session_total_person_mean: the within-client part of the "
            "session rating."
        ),
    ),
    Column(
        "rupture",
        Kind.BOOLEAN,
        "true, false",
        _("Whether the session total on this row is a rupture under the rule in force."),
        nullable=False,
    ),
    Column(
        "rupture_status",
        Kind.STRING,
        _listed(RuptureStatus),
        _(
            "Repaired: the total came back within the repair window; unrepaired: it did not, or "
            "the episode closed first; pending: the window is still open. Empty without a rupture."
        ),
    ),
    Column(
        "rupture_repaired_at_session",
        Kind.INTEGER,
        _("a later session_number"),
        _("The session whose total repaired the rupture."),
    ),
    Column(
        "rupture_sessions_to_repair",
        Kind.INTEGER,
        _("1 and up"),
        _("Sessions from the rupture to its repair."),
    ),
    Column(
        "rupture_dimensions",
        Kind.STRING,
        _filled(
            _("one or more of %(values)s, space-separated"), {"values": _listed(BordinDimension)}
        ),
        _(
            "The part of the alliance (Bordin 1979) of the item or items that fell most: "
            "relationship → bond, goals and topics → goals, approach → tasks, overall → general."
        ),
    ),
    Column(
        "tension",
        Kind.BOOLEAN,
        "true, false",
        _(
            "The rater's answer to the question asked after the session scale: was there a moment "
            "of tension (after the Post-Session Questionnaire, Muran et al. 2009). Empty when not "
            "asked or not answered."
        ),
    ),
    Column(
        "tension_resolution",
        Kind.INTEGER,
        f"{RESOLUTION_MIN}–{RESOLUTION_MAX}",
        _("After a yes: how far it was sorted out, from 1 (not at all) to 5 (completely)."),
    ),
    Column(
        "therapist_trainings",
        Kind.INTEGER,
        _("0 and up"),
        _(
            "How many of the organisation's recorded trainings the episode's therapist had "
            "attended on or before the session's day."
        ),
        nullable=False,
    ),
    Column(
        "days_since_training",
        Kind.INTEGER,
        _("0 and up"),
        _("Days from the latest of those trainings to the session; empty before the first."),
    ),
    Column(
        "episode_closure",
        Kind.STRING,
        _listed([*Closure.values, OPEN]),
        _(
            "How the episode ended: planned, unplanned (dropout), transferred; open while it "
            "goes on."
        ),
        nullable=False,
    ),
)

NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)

RULES: Sequence[tuple[str | Promise, str | Promise]] = (
    (
        _("Rows"),
        _(
            "One row per therapy session and rater with at least one rating: the session scale "
            "and the outcome scale that rater gave in that session share the row. Only episodes "
            "of clients of this organisation are exported; free text (notes, labels, names, "
            "client codes) and dates never are."
        ),
    ),
    (
        _("Rupture"),
        _(
            "A session total that falls below the same rater's usual level (the mean of their "
            "previous totals in the episode) by a threshold of k × SD, with a minimum drop. "
            "Strauss et al. 2006 used k = 1, Stiles et al. 2004 a stricter k = 2; Gumz et al. "
            "2012 showed the count depends on the rule, so compare only exports made under the "
            "same rule: README.txt states the one in force."
        ),
    ),
    (
        _("Repair"),
        _(
            "A later total back near the usual level within a few sessions: the V-shape of "
            "Stiles et al. 2004."
        ),
    ),
    (
        _("Part of the alliance"),
        _(
            "Bordin 1979: the alliance as agreement on goals, on tasks, and the bond. The item "
            "that fell most names the part."
        ),
    ),
    (
        _("Tension"),
        _(
            "The client's own word, in our wording after the Post-Session Questionnaire of Muran "
            "et al. 2009."
        ),
    ),
    (
        _("Person-mean centring"),
        _(
            "Within-client effects are separated from between-client differences by centring "
            "each rater's session totals on their own episode mean (Falkenström et al. 2017). "
            "Their results depend on detrending, and a lagged outcome as a predictor biases the "
            "within-client estimate: model with care."
        ),
    ),
    (
        _("Study identifiers"),
        _(
            "Made afresh for each export: the same client has different identifiers in two "
            "exports, so exports cannot be linked to each other or to the clinic's records."
        ),
    ),
)


def markdown() -> str:
    """The codebook as Markdown, in the active language."""
    lines = [
        "# " + gettext("Alliance research export: codebook"),
        "",
        "| # | "
        + " | ".join(
            [
                gettext("column"),
                gettext("type"),
                gettext("values"),
                gettext("empty"),
                gettext("meaning"),
            ]
        )
        + " |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for number, column in enumerate(COLUMNS, 1):
        empty = gettext("may be empty") if column.nullable else gettext("never")
        lines.append(
            f"| {number} | `{column.name}` | {column.kind} | {column.values} | {empty} | "
            f"{column.meaning} |"
        )
    lines += ["", "## " + gettext("Rules and their sources"), ""]
    for title, text in RULES:
        lines += [f"**{title}.** {text}", ""]
    return "\n".join(lines)
