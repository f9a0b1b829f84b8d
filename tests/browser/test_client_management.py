"""A therapist with an empty caseload adds their first client on a tablet in portrait
(820 × 1180) and rates the client's first session with them, without the Django admin."""

from decimal import Decimal

import pytest

from alliance_app.audit.models import Action, AuditEntry
from alliance_app.clinic.models import Client
from alliance_app.feedback.models import Rating
from tests import factories
from tests.browser.conftest import log_in, tap_line

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET_TALL = {"width": 820, "height": 1180}
KEYS = ("personal", "relationships", "social", "overall")


def test_a_therapist_adds_a_client_and_rates_their_first_session(page):
    page.set_viewport_size(TABLET_TALL)
    org = factories.organization()
    therapist = factories.user(org, username="nora")
    log_in(page, "nora", factories.PASSWORD)
    page.wait_for_url("**/caseload/")
    page.get_by_role("link", name="Add your first client").click()
    page.wait_for_url("**/clients/new/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    code = page.get_by_label("Client code")
    assert code.input_value().startswith("C-")  # a free code, suggested
    code.fill("N-1")
    page.get_by_label("Age band").select_option("adult")
    page.get_by_label("Preferred language").select_option("en")
    assert page.get_by_label("Therapist").input_value() == str(therapist.pk)
    page.get_by_role("button", name="Add the client").click()
    client = Client.objects.get(code="N-1")
    page.wait_for_url(f"**/clients/{client.pk}/")
    assert page.get_by_text("Client N-1 is added.").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_role("button", name="Start today's session").click()
    page.get_by_role("button", name="Hand to client: outcome rating").click()
    page.wait_for_url("**/rate/")
    for key in KEYS:
        tap_line(page, page.get_by_test_id(f"vas-{key}"), 0.6)
    values = [Decimal(page.locator(f'input[name="{key}"]').input_value()) for key in KEYS]
    page.locator("#rating-submit").click()
    page.wait_for_url("**/rate/thanks/")
    page.get_by_role("link", name="Therapist: unlock the tablet").click()
    page.get_by_label("Therapist's password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    page.wait_for_url("**/ratings/*/")

    rating = Rating.objects.get()
    assert rating.session.episode.client == client
    assert (rating.session.number, rating.session.episode.therapist) == (1, therapist)
    assert list(rating.items) == values
    assert rating.total == sum(values)
    assert AuditEntry.objects.filter(action=Action.CLIENT_CREATED, detail="N-1").count() == 1
    assert page.console_errors == []
