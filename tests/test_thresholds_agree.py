"""An organisation's own thresholds reach every screen, summary and chart, not only the flags.

With an alliance cutoff of 38 and a reliable change of 6, a session rating of 37.0 is a concern
(its flag says "below 38.0") and an outcome rise of +5.5 is not reliable: the result page, the
caseload, the summary rows, the team and organisation statistics, the exports and the client
chart must all say the same.
"""

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from alliance_app.accounts.models import Role
from alliance_app.feedback.models import AllianceMonth
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic(org, therapist, adult):
    org.alliance_cutoff = Decimal("38.0")
    org.reliable_change = Decimal("6.0")
    org.save()
    episode = factories.episode(adult)
    first, second = (factories.therapy_session(episode, n) for n in (1, 2))
    rate(first, "outcome-adult", "5 5 5 5")  # intake 20.0: in the clinical range
    rate(first, "session-adult", "10 10 10 10")
    latest = rate(second, "outcome-adult", "6.5 6.5 6.5 6.0")  # 25.5: +5.5, out of the range
    alliance = rate(second, "session-adult", "9.5 9.5 9 9")  # 37.0: below 38, above 36
    return {"alliance": alliance.rating, "latest": latest.rating, "adult": adult}


def test_the_flags_use_the_organisations_numbers(clinic):
    (low,) = [flag for flag in clinic["alliance"].flags.all() if flag.kind == "low_alliance"]
    assert "below 38.0" in low.explanation
    assert not clinic["latest"].flags.exists()  # +5.5 is no reliable change at 6.0


def test_the_result_page_agrees_with_the_flag(client, therapist, clinic):
    client.force_login(therapist)
    page = client.get(reverse("rating_result", args=[clinic["alliance"].pk])).content.decode()
    assert "Below the alliance cutoff of 38.0" in page
    assert "36.0" not in page
    outcome = client.get(reverse("rating_result", args=[clinic["latest"].pk]))
    summary = outcome.context["summary"]
    assert summary.thresholds.reliable_change == Decimal("6.0")
    assert summary.direction == "none"


def test_the_caseload_agrees_with_the_flag(client, therapist, clinic):
    client.force_login(therapist)
    (row,) = client.get(reverse("caseload")).context["rows"]
    assert row.alliance_concern
    assert row.direction == "none"
    assert row.statuses == ["alliance_concern"]


def test_the_summary_rows_count_the_concern(clinic):
    (month,) = AllianceMonth.objects.all()
    assert (month.count, month.concerns) == (2, 1)


def test_the_team_and_organisation_figures_agree(client, org, therapist, clinic):
    admin = factories.user(org, role=Role.ADMIN)
    client.force_login(admin)
    for name in ("team_statistics", "overview"):
        totals = client.get(reverse(name)).context["totals"]
        assert totals.alliance_concern_share == 0.5
        # 20.0 → 25.5 would be "recovered" by the scale's own 5.0; by 6.0 it is unchanged.
        assert totals.outcome_shares["unchanged"] == 1.0
        assert totals.outcome_shares["recovered"] == 0.0


def test_the_outcome_export_agrees(client, org, clinic):
    client.force_login(factories.user(org, role=Role.ADMIN))
    body = b"".join(client.get(reverse("export", args=["outcomes", "csv"])).streaming_content)
    assert "unchanged" in body.decode()
    assert "recovered" not in body.decode()


def test_the_client_chart_draws_the_organisations_lines(client, therapist, clinic):
    client.force_login(therapist)
    page = client.get(reverse("client_detail", args=[clinic["adult"].pk]))
    figure = json.loads(page.context["chart"])
    lines = {shape["y0"] for shape in figure["layout"]["shapes"] if shape["type"] == "line"}
    assert lines == {25.0, 38.0}
    (band,) = [shape for shape in figure["layout"]["shapes"] if shape["type"] == "rect"]
    assert (band["y0"], band["y1"]) == (14.0, 26.0)  # intake 20.0 ± 6.0


def test_the_monthly_chart_draws_the_organisations_cutoff(client, org, clinic):
    client.force_login(factories.user(org, role=Role.ADMIN))
    figure = json.loads(client.get(reverse("team_statistics")).context["chart"])
    (line,) = figure["layout"]["shapes"]
    assert line["y0"] == 38.0


def test_changing_the_cutoff_and_rebuilding_recounts_the_concerns(org, clinic):
    from django.core.management import call_command

    org.alliance_cutoff = None
    org.save()
    call_command("rebuild_rollups", organization_slug=org.slug, stdout=None)
    (month,) = AllianceMonth.objects.all()
    assert month.concerns == 0  # 37.0 is no concern at the scale's own 36.0


def test_a_new_cutoff_saved_in_the_admin_recounts_the_concerns_at_once(client, org, clinic):
    from tests.test_organization_settings import post_change

    superuser = factories.User.objects.create_superuser("root", "r@example.org", "pw-root-12345")
    client.force_login(superuser)
    assert AllianceMonth.objects.get().concerns == 1
    assert post_change(client, org, alliance_cutoff="", reliable_change="6.0").status_code == 302
    assert AllianceMonth.objects.get().concerns == 0
    assert post_change(client, org, alliance_cutoff="40.0").status_code == 302
    assert AllianceMonth.objects.get().concerns == 1  # 37.0 is below 40.0; 40.0 is not
