"""The tension question in a real Chromium on a tall tablet (820x1180): in client mode and on a
remote link, sent offline and then online, stored exactly once with the session rating."""

import json
import os
from pathlib import Path

import pytest

from alliance_app.clinic.models import TherapySession
from alliance_app.feedback.links import remote_link_create
from alliance_app.feedback.models import Flag, Rating, RemoteLink, TensionReport
from tests import factories
from tests.browser.conftest import log_in, tap_line

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TALL_TABLET = {"width": 820, "height": 1180}
PHONE = {"width": 390, "height": 844}
QUESTION = "Was there a moment today when you felt uneasy, unheard or at odds with your therapist?"
FOLLOW_UP = "How far did you and your therapist sort it out?"


@pytest.fixture
def context(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport=TALL_TABLET, has_touch=True, device_scale_factor=1
    )
    yield context
    context.close()


def hand_over(page, age_band: str = "adult"):
    """A therapist starts today's session and hands the tablet over for the session scale."""
    org = factories.organization()
    therapist = factories.user(org, username=f"tess-{age_band}")
    client = factories.client(org, therapist, age_band=age_band)
    log_in(page, therapist.username, factories.PASSWORD)
    page.goto(f"/clients/{client.pk}/")
    page.get_by_role("button", name="Start today's session").click()
    page.get_by_role("button", name="Hand to client: session rating").click()
    page.wait_for_url("**/rate/")
    return client


def mark_the_lines(page, fraction: float = 0.9) -> None:
    for track in page.locator(".vas-track").all():
        tap_line(page, track, fraction)


def to_the_question(page) -> None:
    mark_the_lines(page)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("heading", name="One more question").wait_for()


def pending_entries(page) -> list[dict]:
    return page.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('alliance-pending:'))"
        ".map(k => JSON.parse(localStorage.getItem(k)))"
    )


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_client_mode_yes_sent_offline_is_stored_once_with_its_flag(page, context):
    hand_over(page)
    mark_the_lines(page)
    page.get_by_role("button", name="Next").click()
    heading = page.get_by_role("heading", name="One more question")
    heading.wait_for()
    assert page.evaluate("document.activeElement.id") == "tension-title"
    assert page.locator(".vas-track").first.is_hidden()
    assert page.get_by_role("group", name=FOLLOW_UP).is_hidden()
    page.get_by_role("radio", name="Yes").check()
    page.get_by_role("radio", name="A little").check()
    context.set_offline(True)
    page.get_by_role("button", name="Send my answers").click()
    page.locator("#rating-status").get_by_text("saved on this tablet").wait_for()
    assert Rating.objects.count() == 0
    (entry,) = pending_entries(page)
    assert entry["fields"]["tension"] == "yes"
    assert entry["fields"]["tension_resolution"] == "2"
    assert entry["fields"]["idempotency_key"] == entry["key"]
    assert page.get_by_role("radio", name="Yes").is_disabled()  # nothing changes while waiting

    context.set_offline(False)
    page.wait_for_url("**/rate/thanks/")
    rating = Rating.objects.get()
    assert str(rating.idempotency_key) == entry["key"]
    assert (rating.tension.tension, rating.tension.resolution) == (True, 2)
    assert Flag.objects.filter(rating=rating, kind="client_reported_tension").count() == 1
    assert TensionReport.objects.count() == 1
    assert page.evaluate("Object.keys(localStorage).length") == 0
    assert page.console_errors == []


def test_remote_link_no_sent_offline_is_stored_once(page, context):
    org = factories.organization()
    therapist = factories.user(org)
    session = factories.therapy_session(factories.episode(factories.client(org, therapist)))
    token = remote_link_create(session=session, scale="session", created_by=therapist).token
    page.goto(f"/r/{token}/")
    to_the_question(page)
    page.get_by_role("radio", name="No").check()
    assert page.get_by_role("group", name=FOLLOW_UP).is_hidden()
    context.set_offline(True)
    page.get_by_role("button", name="Send my answers").click()
    page.locator("#rating-status").get_by_text("saved on this tablet").wait_for()
    (entry,) = pending_entries(page)
    assert entry["fields"]["tension"] == "no"
    assert "tension_resolution" not in entry["fields"]
    assert Rating.objects.count() == 0

    context.set_offline(False)
    page.wait_for_url("**/r-done/**")
    rating = Rating.objects.get()
    assert rating.channel == "remote"
    assert (rating.tension.tension, rating.tension.resolution) == (False, None)
    assert Flag.objects.filter(kind="client_reported_tension").count() == 0
    assert RemoteLink.objects.get().rating == rating
    assert page.console_errors == []


def test_a_reload_while_pending_restores_and_sends_the_tension_answer(page, context):
    hand_over(page)
    to_the_question(page)
    page.get_by_role("radio", name="Yes").check()
    page.get_by_role("radio", name="Mostly").check()
    # The server cannot be reached: the answers wait on the tablet.
    page.route("**/rate/submit/**", lambda route: route.abort("connectionfailed"))
    page.get_by_role("button", name="Send my answers").click()
    page.locator("#rating-status").get_by_text("saved on this tablet").wait_for()
    (saved,) = pending_entries(page)

    page.reload()
    page.locator("#rating-status").get_by_text("saved on this tablet").wait_for()
    # The page shows the answers it kept, and keeps them as they were.
    assert page.get_by_role("heading", name="One more question").is_visible()
    assert page.get_by_role("radio", name="Yes").is_checked()
    assert page.get_by_role("radio", name="Mostly").is_checked()
    assert pending_entries(page) == [saved]
    assert Rating.objects.count() == 0

    sent = []
    page.unroute("**/rate/submit/**")
    page.on("request", lambda request: request.method == "POST" and sent.append(request))
    context.set_offline(True)
    context.set_offline(False)  # the connection is back: the tablet sends at once
    page.wait_for_url("**/rate/thanks/")
    body = sent[0].post_data
    for name, value in saved["fields"].items():
        assert f'name="{name}"\r\n\r\n{value}\r\n' in body, name
    rating = Rating.objects.get()
    assert str(rating.idempotency_key) == saved["key"]
    assert (rating.tension.tension, rating.tension.resolution) == (True, 4)
    assert Flag.objects.filter(kind="client_reported_tension").count() == 1
    # Only the sends that the test cut off failed.
    assert set(page.console_errors) <= {"Failed to load resource: net::ERR_CONNECTION_FAILED"}


def test_yes_without_how_far_says_so_and_sends_nothing(page):
    hand_over(page)
    to_the_question(page)
    page.get_by_role("button", name="Send my answers").click()
    message = page.locator("#tension-error")
    assert message.inner_text() == "Please choose yes or no, or “I’d rather not answer”."
    assert message.is_visible()
    page.get_by_role("radio", name="Yes").check()
    page.get_by_role("button", name="Send my answers").click()
    assert message.is_hidden()  # answered now
    message = page.locator("#tension_resolution-error")
    assert message.inner_text() == "Please choose how far it was sorted out."
    assert page.evaluate("document.activeElement.name") == "tension_resolution"
    assert Rating.objects.count() == 0
    assert pending_entries(page) == []


def test_back_keeps_the_marks_and_rather_not_answer_sends_the_lines_alone(page):
    hand_over(page)
    to_the_question(page)
    page.get_by_role("radio", name="Yes").check()
    page.get_by_role("button", name="Back").click()
    assert page.evaluate("document.activeElement.id") == "rating-title"
    assert page.locator('input[name="overall"]').input_value() != ""
    assert page.get_by_role("heading", name="One more question").is_hidden()
    page.get_by_role("button", name="Next").click()
    assert page.get_by_role("radio", name="Yes").is_checked()
    page.get_by_role("button", name="I’d rather not answer").click()
    page.wait_for_url("**/rate/thanks/")
    assert Rating.objects.count() == 1
    assert TensionReport.objects.count() == 0


def test_the_question_works_with_the_keyboard(page):
    hand_over(page)
    for track in page.locator(".vas-track").all():
        track.focus()
        page.keyboard.press("End")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "rating-submit"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="One more question").wait_for()
    assert page.evaluate("document.activeElement.id") == "tension-title"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.value") == "yes"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "tension_resolution"
    page.keyboard.press("ArrowRight")  # the first arrow selects the next choice: 2
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_url("**/rate/thanks/")
    report = TensionReport.objects.get()
    assert (report.tension, report.resolution) == (True, 3)


def test_a_server_error_about_the_answer_is_shown_on_the_question(page):
    client = hand_over(page)
    to_the_question(page)
    # The organisation stops asking while the client holds the tablet.
    client.organization.ask_tension = False
    client.organization.save(update_fields=["ask_tension"])
    page.get_by_role("radio", name="No").check()
    page.get_by_role("button", name="Send my answers").click()
    message = page.locator("#tension-error")
    message.wait_for()
    assert message.inner_text() == "This clinic does not ask the tension question."
    assert page.get_by_role("heading", name="One more question").is_visible()
    assert Rating.objects.count() == 0
    # Declining still sends the scale.
    page.get_by_role("button", name="I’d rather not answer").click()
    page.wait_for_url("**/rate/thanks/")
    assert TherapySession.objects.get().ratings.count() == 1


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("age_band", ["adult", "child"])
def test_both_steps_fit_a_tablet_and_a_phone(page, shots, age_band):
    hand_over(page, age_band)
    mark_the_lines(page, 0.8)
    for name, size in (("tablet", TALL_TABLET), ("phone", PHONE)):
        page.set_viewport_size(size)
        assert fits(page), name
        page.screenshot(path=shots / f"tension-{age_band}-{name}-lines.png", full_page=True)
    page.set_viewport_size(TALL_TABLET)
    page.locator("#rating-submit").click()
    page.get_by_role("radio", name="Yes").check()
    page.locator('input[name="tension_resolution"][value="2"]').check()
    for name, size in (("tablet", TALL_TABLET), ("phone", PHONE)):
        page.set_viewport_size(size)
        assert fits(page), name
        # Every choice is a large target.
        boxes = [box.bounding_box() for box in page.locator(".choice-box").all()]
        assert len(boxes) == 7
        assert min(box["height"] for box in boxes) >= 48, name
        page.screenshot(path=shots / f"tension-{age_band}-{name}-question.png", full_page=True)
    assert json.dumps(page.console_errors) == "[]"
