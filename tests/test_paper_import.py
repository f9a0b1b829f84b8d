"""Paper ratings from a CSV file: the row-by-row report, the dry run, all-or-nothing or only the
valid rows, re-import, flags as for any rating, and who may import whose ratings."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Closure, Episode, SessionFormat, TherapySession
from alliance_app.feedback.imports import (
    COLUMNS,
    MAX_ROWS,
    RowIn,
    RowProblem,
    csv_decode,
    csv_rows,
    csv_template,
    rows_import,
)
from alliance_app.feedback.models import Channel, Flag, Rating
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HEADER = ",".join(COLUMNS)


class World:
    """Tom treats P-001 (no session yet), P-002 (a couple, no session yet) and P-003 (sessions 1
    and 2 stored, the outcome of session 1 rated 20.0); Cleo, his colleague, treats nobody; the
    other organisation has a client B-001."""

    def __init__(self):
        self.org, self.other_org = factories.organization("A"), factories.organization("B")
        self.tom = factories.user(self.org, username="tom")
        self.cleo = factories.user(self.org, username="cleo")
        self.admin = factories.user(self.org, role=Role.ADMIN, username="ada")
        self.other_admin = factories.user(self.other_org, role=Role.ADMIN, username="bob")
        outsider = factories.user(self.other_org, username="otto")
        self.p1 = factories.client(self.org, self.tom, code="P-001")
        self.p2 = factories.client(self.org, self.tom, code="P-002")
        self.p3 = factories.client(self.org, self.tom, code="P-003")
        factories.client(self.other_org, outsider, code="B-001")
        episode = factories.episode(self.p3, opened=date(2026, 2, 2))
        first = TherapySession.objects.create(episode=episode, number=1, date=date(2026, 2, 2))
        TherapySession.objects.create(episode=episode, number=2, date=date(2026, 2, 16))
        rate(first, "outcome-adult", "5 5 5 5")

    def run(self, name: str, user=None, **kwargs):
        rows, problems = csv_rows((FIXTURES / name).read_text(encoding="utf-8"))
        assert problems == []
        return rows_import(
            organization=self.org,
            user=user or self.tom,
            rows=rows,
            channel=Channel.PAPER,
            **{"dry_run": False, **kwargs},
        )


@pytest.fixture
def world():
    return World()


def counts() -> tuple[int, int, int, int]:
    return (
        Rating.objects.count(),
        TherapySession.objects.count(),
        Episode.objects.count(),
        Flag.objects.count(),
    )


BAD_FILE_PROBLEMS = [
    (4, "client_code", "Unknown client: no client you can see has this code."),
    (5, "client_code", "Unknown client: no client you can see has this code."),
    (6, "date", "Write the date as YYYY-MM-DD, for example 2026-03-14."),
    (7, "date", "This date is in the future."),
    (8, "session_number", "The session number is a whole number, such as 3."),
    (9, "session_number", "Session numbers start at 1."),
    (10, "scale", "Unknown scale “sessoin”: write outcome or session."),
    (11, "rater", "Unknown rater “grandma”: write client, partner, parent, teacher, other."),
    (12, "rater_label", "Name this rater (for example Mother or Sam)."),
    (13, "item_1", "Scores run from 0.0 to 10.0."),
    (14, "item_1", "Scores have at most one decimal."),
    (15, "item_4", "Give this item's score."),
    (16, "row", "This row has 11 columns; the template has 10."),
    (17, "row", "The same rating as line 2."),
    (18, "row", "Already rated in session 1: this outcome rating is stored with other scores."),
    (19, "date", "Session 2 of this client was held on 2026-02-16."),
]


def problems_of(report) -> list[tuple[int, str, str]]:
    return [(problem.line, problem.field, problem.message) for problem in report.problems]


def test_the_bad_file_is_reported_line_by_line_and_field_by_field(world):
    before = counts()
    report = world.run("paper_import_bad.csv", dry_run=True)
    assert problems_of(report) == BAD_FILE_PROBLEMS
    assert (report.rows, report.ready, report.already, report.stored, report.flags) == (
        20,
        4,
        0,
        0,
        0,
    )
    assert report.dry_run
    assert report.problem_lines == 16
    assert counts() == before


def test_a_row_with_several_problems_reports_each():
    org = factories.organization()
    user = factories.user(org)
    row = RowIn(3, "", "2026-13-01", "", "both", "client", "Me", ("", "x", "-1", "10.01"))
    report = rows_import(
        organization=org, user=user, rows=[row], channel=Channel.PAPER, dry_run=True
    )
    assert problems_of(report) == [
        (3, "client_code", "Give the client's code."),
        (3, "date", "There is no such day."),
        (3, "session_number", "Give the session number."),
        (3, "scale", "Unknown scale “both”: write outcome or session."),
        (3, "rater_label", "The client's own rating has no rater label: leave it empty."),
        (3, "item_1", "Give this item's score."),
        (3, "item_2", "This is not a number: write a score such as 7.5."),
        (3, "item_3", "Scores run from 0.0 to 10.0."),
        (3, "item_4", "Scores run from 0.0 to 10.0."),
    ]


def test_a_dry_run_of_a_good_file_stores_nothing(world):
    before = counts()
    report = world.run("paper_import_good.csv", dry_run=True)
    assert report.problems == []
    assert (report.rows, report.ready, report.stored, report.already) == (9, 9, 0, 0)
    assert counts() == before


def test_the_whole_file_stores_nothing_when_any_row_is_bad(world):
    before = counts()
    report = world.run("paper_import_bad.csv")
    assert not report.dry_run
    assert problems_of(report) == BAD_FILE_PROBLEMS
    assert (report.stored, report.flags) == (0, 0)
    assert counts() == before


def test_only_the_valid_rows_stores_exactly_those(world):
    report = world.run("paper_import_bad.csv", only_valid=True)
    assert problems_of(report) == BAD_FILE_PROBLEMS
    # P-002's session: the client's total 32.5 is low, the partner's 36.0 has an item of 8.5.
    assert (report.stored, report.flags) == (4, 2)
    assert sorted(Flag.objects.values_list("rating__rater", "kind")) == [
        ("client", "low_alliance"),
        ("partner", "low_item"),
    ]
    stored = Rating.objects.filter(channel=Channel.PAPER).order_by("session__episode__client__code")
    assert [
        (r.session.episode.client.code, r.session.number, r.scale, r.rater, r.rater_label, r.total)
        for r in stored.order_by("session__episode__client__code", "scale", "rater")
    ] == [
        ("P-001", 1, "outcome", "client", "", Decimal("21.0")),
        ("P-001", 1, "session", "client", "", Decimal("37.0")),
        ("P-002", 1, "session", "client", "", Decimal("32.5")),
        ("P-002", 1, "session", "partner", "Sam", Decimal("36.0")),
    ]
    assert {rating.entered_by for rating in stored} == {world.tom}
    session = TherapySession.objects.get(episode__client=world.p2)
    assert (session.number, session.date, session.format) == (
        1,
        date(2026, 3, 3),
        SessionFormat.COUPLE,
    )
    episode = world.p1.episodes.get()
    assert (episode.opened, episode.therapist, episode.closed) == (
        date(2026, 3, 2),
        world.tom,
        None,
    )
    # P-003's stored outcome rating is untouched.
    assert Rating.objects.get(session__episode__client=world.p3).total == Decimal("20.0")


def test_importing_the_same_file_again_stores_nothing_and_says_so(world):
    first = world.run("paper_import_good.csv")
    assert (first.stored, first.already) == (9, 0)
    after_first = counts()
    second = world.run("paper_import_good.csv")
    assert second.problems == []
    assert (second.stored, second.already, second.flags) == (0, 9, 0)
    assert second.already_lines == list(range(2, 11))
    assert counts() == after_first
    dry = world.run("paper_import_good.csv", dry_run=True)
    assert (dry.ready, dry.already) == (0, 9)


def test_a_row_changed_after_its_import_is_already_rated(world):
    world.run("paper_import_good.csv")
    text = (FIXTURES / "paper_import_good.csv").read_text(encoding="utf-8")
    changed = text.replace(
        "P-001,2026-03-16,3,session,client,,8.5,8.0,8.5,8.5",
        "P-001,2026-03-16,3,session,client,,8.5,8.0,8.5,9.5",
    )
    rows, _problems = csv_rows(changed)
    report = rows_import(
        organization=world.org, user=world.tom, rows=rows, channel=Channel.PAPER, dry_run=False
    )
    assert problems_of(report) == [
        (7, "row", "Already rated in session 3: this session rating is stored with other scores.")
    ]
    assert report.stored == 0
    assert Rating.objects.get(
        session__episode__client=world.p1, session__number=3, scale="session"
    ).total == Decimal("33.5")


def test_a_file_imported_into_an_episode_closed_since_is_refused(world):
    world.run("paper_import_good.csv")
    Episode.objects.filter(client=world.p2).update(closed=date(2026, 4, 1), closure=Closure.PLANNED)
    report = world.run("paper_import_good.csv")
    message = "Imported before, into an episode of care now closed."
    assert problems_of(report) == [(line, "row", message) for line in (8, 9, 10)]
    assert (report.stored, report.already) == (0, 6)
    assert Episode.objects.filter(client=world.p2).count() == 1


def test_a_rating_given_on_the_tablet_is_already_rated(world):
    episode = factories.episode(world.p1, opened=date(2026, 3, 2))
    session = TherapySession.objects.create(episode=episode, number=1, date=date(2026, 3, 2))
    rate(session, "outcome-adult", "4.5 6.0 5.5 5.0")
    report = world.run("paper_import_good.csv", dry_run=True)
    assert problems_of(report) == [
        (2, "row", "Already rated in session 1: this outcome rating is stored already.")
    ]


def test_a_date_before_the_open_episode_is_refused(world):
    factories.episode(world.p1, opened=date(2026, 3, 5))
    report = world.run("paper_import_good.csv", dry_run=True)
    message = "This client's episode of care opened on 2026-03-05, after this date."
    assert problems_of(report) == [(2, "date", message), (3, "date", message)]


def test_a_partner_cannot_rate_an_individual_session(world):
    episode = factories.episode(world.p2, opened=date(2026, 3, 3))
    TherapySession.objects.create(episode=episode, number=1, date=date(2026, 3, 3))
    report = world.run("paper_import_good.csv", dry_run=True)
    assert problems_of(report) == [
        (10, "rater", "Session 1 is an individual session: only the client rates it.")
    ]


def test_two_rows_give_one_session_two_dates(world):
    rows, _problems = csv_rows(
        f"{HEADER}\n"
        "P-001,2026-03-02,1,outcome,client,,4.5,6.0,5.5,5.0\n"
        "P-001,2026-03-03,1,session,client,,9.5,9.5,9.5,9.5\n"
        "P-001,2026-03-02,1,outcome,client,,4.5,6.0,5.5,6.0\n"
    )
    report = rows_import(
        organization=world.org, user=world.tom, rows=rows, channel=Channel.PAPER, dry_run=True
    )
    assert problems_of(report) == [
        (3, "date", "Line 2 gives session 1 on 2026-03-02."),
        (4, "row", "Line 2 already gives this rater's outcome rating for session 1."),
    ]


def test_flags_are_raised_as_for_any_rating(world):
    """The same ratings given on the tablet, session by session, raise the same flags."""
    report = world.run("paper_import_good.csv")
    twin = factories.client(world.org, world.tom, code="TWIN")
    episode = factories.episode(twin, opened=date(2026, 3, 2))
    for number, outcome, session_items in (
        (1, "4.5 6.0 5.5 5.0", "9.5 9.5 9.5 9.5"),
        (2, "5.0 6.0 6.5 5.5", "9.5 9.0 9.5 9.5"),
        (3, "4.0 5.5 5.5 5.0", "8.5 8.0 8.5 8.5"),
    ):
        session = TherapySession.objects.create(episode=episode, number=number, date=date.today())
        rate(session, "outcome-adult", outcome)
        rate(session, "session-adult", session_items)

    def flags_of(client) -> list[tuple[int, str, str]]:
        return sorted(
            Flag.objects.filter(client=client).values_list(
                "rating__session__number", "rating__scale", "kind"
            )
        )

    expected = flags_of(twin)
    assert flags_of(world.p1) == expected
    assert expected  # the third session's fall and its low total are flagged
    assert report.flags == len(expected) + Flag.objects.filter(client=world.p2).count()


def test_a_therapist_imports_only_for_clients_they_see(world):
    before = counts()
    report = world.run("paper_import_good.csv", user=world.cleo)
    unknown = "Unknown client: no client you can see has this code."
    assert problems_of(report) == [(line, "client_code", unknown) for line in range(2, 11)]
    assert report.stored == 0
    assert counts() == before


def test_an_admin_imports_for_the_whole_organisation(world):
    report = world.run("paper_import_good.csv", user=world.admin)
    assert (report.stored, report.problems) == (9, [])
    assert set(
        Rating.objects.filter(channel=Channel.PAPER).values_list("entered_by", flat=True)
    ) == {world.admin.pk}


def test_nothing_of_another_organisation(world):
    rows, _problems = csv_rows(f"{HEADER}\nB-001,2026-03-02,1,outcome,client,,4,4,4,4\n")
    for user, organization in ((world.admin, world.org), (world.other_admin, world.org)):
        report = rows_import(
            organization=organization, user=user, rows=rows, channel=Channel.PAPER, dry_run=False
        )
        assert problems_of(report) == [
            (2, "client_code", "Unknown client: no client you can see has this code.")
        ]
    assert not Rating.objects.filter(channel=Channel.PAPER).exists()


def test_the_template_is_the_header_and_an_example_row():
    rows, problems = csv_rows(csv_template())
    assert problems == []
    assert csv_template().splitlines()[0] == HEADER
    assert [(row.line, row.client_code, row.scale, row.items) for row in rows] == [
        (2, "C-0001", "outcome", ("4.5", "6.0", "5.5", "5.0"))
    ]


def test_semicolons_a_byte_order_mark_and_blank_lines_are_read():
    text = (
        "\ufeff" + HEADER.replace(",", ";") + "\r\n\r\nP-9;2026-03-02;1;Outcome;Client;;4;5;6;7\r\n"
    )
    rows, problems = csv_rows(text)
    assert problems == []
    assert rows == [
        RowIn(3, "P-9", "2026-03-02", "1", "Outcome", "Client", "", ("4", "5", "6", "7"))
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", RowProblem(1, "file", "The file is empty.")),
        (
            "code,date\nP-1,2026-03-02\n",
            RowProblem(1, "header", f"The first line must name the columns: {', '.join(COLUMNS)}."),
        ),
        (
            f'{HEADER}\nP-1,"2026-03-02\n',
            RowProblem(2, "file", "This line is not valid CSV (look for a stray quote)."),
        ),
        (
            HEADER + "\nP-1,2026-03-02,1,outcome,client,,1,1,1,1" * (MAX_ROWS + 1),
            RowProblem(
                1, "file", "The file has more than 5,000 rows: split it into smaller files."
            ),
        ),
    ],
    ids=["empty", "header", "quote", "too-many-rows"],
)
def test_a_file_it_cannot_read_is_explained(text, problem):
    assert csv_rows(text) == ([], [problem])


def test_an_upload_that_is_not_utf8_or_too_large_is_explained():
    assert csv_decode("Pâté".encode("latin-1")) == (
        "",
        [
            RowProblem(
                1, "file", "The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again."
            )
        ],
    )
    assert csv_decode(b"x" * (2 * 1024 * 1024 + 1))[1] == [
        RowProblem(1, "file", "The file is larger than 2 MB: split it into smaller files.")
    ]
    assert csv_decode(b"\xef\xbb\xbfclient_code") == ("client_code", [])


# The page


def upload(http, name: str, data: bytes | None = None):
    content = data if data is not None else (FIXTURES / name).read_bytes()
    return http.post(reverse("paper_import"), {"file": SimpleUploadedFile(name, content)})


def confirm(http, response, **extra):
    digest = response.context["confirm"].initial["digest"]
    return http.post(reverse("paper_import"), {"digest": digest, **extra})


@pytest.fixture
def tom(world, client):
    client.force_login(world.tom)
    return client


def test_the_page_offers_the_upload_the_template_and_help(tom):
    response = tom.get(reverse("paper_import"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert reverse("paper_import_template") in page
    assert "<code>rater_label</code>" in page
    assert "At most 2 MB and 5,000 rows, in the template's columns." in page
    assert 'data-testid="import-report"' not in page


def test_the_caseload_links_to_the_page(tom):
    page = tom.get(reverse("caseload")).content.decode()
    assert f'href="{reverse("paper_import")}"' in page


def test_the_template_downloads_as_csv(tom):
    response = tom.get(reverse("paper_import_template"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert response.content.decode() == csv_template()


def test_checking_a_file_shows_its_report_and_stores_nothing(world, tom):
    before = counts()
    response = upload(tom, "paper_import_bad.csv")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-testid="import-problem"') == len(BAD_FILE_PROBLEMS)
    for _line, _field, message in BAD_FILE_PROBLEMS:
        assert escape(message) in page
    assert "Nothing has been stored yet." in page
    assert "Import 4 ratings" in page
    assert counts() == before
    summary = AuditEntry.objects.get(action=Action.PAPER_IMPORT_CHECKED, object_type="paper_import")
    assert (
        summary.detail
        == "paper_import_bad.csv: 20 rows, 0 stored, 0 imported before, 16 with problems"
    )
    assert summary.actor == world.tom
    named = AuditEntry.objects.filter(action=Action.PAPER_IMPORT_CHECKED, object_type="client")
    assert sorted(named.values_list("detail", flat=True)) == ["P-001", "P-002", "P-003"]


def test_the_whole_file_or_only_the_valid_rows_from_the_page(world, tom):
    checked = upload(tom, "paper_import_bad.csv")
    refused = confirm(tom, checked)
    assert refused.status_code == 200
    assert "Nothing was stored: the file has rows with problems." in refused.content.decode()
    assert not Rating.objects.filter(channel=Channel.PAPER).exists()
    stored = confirm(tom, checked, only_valid="on")
    assert "4 ratings stored." in stored.content.decode()
    assert Rating.objects.filter(channel=Channel.PAPER).count() == 4
    assert (
        AuditEntry.objects.filter(action=Action.PAPER_IMPORTED, object_type="paper_import").count()
        == 2
    )
    # The file is gone once stored: the same form again stores nothing more.
    again = confirm(tom, checked, only_valid="on")
    assert again.status_code == 302
    assert Rating.objects.filter(channel=Channel.PAPER).count() == 4


def test_a_good_file_imported_twice_from_the_page(world, tom):
    stored = confirm(tom, upload(tom, "paper_import_good.csv"))
    assert "9 ratings stored." in stored.content.decode()
    second = upload(tom, "paper_import_good.csv")
    page = second.content.decode()
    assert "Already imported, so not stored again: lines 2, 3, 4, 5, 6, 7, 8, 9, 10." in page
    assert 'data-testid="import-confirm"' not in page
    assert Rating.objects.filter(channel=Channel.PAPER).count() == 9


def test_the_import_stores_the_file_that_was_checked(world, tom):
    good = upload(tom, "paper_import_good.csv")
    upload(tom, "paper_import_bad.csv")
    response = confirm(tom, good)
    assert response.status_code == 302
    assert not Rating.objects.filter(channel=Channel.PAPER).exists()
    assert "please upload it again" in tom.get(response.url).content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x" * (2 * 1024 * 1024 + 1), "The file is larger than 2 MB"),
        ("Pâté".encode("latin-1"), "The file is not UTF-8 text."),
        (b"code,date\n", "The first line must name the columns"),
    ],
    ids=["too-large", "not-utf8", "header"],
)
def test_a_file_it_cannot_read_is_explained_on_the_page(world, tom, data, message):
    response = upload(tom, "ratings.csv", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert AuditEntry.objects.filter(action=Action.PAPER_IMPORT_CHECKED).count() == 0


def test_no_file_is_asked_for(tom):
    response = tom.post(reverse("paper_import"), {})
    assert response.status_code == 400
    assert "Choose the CSV file to check." in response.content.decode()
