"""FHIR R4 out and in: Questionnaires and QuestionnaireResponses the library validates, a client's
Bundle and the organisation's NDJSON under the access rules and the audit trail, and responses
imported through the paper import's checks, round trip included."""

import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import SessionFormat
from alliance_app.feedback import fhir
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import Channel, Flag, Rating
from tests import factories
from tests.factories import logged_in, rate

pytestmark = pytest.mark.django_db

NOTE = "Talked about the missed appointment"


class World:
    """Tom treats C-100 (an outcome and a session rating in session 1, the same in session 2, a
    couple's session 3 rated by the client and the partner "Partner A") and C-200; Cleo, his
    colleague, sees neither. The other organisation holds its own C-100 with nothing rated yet,
    and C-900 with one rating."""

    def __init__(self):
        self.org = factories.organization("Northside Practice")
        self.other_org = factories.organization("Southside Practice")
        self.tom = factories.user(self.org, username="tomasz")
        self.cleo = factories.user(self.org, username="cleo")
        self.admin = factories.user(self.org, role=Role.ADMIN, username="ada")
        self.other_admin = factories.user(self.other_org, role=Role.ADMIN, username="bob")
        self.client = factories.client(self.org, self.tom, code="C-100")
        episode = factories.episode(self.client)
        first = factories.therapy_session(episode, number=1)
        rate(first, "outcome-adult", "4 5 6 5.5")
        rate(first, "session-adult", "9.5 9 8.5 9")
        second = factories.therapy_session(episode, number=2)
        rate(second, "outcome-adult", "6 6.5 6 7")
        rate(second, "session-adult", "10 9.5 9.5 10")
        third = factories.therapy_session(episode, number=3, fmt=SessionFormat.COUPLE)
        rate(third, "session-adult", "9 9 9 9")
        rate(third, "session-adult", "7 8 6.5 7", rater="partner", label="Partner A")
        Flag.objects.filter(client=self.client).update(acknowledged_note=NOTE)
        other = factories.client(self.org, self.tom, code="C-200")
        rate(factories.therapy_session(factories.episode(other)), "outcome-adult", "1 1 1 1")
        outsider = factories.user(self.other_org, username="otto")
        self.twin = factories.client(self.other_org, outsider, code="C-100")
        stranger = factories.client(self.other_org, outsider, code="C-900")
        rate(factories.therapy_session(factories.episode(stranger)), "outcome-adult", "2 2 2 2")


@pytest.fixture
def world():
    return World()


def bundle_of(world: World) -> bytes:
    response = logged_in(world.tom).get(reverse("client_fhir", args=[world.client.pk]))
    assert response.status_code == 200
    return response.content


def shape(ratings) -> list[tuple]:
    """What a rating says, wherever it is stored."""
    return sorted(
        (r.session.number, r.session.date, r.instrument, r.rater, r.rater_label, r.items, r.total)
        for r in ratings.select_related("session")
    )


def responses(bundle: bytes) -> list[dict]:
    entries = json.loads(bundle)["entry"]
    return [e["resource"] for e in entries if e["resource"]["resourceType"] != "Questionnaire"]


def ndjson(*resources: object) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in resources).encode()


# The mapping


@pytest.mark.parametrize("instrument", catalogue().all(), ids=lambda i: i.code)
def test_every_instrument_is_a_questionnaire_the_library_validates(instrument):
    text = json.dumps(fhir.questionnaire_resource(instrument), default=float)
    questionnaire = Questionnaire.model_validate_json(text)
    assert questionnaire.url == f"urn:alliance:questionnaire:{instrument.code}"
    assert questionnaire.status == "active"
    *questions, total = questionnaire.item
    assert [q.linkId for q in questions] == list(instrument.item_keys)
    assert [q.text for q in questions] == [item.label for item in instrument.items]
    assert [[a.text for a in q.item] for q in questions] == [
        [item.low_anchor, item.high_anchor] for item in instrument.items
    ]
    for question in questions:
        assert question.type == "decimal"
        limits = {e.url: e.valueDecimal for e in question.extension if e.valueDecimal is not None}
        assert limits == {fhir.MIN_VALUE_URL: Decimal("0.0"), fhir.MAX_VALUE_URL: Decimal("10.0")}
    assert (total.linkId, total.type, total.readOnly) == ("total-score", "decimal", True)
    calculated = next(e for e in total.extension if e.url == fhir.CALCULATED_URL)
    assert calculated.valueExpression.language == "text/fhirpath"
    assert (questionnaire.derivedFrom or [None])[0] == (
        f"urn:alliance:questionnaire:{instrument.translation_of}"
        if instrument.translation_of
        else None
    )


def test_the_total_is_named_in_the_questionnaires_language():
    texts = {
        code: fhir.questionnaire_resource(catalogue().get(code))["item"][-1]["text"]
        for code in ("outcome-adult", "outcome-adult-es", "outcome-adult-nb")
    }
    assert texts == {
        "outcome-adult": "Total",
        "outcome-adult-es": "Total",
        "outcome-adult-nb": "Totalt",
    }


def test_a_rating_is_a_response_with_its_items_total_session_and_rater(world):
    rating = Rating.objects.select_related("session__episode__client").get(
        rater="partner", session__episode__client=world.client
    )
    response = QuestionnaireResponse.model_validate_json(
        json.dumps(fhir.response_resource(rating), default=float)
    )
    assert response.questionnaire == "urn:alliance:questionnaire:session-adult"
    assert response.status == "completed"
    assert response.subject.identifier.system == "urn:alliance:client-code"
    assert response.subject.identifier.value == "C-100"
    assert response.authored == rating.created_at
    assert (response.source.type, response.source.display) == ("RelatedPerson", "partner")
    answers = {item.linkId: item.answer[0].valueDecimal for item in response.item}
    assert answers == {
        "relationship": Decimal("7.0"),
        "goals": Decimal("8.0"),
        "approach": Decimal("6.5"),
        "overall": Decimal("7.0"),
        "total-score": Decimal("28.5"),
    }
    extensions = {e.url: e for e in response.extension}
    assert extensions[fhir.SESSION_NUMBER_URL].valuePositiveInt == 3
    assert extensions[fhir.SESSION_DATE_URL].valueDate == date(2026, 1, 8)
    rater = {e.url: e.valueCode or e.valueString for e in extensions[fhir.RATER_URL].extension}
    assert rater == {"role": "partner", "label": "Partner A"}


# A client's Bundle


def test_a_clients_bundle_holds_the_questionnaires_used_and_every_rating(world):
    bundle = Bundle.model_validate_json(bundle_of(world))
    assert bundle.type == "collection"
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds == ["Questionnaire"] * 2 + ["QuestionnaireResponse"] * 6
    assert [entry.resource.url for entry in bundle.entry[:2]] == [
        "urn:alliance:questionnaire:outcome-adult",
        "urn:alliance:questionnaire:session-adult",
    ]
    totals = [entry.resource.item[-1].answer[0].valueDecimal for entry in bundle.entry[2:]]
    assert totals == [Decimal(t) for t in ("20.5", "36.0", "25.5", "39.0", "36.0", "28.5")]


def test_the_bundle_leaks_no_name_note_or_other_client(world):
    text = bundle_of(world).decode()
    assert "C-100" in text
    for secret in ("C-200", "C-900", "tomasz", "Tomasz", "Northside", NOTE):
        assert secret not in text


def test_the_bundle_is_for_whoever_sees_the_client_in_their_organisation(world):
    url = reverse("client_fhir", args=[world.client.pk])
    assert logged_in(world.tom).get(url).status_code == 200
    assert logged_in(world.admin).get(url).status_code == 200
    assert logged_in(world.cleo).get(url).status_code == 404
    assert logged_in(world.other_admin).get(url).status_code == 404
    twin = reverse("client_fhir", args=[world.twin.pk])
    assert logged_in(world.tom).get(twin).status_code == 404


def test_the_bundle_is_recorded_naming_the_client(world):
    bundle_of(world)
    entry = AuditEntry.objects.get(action=Action.FHIR_EXPORTED)
    assert (entry.actor, entry.object_type, entry.object_id, entry.detail) == (
        world.tom,
        "client",
        str(world.client.pk),
        "C-100",
    )


def test_the_client_page_links_to_the_bundle(world):
    page = logged_in(world.tom).get(reverse("client_detail", args=[world.client.pk]))
    assert reverse("client_fhir", args=[world.client.pk]) in page.content.decode()


# The organisation's NDJSON


def test_the_ndjson_has_one_valid_response_a_line_of_the_organisation_only(world):
    response = logged_in(world.admin).get(reverse("fhir_export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+ndjson"
    lines = b"".join(response.streaming_content).decode().splitlines()
    parsed = [QuestionnaireResponse.model_validate_json(line) for line in lines]
    codes = [r.subject.identifier.value for r in parsed]
    assert codes == ["C-100"] * 6 + ["C-200"]
    assert {str(r.id) for r in parsed} == {
        str(key)
        for key in Rating.objects.filter(
            session__episode__client__organization=world.org
        ).values_list("idempotency_key", flat=True)
    }
    assert "C-900" not in "".join(lines)
    entry = AuditEntry.objects.get(action=Action.EXPORT_DOWNLOADED)
    assert (entry.actor, entry.detail) == (world.admin, "fhir.ndjson")


def test_the_ndjson_is_for_admins(world):
    assert logged_in(world.tom).get(reverse("fhir_export")).status_code == 403
    assert not AuditEntry.objects.filter(action=Action.EXPORT_DOWNLOADED).exists()


def test_the_exports_page_links_to_the_ndjson_and_the_import(world):
    page = logged_in(world.admin).get(reverse("exports")).content.decode()
    assert reverse("fhir_export") in page
    assert reverse("fhir_import") in page
    assert (
        reverse("fhir_export") not in logged_in(world.tom).get(reverse("exports")).content.decode()
    )


# In: the round trip


def run(world: World, data: bytes, user=None, **kwargs):
    user = user or world.other_admin
    return fhir.responses_import(
        organization=user.membership.organization,
        user=user,
        responses=fhir.responses_read(data),
        **{"dry_run": False, **kwargs},
    )


def test_exported_ratings_imported_elsewhere_are_the_same_ratings(world):
    data = bundle_of(world)
    check = run(world, data, dry_run=True)
    assert (check.rows, check.ready, check.stored, check.problems) == (6, 6, 0, [])
    assert not Rating.objects.filter(session__episode__client=world.twin).exists()
    report = run(world, data)
    assert (report.rows, report.stored, report.already, report.problems) == (6, 6, 0, [])
    imported = Rating.objects.filter(session__episode__client=world.twin)
    assert shape(imported) == shape(Rating.objects.filter(session__episode__client=world.client))
    assert set(imported.values_list("channel", flat=True)) == {Channel.PAPER}
    assert set(imported.values_list("entered_by", flat=True)) == {world.other_admin.pk}


def test_importing_the_same_file_again_stores_nothing(world):
    data = bundle_of(world)
    run(world, data)
    again = run(world, data)
    assert (again.stored, again.already, again.problems) == (0, 6, [])
    assert again.already_lines == [3, 4, 5, 6, 7, 8]
    assert Rating.objects.filter(session__episode__client=world.twin).count() == 6


def test_importing_a_clients_own_export_stores_nothing_twice(world):
    before = Rating.objects.count()
    report = run(world, bundle_of(world), user=world.tom, only_valid=True)
    assert report.stored == 0
    assert len(report.problems) == 6
    assert {problem.field for problem in report.problems} == {"row"}
    assert Rating.objects.count() == before


def test_the_ndjson_export_imports_too(world):
    export = logged_in(world.admin).get(reverse("fhir_export"))
    data = b"".join(export.streaming_content)
    report = run(world, data, only_valid=True)
    # The other organisation has a C-100, and no C-200.
    assert (report.rows, report.stored) == (7, 6)
    assert [(p.line, p.field) for p in report.problems] == [(7, "subject")]
    assert "Unknown client" in report.problems[0].message


# In: the problems, response by response


def good(**changes) -> dict:
    resource = {
        "resourceType": "QuestionnaireResponse",
        "extension": [
            {"url": fhir.SESSION_NUMBER_URL, "valuePositiveInt": 1},
            {"url": fhir.SESSION_DATE_URL, "valueDate": "2026-02-02"},
        ],
        "questionnaire": "urn:alliance:questionnaire:outcome-adult",
        "status": "completed",
        "subject": {"identifier": {"system": fhir.CLIENT_CODE_SYSTEM, "value": "C-100"}},
        "authored": "2026-02-02T09:00:00Z",
        "item": [
            {"linkId": key, "answer": [{"valueDecimal": 5.5}]}
            for key in ("personal", "relationships", "social", "overall")
        ]
        + [{"linkId": "total-score", "answer": [{"valueDecimal": 22.0}]}],
    }
    return {**resource, **changes}


def items(*scores) -> list[dict]:
    keys = ("personal", "relationships", "social", "overall")
    return [
        {"linkId": k, "answer": [{"valueDecimal": s}]} for k, s in zip(keys, scores, strict=True)
    ]


BAD_FILE = ndjson(
    good(),
    "{not json",
    good(item=[{"linkId": "personal", "answer": [{"valueDecimal": "x"}]}]),
    {"resourceType": "Patient", "name": [{"family": "Nobody"}]},
    good(questionnaire="http://example.org/Questionnaire/phq9"),
    good(status="in-progress"),
    good(subject={"identifier": {"system": "http://example.org/mrn", "value": "C-100"}}),
    good(item=[*items(5, 5, 5, 5), {"linkId": "total-score", "answer": [{"valueDecimal": 21}]}]),
    good(subject={"identifier": {"system": fhir.CLIENT_CODE_SYSTEM, "value": "C-404"}}),
    good(item=items(11, 5, 5, 5)),
    good(extension=[]),
    good(item=[*items(5, 5, 5, 5), {"linkId": "mood", "answer": [{"valueDecimal": 5}]}]),
)


def test_every_kind_of_bad_response_is_reported_where_it_is(world):
    report = run(world, BAD_FILE, dry_run=True)
    assert report.rows == 12
    assert report.ready == 1
    assert [(p.line, p.field) for p in report.problems] == [
        (2, "row"),
        (3, "row"),
        (4, "row"),
        (5, "questionnaire"),
        (6, "status"),
        (7, "subject"),
        (8, "total-score"),
        (9, "subject"),
        (10, "personal"),
        (11, f"extension {fhir.SESSION_NUMBER_URL}"),
        (12, "item"),
    ]
    said = {p.line: p.message for p in report.problems}
    assert said[2] == "This is not a FHIR resource (a JSON object)."
    assert said[3].startswith(
        "The FHIR library refuses this resource: item.0.answer.0.valueDecimal"
    )
    assert said[4] == "A Patient, not a QuestionnaireResponse: only ratings are imported."
    assert said[8] == "The total 21 is not the sum of the items, 20.0."
    assert said[9] == "Unknown client: no client you can see has this code."
    assert said[10] == "Scores run from 0.0 to 10.0."
    assert said[11] == "Give the session number."
    assert said[12] == "outcome-adult has no item “mood”."
    assert "Nobody" not in json.dumps([p.message for p in report.problems])


def test_a_file_with_a_bad_response_stores_nothing_unless_only_the_valid_are_wanted(world):
    before = Rating.objects.count()
    whole = run(world, BAD_FILE)
    assert (whole.stored, whole.dry_run, len(whole.problems)) == (0, False, 11)
    assert Rating.objects.count() == before
    valid = run(world, BAD_FILE, only_valid=True)
    assert valid.stored == 1
    stored = Rating.objects.get(session__episode__client=world.twin)
    assert (stored.items, stored.session.number, stored.session.date) == (
        (Decimal("5.5"),) * 4,
        1,
        date(2026, 2, 2),
    )


def test_without_the_session_date_the_day_authored_is_the_sessions(world):
    resource = good(extension=[{"url": fhir.SESSION_NUMBER_URL, "valuePositiveInt": 4}])
    assert run(world, ndjson(resource)).stored == 1
    stored = Rating.objects.get(session__episode__client=world.twin)
    assert (stored.session.number, stored.session.date) == (4, date(2026, 2, 2))


def test_a_single_response_is_a_file_of_one(world):
    assert run(world, json.dumps(good()).encode()).stored == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\xff\xfe", "The file is not UTF-8 text: save it as UTF-8 and try again."),
        (b"client_code,date\nC-1,2026-01-01\n", "The file is neither a JSON Bundle nor NDJSON"),
        (b'{"resourceType": "Bundle", "entry": {}}', "The Bundle's entry is not a list."),
    ],
)
def test_a_file_it_cannot_read_is_explained(data, message):
    read = fhir.responses_read(data)
    assert (read.rows, read.count) == ([], 0)
    assert [(p.line, p.field) for p in read.problems] == [(1, "file")]
    assert read.problems[0].message.startswith(message)


# In: the page


def upload(http: HttpClient, data: bytes, name: str = "ratings.ndjson"):
    return http.post(reverse("fhir_import"), {"file": SimpleUploadedFile(name, data)})


def test_the_page_checks_then_imports_and_records_both(world):
    http = logged_in(world.other_admin)
    assert http.get(reverse("fhir_import")).status_code == 200
    checked = upload(http, bundle_of(world), "c-100.json")
    assert checked.status_code == 200
    assert checked.context["report"].ready == 6
    assert not Rating.objects.filter(session__episode__client=world.twin).exists()
    digest = checked.context["confirm"].initial["digest"]
    imported = http.post(reverse("fhir_import"), {"digest": digest})
    assert imported.context["report"].stored == 6
    assert "6 ratings stored." in imported.content.decode()
    entries = AuditEntry.objects.filter(
        actor=world.other_admin, action__in=[Action.FHIR_IMPORT_CHECKED, Action.FHIR_IMPORTED]
    ).order_by("pk")
    assert [(e.action, e.object_type, e.detail) for e in entries] == [
        (
            Action.FHIR_IMPORT_CHECKED,
            "fhir_import",
            "c-100.json: 6 responses, 0 stored, 0 imported before, 0 with problems",
        ),
        (Action.FHIR_IMPORT_CHECKED, "client", "C-100"),
        (
            Action.FHIR_IMPORTED,
            "fhir_import",
            "c-100.json: 6 responses, 6 stored, 0 imported before, 0 with problems",
        ),
        (Action.FHIR_IMPORTED, "client", "C-100"),
    ]


def test_the_page_reports_each_bad_response(world):
    page = upload(logged_in(world.other_admin), BAD_FILE)
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count('data-testid="import-problem"') == 11
    assert "Import 1 rating" in text


def test_a_therapist_imports_only_for_clients_they_see(world):
    data = bundle_of(world)
    report = run(world, data, user=world.cleo, dry_run=True)
    assert report.ready == 0
    assert {(p.field, p.message) for p in report.problems} == {
        ("subject", "Unknown client: no client you can see has this code.")
    }


def test_a_file_it_cannot_read_is_explained_on_the_page(world):
    page = upload(logged_in(world.tom), b"{not json at all")
    assert page.status_code == 400
    assert "neither a JSON Bundle nor NDJSON" in page.content.decode()
    assert not AuditEntry.objects.filter(action=Action.FHIR_IMPORT_CHECKED).exists()
