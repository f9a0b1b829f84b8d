"""The paper ratings page on a portrait tablet: check the bad fixture, read its report, import
only the valid rows."""

from datetime import date
from pathlib import Path

import pytest

from alliance_app.clinic.models import TherapySession
from alliance_app.feedback.models import Channel, Rating
from tests import factories
from tests.browser.conftest import log_in
from tests.factories import rate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PORTRAIT = {"width": 820, "height": 1180}
BAD_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "paper_import_bad.csv"


@pytest.fixture
def tom():
    """Tom treats the fixture's clients P-001, P-002 and P-003 (its session 1 rated already)."""
    org = factories.organization()
    tom = factories.user(org, username="tom")
    for code in ("P-001", "P-002"):
        factories.client(org, tom, code=code)
    p3 = factories.client(org, tom, code="P-003")
    episode = factories.episode(p3, opened=date(2026, 2, 2))
    first = TherapySession.objects.create(episode=episode, number=1, date=date(2026, 2, 2))
    TherapySession.objects.create(episode=episode, number=2, date=date(2026, 2, 16))
    rate(first, "outcome-adult", "5 5 5 5")
    return tom


def test_a_file_checked_then_its_valid_rows_imported_on_a_portrait_tablet(page, tom):
    page.set_viewport_size(PORTRAIT)
    log_in(page, "tom", factories.PASSWORD)
    page.get_by_test_id("paper-import-link").click()
    page.get_by_label("CSV file of paper ratings").set_input_files(str(BAD_FILE))
    page.get_by_role("button", name="Check the file").click()

    problems = page.get_by_test_id("import-problem")
    assert problems.count() == 16
    assert problems.first.inner_text().split("\t")[0].strip() == "4"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PORTRAIT["width"], "the report must fit the tablet without scrolling sideways"
    import_button = page.get_by_role("button", name="Import 4 ratings")
    for target in (
        import_button,
        page.get_by_role("button", name="Check the file"),
        page.get_by_test_id("import-template"),
        page.locator("label", has_text="Import only the valid rows"),
    ):
        assert target.bounding_box()["height"] >= 44

    page.get_by_label("Import only the valid rows").check()
    import_button.click()
    assert page.get_by_test_id("import-status").inner_text() == "4 ratings stored. 2 flags raised."
    assert Rating.objects.filter(channel=Channel.PAPER).count() == 4
    assert page.console_errors == []
