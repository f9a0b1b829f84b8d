import pytest

from alliance_app.accounts.models import Role
from tests import factories
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_admin_works_under_the_content_security_policy(page):
    org = factories.organization()
    admin = factories.user(org, role=Role.ADMIN, username="ada")
    admin.is_staff = True
    admin.save()
    client = factories.client(org, factories.user(org, username="tim"), code="K-1")
    log_in(page, "ada", factories.PASSWORD)
    for url in ("/admin/", "/admin/clinic/client/", f"/admin/clinic/client/{client.pk}/change/"):
        page.goto(url)
        assert page.locator("#content").is_visible(), url
    page.goto("/admin/accounts/user/add/")
    assert page.locator("#user_form").is_visible()
    assert page.console_errors == []
