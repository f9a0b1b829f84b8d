"""Two-factor login: the code after the password, setting up and replacing an authenticator,
recovery codes, and where a `next` parameter may send the browser."""

import inspect
import re
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import iri_to_uri
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_app.accounts.models import Role
from alliance_app.measures import TensionAnswer
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    # A wrong code otherwise delays the next try, and the tests try codes back to back.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def confirmed_device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def code_for(device: TOTPDevice) -> str:
    return f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"


def allow_code_again(device: TOTPDevice) -> None:
    """A TOTP code counts once per 30 seconds; a test that needs a second one does not wait."""
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)


def password_login(client, user) -> None:
    response = client.post(
        reverse("login"), {"username": user.username, "password": factories.PASSWORD}
    )
    assert response.status_code == 302


def verified_login(client, user, device: TOTPDevice) -> None:
    password_login(client, user)
    client.post(reverse("two_factor_verify"), {"token": code_for(device)})
    allow_code_again(device)
    assert client.get("/caseload/").status_code == 200


def test_a_user_with_an_authenticator_must_enter_its_code(client, therapist):
    device = confirmed_device(therapist)
    client.post(reverse("login"), {"username": therapist.username, "password": factories.PASSWORD})
    response = client.get("/caseload/")
    assert response.status_code == 302 and response.url.startswith(reverse("two_factor_verify"))
    wrong = client.post(reverse("two_factor_verify"), {"token": "000000"})
    assert "That code is not right" in wrong.content.decode()
    client.post(reverse("two_factor_verify"), {"token": code_for(device)})
    assert client.get("/caseload/").status_code == 200


def test_an_organisation_can_require_two_factors(client, org, therapist):
    org.require_two_factor = True
    org.save()
    client.force_login(therapist)
    assert client.get("/caseload/").url == reverse("two_factor_setup")
    page = client.get(reverse("two_factor_setup")).content.decode()
    assert "<svg" in page
    device = TOTPDevice.objects.get(user=therapist, confirmed=False)
    client.post(reverse("two_factor_setup"), {"token": code_for(device)})
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/caseload/").status_code == 200


def test_the_code_page_returns_to_the_whole_address_asked_for(client, therapist):
    device = confirmed_device(therapist)
    password_login(client, therapist)
    asked = client.get("/caseload/?sort=flags&page=2")
    response = client.post(asked.url, {"token": code_for(device)})
    assert response.url == "/caseload/?sort=flags&page=2"


# The password alone never changes the second factor


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
def test_a_password_alone_gets_no_new_secret(client, org, therapist, required):
    org.require_two_factor = required
    org.save()
    device = confirmed_device(therapist)
    password_login(client, therapist)
    response = client.get(reverse("two_factor_setup"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("two_factor_verify"))
    assert b"two-factor-secret" not in response.content
    assert list(TOTPDevice.objects.filter(user=therapist)) == [device]


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
def test_a_password_alone_cannot_confirm_another_authenticator(client, org, therapist, required):
    org.require_two_factor = required
    org.save()
    device = confirmed_device(therapist)
    # An authenticator someone started to add: its secret known to whoever scanned it.
    pending = TOTPDevice.objects.create(user=therapist, name="authenticator", confirmed=False)
    password_login(client, therapist)
    response = client.post(reverse("two_factor_setup"), {"token": code_for(pending)})
    assert response.status_code == 302
    assert response.url.startswith(reverse("two_factor_verify"))
    pending.refresh_from_db()
    assert not pending.confirmed
    assert list(TOTPDevice.objects.filter(user=therapist, confirmed=True)) == [device]
    assert client.get("/caseload/").url.startswith(reverse("two_factor_verify"))


def test_replacing_the_authenticator_takes_a_code_from_the_current_one(client, therapist):
    old = confirmed_device(therapist)
    verified_login(client, therapist, old)
    page = client.get(reverse("two_factor_setup"))
    assert page.status_code == 200 and b"two-factor-secret" in page.content
    new = TOTPDevice.objects.get(user=therapist, confirmed=False)
    url = reverse("two_factor_setup")

    without = client.post(url, {"token": code_for(new)})
    assert without.status_code == 200 and "This field is required" in without.content.decode()
    wrong = client.post(url, {"current": "000000", "token": code_for(new)})
    assert "That code is not right" in wrong.content.decode()
    assert TOTPDevice.objects.get(user=therapist, confirmed=True) == old

    allow_code_again(new)
    done = client.post(url, {"current": code_for(old), "token": code_for(new)})
    assert done.url == reverse("home")
    assert list(TOTPDevice.objects.filter(user=therapist)) == [new]
    new.refresh_from_db()
    assert new.confirmed


# Recovery codes


def codes_on(response) -> list[str]:
    block = re.search(
        r'data-testid="recovery-codes">(.*?)</ul>', response.content.decode(), re.DOTALL
    )
    return re.findall(r"<li[^>]*>\s*(\w+)\s*</li>", block.group(1))


def test_setting_up_shows_ten_recovery_codes_once(client, therapist):
    client.force_login(therapist)
    client.get(reverse("two_factor_setup"))
    pending = TOTPDevice.objects.get(user=therapist, confirmed=False)
    response = client.post(reverse("two_factor_setup"), {"token": code_for(pending)})
    codes = codes_on(response)
    assert len(codes) == len(set(codes)) == 10
    stored = StaticToken.objects.filter(device__user=therapist, device__confirmed=True)
    assert sorted(stored.values_list("token", flat=True)) == sorted(codes)
    overview = client.get(reverse("two_factor_recovery")).content.decode()
    assert "10 unused recovery codes" in overview
    assert not any(code in overview for code in codes)


def test_a_recovery_code_stands_in_for_the_phone_once(client, therapist):
    confirmed_device(therapist)
    device = StaticDevice.objects.create(user=therapist, name="recovery codes", confirmed=True)
    device.token_set.create(token="abcd2345")
    device.token_set.create(token="efgh6723")
    password_login(client, therapist)
    response = client.post(
        f"{reverse('two_factor_verify')}?next=/caseload/", {"token": "ABCD 2345"}, follow=True
    )
    assert response.redirect_chain[0][0] == "/caseload/"
    assert "You used a recovery code: 1 is left." in response.content.decode()

    client.post(reverse("logout"))
    password_login(client, therapist)
    again = client.post(reverse("two_factor_verify"), {"token": "abcd2345"})
    assert "That code is not right" in again.content.decode()
    assert client.get("/caseload/").url.startswith(reverse("two_factor_verify"))
    assert client.post(reverse("two_factor_verify"), {"token": "efgh6723"}).status_code == 302
    assert client.get("/caseload/").status_code == 200


def test_a_verified_user_makes_new_recovery_codes_and_the_old_stop_working(client, therapist):
    phone = confirmed_device(therapist)
    old = StaticDevice.objects.create(user=therapist, name="recovery codes", confirmed=True)
    old.token_set.create(token="abcd2345")
    verified_login(client, therapist, phone)
    response = client.post(reverse("two_factor_recovery"))
    codes = codes_on(response)
    assert len(codes) == 10 and "abcd2345" not in codes

    client.post(reverse("logout"))
    password_login(client, therapist)
    refused = client.post(reverse("two_factor_verify"), {"token": "abcd2345"})
    assert "That code is not right" in refused.content.decode()
    assert client.post(reverse("two_factor_verify"), {"token": codes[3]}).status_code == 302


def test_recovery_codes_need_a_verified_login(client, therapist):
    confirmed_device(therapist)
    password_login(client, therapist)
    for method in ("get", "post"):
        response = getattr(client, method)(reverse("two_factor_recovery"))
        assert response.url.startswith(reverse("two_factor_verify"))
    assert not StaticDevice.objects.filter(user=therapist).exists()


def test_without_an_authenticator_recovery_codes_send_to_set_up(client, therapist):
    client.force_login(therapist)
    assert client.get(reverse("two_factor_recovery")).url == reverse("two_factor_setup")


def test_an_unconfirmed_authenticator_is_no_second_factor(client, therapist):
    confirmed_device(therapist)
    pending = TOTPDevice.objects.create(user=therapist, name="authenticator", confirmed=False)
    password_login(client, therapist)
    response = client.post(reverse("two_factor_verify"), {"token": code_for(pending)})
    assert "That code is not right" in response.content.decode()


# Every view that follows a `next` parameter stays on this site

HOSTILE = [
    "//evil.example",
    "/\\evil.example",
    "https://evil.example",
    "/\t/evil.example",
    "\\\\evil.example",
]
LOCAL = "/inbox/?sort=new"
# Reading `next` from the request, or handing the request to Django's views that follow it.
READS_NEXT = re.compile(
    r"""(GET|POST)(\.get\(|\[)\s*["']next["']"""
    r"|REDIRECT_FIELD_NAME|redirect_field_name|RedirectURLMixin|LoginView|LogoutView"
)


def _sources(view) -> list[str]:
    """The view's source and that of our own functions it calls, however deep."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return [inspect.getsource(cls) for cls in view_class.__mro__ if cls is not object]
    sources, seen, todo = [], set(), [inspect.unwrap(view)]
    while todo:
        function = todo.pop()
        if function in seen:
            continue
        seen.add(function)
        sources.append(inspect.getsource(function))
        code = getattr(function, "__code__", None) or function.__func__.__code__
        for name in code.co_names:
            called = getattr(function, "__globals__", {}).get(name)
            if inspect.isfunction(called) and called.__module__.startswith("alliance_app"):
                todo.append(inspect.unwrap(called))
    return sources


def _views(patterns, namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern.callback


def views_reading_next() -> set[str]:
    return {
        name
        for name, view in _views(get_resolver().url_patterns)
        if any(READS_NEXT.search(source) for source in _sources(view))
    }


def where_a_browser_goes(response) -> str | None:
    if response.status_code not in (301, 302, 303, 307, 308):
        return None
    # Browsers drop tabs and line breaks from a URL and read a backslash as a slash.
    location = re.sub(r"[\t\r\n]", "", response["Location"]).replace("\\", "/")
    return urljoin("http://testserver/somewhere/", location)


def admin_user(org):
    user = factories.user(org, role=Role.ADMIN, username="ada")
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True)
    return user


def _login(org, target):
    user = factories.user(org, username="nell")
    data = {"username": user.username, "password": factories.PASSWORD, "next": target}
    return Client().post(reverse("login"), data)


def _logout(org, target):
    http = Client()
    http.force_login(factories.user(org, username="nell"))
    return http.post(reverse("logout"), {"next": target})


def _two_factor_verify(org, target):
    user = factories.user(org, username="nell")
    device = confirmed_device(user)
    http = Client()
    password_login(http, user)
    return http.post(
        f"{reverse('two_factor_verify')}?{_query(target)}", {"token": code_for(device)}
    )


def _query(target: str) -> str:
    return urlencode({"next": target})


def _flag_action(org, target):
    therapist = factories.user(org, username="nell")
    session = factories.therapy_session(factories.episode(factories.client(org, therapist)))
    flag = rate(session, "session-adult", "8 8 8 8").rating.flags.get()
    http = Client()
    http.force_login(therapist)
    return http.post(reverse("flag_action", args=[flag.pk, "acknowledge"]), {"next": target})


def _flag_reflection(org, target):
    therapist = factories.user(org, username="nell")
    session = factories.therapy_session(factories.episode(factories.client(org, therapist)))
    tension = TensionAnswer(tension=True, resolution=3)
    flag = rate(session, "session-adult", "9 9 9 9", tension=tension).flags[0]
    options = dict(org.reflection_options.values_list("code", "pk"))
    data = {
        "marker": options["not_sure"],
        "dimension": "bond",
        "strategies": [options["invite"]],
        "next": target,
    }
    http = Client()
    http.force_login(therapist)
    return http.post(reverse("flag_reflection", args=[flag.pk]), data)


def _admin_login(org, target):
    user = admin_user(org)
    data = {"username": user.username, "password": factories.PASSWORD, "next": target}
    return Client().post(f"{reverse('admin:login')}?{_query(target)}", data)


def _admin_logout(org, target):
    http = Client()
    http.force_login(admin_user(org))
    return http.post(f"{reverse('admin:logout')}?{_query(target)}", {"next": target})


def _language_setting(org, target):
    http = Client()
    http.force_login(factories.user(org, username="nell"))
    return http.post(reverse("language_setting"), {"language": "nb", "next": target})


FOLLOWS_NEXT = {
    "language_setting": _language_setting,
    "login": _login,
    "logout": _logout,
    "two_factor_verify": _two_factor_verify,
    "flag_action": _flag_action,
    "flag_reflection": _flag_reflection,
    "admin:login": _admin_login,
    "admin:logout": _admin_logout,
}


def test_every_view_that_reads_next_is_walked():
    assert views_reading_next() == set(FOLLOWS_NEXT)


@pytest.mark.parametrize("target", HOSTILE, ids=repr)
@pytest.mark.parametrize("view", sorted(FOLLOWS_NEXT))
def test_a_hostile_next_is_not_followed(org, view, target):
    response = FOLLOWS_NEXT[view](org, target)
    goes = where_a_browser_goes(response)
    assert goes is None or urlsplit(goes).netloc == "testserver", (view, response["Location"])
    # Django percent-encodes a backslash or tab in Location, which happens to keep today's browsers
    # on the site; the target must not be followed in the first place.
    assert response.get("Location") != iri_to_uri(target), view


@pytest.mark.parametrize("view", sorted(FOLLOWS_NEXT))
def test_a_local_next_is_followed(org, view):
    response = FOLLOWS_NEXT[view](org, LOCAL)
    assert response.status_code == 302 and response.url == LOCAL
