"""The minute in which a client rates a session, in a real Chromium at tablet size."""

from decimal import Decimal

import pytest

from alliance_app.clinic.models import TherapySession
from alliance_app.feedback.models import Rating
from tests import factories
from tests.browser.conftest import log_in, tap_line

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def handed_over(page):
    """A therapist has started today's session and handed the tablet over for the outcome scale."""
    org = factories.organization()
    therapist = factories.user(org, username="hana")
    client = factories.client(org, therapist, code="K-17")
    log_in(page, "hana", factories.PASSWORD)
    page.goto(f"/clients/{client.pk}/")
    page.get_by_role("button", name="Start today's session").click()
    page.get_by_role("button", name="Hand to client: outcome rating").click()
    page.wait_for_url("**/rate/")
    return client


def tap_at(page, key: str, fraction: float) -> None:
    tap_line(page, page.get_by_test_id(f"vas-{key}"), fraction)


def value_of(page, key: str) -> str:
    return page.locator(f'input[name="{key}"]').input_value()


KEYS = ("personal", "relationships", "social", "overall")


def test_a_client_taps_each_line_and_submits(page, handed_over):
    for key, fraction in zip(KEYS, (0.25, 0.5, 0.72, 0.9), strict=True):
        tap_at(page, key, fraction)
    values = [Decimal(value_of(page, key)) for key in KEYS]
    for value, expected in zip(values, ("2.5", "5.0", "7.2", "9.0"), strict=True):
        assert abs(value - Decimal(expected)) <= Decimal("0.2")
    assert page.locator("body").inner_text().count(".") < 10  # no numbers shown to the client
    page.locator("#rating-submit").click()
    page.wait_for_url("**/rate/thanks/")
    assert page.get_by_role("heading", name="Thank you — please hand the tablet back").is_visible()
    rating = Rating.objects.get()
    assert list(rating.items) == values
    assert rating.channel == "tablet"
    assert page.console_errors == []


def test_an_untouched_line_blocks_submit_and_says_which(page, handed_over):
    for key in KEYS[:3]:
        tap_at(page, key, 0.6)
    page.locator("#rating-submit").click()
    # Beside the line (the live region reads the same words out, unseen).
    assert page.locator(".vas-error", has_text="Please mark the line “All in all”.").is_visible()
    assert page.url.endswith("/rate/")
    assert Rating.objects.count() == 0


def test_the_lines_work_with_the_keyboard(page, handed_over):
    track = page.get_by_test_id("vas-personal")
    track.focus()
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    assert value_of(page, "personal") == "9.9"
    assert track.get_attribute("aria-valuenow") == "9.9"


def test_leaving_client_mode_needs_the_therapists_password(page, handed_over):
    for url in ("/", "/admin/", f"/clients/{handed_over.pk}/"):
        page.goto(url)
        assert page.url.endswith("/rate/"), url
    page.goto("/rate/unlock/")
    page.get_by_label("Therapist's password").fill("a-guess")
    page.get_by_role("button", name="Unlock").click()
    assert page.get_by_text("That password is not right.").is_visible()
    page.goto("/")
    assert page.url.endswith("/rate/")
    page.goto("/rate/unlock/")
    page.get_by_label("Therapist's password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    page.wait_for_url(f"**/clients/{handed_over.pk}/")
    page.goto("/")
    assert page.get_by_role("link", name="K-17").is_visible()


def test_offline_answers_wait_on_the_tablet_and_are_stored_once(page, context, handed_over):
    for key in KEYS:
        tap_at(page, key, 0.4)
    context.set_offline(True)
    page.locator("#rating-submit").click()
    status = page.locator("#rating-status")
    status.get_by_text("saved on this tablet").wait_for()
    assert Rating.objects.count() == 0
    pending = page.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('alliance-pending:')).length"
    )
    assert pending == 1
    context.set_offline(False)
    page.wait_for_url("**/rate/thanks/")
    assert Rating.objects.count() == 1
    assert page.evaluate("Object.keys(localStorage).length") == 0


def test_the_therapist_sees_the_result_after_unlocking(page, handed_over):
    for key in KEYS:
        tap_at(page, key, 0.5)
    page.locator("#rating-submit").click()
    page.wait_for_url("**/rate/thanks/")
    page.get_by_role("link", name="Therapist: unlock the tablet").click()
    page.get_by_label("Therapist's password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    page.wait_for_url("**/ratings/*/")
    assert page.get_by_test_id("against-cutoff").inner_text().startswith("In the clinical range")
    assert page.get_by_test_id("change").inner_text() == "This is the intake rating."


@pytest.mark.parametrize("path", ["/rate/", "/rate/progress/"])
def test_the_client_page_is_light(page, handed_over, path):
    sizes = []
    page.on("response", lambda response: sizes.append(len(response.body())))
    page.goto(path)
    page.wait_for_load_state("networkidle")
    assert 0 < sum(sizes) < 100_000  # uncompressed: what goes over the wire is smaller still
    scripts = page.evaluate("[...document.scripts].map(s => s.src)")
    assert [src for src in scripts if "plotly" in src or "bootstrap" in src] == []


def test_a_couple_session_goes_round_the_tablet(page):
    org = factories.organization()
    therapist = factories.user(org, username="ines")
    client = factories.client(org, therapist)
    log_in(page, "ines", factories.PASSWORD)
    page.goto(f"/clients/{client.pk}/")
    page.get_by_label("Format").select_option("couple")
    page.get_by_role("button", name="Start today's session").click()
    for rater, label in (("client", ""), ("partner", "Sam")):
        page.get_by_label("Who rates next").select_option(rater)
        page.get_by_label("Name or role (optional)").fill(label)
        page.get_by_role("button", name="Hand to client: session rating").click()
        for key in ("relationship", "goals", "approach", "overall"):
            tap_at(page, key, 0.95)
        page.get_by_role("button", name="Next").click()  # to the tension question
        page.get_by_role("radio", name="No").check()
        page.get_by_role("button", name="Send my answers").click()
        page.wait_for_url("**/rate/thanks/")
        page.goto("/rate/unlock/")
        page.get_by_label("Therapist's password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Unlock").click()
        page.goto(f"/clients/{client.pk}/")
    session = TherapySession.objects.get()
    assert sorted(session.ratings.values_list("rater", "rater_label", "tension__tension")) == [
        ("client", "", False),
        ("partner", "Sam", False),
    ]
