import pytest
from django.conf import settings as django_settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.utils import translation

from alliance_app.accounts.models import Role
from tests import factories
from tests.smtp import smtp_server  # noqa: F401 (a fixture: a local SMTP server)


@pytest.fixture
def org():
    return factories.organization()


@pytest.fixture
def therapist(org):
    return factories.user(org)


@pytest.fixture
def admin(org):
    """An organisation admin of `org`."""
    return factories.user(org, role=Role.ADMIN, username="ada")


@pytest.fixture
def north(org):
    return factories.team(org, "North")


@pytest.fixture
def south(org):
    return factories.team(org, "South")


@pytest.fixture
def adult(org, therapist):
    return factories.client(org, therapist, age_band="adult")


@pytest.fixture
def session_one(adult):
    return factories.therapy_session(factories.episode(adult), number=1)


@pytest.fixture(autouse=True)
def _english_between_tests():
    """A request leaves its language active in the thread (Django's LocaleMiddleware and ours set
    it at each request's start, never back): a test that follows must not inherit it."""
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _empty_cache_between_tests():
    """Cached results are keyed by the data version, which restarts with each test's database:
    a result from one test must not answer in the next. A shared Redis (CI's Redis job) is not
    flushed: there the process's generation, which only grows, keeps the tests' keys apart."""
    local = isinstance(caches[DEFAULT_CACHE_ALIAS], LocMemCache)
    if local:
        cache.clear()
    yield
    if local:
        cache.clear()


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    """Production serves hashed names from collectstatic's manifest; tests read the sources."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Production hashes passwords slowly on purpose; tests make hundreds of users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fit_jobs_inline(settings):
    """A fit started from a page runs as a background process in production; tests run it in
    the test's own database connection instead (`feedback.expected.launch`)."""
    settings.FIT_JOBS_INLINE = True
