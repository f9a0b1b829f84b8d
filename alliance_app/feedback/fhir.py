"""FHIR R4 out and in: each instrument as a Questionnaire, each rating as a QuestionnaireResponse,
and a QuestionnaireResponse read back as a row of the ratings import.

The mapping is written down in docs/fhir.md. Resources are built as plain dicts here, validated
with the R4B models of `fhir.resources`: a client's Bundle on the way out, every resource on the
way in. The bulk NDJSON export writes the same dicts unvalidated, as the library takes over a
millisecond a resource; the tests validate every line of it.

Imported responses go through `imports.rows_import`, the paper import's path: the same checks,
dry run, report line by line and idempotent re-import.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone, translation
from django.utils.translation import gettext as _
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from alliance_app.accounts.models import Organization, User
from alliance_app.measures import Instrument, Item

from .imports import MAX_BYTES, MAX_ROWS, ImportReport, RowIn, RowProblem, rows_import
from .instruments import catalogue
from .models import Channel, Rater, Rating

QUESTIONNAIRE_BASE = "urn:alliance:questionnaire:"
CLIENT_CODE_SYSTEM = "urn:alliance:client-code"
RATING_SYSTEM = "urn:alliance:rating"
SESSION_NUMBER_URL = "urn:alliance:fhir:session-number"
SESSION_DATE_URL = "urn:alliance:fhir:session-date"
RATER_URL = "urn:alliance:fhir:rater"
# Item keys are lower-case letters, digits and "_" only: this linkId can never be an item's.
TOTAL_LINK_ID = "total-score"

MIN_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/maxValue"
DECIMAL_PLACES_URL = "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces"
ITEM_CONTROL_URL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
CALCULATED_URL = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)
# A response "amended" after completion is still a complete rating.
COMPLETE_STATUSES = ("completed", "amended")
NDJSON_TYPE = "application/fhir+ndjson"

# Where a problem the ratings import finds sits in a QuestionnaireResponse.
_FIELD_IN_RESOURCE = {
    "client_code": "subject",
    "date": f"extension {SESSION_DATE_URL}",
    "session_number": f"extension {SESSION_NUMBER_URL}",
    "scale": "questionnaire",
    "rater": f"extension {RATER_URL}",
    "rater_label": f"extension {RATER_URL}",
}


@dataclass(frozen=True)
class Responses:
    """What a file holds: its QuestionnaireResponses as import rows, the problems of those that
    cannot be rows, and the item linkIds of each row's questionnaire, by line."""

    rows: list[RowIn]
    problems: list[RowProblem]
    count: int
    link_ids: dict[int, tuple[str, ...]]


def questionnaire_url(code: str) -> str:
    return f"{QUESTIONNAIRE_BASE}{code}"


def questionnaire_resource(instrument: Instrument) -> dict:
    """The instrument as a Questionnaire: one decimal item per line, with its anchors, and the
    total as a calculated, read-only item."""
    resource = {
        "resourceType": "Questionnaire",
        "id": instrument.code,
        "url": questionnaire_url(instrument.code),
        "name": "".join(part.capitalize() for part in instrument.code.split("-")),
        "title": instrument.title,
        "status": "active",
        "language": instrument.language,
        "subjectType": ["Patient"],
        "description": instrument.instructions,
        "copyright": instrument.source,
        "item": [
            *(_question(item, instrument.item_max) for item in instrument.items),
            _total_question(instrument),
        ],
    }
    if instrument.translation_of:
        resource["derivedFrom"] = [questionnaire_url(instrument.translation_of)]
    return resource


def response_resource(rating: Rating) -> dict:
    """The rating as a QuestionnaireResponse. The client is named by their code only, the rater
    by role (and the label that tells raters of one role apart), no one who entered it at all.

    Reads `rating.session.episode.client`: select them with the rating."""
    instrument = catalogue().get(rating.instrument)
    session = rating.session
    rater = [{"url": "role", "valueCode": rating.rater}]
    if rating.rater_label:
        rater.append({"url": "label", "valueString": rating.rater_label})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": str(rating.idempotency_key),
        "extension": [
            {"url": SESSION_NUMBER_URL, "valuePositiveInt": session.number},
            {"url": SESSION_DATE_URL, "valueDate": session.date.isoformat()},
            {"url": RATER_URL, "extension": rater},
        ],
        "identifier": {"system": RATING_SYSTEM, "value": str(rating.idempotency_key)},
        "questionnaire": questionnaire_url(rating.instrument),
        "status": "completed",
        "subject": {
            "type": "Patient",
            "identifier": {"system": CLIENT_CODE_SYSTEM, "value": session.episode.client.code},
        },
        "authored": rating.created_at.isoformat(),
        "source": {
            "type": "Patient" if rating.rater == Rater.CLIENT else "RelatedPerson",
            "display": rating.rater,
        },
        "item": [
            *(
                {"linkId": item.key, "text": item.label, "answer": [{"valueDecimal": score}]}
                for item, score in zip(instrument.items, rating.items, strict=True)
            ),
            {
                "linkId": TOTAL_LINK_ID,
                "text": _total_text(instrument),
                "answer": [{"valueDecimal": rating.total}],
            },
        ],
    }


def client_bundle(ratings: Iterable[Rating]) -> str:
    """A Bundle (collection) of the ratings' QuestionnaireResponses and the Questionnaires they
    answer, validated by the library, as JSON."""
    ratings = list(ratings)
    codes = sorted({rating.instrument for rating in ratings})
    resources = [questionnaire_resource(catalogue().get(code)) for code in codes]
    resources += [response_resource(rating) for rating in ratings]
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": timezone.now().isoformat(),
            "entry": [{"resource": resource} for resource in resources],
        }
    )
    return bundle.model_dump_json(indent=2)


def ndjson_lines(ratings: Iterable[Rating]) -> Iterator[str]:
    """One QuestionnaireResponse a line (FHIR bulk data's NDJSON), as the ratings come."""
    for rating in ratings:
        yield json.dumps(response_resource(rating), default=_json_number) + "\n"


def responses_read(data: bytes) -> Responses:
    """The QuestionnaireResponses of an uploaded file, a JSON Bundle (or one resource) or NDJSON,
    each as an import row whose line is its place in the file: its entry in the Bundle, its line
    of NDJSON. Questionnaires are passed over: Alliance asks its own. Problems of the file as a
    whole come back on line 1 under "file", with no rows."""
    if len(data) > MAX_BYTES:
        message = _("The file is larger than %(size)s MB: split it into smaller files.")
        return _file_refused(message % {"size": MAX_BYTES // 2**20})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _file_refused(_("The file is not UTF-8 text: save it as UTF-8 and try again."))
    found = _resources(text)
    if isinstance(found, RowProblem):
        return Responses([], [found], 0, {})
    rows, problems, link_ids, count = [], [], {}, 0
    for line, resource in found:
        if isinstance(resource, dict) and resource.get("resourceType") == "Questionnaire":
            continue
        count += 1
        if count > MAX_ROWS:
            return _file_refused(
                _("The file has more than %(rows)s ratings: split it into smaller files.")
                % {"rows": MAX_ROWS}
            )
        row = _row(line, resource)
        if isinstance(row, list):
            problems += row
        else:
            rows.append(row)
            link_ids[line] = catalogue().get(_instrument_code(resource)).item_keys
    return Responses(rows, problems, count, link_ids)


def responses_import(
    *,
    organization: Organization,
    user: User,
    responses: Responses,
    dry_run: bool,
    only_valid: bool = False,
) -> ImportReport:
    """Check `responses` and, unless this is a dry run, store them as the ratings import does,
    entered by `user` after the fact (channel: paper entry). A response that is no row makes
    the whole file a problem, as a bad row does, unless only the valid ones are wanted."""
    refused = bool(responses.problems) and not only_valid
    report = rows_import(
        organization=organization,
        user=user,
        rows=responses.rows,
        channel=Channel.PAPER,
        dry_run=dry_run or refused,
        only_valid=only_valid,
    )
    problems = [_in_resource(problem, responses.link_ids) for problem in report.problems]
    report.problems = sorted(problems + responses.problems, key=lambda problem: problem.line)
    report.rows = responses.count
    report.dry_run = dry_run
    return report


def _question(item: Item, item_max: Decimal) -> dict:
    return {
        "extension": [
            {"url": MIN_VALUE_URL, "valueDecimal": Decimal("0.0")},
            {"url": MAX_VALUE_URL, "valueDecimal": item_max},
            {"url": DECIMAL_PLACES_URL, "valueInteger": 1},
            _item_control("slider"),
        ],
        "linkId": item.key,
        "text": item.label,
        "type": "decimal",
        "required": True,
        "item": [
            _anchor(f"{item.key}.low", item.low_anchor, "lower"),
            _anchor(f"{item.key}.high", item.high_anchor, "upper"),
        ],
    }


def _anchor(link_id: str, text: str, control: str) -> dict:
    """A line's end, in the words the form shows there."""
    return {
        "extension": [_item_control(control)],
        "linkId": link_id,
        "text": text,
        "type": "display",
    }


def _item_control(code: str) -> dict:
    return {
        "url": ITEM_CONTROL_URL,
        "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": code}]},
    }


def _total_question(instrument: Instrument) -> dict:
    others = ", ".join(f"'{key}'" for key in instrument.item_keys)
    return {
        "extension": [
            {
                "url": CALCULATED_URL,
                "valueExpression": {
                    "language": "text/fhirpath",
                    "expression": (
                        f"%resource.item.where(linkId in ({others})).answer.value.sum()"
                    ),
                },
            },
            {"url": MIN_VALUE_URL, "valueDecimal": Decimal("0.0")},
            {"url": MAX_VALUE_URL, "valueDecimal": instrument.max_total},
        ],
        "linkId": TOTAL_LINK_ID,
        "text": _total_text(instrument),
        "type": "decimal",
        "readOnly": True,
    }


def _total_text(instrument: Instrument) -> str:
    # In the instrument's language, as the rest of its wording is.
    with translation.override(instrument.language):
        return _("Total")


def _json_number(value: object) -> float:
    # One decimal place of a score up to 40 prints as itself ("7.5", "8.0") from a float.
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _file_refused(message: str) -> Responses:
    return Responses([], [RowProblem(1, "file", message)], 0, {})


def _resources(text: str) -> list[tuple[int, object]] | RowProblem:
    """The resources of a Bundle, of one resource or of NDJSON, each with its place."""
    if not text.strip():
        return RowProblem(1, "file", _("The file is empty."))
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        if whole.get("resourceType") != "Bundle":
            return [(1, whole)]
        entries = whole.get("entry", [])
        if not isinstance(entries, list):
            return RowProblem(1, "file", _("The Bundle's entry is not a list."))
        return [
            (place, entry.get("resource") if isinstance(entry, dict) else None)
            for place, entry in enumerate(entries, start=1)
        ]
    found: list[tuple[int, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append((number, json.loads(line)))
        except ValueError:
            if number == 1 and whole is None:
                return RowProblem(
                    1, "file", _("The file is neither a JSON Bundle nor NDJSON of FHIR resources.")
                )
            found.append((number, None))
    return found


def _instrument_code(resource: dict) -> str:
    canonical = str(resource.get("questionnaire") or "").split("|", 1)[0]
    return (
        canonical.removeprefix(QUESTIONNAIRE_BASE)
        if canonical.startswith(QUESTIONNAIRE_BASE)
        else ""
    )


def _row(line: int, resource: object) -> RowIn | list[RowProblem]:
    """One resource as an import row, or what keeps it from being one."""

    def refused(field: str, message: str) -> list[RowProblem]:
        return [RowProblem(line, field, message)]

    if not isinstance(resource, dict):
        return refused("row", _("This is not a FHIR resource (a JSON object)."))
    kind = resource.get("resourceType")
    if kind != "QuestionnaireResponse":
        return refused(
            "row",
            _("A %(kind)s, not a QuestionnaireResponse: only ratings are imported.")
            % {"kind": kind or _("resource without a resourceType")},
        )
    try:
        response = QuestionnaireResponse.model_validate(resource)
    except ValidationError as error:
        return refused(
            "row",
            _("The FHIR library refuses this resource: %(reason)s") % {"reason": _said(error)},
        )
    if response.status not in COMPLETE_STATUSES:
        return refused(
            "status",
            _("Only a completed response is a rating; this one is “%(status)s”.")
            % {"status": response.status},
        )
    code = _instrument_code(resource)
    if code not in catalogue():
        return refused(
            "questionnaire",
            _("Unknown questionnaire “%(url)s”: Alliance's scales are %(base)s followed by a code.")
            % {"url": response.questionnaire or "", "base": QUESTIONNAIRE_BASE},
        )
    instrument = catalogue().get(code)
    problems = []
    client_code = _client_code(response)
    if client_code is None:
        problems.append(
            RowProblem(
                line,
                "subject",
                _("Name the client by an identifier of system %(system)s, the client's code.")
                % {"system": CLIENT_CODE_SYSTEM},
            )
        )
    answers, answer_problems = _answers(line, response, instrument)
    problems += answer_problems
    if problems:
        return problems
    rater = _extension(response.extension, RATER_URL)
    return RowIn(
        line=line,
        client_code=client_code,
        date=_session_date(response),
        session_number=_text(_extension(response.extension, SESSION_NUMBER_URL)),
        scale=instrument.scale,
        rater=_text(_extension(rater.extension, "role")) if rater else Rater.CLIENT,
        rater_label=_text(_extension(rater.extension, "label")) if rater else "",
        items=tuple(answers.get(key, "") for key in instrument.item_keys),
    )


def _client_code(response: QuestionnaireResponse) -> str | None:
    identifier = response.subject.identifier if response.subject else None
    if identifier is None or identifier.system != CLIENT_CODE_SYSTEM:
        return None
    return identifier.value or ""


def _answers(
    line: int, response: QuestionnaireResponse, instrument: Instrument
) -> tuple[dict[str, str], list[RowProblem]]:
    """The answers by linkId, as text for the import's checks, and the problems of their shape:
    items the questionnaire lacks, several answers, answers not numbers, a total not the sum."""
    answers: dict[str, str] = {}
    problems = []
    known = (*instrument.item_keys, TOTAL_LINK_ID)
    for item in response.item or []:
        if item.linkId not in known:
            problems.append(
                RowProblem(
                    line,
                    "item",
                    _("%(questionnaire)s has no item “%(item)s”.")
                    % {"questionnaire": instrument.code, "item": item.linkId},
                )
            )
            continue
        given = item.answer or []
        if len(given) > 1:
            problems.append(RowProblem(line, item.linkId, _("Give one answer, not several.")))
            continue
        if given:
            value = given[0].valueDecimal
            if value is None:
                value = given[0].valueInteger
            if value is None:
                problems.append(RowProblem(line, item.linkId, _("Answer with a valueDecimal.")))
                continue
            answers[item.linkId] = str(value)
    total = answers.pop(TOTAL_LINK_ID, None)
    scores = [answers.get(key) for key in instrument.item_keys]
    if total is not None and None not in scores and not problems:
        summed = sum(Decimal(score) for score in scores)
        if Decimal(total) != summed:
            problems.append(
                RowProblem(
                    line,
                    TOTAL_LINK_ID,
                    _("The total %(total)s is not the sum of the items, %(sum)s.")
                    % {"total": total, "sum": f"{summed:.1f}"},
                )
            )
    return answers, problems


def _session_date(response: QuestionnaireResponse) -> str:
    """The session's day: its extension, else the day the response was authored."""
    held = _extension(response.extension, SESSION_DATE_URL)
    if held is not None and held.valueDate is not None:
        return held.valueDate.isoformat()
    authored = response.authored
    if isinstance(authored, datetime):
        return timezone.localdate(authored).isoformat() if authored.tzinfo else ""
    if isinstance(authored, date):
        return authored.isoformat()
    return ""


def _extension(extensions, url: str):
    return next((extension for extension in extensions or [] if extension.url == url), None)


def _text(extension) -> str:
    """An extension's simple value as the import reads it: "" when absent."""
    if extension is None:
        return ""
    for name in ("valuePositiveInt", "valueInteger", "valueCode", "valueString"):
        value = getattr(extension, name, None)
        if value is not None:
            return str(value)
    return ""


def _said(error: ValidationError) -> str:
    """The library's first complaint in short, where it is and what."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = error.error_count() - 1
    said = f"{where}: {first['msg']}" if where else first["msg"]
    return said + (f" (+{more})" if more else "")


def _in_resource(problem: RowProblem, link_ids: dict[int, tuple[str, ...]]) -> RowProblem:
    """A problem of the ratings import, its column named as the place in the resource."""
    field = _FIELD_IN_RESOURCE.get(problem.field)
    if field is None and problem.field.startswith("item_") and problem.line in link_ids:
        field = link_ids[problem.line][int(problem.field.removeprefix("item_")) - 1]
    if field is None:
        return problem
    return RowProblem(problem.line, field, problem.message)
