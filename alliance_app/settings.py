"""Alliance settings: one file, configured by environment variables.

Every variable is documented in README.md. A malformed value stops the start-up with
ImproperlyConfigured instead of being silently ignored.
"""

import os
from importlib.util import find_spec
from pathlib import Path
from zoneinfo import available_timezones

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from alliance_app.lib.email_url import parse_email_url

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def package_dir(module: str, *parts: str) -> Path:
    """Where an installed package keeps its files: third-party assets are served from there."""
    spec = find_spec(module)
    if spec is None or spec.origin is None:
        raise ImproperlyConfigured(f"the package {module!r} is not installed")
    return Path(spec.origin).parent.joinpath(*parts)


DEBUG = envbool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG=true")
    SECRET_KEY = "insecure-development-key-only-for-debug"  # noqa: S105

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "alliance_app.accounts",
    "alliance_app.clinic",
    "alliance_app.feedback",
    "alliance_app.dashboards",
    "alliance_app.research",
    "alliance_app.seeding",
    "alliance_app.audit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "alliance_app.lib.unavailable.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "alliance_app.accounts.languages.StaffLanguageMiddleware",
    "alliance_app.accounts.time_zones.OrganizationTimeZoneMiddleware",
    "alliance_app.accounts.sessions.IdleTimeoutMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "alliance_app.accounts.two_factor.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "alliance_app.feedback.client_mode.ClientModeLockMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "alliance_app.urls"
WSGI_APPLICATION = "alliance_app.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "alliance_app.accounts.context_processors.membership",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# PostgreSQL: parameters bound by the server, and a statement a connection has sent five times
# prepared there (psycopg's `prepare_threshold`), so the database parses and plans it once per
# connection instead of with every request: a rating submission cost the database 4.5 ms of CPU
# before, 1.6 ms after (bench/README.md). Off behind a pooler in transaction mode (PgBouncer
# before 1.21), which cannot keep a connection's prepared statements.
DATABASE_PREPARED_STATEMENTS = envbool("DATABASE_PREPARED_STATEMENTS", True)


def _postgresql_options(database: dict) -> None:
    if "postgresql" in database["ENGINE"] and DATABASE_PREPARED_STATEMENTS:
        database.setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": 5}
        )


_postgresql_options(DATABASES["default"])
# Read replicas (PostgreSQL streaming replicas of DATABASE_URL), comma-separated: replica1, ...
# Dashboards, statistics and exports read from them; every write, and a browser's reads for
# REPLICA_PIN_SECONDS after its own write, go to the primary (alliance_app/lib/db_router.py).
DATABASE_REPLICAS = []
for _number, _url in enumerate(envlist("DATABASE_REPLICA_URLS", []), start=1):
    _replica = dj_database_url.parse(
        _url, conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
    )
    if _replica["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured(
            f"DATABASE_REPLICA_URLS: replica {_number} is not the same kind of database as "
            "DATABASE_URL"
        )
    if "postgresql" in _replica["ENGINE"]:
        # A replica that does not answer is skipped after this long, not waited for.
        _replica["OPTIONS"] = {"connect_timeout": 2, **_replica.get("OPTIONS", {})}
    _postgresql_options(_replica)
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica{_number}"] = _replica
    DATABASE_REPLICAS.append(f"replica{_number}")
REPLICA_PIN_SECONDS = envint("REPLICA_PIN_SECONDS", 5)
# A replica that failed is not asked again for this many seconds (per app process).
REPLICA_DOWN_SECONDS = 30
if DATABASE_REPLICAS:
    DATABASE_ROUTERS = ["alliance_app.lib.db_router.ReplicaRouter"]
    MIDDLEWARE.append("alliance_app.lib.db_router.ReplicaPinMiddleware")

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Counts failed logins and locks a username tried from one address too often.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, loading the membership with the user.
    "alliance_app.accounts.backends.MembershipBackend",
]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envint("LOGIN_LOCKOUT_MINUTES", 15) / 60  # hours
# Username and address together: a clinic behind one NAT address is not locked out as a whole,
# and nobody can lock a colleague out from another machine.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Behind reverse proxies (SECURITY.md) REMOTE_ADDR is the nearest proxy, the same for everyone:
# the lockout and the audit trail take the client's address from X-Forwarded-For, this many
# entries from its right end (`lib.client_address`). 0: no proxy, REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT must be 0 or more, not {TRUSTED_PROXY_COUNT}")
if os.environ.get("AUDIT_TRUST_FORWARDED_FOR", "").strip():
    raise ImproperlyConfigured(
        "AUDIT_TRUST_FORWARDED_FOR is gone: remove it and set TRUSTED_PROXY_COUNT to the number "
        "of reverse proxies in front of the app (1 where AUDIT_TRUST_FORWARDED_FOR=true was right)"
    )
AXES_CLIENT_IP_CALLABLE = "alliance_app.lib.client_address.client_address"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# Each language named in itself, so that someone who cannot read the current one finds their own.
# The catalogues are locale/<code>/LC_MESSAGES/django.po, compiled by `make install`.
LANGUAGES = [("en", "English"), ("es", "Español"), ("nb", "Norsk bokmål")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
# One date format per language, everywhere (alliance_app/lib/formats/).
FORMAT_MODULE_PATH = ["alliance_app.lib.formats"]

# The database stores UTC; TIME_ZONE is only the zone dates and times are shown in.
USE_TZ = True
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
if TIME_ZONE not in available_timezones():
    raise ImproperlyConfigured(
        f"TIME_ZONE must be an IANA zone such as Europe/Berlin, not {TIME_ZONE!r}"
    )

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "alliance_app.staticfinders.PackageAssetFinder",
]
# Third-party front-end files come from installed Python packages, never a CDN or a copy in
# the repository: clinics run on closed networks. Name in /static/ -> file in the package.
_BOOTSTRAP = package_dir("bootstrap_wrapper").parent / "bootstrap"
PACKAGE_ASSETS = {
    # The source maps come along: the minified files name them, and collectstatic's hashed
    # names must resolve every file a stylesheet or script refers to.
    **{
        f"bootstrap/{name}": _BOOTSTRAP / name
        for name in (
            "css/bootstrap.min.css",
            "css/bootstrap.min.css.map",
            "js/bootstrap.bundle.min.js",
            "js/bootstrap.bundle.min.js.map",
        )
    },
    "plotly/plotly.min.js": package_dir("plotly", "package_data", "plotly.min.js"),
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Extra folders of instrument definitions (JSON), read after the built-in ones: an organisation
# holding a licence for the official wording loads it this way. Separated by os.pathsep.
ALLIANCE_INSTRUMENT_DIRS = [
    Path(p) for p in os.environ.get("ALLIANCE_INSTRUMENT_DIRS", "").split(os.pathsep) if p.strip()
]
for _dir in ALLIANCE_INSTRUMENT_DIRS:
    if not _dir.is_dir():
        raise ImproperlyConfigured(f"ALLIANCE_INSTRUMENT_DIRS names {_dir}, which is not a folder")

# Staff sessions end after this many idle minutes; every request restarts the clock.
SESSION_COOKIE_AGE = envint("SESSION_IDLE_MINUTES", 30) * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Optional: with a Redis server, login sessions are read from it instead of the database on
# every request. `cached_db` still writes each session to the database, so a Redis restart
# logs nobody out. Without it the cache is per-process memory and sessions live in the database:
# a single-machine install needs nothing more.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"REDIS_URL must start with redis://, rediss:// or unix://, not {REDIS_URL!r}"
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Deployments sharing one Redis server each need their own prefix.
            "KEY_PREFIX": os.environ.get("REDIS_KEY_PREFIX", "").strip() or "alliance",
            # Cached results last five minutes unless their code says otherwise; a session's
            # entry lasts as long as the session.
            "TIMEOUT": 300,
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Production hardening: on by default whenever DEBUG is off, each switchable for a deployment
# that terminates TLS elsewhere (documented in SECURITY.md).
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers ask for /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
if envbool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline script runs without this response's nonce. Styles may be inline: plotly.js writes
# its own <style> elements.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Two-factor login (TOTP) for staff: optional for everyone, required in an organisation whose
# admin turns it on. The issuer name shows in the authenticator app.
OTP_TOTP_ISSUER = os.environ.get("OTP_ISSUER", "Alliance")

# How long a remote rating link works, in hours.
REMOTE_LINK_HOURS = envint("REMOTE_LINK_HOURS", 72)
# Leaving client mode: this many wrong passwords lock the unlock page until it has checked none
# for the window's seconds.
UNLOCK_MAX_ATTEMPTS = envint("UNLOCK_MAX_ATTEMPTS", 5)
UNLOCK_WINDOW_SECONDS = envint("UNLOCK_WINDOW_SECONDS", 900)
# A therapist creates at most this many remote links an hour.
REMOTE_LINKS_PER_HOUR = envint("REMOTE_LINKS_PER_HOUR", 30)
# Exports read the database this many rows at a time: memory held against round trips.
EXPORT_CHUNK_ROWS = 2000

# E-mail (invitations, password resets, rating links): EMAIL_URL as described in
# alliance_app/lib/email_url.py. Without it, DEBUG prints messages in the terminal and production
# hands them to an SMTP server on localhost:25 (Django's default), a local relay.
_EMAIL_URL = os.environ.get("EMAIL_URL", "").strip()
if _EMAIL_URL:
    globals().update(parse_email_url(_EMAIL_URL))
elif DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("EMAIL_FROM", "").strip() or "Alliance <alliance@localhost>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# A mail server that stops answering fails the send after this many seconds, not never.
EMAIL_TIMEOUT = 30
# Links in e-mails sent without a request to build them from (the scheduled-links timer).
SITE_URL = os.environ.get("SITE_URL", "").strip().rstrip("/") or "http://127.0.0.1:8000"
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"SITE_URL must start with http:// or https://, not {SITE_URL!r}")
# An invitation link to a new colleague works for this many days.
INVITATION_DAYS = envint("INVITATION_DAYS", 7)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
    # Failed logins are in the audit trail; axes need not repeat every attempt in the log.
    "loggers": {"axes": {"level": "WARNING"}},
}
