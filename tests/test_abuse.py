"""Abuse: hostile, malformed, forged and replayed input stores nothing (DESIGN.md §4 and §7).

Property-based with Hypothesis, derandomised and bounded so CI runs the same examples every
time. Every property checks two things: the status code (never a 5xx, never a 2xx for bad input)
and what the database holds afterwards (ratings, flags, whether a link is used).

The oracle is our own reading of the rule, not the application's parser: an item is valid when
it is a plain decimal number (ASCII digits, an optional sign and point, surrounding whitespace
ignored) from 0 to 10 with at most one decimal place, trailing zeros allowed. Generated
idempotency keys are either canonical UUIDs (valid, in either case) or not UUIDs at all.
"""

import string
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings as django_settings
from django.core import signing
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from alliance_app.clinic.models import TherapySession
from alliance_app.feedback.client_mode import SESSION_KEY, ClientMode
from alliance_app.feedback.links import SALT as LINK_SALT
from alliance_app.feedback.links import remote_link_create
from alliance_app.feedback.models import Flag, FlagStatus, Rating, RemoteLink
from alliance_app.feedback.views import TABLET_SALT
from tests import factories

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
INSTRUMENT = "session-adult"
ITEMS = factories.SESSION_KEYS
KEY = "idempotency_key"
LOW = dict.fromkeys(ITEMS, "2.0")  # a weak alliance: raises flags when stored
GOOD = {"relationship": "9.5", "goals": "9.0", "approach": "9.5", "overall": "9.6"}
CSRF_SECRET = "abcdefghijklmnopqrstuvwxyzABCDEF"  # 32 characters, the shape of a CSRF secret


def bounded(examples: int):
    """Deterministic and bounded: the same examples on every run, no example database."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# The oracle


_PLAIN = frozenset("0123456789+-.")
_TENTH = Decimal("0.1")


def item_is_valid(raw: str | None) -> bool:
    if raw is None:
        return False
    text = raw.strip()
    if not text or not set(text) <= _PLAIN:
        return False
    try:
        value = Decimal(text)
    except InvalidOperation:
        return False
    return Decimal(0) <= value <= Decimal(10) and value == value.quantize(_TENTH)


def item_value(raw: str) -> Decimal:
    return Decimal(raw.strip())


# Strategies for one item's value


_FORMATS = (
    lambda d: f"{d:.1f}",
    lambda d: f"{d:.2f}",  # a trailing zero
    lambda d: f"{d:.1f}".removesuffix(".0"),  # "7" for 7.0
    lambda d: f"+{d:.1f}",
    lambda d: f"0{d:.1f}",
    lambda d: f" {d:.1f}\t",
)
VALID_ITEM = st.one_of(
    st.builds(
        lambda tenths, fmt: fmt(Decimal(tenths).scaleb(-1)),
        st.integers(0, 100),
        st.sampled_from(_FORMATS),
    ),
    st.sampled_from(
        ["0", "10", "10.0", "10.00", "0.0", "-0.0", "+10", "5.", ".5", "0" * 9_999 + "5"]
    ),
)
# Bad values named one by one: each is also tried alone on its line (see below).
BOUNDARY = ["10.1", "-0.1", "10.2", "-0.5", "+10.1", "-1", "11", "10.05", "-0.05", "10.01"]
TOO_PRECISE = ["0.01", "9.99", "5.05", "0.05", "5.000001", "0." + "0" * 40 + "1"]
NON_FINITE = ["nan", "inf", "-inf", "NaN", "Infinity", "-Infinity", "1e309", "sNaN", "-nan"]
# Numbers Python's Decimal, float or int would read, but not plain decimal notation.
NOT_PLAIN = ["٥", "٥.٥", "５", "𝟓", "½", "五", "1e1", "5E-1", "5e0", "1_0", "0x5", "0b1", "5,5"]
OVERSIZED = ["5" * 10_000, "x" * 10_000, "9" * 10_000 + ".5", "0." + "0" * 9_998 + "1"]
WRONGLY_TYPED = [
    *("", " ", "\t", "\n", "\r\n", "\u00a0", "5 5", "5..5", "--5", "+-5", ".", "+", "-", "5-"),
    *("1/2", "5%", "'5'", '"5"', "\x00", "5\x00", "5.5" * 3_000),
    *("null", "None", "undefined", "true", "false", "[5]", "{}", "[]"),
]
NAMED_BAD_VALUES = [
    None,  # the field is missing
    *BOUNDARY,
    *TOO_PRECISE,
    *NON_FINITE,
    *NOT_PLAIN,
    *OVERSIZED,
    *WRONGLY_TYPED,
]
BAD_ITEM = st.sampled_from(
    [
        st.none(),
        st.sampled_from(BOUNDARY),
        st.integers(-(10**9), 10**9).filter(lambda n: not 0 <= n <= 10).map(str),
        st.floats(-1e9, 1e9).map(str),  # the oracle decides: most are out of range or too precise
        st.decimals(-20, 20, allow_nan=False, allow_infinity=False).map(str),
        st.sampled_from(TOO_PRECISE),
        st.integers(1, 999).filter(lambda n: n % 10).map(lambda n: f"{n / 100:.2f}"),  # "5.55"
        st.sampled_from(NON_FINITE),
        st.sampled_from(NOT_PLAIN),
        st.sampled_from(OVERSIZED),
        st.sampled_from(WRONGLY_TYPED),
        st.text(max_size=30),  # almost always bad; the oracle decides
    ]
).flatmap(lambda kind: kind)
ANY_ITEM = st.one_of(VALID_ITEM, BAD_ITEM)

# Strategies for the idempotency key: (value or None when missing, whether it is valid)

VALID_KEY = st.one_of(
    st.uuids().map(lambda key: (str(key), True)),
    st.uuids().map(lambda key: (str(key).upper(), True)),
)


def _not_a_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return True
    return False


INVALID_KEY = st.one_of(
    st.just((None, False)),
    st.sampled_from(["", " ", "null", "nope", "0", "x" * 10_000, "٥" * 36]).map(
        lambda text: (text, False)
    ),
    st.uuids().map(lambda key: (str(key)[:-1], False)),
    st.uuids().map(lambda key: (str(key) + "0", False)),
    st.text(max_size=40).filter(_not_a_uuid).map(lambda text: (text, False)),
)

# Fields the form does not have: a few random ones, or more than Django accepts at all.

_NAME = st.text(string.ascii_letters + string.digits + "_-[].", min_size=1, max_size=20).filter(
    lambda name: name not in {*ITEMS, KEY, "csrfmiddlewaretoken"}
)
MANY_FIELDS = tuple((f"extra_{n}", str(n)) for n in range(1_000))
EXTRA = st.sampled_from(["none", "few", "few", "few", "few", "few", "few", "many"]).flatmap(
    lambda kind: {
        "none": st.just(()),
        "few": st.lists(st.tuples(_NAME, st.text(max_size=50)), min_size=1, max_size=5).map(tuple),
        "many": st.just(MANY_FIELDS),
    }[kind]
)


@dataclass(frozen=True)
class Payload:
    items: tuple[str | None, ...]
    key: str | None
    key_valid: bool
    extra: tuple[tuple[str, str], ...]
    urlencoded: bool

    @property
    def pairs(self) -> list[tuple[str, str]]:
        given_items = [
            (name, v) for name, v in zip(ITEMS, self.items, strict=True) if v is not None
        ]
        key = [] if self.key is None else [(KEY, self.key)]
        return [*given_items, *key, *self.extra]

    @property
    def fits(self) -> bool:
        """Django refuses a request with more fields than this before the view reads any."""
        return len(self.pairs) <= django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS

    @property
    def bad_items(self) -> set[str]:
        return {name for name, v in zip(ITEMS, self.items, strict=True) if not item_is_valid(v)}

    @property
    def valid(self) -> bool:
        return self.fits and self.key_valid and not self.bad_items

    def scores(self) -> tuple[Decimal, ...]:
        return tuple(item_value(v) for v in self.items)


def _payloads(items: st.SearchStrategy[tuple]) -> st.SearchStrategy[Payload]:
    return st.builds(
        lambda items, key, extra, urlencoded: Payload(items, key[0], key[1], extra, urlencoded),
        items,
        st.sampled_from([VALID_KEY, VALID_KEY, INVALID_KEY]).flatmap(lambda keys: keys),
        EXTRA,
        st.booleans(),
    )


def _one_bad(items: tuple, position: int, bad: str | None) -> tuple:
    return (*items[:position], bad, *items[position + 1 :])


# Four valid items, three valid and one bad (the bad one cannot hide behind others), or any mix.
ITEM_TUPLES = st.sampled_from(["valid", "valid", "one bad", "one bad", "one bad", "any"]).flatmap(
    lambda kind: {
        "valid": st.tuples(*[VALID_ITEM] * 4),
        "one bad": st.builds(_one_bad, st.tuples(*[VALID_ITEM] * 4), st.integers(0, 3), BAD_ITEM),
        "any": st.tuples(*[ANY_ITEM] * 4),
    }[kind]
)
PAYLOADS = _payloads(ITEM_TUPLES)


def send(http: Client, url: str, payload: Payload | list[tuple[str, str]] | dict):
    """POST as the tablet's FormData does (multipart), or urlencoded; repeated keys allowed."""
    if isinstance(payload, dict):
        return http.post(url, payload, **JSON)
    pairs = payload.pairs if isinstance(payload, Payload) else payload
    if isinstance(payload, Payload) and payload.urlencoded:
        return http.post(
            url, urlencode(pairs), content_type="application/x-www-form-urlencoded", **JSON
        )
    data: dict[str, list[str]] = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return http.post(url, data, **JSON)


def fresh(scores: dict | None = None) -> dict:
    return {**(scores or GOOD), KEY: str(uuid.uuid4())}


def remote_url(token: str) -> str:
    return f"/r/{quote(token, safe='')}/"


def submit_url(token: str) -> str:
    return f"/rate/submit/{quote(token, safe='')}/"


# Fixtures


@dataclass
class Tablet:
    http: Client
    token: str
    session: TherapySession

    @property
    def url(self) -> str:
        return submit_url(self.token)


@pytest.fixture
def tablet(client, therapist, session_one) -> Tablet:
    """The therapist has handed the tablet over for the session scale, as in the clinic."""
    client.force_login(therapist)
    response = client.post(reverse("hand_over", args=[session_one.pk]), {"scale": "session"})
    assert response.url == reverse("client_rate")
    page = client.get(reverse("client_rate")).content.decode()
    action = page.split('id="rating-form"', 1)[1].split('action="', 1)[1].split('"', 1)[0]
    token = action.removeprefix("/rate/submit/").removesuffix("/")
    assert reverse("rate_submit", args=[token]) == action
    return Tablet(client, token, session_one)


@pytest.fixture
def link(session_one, therapist):
    return remote_link_create(session=session_one, scale="session", created_by=therapist)


def nothing_stored() -> bool:
    return Rating.objects.count() == 0 and Flag.objects.count() == 0


def assert_refused_as_oracle_says(response, payload: Payload) -> None:
    """400, nothing stored, and when the form could be read, a message on each bad line."""
    assert response.status_code == 400, response.content[:300]
    assert nothing_stored()
    if not payload.fits:
        return
    errors = response.json()["errors"]
    if payload.key_valid:
        assert set(errors) == payload.bad_items, payload.items
    else:
        assert set(errors) == {"__all__"}


# 1. The tablet's submission


@bounded(150)
@given(payload=PAYLOADS)
def test_it_stores_a_tablet_rating_only_for_valid_input_and_only_once(tablet, payload):
    Rating.objects.all().delete()
    event(f"valid: {payload.valid}")
    response = send(tablet.http, tablet.url, payload)
    if not payload.valid:
        assert_refused_as_oracle_says(response, payload)
        return
    assert response.status_code == 201, response.content[:300]
    assert response.json() == {"status": "stored", "next": reverse("rate_thanks")}
    rating = Rating.objects.get()
    assert rating.items == payload.scores()
    assert rating.total == sum(payload.scores())
    flags = Flag.objects.count()

    again = send(tablet.http, tablet.url, payload)
    assert again.status_code == 200
    assert again.json() == response.json()
    assert Rating.objects.count() == 1 and Flag.objects.count() == flags


def test_it_tells_which_lines_are_wrong_in_json(tablet):
    bad = {**GOOD, "goals": "nan", "approach": "1e309", "overall": "٥", KEY: str(uuid.uuid4())}
    response = send(tablet.http, tablet.url, bad)
    assert response.status_code == 400
    assert response.json()["status"] == "invalid"
    assert set(response.json()["errors"]) == {"goals", "approach", "overall"}
    assert nothing_stored()


@pytest.mark.parametrize("where", ["tablet", "remote"])
def test_it_refuses_every_named_bad_value_on_its_line(tablet, therapist, where):
    """Each value the brief names, alone among three good lines: 400 with a message on it."""
    for n, bad in enumerate(NAMED_BAD_VALUES):
        assert not item_is_valid(bad), bad
        item = ITEMS[n % 4]
        if where == "tablet":
            http, url = tablet.http, tablet.url
        else:
            created = remote_link_create(
                session=tablet.session, scale="session", created_by=therapist
            )
            http, url = Client(), remote_url(created.token)
        data = {**fresh(), item: bad} if bad is not None else fresh()
        if bad is None:
            del data[item]
        response = send(http, url, data)
        assert response.status_code == 400, (bad, response.status_code)
        assert set(response.json()["errors"]) == {item}, bad
        assert nothing_stored(), bad


# Repeated fields: the tablet's form never sends a name twice.

REPEATED = st.lists(
    st.one_of(VALID_ITEM, ANY_ITEM.filter(lambda v: v is not None)), min_size=2, max_size=3
)


@bounded(60)
@given(
    repeated=REPEATED,
    item=st.sampled_from(ITEMS),
    keys=st.integers(1, 2),
    where=st.sampled_from(["tablet", "remote"]),
)
def test_it_never_fails_on_repeated_fields(tablet, therapist, repeated, item, keys, where):
    Rating.objects.all().delete()
    if where == "tablet":
        http, url = tablet.http, tablet.url
    else:
        created = remote_link_create(session=tablet.session, scale="session", created_by=therapist)
        http, url = Client(), remote_url(created.token)
    pairs = [*((name, GOOD[name]) for name in ITEMS if name != item)]
    pairs += [(item, value) for value in repeated]
    pairs += [(KEY, str(uuid.uuid4())) for _ in range(keys)]
    response = send(http, url, pairs)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert nothing_stored()


@pytest.mark.parametrize("values", [("x", "5.0"), ("11", "5.0"), ("3.0", "7.0")])
@pytest.mark.parametrize("where", ["tablet", "remote"])
def test_it_refuses_a_repeated_item_field(tablet, link, values, where):
    url = tablet.url if where == "tablet" else remote_url(link.token)
    http = tablet.http if where == "tablet" else Client()
    pairs = [*((n, GOOD[n]) for n in ITEMS if n != "goals"), ("goals", values[0])]
    pairs += [("goals", values[1]), (KEY, str(uuid.uuid4()))]
    response = send(http, url, pairs)
    assert response.status_code == 400
    assert nothing_stored()


@pytest.mark.parametrize("first", ["nope", "6f1e1c52-0000-4000-8000-000000000000"])
def test_it_refuses_a_repeated_idempotency_key(tablet, first):
    pairs = [*GOOD.items(), (KEY, first), (KEY, str(uuid.uuid4()))]
    response = send(tablet.http, tablet.url, pairs)
    assert response.status_code == 400
    assert nothing_stored()


# 2. The remote link


@bounded(100)
@given(payload=PAYLOADS, other=PAYLOADS)
def test_it_uses_a_remote_link_once_and_only_for_valid_input(
    client, therapist, session_one, payload, other
):
    Rating.objects.all().delete()
    created = remote_link_create(session=session_one, scale="session", created_by=therapist)
    url = remote_url(created.token)
    event(f"valid: {payload.valid}")
    response = send(client, url, payload)
    if not payload.valid:
        assert_refused_as_oracle_says(response, payload)
        created.link.refresh_from_db()
        assert created.link.used_at is None
        return
    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"status": "stored", "next": reverse("remote_thanks") + "?lang=en"}
    rating = Rating.objects.get()
    assert (rating.items, rating.channel) == (payload.scores(), "remote")
    created.link.refresh_from_db()
    assert created.link.used_at is not None and created.link.rating == rating
    flags = Flag.objects.count()

    assert send(client, url, fresh()).status_code == 410
    if other.key != payload.key:
        assert send(client, url, other).status_code in (400, 410)
    again = send(client, url, payload)
    assert again.status_code == 200 and again.json() == response.json()
    assert Rating.objects.count() == 1 and Flag.objects.count() == flags


def test_it_keeps_a_remote_link_usable_after_bad_input(client, link):
    assert send(client, remote_url(link.token), fresh({**GOOD, "goals": "inf"})).status_code == 400
    assert send(client, remote_url(link.token), fresh()).status_code == 200
    assert Rating.objects.count() == 1


# 3. Tokens


def tampered(token: str, foreign: list[str]) -> st.SearchStrategy[str]:
    """Tokens that must not work: random, cut, flipped, extended or signed some other way."""

    def flip(position: int, char: str) -> str:
        if token[position] == char:
            char = "A" if char != "A" else "B"
        return token[:position] + char + token[position + 1 :]

    return st.one_of(
        st.text(max_size=200),
        st.text(string.ascii_letters + string.digits + ":-_.", min_size=1, max_size=200),
        st.builds(flip, st.integers(0, len(token) - 1), st.characters(codec="utf-8")),
        st.builds(
            flip,
            st.integers(0, len(token) - 1),
            st.sampled_from(string.ascii_letters + string.digits + ":-_."),
        ),
        st.just(token[:-1]),
        st.integers(0, len(token) - 1).map(lambda length: token[:length]),
        st.text(min_size=1, max_size=20).map(lambda tail: token + tail),
        st.sampled_from(foreign),
    )


def _json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=6,
    )


@bounded(100)
@given(data=st.data())
def test_it_refuses_a_tampered_or_foreign_remote_link(link, tablet, data):
    client = Client()  # no login: whoever holds the link
    pk, nonce = signing.loads(link.token, salt=LINK_SALT)
    foreign = [
        signing.dumps([pk, nonce], salt="x", compress=True),
        signing.dumps([pk, nonce], salt=TABLET_SALT, compress=True),
        signing.dumps([pk, nonce]),
        tablet.token,
        # Correctly signed, as only the server could: a guessed nonce or another row.
        signing.dumps([pk, nonce + "x"], salt=LINK_SALT, compress=True),
        signing.dumps([pk + 1, nonce], salt=LINK_SALT, compress=True),
        signing.dumps([str(pk), nonce], salt=LINK_SALT),
        signing.dumps([2**70, nonce], salt=LINK_SALT),
        signing.dumps([pk, nonce, 1], salt=LINK_SALT),
        signing.dumps({"pk": pk, "nonce": nonce}, salt=LINK_SALT),
        signing.dumps(None, salt=LINK_SALT),
    ]
    token = data.draw(
        st.one_of(
            tampered(link.token, foreign),
            _json_values().map(lambda value: signing.dumps(value, salt=LINK_SALT)),
            _json_values().map(lambda value: signing.dumps(value, salt="x")),
        )
    )
    assume(token != link.token)
    assert client.get(remote_url(token)).status_code == 404
    response = send(client, remote_url(token), fresh())
    assert response.status_code == 404
    assert nothing_stored()
    link.link.refresh_from_db()
    assert link.link.used_at is None


@bounded(100)
@given(data=st.data())
def test_it_refuses_a_tampered_or_foreign_tablet_token(tablet, link, data):
    payload = signing.loads(tablet.token, salt=TABLET_SALT)
    foreign = [
        signing.dumps(payload, salt="x"),
        signing.dumps(payload, salt=LINK_SALT),
        signing.dumps(payload),
        link.token,
    ]
    token = data.draw(
        st.one_of(
            tampered(tablet.token, foreign),
            _json_values().map(lambda value: signing.dumps(value, salt="x")),
        )
    )
    assume(token != tablet.token)
    response = send(tablet.http, submit_url(token), fresh())
    if not token or "/" in token:
        assert response.status_code == 404  # not a URL of the form at all
    else:
        assert response.status_code == 400
        assert response.json()["status"] == "refused"
    assert nothing_stored()


@pytest.mark.parametrize("ago", [timedelta(seconds=1), timedelta(hours=8)])
def test_it_refuses_an_expired_link_with_410(client, link, ago):
    now = timezone.now()
    RemoteLink.objects.update(created_at=now - timedelta(hours=80), expires_at=now - ago)
    assert client.get(remote_url(link.token)).status_code == 410
    assert send(client, remote_url(link.token), fresh()).status_code == 410
    assert nothing_stored()
    link.link.refresh_from_db()
    assert link.link.used_at is None


def test_it_refuses_a_used_link_with_410(client, link):
    assert send(client, remote_url(link.token), fresh()).status_code == 200
    assert client.get(remote_url(link.token)).status_code == 410
    assert send(client, remote_url(link.token), fresh(LOW)).status_code == 410
    assert Rating.objects.count() == 1 and Flag.objects.count() == 0


# 4. CSRF


def _in_client_mode(http: Client, session) -> None:
    store = http.session
    mode = ClientMode(session.pk, INSTRUMENT, "client", "", str(uuid.uuid4()))
    store[SESSION_KEY] = asdict(mode)
    store.save()


@dataclass
class Case:
    url: str
    data: dict
    unchanged: Callable[[], bool]
    changed: Callable[[HttpResponse], bool]


def _csrf_case(name: str, http: Client, session, therapist) -> Case:
    if name == "tablet submit":
        _in_client_mode(http, session)
        token = signing.dumps([session.pk, INSTRUMENT, "client", ""], salt=TABLET_SALT)
        return Case(
            submit_url(token),
            fresh(LOW),
            nothing_stored,
            lambda r: r.status_code == 201 and Rating.objects.count() == 1,
        )
    if name == "hand-over":
        return Case(
            reverse("hand_over", args=[session.pk]),
            {"scale": "session"},
            lambda: SESSION_KEY not in http.session,
            lambda r: SESSION_KEY in http.session,
        )
    if name == "unlock":
        _in_client_mode(http, session)
        return Case(
            reverse("unlock"),
            {"password": factories.PASSWORD},
            lambda: SESSION_KEY in http.session,
            lambda r: r.status_code == 302 and SESSION_KEY not in http.session,
        )
    if name == "link creation":
        return Case(
            reverse("link_create", args=[session.pk]),
            {"scale": "session"},
            lambda: RemoteLink.objects.count() == 0,
            lambda r: RemoteLink.objects.count() == 1,
        )
    if name == "flag acknowledge":
        flag = factories.rate(session, INSTRUMENT, "2 2 2 2").rating.flags.first()
        return Case(
            reverse("flag_action", args=[flag.pk, "acknowledge"]),
            {"note": "seen"},
            lambda: Flag.objects.get(pk=flag.pk).status == FlagStatus.OPEN,
            lambda r: Flag.objects.get(pk=flag.pk).status == FlagStatus.ACKNOWLEDGED,
        )
    if name == "remote link form":
        http.logout()
        created = remote_link_create(session=session, scale="session", created_by=therapist)

        def unused() -> bool:
            created.link.refresh_from_db()
            return created.link.used_at is None and nothing_stored()

        return Case(remote_url(created.token), fresh(), unused, lambda r: r.status_code == 200)
    assert name == "login"
    http.logout()
    return Case(
        reverse("login"),
        {"username": therapist.username, "password": factories.PASSWORD},
        lambda: "_auth_user_id" not in http.session,
        lambda r: r.status_code == 302,
    )


CSRF_CASES = [
    "tablet submit",
    "hand-over",
    "unlock",
    "link creation",
    "flag acknowledge",
    "remote link form",
    "login",
]


@pytest.mark.parametrize("name", CSRF_CASES)
def test_it_refuses_a_post_without_a_csrf_token(name, therapist, session_one):
    http = Client(enforce_csrf_checks=True)
    http.force_login(therapist)
    case = _csrf_case(name, http, session_one, therapist)
    # The browser sends the CSRF cookie along; only the token in the form or header is missing.
    http.cookies[django_settings.CSRF_COOKIE_NAME] = CSRF_SECRET
    response = http.post(case.url, case.data, **JSON)
    assert response.status_code == 403
    assert case.unchanged()

    # The same request with the token goes through: the refusal was the missing token's doing.
    response = http.post(case.url, {**case.data, "csrfmiddlewaretoken": CSRF_SECRET}, **JSON)
    assert response.status_code != 403
    assert case.changed(response)


@pytest.mark.parametrize("name", ["tablet submit", "remote link form", "login"])
def test_it_refuses_a_post_without_any_csrf_cookie(name, therapist, session_one):
    http = Client(enforce_csrf_checks=True)
    http.force_login(therapist)
    case = _csrf_case(name, http, session_one, therapist)
    response = http.post(case.url, {**case.data, "csrfmiddlewaretoken": CSRF_SECRET}, **JSON)
    assert response.status_code == 403
    assert case.unchanged()


# 5. Replays


def test_it_stores_twenty_identical_tablet_submissions_once(tablet):
    payload = fresh(LOW)
    statuses = [send(tablet.http, tablet.url, payload).status_code for _ in range(20)]
    assert statuses == [201] + [200] * 19
    assert Rating.objects.count() == 1
    flags = Flag.objects.count()
    assert flags > 0
    assert flags == Flag.objects.filter(rating=Rating.objects.get()).count()


def test_it_refuses_a_second_key_for_the_same_rater_scale_and_session(tablet):
    assert send(tablet.http, tablet.url, fresh()).status_code == 201
    response = send(tablet.http, tablet.url, fresh(LOW))
    assert response.status_code == 400
    assert "already given" in response.json()["errors"]["__all__"][0]
    assert Rating.objects.count() == 1
    assert Flag.objects.count() == 0  # the stored rating was a good one and raised none


def test_it_stores_twenty_identical_remote_submissions_once(client, link):
    payload = fresh(LOW)
    responses = [send(client, remote_url(link.token), payload) for _ in range(20)]
    assert [r.status_code for r in responses] == [200] * 20
    assert all(r.json()["status"] == "stored" for r in responses)
    assert Rating.objects.count() == 1
    assert Flag.objects.count() == Flag.objects.filter(rating=Rating.objects.get()).count() > 0
    assert send(client, remote_url(link.token), fresh(LOW)).status_code == 410
    assert Rating.objects.count() == 1


def test_it_refuses_a_second_link_rating_for_the_same_rater_scale_and_session(
    client, therapist, session_one, link
):
    other = remote_link_create(session=session_one, scale="session", created_by=therapist)
    assert send(client, remote_url(link.token), fresh()).status_code == 200
    response = send(client, remote_url(other.token), fresh(LOW))
    assert response.status_code == 410
    assert "You have already given this rating" in response.json()["message"]
    assert Rating.objects.count() == 1 and Flag.objects.count() == 0
    other.link.refresh_from_db()
    assert other.link.used_at is None


def test_it_refuses_a_replay_of_one_links_submission_on_another_link(therapist, session_one, link):
    http = Client(raise_request_exception=False)
    other = remote_link_create(session=session_one, scale="session", created_by=therapist)
    payload = fresh()
    assert send(http, remote_url(link.token), payload).status_code == 200
    response = send(http, remote_url(other.token), payload)
    assert response.status_code < 500, response.status_code
    assert Rating.objects.count() == 1
    other.link.refresh_from_db()
    assert other.link.used_at is None
