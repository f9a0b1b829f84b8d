"""Teaching case sets: who may put one together from which ruptures, the filters, refused input
storing nothing, and the handout and its PDF telling each case without the client's code, the
session dates, the therapist's name (unless asked) or a note the therapist did not release."""

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from alliance_app.accounts.models import Role
from alliance_app.audit.models import AuditEntry
from alliance_app.feedback.models import ReflectionOption, Rupture
from alliance_app.feedback.reflecting import reflection_save
from alliance_app.research.models import Case, CaseSet
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db

HIGH = "9.9 9.9 9.9 9.9"
DIP = "9.2 9.2 9.0 9.2"  # the approach (tasks) item falls most
BOND_DIP = "8.0 9.8 9.8 9.8"  # the relationship (bond) item falls most
BACK = "9.8 9.9 9.9 9.8"
LOW = "8.4 8.4 8.4 8.4"
SECRET = "She said her brother Jonas had been in hospital."
RELEASED = "I named the silence and asked what the homework meant to her."


def a_rupture(org, therapist, code, dip=DIP, then=BACK):
    """Sessions 1-4 of one episode (dated 6-9 January 2026): high, high, a fall, then `then`."""
    client = factories.client(org, therapist, code=code)
    episode = factories.episode(client)
    sessions = [factories.therapy_session(episode, number=n) for n in range(1, 5)]
    rate(sessions[0], "session-adult", HIGH)
    rate(sessions[0], "outcome-adult", "5 5 5 5")
    rate(sessions[1], "session-adult", HIGH)
    flag = rate(sessions[2], "session-adult", dip).flags[0]
    assert flag.kind == "rupture"
    if then:
        rate(sessions[3], "session-adult", then)
        rate(sessions[3], "outcome-adult", "6 6 6 6")
    return Rupture.objects.get(rating=flag.rating), flag


class World:
    def __init__(self):
        self.org = factories.organization("A")
        north, south = factories.team(self.org, "North"), factories.team(self.org, "South")
        self.theo = factories.user(self.org, team=north, username="theodora")
        self.theo.last_name = "Quillfeather"
        self.theo.save()
        self.sam = factories.user(self.org, team=south, username="samwise")
        self.sue = factories.user(self.org, role=Role.SUPERVISOR, username="sue")
        self.sue.membership.supervised_teams.add(north)
        self.ada = factories.user(self.org, role=Role.ADMIN, username="ada")
        self.other_org = factories.organization("B")
        self.bob = factories.user(self.other_org, role=Role.ADMIN, username="bob")
        # Theo's: a repaired tasks rupture with a released note, a bond one with a note kept back.
        self.repaired, flag = a_rupture(self.org, self.theo, "KX-4471")
        reflection_save(
            flag=flag,
            by=self.theo,
            marker=self.option("withdrawal"),
            dimension="tasks",
            strategies=[self.option("clarify")],
            note=RELEASED,
            teaching_consent=True,
        )
        self.kept, flag = a_rupture(self.org, self.theo, "KX-4472", dip=BOND_DIP, then=LOW)
        reflection_save(
            flag=flag,
            by=self.theo,
            marker=self.option("confrontation"),
            dimension="bond",
            strategies=[self.option("rationale")],
            note=SECRET,
            teaching_consent=False,
        )
        self.souths, _flag = a_rupture(self.org, self.sam, "KX-9999")
        self.foreign, _flag = a_rupture(self.other_org, self.bob, "ZZ-1", then="")

    def option(self, code):
        return ReflectionOption.objects.get(organization=self.org, code=code)


@pytest.fixture
def world():
    return World()


def as_user(http, user):
    http.force_login(user)
    return http


def new_set(http, *ruptures, **fields):
    data = {"title": "Week 3", "questions": "What did you notice?"} | fields
    data["ruptures"] = [r.pk for r in ruptures]
    return http.post(reverse("case_set_new"), data)


def candidates(page: str, world) -> set[str]:
    names = {"repaired": world.repaired, "kept": world.kept, "souths": world.souths}
    return {name for name, r in names.items() if f'name="ruptures" value="{r.pk}"' in page}


def test_a_supervisor_chooses_among_their_teams_ruptures_only(client, world):
    http = as_user(client, world.sue)
    assert candidates(http.get(reverse("case_set_new")).content.decode(), world) == {
        "repaired",
        "kept",
    }
    as_user(client, world.ada)
    page = client.get(reverse("case_set_new")).content.decode()
    assert candidates(page, world) == {"repaired", "kept", "souths"}


def test_a_therapist_gets_403_and_another_organisation_404(client, world):
    as_user(client, world.ada)
    response = new_set(client, world.repaired)
    case_set = CaseSet.objects.get()
    as_user(client, world.theo)
    assert client.get(reverse("case_set_list")).status_code == 403
    assert client.get(reverse("case_set_detail", args=[case_set.pk])).status_code == 403
    as_user(client, world.bob)
    assert response.status_code == 302
    assert client.get(reverse("case_set_detail", args=[case_set.pk])).status_code == 404
    assert client.get(reverse("case_set_pdf", args=[case_set.pk])).status_code == 404


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"dimension": "tasks"}, {"repaired", "souths"}),
        ({"dimension": "bond"}, {"kept"}),
        ({"status": "repaired"}, {"repaired", "souths"}),
        ({"status": "unrepaired"}, set()),
        ({"status": "pending"}, {"kept"}),
        ({"marker": "withdrawal"}, {"repaired"}),
        ({"marker": "confrontation"}, {"kept"}),
        ({"strategy": "rationale"}, {"kept"}),
        ({"strategy": "clarify", "dimension": "bond"}, set()),
    ],
)
def test_the_filters(client, world, params, expected):
    as_user(client, world.ada)
    page = client.get(reverse("case_set_new"), params).content.decode()
    assert candidates(page, world) == expected


def test_ruptures_out_of_scope_or_bad_input_store_nothing(client, world):
    http = as_user(client, world.sue)
    for response in (
        new_set(http, world.repaired, world.souths),  # another team's
        new_set(http, world.foreign),  # another organisation's
        http.post(reverse("case_set_new"), {"title": "x", "questions": "q", "ruptures": ["a"]}),
        new_set(http),  # none ticked
        new_set(http, world.repaired, title=""),
        new_set(http, world.repaired, questions="  \n  "),
    ):
        assert response.status_code == 200
    assert CaseSet.objects.count() == Case.objects.count() == 0
    page = new_set(http, world.souths).content.decode()
    assert "not among those you may teach from" in page


def test_the_set_keeps_the_order_ticked(client, world):
    http = as_user(client, world.sue)
    response = new_set(http, world.kept, world.repaired)
    case_set = CaseSet.objects.get()
    assert response.url == reverse("case_set_detail", args=[case_set.pk])
    assert list(case_set.cases.values_list("rupture", "position")) == [
        (world.kept.pk, 1),
        (world.repaired.pk, 2),
    ]
    assert (case_set.organization, case_set.created_by) == (world.org, world.sue)


IDENTIFYING = (
    "KX-4471",
    "KX-4472",
    "2026-01-08",
    "08.01.2026",
    "08/01/2026",
    "1/8/2026",
    "Jan. 8, 2026",
    "January 8, 2026",
    "8 January 2026",
    "8 Jan 2026",
    "January 2026",
    "Jan 2026",
    SECRET,
    "Jonas",
)


def pdf_text(content: bytes) -> str:
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return " ".join(text.split())


def handout(http, case_set) -> tuple[str, str]:
    page = http.get(reverse("case_set_detail", args=[case_set.pk]))
    pdf = http.get(reverse("case_set_pdf", args=[case_set.pk]))
    assert (page.status_code, pdf.status_code, pdf["Content-Type"]) == (
        200,
        200,
        "application/pdf",
    )
    return page.content.decode(), pdf_text(pdf.content)


@pytest.mark.parametrize("show_therapist", [False, True])
def test_the_handout_and_pdf_name_no_client_and_give_no_date(client, world, show_therapist):
    http = as_user(client, world.sue)
    new_set(http, world.repaired, world.kept, show_therapist="on" if show_therapist else "")
    case_set = CaseSet.objects.get()
    assert case_set.show_therapist is show_therapist
    for text in handout(http, case_set):
        for needle in IDENTIFYING:
            assert needle not in text
        assert ("Quillfeather" in text) is show_therapist
        assert RELEASED in text
        assert "Case 1" in text and "Case 2" in text
        assert "What did you notice?" in text
    page, pdf = handout(http, case_set)
    # Case 1 fell at session 3 to 36.6 (tasks) and was back at 4; case 2 (bond) is pending.
    assert "The session total fell at session 3 to 36.6, from a usual level of 39.6" in pdf
    assert "Back at session 4" in pdf and "Pending" in pdf
    assert "Part of the alliance: Tasks" in pdf and "Part of the alliance: Bond" in pdf
    # The items at the rupture beside the earlier sessions' mean.
    row = '<tr><td>How we worked</td><td class="text-end">9.0</td><td class="text-end">9.9</td>'
    assert row in page
    assert "How we worked 9.0 9.9" in pdf


def test_viewing_and_downloading_are_recorded(client, world):
    http = as_user(client, world.ada)
    new_set(http, world.repaired)
    case_set = CaseSet.objects.get()
    handout(http, case_set)
    details = list(
        AuditEntry.objects.filter(object_type="case_set", object_id=str(case_set.pk))
        .order_by("pk")
        .values_list("detail", flat=True)
    )
    assert details == [
        "case handout viewed: Week 3",
        "case handout downloaded as PDF: Week 3",
    ]


def test_the_handout_costs_the_same_for_3_and_10_cases(client, world):
    http = as_user(client, world.ada)
    ruptures = [a_rupture(world.org, world.theo, f"Q-{n}")[0] for n in range(10)]
    counts = []
    for size in (3, 10):
        new_set(http, *ruptures[:size], title=f"Size {size}")
        case_set = CaseSet.objects.get(title=f"Size {size}")
        url = reverse("case_set_detail", args=[case_set.pk])
        with CaptureQueriesContext(connection) as queries:
            assert http.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_list_shows_the_sets(client, world):
    http = as_user(client, world.sue)
    new_set(http, world.repaired)
    page = http.get(reverse("case_set_list")).content.decode()
    assert "Week 3" in page and reverse("case_set_pdf", args=[CaseSet.objects.get().pk]) in page
