"""The de-identified research export: its rows on a hand-made episode, what never reaches it,
its codebook, its files, who may download it, and the command."""

import csv
import io
import re
import zipfile
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Episode, TherapySession
from alliance_app.feedback.models import Rating, ReflectionOption
from alliance_app.feedback.reflecting import reflection_save
from alliance_app.measures import TensionAnswer
from alliance_app.research import codebook
from alliance_app.research.export import RATING_FIELDS, StudyIds, episode_lines, export_write
from alliance_app.research.models import Training
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

OPENED = date(2025, 3, 3)
DAYS = {1: date(2025, 3, 3), 2: date(2025, 3, 10), 3: date(2025, 3, 19), 4: date(2025, 3, 24)}
CLOSED = date(2025, 4, 7)
CODE = "ZEBRA-77"
NOTE = "spoke about the lighthouse keeper"
SECRETS = [
    CODE,
    "dr-quill",
    "Dr-Quill",
    "Featherstone",
    "Grandma Hilda",
    "Uncle Bartholomew",
    "Quillfeather Clinic",
    "lighthouse",
    *(f"{day:%Y-%m-%d}" for day in [*DAYS.values(), CLOSED]),
    *(f"{day:%d.%m.%Y}" for day in [*DAYS.values(), CLOSED]),
    *(f"{day:%m/%d/%Y}" for day in [*DAYS.values(), CLOSED]),
]


class Clinic:
    """One hand-made episode: the client rates both scales, falls at session 3 on the
    relationship item (a rupture, with tension) and comes back at session 4; two parents rate
    the session scale, the one labelled later alphabetically first. The therapist attended
    trainings before sessions 2 and 3 and after the last."""

    def __init__(self):
        self.org = factories.organization("Quillfeather Clinic")
        self.therapist = factories.user(self.org, username="dr-quill")
        self.therapist.last_name = "Featherstone"
        self.therapist.save()
        self.admin = factories.user(self.org, role=Role.ADMIN, username="ada-admin")
        client = factories.client(self.org, self.therapist, code=CODE)
        self.episode = factories.episode(client, opened=OPENED)
        self.sessions = {
            number: TherapySession.objects.create(
                episode=self.episode,
                number=number,
                date=day,
                format="couple" if number == 2 else "individual",
            )
            for number, day in DAYS.items()
        }
        s = self.sessions
        rate(s[1], "outcome-adult", "5 5 5 5")
        rate(s[1], "session-adult", "9.5 9.5 9.5 9.5")
        rate(s[1], "session-adult", "8 8 8 8", rater="parent", label="Uncle Bartholomew")
        rate(s[2], "outcome-adult", "6 6 6 6")
        rate(s[2], "session-adult", "9.5 9.5 9.5 9.5")
        rate(s[2], "session-adult", "9 9 9 9", rater="parent", label="Uncle Bartholomew")
        rate(s[2], "session-adult", "8 8 8 8", rater="parent", label="Grandma Hilda")
        rate(s[3], "outcome-adult", "5.5 5.5 5.5 5.5")
        tension = TensionAnswer(tension=True, resolution=2)
        self.rupture_flag = rate(s[3], "session-adult", "7 9 9 9", tension=tension).flags[0]
        rate(s[4], "session-adult", "9.5 9.5 9.5 9")
        Episode.objects.filter(pk=self.episode.pk).update(closed=CLOSED, closure="planned")
        for day, attended in (
            (date(2025, 3, 5), True),
            (date(2025, 3, 18), True),
            (date(2025, 3, 25), True),
            (date(2025, 3, 9), False),
        ):
            training = Training.objects.create(
                organization=self.org, title="Repair workshop", kind="workshop", date=day
            )
            if attended:
                training.attendees.add(self.therapist)

    def reflect(self):
        option = ReflectionOption.objects.filter(organization=self.org)
        reflection_save(
            flag=self.rupture_flag,
            by=self.therapist,
            marker=option.get(code="withdrawal"),
            dimension="bond",
            strategies=[option.get(code="clarify")],
            note=NOTE,
            teaching_consent=True,
        )


@pytest.fixture
def clinic():
    return Clinic()


def export_zip(org) -> zipfile.ZipFile:
    out = io.BytesIO()
    export_write(org, out)
    out.seek(0)
    return zipfile.ZipFile(out)


def frames(archive: zipfile.ZipFile) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        pd.read_csv(io.BytesIO(archive.read("sessions.csv"))),
        pd.read_parquet(io.BytesIO(archive.read("sessions.parquet"))),
    )


def lines_of(org) -> list[dict]:
    """The CSV's rows as written, an empty cell as None."""
    text = export_zip(org).read("sessions.csv").decode()
    return [
        {name: value or None for name, value in row.items()}
        for row in csv.DictReader(io.StringIO(text))
    ]


# The rows


def test_one_row_per_rated_session_and_rater_with_day_offsets_and_rater_indexes(clinic):
    rows = lines_of(clinic.org)
    got = [
        (r["session_number"], r["day_offset"], r["session_format"], r["rater"], r["rater_index"])
        for r in rows
    ]
    assert got == [
        ("1", "0", "individual", "client", "1"),
        ("1", "0", "individual", "parent", "1"),
        ("2", "7", "couple", "client", "1"),
        ("2", "7", "couple", "parent", "1"),
        ("2", "7", "couple", "parent", "2"),
        ("3", "16", "individual", "client", "1"),
        ("4", "21", "individual", "client", "1"),
    ]
    # The parent who rated first is 1, though their label comes later in the alphabet.
    assert [r["session_total"] for r in rows if r["rater"] == "parent"] == ["32.0", "36.0", "32.0"]
    assert {r["age_band"] for r in rows} == {"adult"}
    assert {r["episode_closure"] for r in rows} == {"planned"}
    assert len({r["client_study_id"] for r in rows}) == 1
    assert len({r["episode_study_id"] for r in rows}) == 1
    assert len({r["therapist_study_id"] for r in rows}) == 1


def test_both_scales_share_the_row_with_next_outcome_and_person_mean(clinic):
    client = [r for r in lines_of(clinic.org) if r["rater"] == "client"]
    assert [r["session_instrument"] for r in client] == ["session-adult"] * 4
    assert [r["outcome_instrument"] for r in client] == ["outcome-adult"] * 3 + [None]
    assert [r["outcome_total"] for r in client] == ["20.0", "24.0", "22.0", None]
    assert [r["session_total"] for r in client] == ["38.0", "38.0", "34.0", "37.5"]
    assert [r["session_item_1"] for r in client] == ["9.5", "9.5", "7.0", "9.5"]
    assert [r["session_item_4"] for r in client] == ["9.5", "9.5", "9.0", "9.0"]
    assert [r["outcome_item_2"] for r in client] == ["5.0", "6.0", "5.5", None]
    # Session 4 has no outcome rating, and nothing follows it.
    assert [r["next_outcome_total"] for r in client] == ["24.0", "22.0", None, None]
    # (38 + 38 + 34 + 37.5) / 4 = 36.875
    assert {r["session_total_person_mean"] for r in client} == {"36.875"}
    assert [r["session_total_deviation"] for r in client] == ["1.125", "1.125", "-2.875", "0.625"]


def test_each_rater_is_centred_on_their_own_mean(clinic):
    parents = [r for r in lines_of(clinic.org) if r["rater"] == "parent"]
    by_index = {(r["rater_index"], r["session_number"]): r for r in parents}
    assert by_index["1", "1"]["session_total_person_mean"] == "34.000"
    assert by_index["1", "1"]["session_total_deviation"] == "-2.000"
    assert by_index["1", "2"]["session_total_deviation"] == "2.000"
    assert by_index["2", "2"]["session_total_person_mean"] == "32.000"
    assert by_index["2", "2"]["session_total_deviation"] == "0.000"
    assert {r["outcome_total"] for r in parents} == {None}
    assert {r["next_outcome_total"] for r in parents} == {None}


def test_rupture_and_tension_columns(clinic):
    client = [r for r in lines_of(clinic.org) if r["rater"] == "client"]
    assert [r["rupture"] for r in client] == ["false", "false", "true", "false"]
    third = client[2]
    assert (
        third["rupture_status"],
        third["rupture_repaired_at_session"],
        third["rupture_sessions_to_repair"],
        third["rupture_dimensions"],
    ) == ("repaired", "4", "1", "bond")
    assert [r["rupture_status"] for r in client if r is not third] == [None] * 3
    assert [(r["tension"], r["tension_resolution"]) for r in client] == [
        (None, None),
        (None, None),
        ("true", "2"),
        (None, None),
    ]


def test_training_exposure_at_each_session(clinic):
    client = [r for r in lines_of(clinic.org) if r["rater"] == "client"]
    # Attended 5 and 18 March (and 25 March, after the last session); 9 March not attended.
    assert [(r["therapist_trainings"], r["days_since_training"]) for r in client] == [
        ("0", None),
        ("1", "5"),
        ("2", "1"),
        ("2", "6"),
    ]


def test_an_open_episode_says_open(clinic):
    Episode.objects.filter(pk=clinic.episode.pk).update(closed=None, closure="")
    assert {r["episode_closure"] for r in lines_of(clinic.org)} == {"open"}


# What never reaches it


def texts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Every file as text: the CSV, codebook and README as written; the Parquet file's values
    and metadata as read, since its pages are compressed."""
    found = {
        name: archive.read(name).decode() for name in ("sessions.csv", "codebook.md", "README.txt")
    }
    table = pq.read_table(io.BytesIO(archive.read("sessions.parquet")))
    found["sessions.parquet"] = " ".join(
        [repr(table.to_pylist()), repr(table.schema.metadata), repr(table.schema)]
    )
    found["sessions.parquet (bytes)"] = archive.read("sessions.parquet").decode("latin-1")
    return found


def test_no_code_name_label_note_or_date_anywhere(clinic):
    clinic.reflect()
    for name, text in texts(export_zip(clinic.org)).items():
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), (name, secret)


def test_study_ids_differ_between_two_exports_and_hide_the_database_ids(clinic):
    first, second = lines_of(clinic.org), lines_of(clinic.org)
    for column in ("client_study_id", "episode_study_id", "therapist_study_id"):
        ours, theirs = {r[column] for r in first}, {r[column] for r in second}
        assert len(ours) == len(theirs) == 1
        assert ours.isdisjoint(theirs)
        (value,) = ours
        assert re.fullmatch(r"[0-9a-f]{16}", value)
    database_ids = {str(clinic.episode.pk), str(clinic.episode.client_id), str(clinic.therapist.pk)}
    assert database_ids.isdisjoint({r["client_study_id"] for r in first})


def test_one_export_keeps_the_same_ids_for_the_same_records():
    ids = StudyIds()
    assert ids.of("client", 7) == ids.of("client", 7)
    assert ids.of("client", 7) != ids.of("episode", 7)


# The codebook and the files


def test_the_columns_are_the_codebooks_in_order(clinic):
    archive = export_zip(clinic.org)
    csv_frame, parquet_frame = frames(archive)
    assert list(csv_frame.columns) == list(codebook.NAMES)
    assert list(parquet_frame.columns) == list(codebook.NAMES)
    episode = Episode.objects.filter(pk=clinic.episode.pk).values(
        "pk", "opened", "closure", "therapist_id", "client_id", "client__age_band"
    )[0]
    ratings = (
        Rating.objects.filter(session__episode=clinic.episode)
        .order_by("session__number", "rater", "rater_label", "scale")
        .values_list(*RATING_FIELDS, named=True)
    )
    lines = episode_lines(episode, ratings, ids=StudyIds(), trainings={})
    assert all(list(line) == list(codebook.NAMES) for line in lines)
    markdown = archive.read("codebook.md").decode()
    positions = [markdown.index(f"`{name}`") for name in codebook.NAMES]
    assert positions == sorted(positions)


def test_the_codebook_names_its_rules_sources():
    markdown = codebook.markdown()
    for source in (
        "Strauss et al. 2006",
        "Stiles et al. 2004",
        "Gumz et al. 2012",
        "Bordin 1979",
        "Muran et al. 2009",
        "Falkenström et al. 2017",
    ):
        assert source in markdown
    assert all(column.meaning and column.values for column in codebook.COLUMNS)


def test_pandas_reads_the_same_rows_from_both_files(clinic):
    csv_frame, parquet_frame = frames(export_zip(clinic.org))
    assert len(csv_frame) == len(parquet_frame) == 7
    pd.testing.assert_frame_equal(
        csv_frame.astype(object).where(csv_frame.notna(), None),
        parquet_frame.astype(object).where(parquet_frame.notna(), None),
        check_dtype=False,
    )
    assert parquet_frame["session_total"].tolist() == [38.0, 32.0, 38.0, 36.0, 32.0, 34.0, 37.5]
    assert parquet_frame["rupture"].tolist() == [False] * 5 + [True, False]


def test_the_readme_says_what_it_is_and_the_rule_in_force(clinic):
    readme = export_zip(clinic.org).read("README.txt").decode()
    assert "Alliance research export" in readme
    assert "Rows: 7 from 1 episodes of care" in readme
    assert re.search(r"Generated: \d{4}-\d\d-\d\d \d\d:\d\d UTC", readme)
    assert "max(1.0 × 1.0, 1.0) = 1.0" in readme


def test_an_organisation_without_ratings_gets_the_files_with_no_rows():
    archive = export_zip(factories.organization())
    csv_frame, parquet_frame = frames(archive)
    assert len(csv_frame) == len(parquet_frame) == 0
    assert list(parquet_frame.columns) == list(codebook.NAMES)


# Who may download it


def http_for(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def test_only_admins_open_the_page_and_download(clinic):
    team = factories.team(clinic.org)
    supervisor = factories.user(clinic.org, role=Role.SUPERVISOR)
    supervisor.membership.supervised_teams.add(team)
    for user in (clinic.therapist, supervisor):
        http = http_for(user)
        assert http.get(reverse("research_export")).status_code == 403
        assert http.get(reverse("research_export_download")).status_code == 403
    assert not AuditEntry.objects.filter(action=Action.EXPORT_DOWNLOADED).exists()
    page = http_for(clinic.admin).get(reverse("research_export"))
    assert page.status_code == 200
    assert reverse("research_export_download").encode() in page.content
    assert page.content.count(b'data-testid="research-column"') == len(codebook.COLUMNS)


def test_the_download_is_the_zip_and_is_audited(clinic):
    response = http_for(clinic.admin).get(reverse("research_export_download"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == [
        "README.txt",
        "codebook.md",
        "sessions.csv",
        "sessions.parquet",
    ]
    entry = AuditEntry.objects.get(action=Action.EXPORT_DOWNLOADED)
    assert entry.organization == clinic.org
    assert entry.actor == clinic.admin
    assert re.fullmatch(r"alliance-research-\d{4}-\d\d-\d\d\.zip \(7 rows\)", entry.detail)


def test_another_organisations_admin_gets_nothing_of_ours(clinic):
    other = factories.organization("Elsewhere")
    other_admin = factories.user(other, role=Role.ADMIN)
    owner = factories.user(other)
    session = factories.therapy_session(factories.episode(factories.client(other, owner)))
    rate(session, "session-adult", "8 8 8 8")
    response = http_for(other_admin).get(reverse("research_export_download"))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    csv_frame, _parquet = frames(archive)
    assert csv_frame["session_total"].tolist() == [32.0]
    assert csv_frame["day_offset"].tolist() == [(date(2026, 1, 6) - date(2026, 1, 5)).days]


def test_the_page_is_linked_from_the_exports_page_for_admins_only(clinic):
    link = reverse("research_export").encode()
    assert link in http_for(clinic.admin).get(reverse("exports")).content
    assert link not in http_for(clinic.therapist).get(reverse("exports")).content


def add_clients(clinic: Clinic, count: int) -> None:
    for n in range(count):
        client = factories.client(clinic.org, clinic.therapist, code=f"Q{n}")
        session = factories.therapy_session(factories.episode(client))
        rate(session, "outcome-adult", "5 5 5 5")
        rate(session, "session-adult", "9 9 9 9")


# The login session and user, the SD in force (twice on the page: the rule and its SD); for the
# download the trainings, one chunk of episodes and their ratings, the SD, the audit entry.
QUERIES_PAGE = 7
QUERIES_DOWNLOAD = 7


@pytest.mark.parametrize("clients", [5, 50])
def test_page_and_download_queries_do_not_grow_with_clients(
    clinic, clients, django_assert_num_queries
):
    add_clients(clinic, clients)
    http = http_for(clinic.admin)
    with django_assert_num_queries(QUERIES_PAGE):
        http.get(reverse("research_export"))
    with django_assert_num_queries(QUERIES_DOWNLOAD):
        response = http.get(reverse("research_export_download"))
    assert len(frames(zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))))[0]) == (
        7 + clients
    )


# The command


def test_the_command_writes_the_zip_with_progress_and_a_summary(clinic, tmp_path):
    add_clients(clinic, 2)
    output = tmp_path / "research.zip"
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "research_export",
        organization_slug=clinic.org.slug,
        output=str(output),
        chunk=1,
        stdout=out,
        stderr=err,
    )
    progress = err.getvalue().splitlines()
    assert len(progress) == 3
    assert progress[0].startswith("[" + "#" * 10 + "." * 20 + "] 1/3 episodes, 7 rows, ")
    assert progress[-1].startswith("[" + "#" * 30 + "] 3/3 episodes, 9 rows, ")
    assert re.fullmatch(
        rf"{re.escape(str(output))}: 9 rows from 3 episodes in \d+\.\d s "
        r"\(\d+ rows/s\), peak memory \d+ MB\n",
        out.getvalue(),
    )
    assert len(frames(zipfile.ZipFile(output))[1]) == 9
    assert list(tmp_path.iterdir()) == [output]


def test_the_command_refuses_an_unknown_organisation(tmp_path):
    output = tmp_path / "research.zip"
    with pytest.raises(CommandError, match="no organisation 'nowhere'"):
        call_command("research_export", organization_slug="nowhere", output=str(output))
    assert not output.exists()


def test_the_command_refuses_a_folder_that_does_not_exist(clinic, tmp_path):
    output = tmp_path / "missing" / "research.zip"
    with pytest.raises(CommandError, match="cannot write"):
        call_command(
            "research_export",
            organization_slug=clinic.org.slug,
            output=str(output),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert not output.parent.exists()
