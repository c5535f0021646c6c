"""GridGov settings. Everything that differs between machines comes from the environment,
and a bad value stops start-up with a message naming the variable."""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from gridgov.appeals.tiers import parse_modes  # the tiers' one definition; no Django

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    val = raw.strip().lower()
    if val in ("1", "true", "yes", "on"):
        return True
    if val in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_int(name, default, minimum=None):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        val = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    if minimum is not None and val < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}")
    return val


def env_float(name, default, minimum=None):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        val = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None
    if minimum is not None and val < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}")
    return val


# ==============================================================================================
# the project: Django, database, Redis, the API, security headers; one block per app follows
# ==============================================================================================
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"
    else:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework_gis",
    "knox",
    "drf_spectacular",
    "channels",
    "gridgov.accounts",
    "gridgov.areas",
    "gridgov.appeals",
    "gridgov.demo",
    "gridgov.audit",
    "gridgov.places",
    "gridgov.realtime",
    "gridgov.whistles",
    "gridgov.idempotency",
    "maps",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gridgov.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "gridgov" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ]
        },
    }
]
ASGI_APPLICATION = "gridgov.asgi.application"
WSGI_APPLICATION = "gridgov.wsgi.application"

# --- database: PostGIS only -------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set (e.g. postgis://user:pass@host:5432/gridgov); "
        "`make run` sets it for the project-local PostGIS"
    )
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, 0))
if _db["ENGINE"] != "django.contrib.gis.db.backends.postgis":
    raise ImproperlyConfigured(f"DATABASE_URL must use the postgis:// scheme, got {urlparse(DATABASE_URL).scheme!r}")
_db["CONN_HEALTH_CHECKS"] = True
# Parallel local runs (several developers' test sessions on one cluster) get their own test DB.
_db["TEST"] = {"NAME": os.environ.get("GRIDGOV_TEST_DB", "test_gridgov")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channels, celery, cache --------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set (e.g. redis://host:6379/0)")
if urlparse(REDIS_URL).scheme not in ("redis", "rediss", "unix"):
    raise ImproperlyConfigured(f"REDIS_URL must be redis://, rediss:// or unix://, got {REDIS_URL!r}")
# Seconds a request (or a task) waits on Redis for one connect or one reply before it goes on
# without it: the after-commit publish (left to the outbox) and the login throttle (let through).
# A hung Redis (port open, no answer) must not hold a request; the consumers' sockets keep no
# timeout (channel_layers below), this is for the senders only.
REDIS_REQUEST_TIMEOUT = env_float("REDIS_REQUEST_TIMEOUT", 2.0, 0.1)
if REDIS_REQUEST_TIMEOUT > 30:
    raise ImproperlyConfigured(f"REDIS_REQUEST_TIMEOUT={REDIS_REQUEST_TIMEOUT}: expected 0.1–30 seconds")

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "Asia/Shanghai"
# Each app's beat entries are added in its block below, beside its settings.
CELERY_BEAT_SCHEDULE = {}
# Key prefix in Redis, so that several deployments (or test sessions) can share one Redis.
CHANNEL_PREFIX = os.environ.get("CHANNEL_PREFIX", "").strip() or "asgi"
if not all(c.isascii() and (c.isalnum() or c in "-_.") for c in CHANNEL_PREFIX):
    raise ImproperlyConfigured(f"CHANNEL_PREFIX={CHANNEL_PREFIX!r}: expected letters, digits, '-', '_', '.'")

# --- i18n: Chinese first, English available -------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# GDAL 3.6 (Debian 12) cannot block file/network access from crafted SRS strings; boundary
# files come only from administrators through import_areas, and CRS names are whitelisted.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# --- the REST API (DRF, drf-spectacular) ------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "gridgov.api.exception_handler",
    # Any malformed JSON body (too deep, not UTF-8, ...) is a 400, never a 500 (#11).
    "DEFAULT_PARSER_CLASSES": [
        "gridgov.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {"TITLE": "GridGov API", "VERSION": "1.0.0"}
# Names for the enums of the fields several models share a name for (the whistles' `state`); the
# schema's own URL is not an operation of the API.
SPECTACULAR_SETTINGS |= {
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        f"{kind.capitalize()}StateEnum": f"gridgov.whistles.serializers.{kind.upper()}_STATES"
        for kind in ("hotspot", "suggestion", "call", "muster")
    },
}

# --- security headers, and running behind TLS (#11) --------------------------------------------
# DJANGO_HTTPS=1: the site is reached over HTTPS only (TLS at nginx or a load balancer in front).
# Plain-HTTP requests are redirected, browsers are told to never use HTTP again for a year
# (HSTS, subdomains included, preload-ready), and cookies are only sent over TLS. Off by default:
# `make run` serves http://127.0.0.1:8000, where HSTS would lock the browser out of localhost.
HTTPS = env_bool("DJANGO_HTTPS", False)
if HTTPS:
    SECURE_SSL_REDIRECT = True
    # The container healthcheck asks Daphne over plain HTTP from inside.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# DJANGO_TRUST_X_FORWARDED_PROTO=1: the proxy in front terminates TLS and sets X-Forwarded-Proto
# itself (deploy/nginx.conf does). Off by default: whoever reaches Daphne directly could claim https.
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
from csp.constants import NONCE  # noqa: E402 — django-csp's marker for "this request's nonce"

# Right after SecurityMiddleware: every answer gets the headers, a lockout page too.
MIDDLEWARE[1:1] = ["gridgov.security.CSPMiddleware", "gridgov.security.PermissionsPolicyMiddleware"]
# Scripts: our static files and inline blocks carrying the request's nonce (the folium map script,
# see maps/templates/maps/_base.html). Styles: <style> elements and stylesheets need 'self' or the
# nonce; style="…" attributes stay allowed (style-src-attr), since the map legends, the login card,
# the Django admin and folium's popup HTML use them, and an attribute cannot run script. Browsers
# without CSP3's -elem/-attr fall back to style-src (a nonce there would disable 'unsafe-inline').
# img-src and connect-src are completed per request with the basemap's tile hosts and this host's
# WebSocket (gridgov/security.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],
        "style-src-elem": ["'self'", NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# The phones' pages locate the worker and take evidence photos; nothing else is ever needed.
PERMISSIONS_POLICY = {
    "geolocation": ["self"],
    "camera": ["self"],
    **dict.fromkeys(
        [
            "microphone",
            "payment",
            "usb",
            "serial",
            "midi",
            "display-capture",
            "accelerometer",
            "gyroscope",
            "magnetometer",
            "xr-spatial-tracking",
        ],
        [],
    ),
}
# Uploaded files are served by gridgov/files.py after the same access check as the appeal or call
# they belong to. Empty: the view streams them (development). Behind nginx: the internal location
# that maps to MEDIA_ROOT (deploy/nginx.conf), e.g. /_protected_media/; the view then only answers
# X-Accel-Redirect and nginx sends the bytes.
MEDIA_ACCEL_REDIRECT_PREFIX = os.environ.get("MEDIA_ACCEL_REDIRECT_PREFIX", "").strip()
if MEDIA_ACCEL_REDIRECT_PREFIX and not (
    MEDIA_ACCEL_REDIRECT_PREFIX.startswith("/") and MEDIA_ACCEL_REDIRECT_PREFIX.endswith("/")
):
    raise ImproperlyConfigured(
        f"MEDIA_ACCEL_REDIRECT_PREFIX={MEDIA_ACCEL_REDIRECT_PREFIX!r}: expected a path "
        "with a leading and a trailing '/', e.g. /_protected_media/"
    )

# Request lines (method, path and query string) longer than this are answered 414 by the server
# (gridgov/serve.py); Twisted cannot read a line over 16 KiB at all.
REQUEST_LINE_MAX_BYTES = env_int("REQUEST_LINE_MAX_BYTES", 8192, 1024)
if REQUEST_LINE_MAX_BYTES > 16384:
    raise ImproperlyConfigured(f"REQUEST_LINE_MAX_BYTES={REQUEST_LINE_MAX_BYTES}: must be at most 16384")

# --- API input times (#11) ----------------------------------------------------------------
# Every time the API takes (received_at, at=, client_at, ...) lies between INPUT_EARLIEST and
# now + INPUT_FUTURE_SLACK_SECONDS (a caller's clock running a little fast is no error);
# plans (a review date, a muster deadline) may look further ahead (gridgov/inputs.py).
try:
    from datetime import date as _date

    INPUT_EARLIEST = _date.fromisoformat(os.environ.get("INPUT_EARLIEST", "").strip() or "2000-01-01")
except ValueError:
    raise ImproperlyConfigured(f"INPUT_EARLIEST={os.environ['INPUT_EARLIEST']!r}: expected YYYY-MM-DD") from None
if INPUT_EARLIEST.year < 1900:
    raise ImproperlyConfigured(f"INPUT_EARLIEST={INPUT_EARLIEST}: expected a date after 1900")
INPUT_FUTURE_SLACK_SECONDS = env_int("INPUT_FUTURE_SLACK_SECONDS", 600, 0)

# ==============================================================================================
# gridgov.accounts: users, sessions, login protection
# ==============================================================================================
# --- users and sessions ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/maps/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "gridgov.accounts.passwords.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- login protection: the client's address, lockout (gridgov/accounts/client_ip.py, lockout.py) ---
# Reverse proxies (IPs or CIDRs) whose X-Forwarded-For is believed; empty: the peer is the client.
TRUSTED_PROXIES = [p.strip() for p in os.environ.get("TRUSTED_PROXIES", "").split(",") if p.strip()]
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR") from None
LOGIN_LOCKOUT_FAILURES = env_int("LOGIN_LOCKOUT_FAILURES", 10, 1)
LOGIN_LOCKOUT_CLIENT_FAILURES = env_int("LOGIN_LOCKOUT_CLIENT_FAILURES", 30, 1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 30, 0)
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as axes asks
AUTHENTICATION_BACKENDS = ["gridgov.accounts.lockout.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "gridgov.accounts.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = LOGIN_LOCKOUT_FAILURES
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES) if LOGIN_LOCKOUT_MINUTES else None
# Tries while locked do not prolong the lock, so "try again in N minutes" holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "gridgov.accounts.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "gridgov.accounts.lockout.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False  # no start-up banner on every manage.py command; lockouts are still logged

# ==============================================================================================
# gridgov.areas: grids and their boundaries
# ==============================================================================================
# A point in a gap between grids takes the nearest grid within this many metres.
LOCATE_GAP_TOLERANCE_M = env_float("LOCATE_GAP_TOLERANCE_M", 50.0, 0)
# The import validation report flags overlaps / children outside parents beyond this area.
IMPORT_TOLERANCE_M2 = env_float("IMPORT_TOLERANCE_M2", 1.0, 0)

# ==============================================================================================
# gridgov.appeals: intake, time limits, field work (and their beat entries)
# ==============================================================================================
# --- intake --------------------------------------------------------------------------------
# A geocoded address below this confidence waits in the manual-location queue.
GEOCODE_MIN_CONFIDENCE = env_float("GEOCODE_MIN_CONFIDENCE", 0.6, 0)
# The trained category model (gridgov.appeals.intake.classifier), written by `retrain_classifier` and
# the nightly task. Only files this system wrote are loaded: each carries an HMAC keyed by
# SECRET_KEY, checked before unpickling. No file: intake classifies by catalogue keywords alone.
CLASSIFIER_MODEL_PATH = Path(
    os.environ.get("CLASSIFIER_MODEL_PATH", "").strip() or BASE_DIR / "var" / "models" / "appeal-classifier.joblib"
)
# Model guesses below this probability are not offered (the keyword floor still is).
CLASSIFIER_MIN_CONFIDENCE = env_float("CLASSIFIER_MIN_CONFIDENCE", 0.4, 0)
if CLASSIFIER_MIN_CONFIDENCE > 1:
    raise ImproperlyConfigured(f"CLASSIFIER_MIN_CONFIDENCE={CLASSIFIER_MIN_CONFIDENCE}: expected 0–1")
# Nightly retraining on confirmed history, at this hour (Asia/Shanghai); categories with fewer
# confirmed appeals than CLASSIFIER_MIN_PER_CLASS are left to the keyword rules.
CLASSIFIER_RETRAIN_HOUR = env_int("CLASSIFIER_RETRAIN_HOUR", 3, 0)
if CLASSIFIER_RETRAIN_HOUR > 23:
    raise ImproperlyConfigured(f"CLASSIFIER_RETRAIN_HOUR={CLASSIFIER_RETRAIN_HOUR}: expected 0–23")
CLASSIFIER_MIN_PER_CLASS = env_int("CLASSIFIER_MIN_PER_CLASS", 10, 2)
CELERY_BEAT_SCHEDULE["appeals-retrain-classifier"] = {
    "task": "gridgov.appeals.tasks.retrain_classifier",
    "schedule": crontab(hour=CLASSIFIER_RETRAIN_HOUR, minute=30),
    # A night's run that could not start within 6 hours waits for the next night.
    "options": {"expires": 6 * 3600},
}

# --- time limits (限时办结) and warning colours (三色预警) ----------------------------------------


def env_thresholds(name, default):
    """Three shares of the time limit at which an appeal turns yellow, orange and red,
    e.g. "0.5,0.75,1.0": strictly increasing, each in (0, 1]."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return tuple(default)
    try:
        shares = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected three numbers, e.g. 0.5,0.75,1.0") from None
    if len(shares) != 3:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected three shares (yellow, orange, red)")
    if not all(0 < s <= 1 for s in shares) or not shares[0] < shares[1] < shares[2]:
        raise ImproperlyConfigured(f"{name}={raw!r}: shares must be in (0, 1] and strictly increasing")
    return shares


def env_time_limit_modes(name: str) -> dict[str, str]:
    """Per-tier counting mode overriding the tier's own, e.g. "7d=calendar,15d=workdays"; the
    tiers and what may be said of each are clock.TIERS's (the 2 h tier: calendar only)."""
    raw = os.environ.get(name, "").strip()
    try:
        return parse_modes(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r}: {exc}") from None


WARNING_THRESHOLDS = env_thresholds("WARNING_THRESHOLDS", (0.5, 0.75, 1.0))
TIME_LIMIT_MODES = env_time_limit_modes("TIME_LIMIT_MODES")
# Colour changes are recorded at most this late; deadlines and the next change live in the
# database, so a sweeper that was down catches up on its first run.
SWEEP_INTERVAL_SECONDS = env_int("SWEEP_INTERVAL_SECONDS", 60, 5)
CELERY_BEAT_SCHEDULE["appeals-sweep-warning-colours"] = {
    "task": "gridgov.appeals.tasks.sweep_warning_colours",
    "schedule": float(SWEEP_INTERVAL_SECONDS),
    # A sweep queued while the workers were down is superseded by the next one.
    "options": {"expires": SWEEP_INTERVAL_SECONDS},
}
CELERY_BEAT_SCHEDULE["appeals-review-long-term"] = {
    "task": "gridgov.appeals.tasks.review_long_term",
    "schedule": 3600.0,
    "options": {"expires": 3600},
}

# --- field work on phones: tasks, check-in, evidence, grid reports (gridgov/appeals/field_tasks.py) -----
EVIDENCE_PURPOSES = ("before", "during", "after")


def env_category_map(name, parse):
    """ "code=value,code=value" keyed by category codes or prefixes (2, 4 or 6 digits); the
    longest prefix of an appeal's category code applies (see gridgov/appeals/field_tasks.py)."""
    raw = os.environ.get(name, "").strip()
    out = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        code, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not (code.isdigit() and len(code) in (2, 4, 6)):
            raise ImproperlyConfigured(f"{name}={raw!r}: expected code=value pairs with 2/4/6-digit category codes")
        try:
            out[code] = parse(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}={raw!r}: {code}: {exc}") from None
    return out


def _metres(value):
    metres = float(value)
    if not 1 <= metres <= 100_000:
        raise ValueError("metres must be 1–100000")
    return metres


def _purposes(value):
    """ "before+after" → ("before", "after"); "none" → () (no photo needed)."""
    if value.strip().lower() == "none":
        return ()
    parts = tuple(dict.fromkeys(p.strip().lower() for p in value.split("+") if p.strip()))
    if not parts or any(p not in EVIDENCE_PURPOSES for p in parts):
        raise ValueError(f"expected purposes joined by '+' from {', '.join(EVIDENCE_PURPOSES)}, or none")
    return parts


# A check-in counts as on site within this many metres (on the spheroid) of the appeal's position;
# farther, it is refused with the distance ("refuse") or accepted and flagged ("flag").
GEOFENCE_METRES = env_float("GEOFENCE_METRES", 200.0, 1)
GEOFENCE_MODE = os.environ.get("GEOFENCE_MODE", "").strip().lower() or "refuse"
if GEOFENCE_MODE not in ("refuse", "flag"):
    raise ImproperlyConfigured(f"GEOFENCE_MODE={GEOFENCE_MODE!r}: expected refuse or flag")
# Per category (code or prefix): "010102=100,03=500".
CATEGORY_GEOFENCE_METRES = env_category_map("CATEGORY_GEOFENCE_METRES", _metres)
# Photos a completion needs, by purpose: the default, and per category "010101=before+after,05=none".
try:
    EVIDENCE_REQUIRED_DEFAULT = _purposes(os.environ.get("EVIDENCE_REQUIRED_DEFAULT", "").strip() or "after")
except ValueError as exc:
    raise ImproperlyConfigured(f"EVIDENCE_REQUIRED_DEFAULT: {exc}") from None
CATEGORY_REQUIRED_EVIDENCE = env_category_map("CATEGORY_REQUIRED_EVIDENCE", _purposes)
# Upload limits per kind of evidence (the type is sniffed from the bytes, never the name).
EVIDENCE_MAX_PHOTO_BYTES = env_int("EVIDENCE_MAX_PHOTO_BYTES", 20 * 1024 * 1024, 1024)
EVIDENCE_MAX_VIDEO_BYTES = env_int("EVIDENCE_MAX_VIDEO_BYTES", 100 * 1024 * 1024, 1024)
EVIDENCE_MAX_AUDIO_BYTES = env_int("EVIDENCE_MAX_AUDIO_BYTES", 20 * 1024 * 1024, 1024)
EVIDENCE_MAX_DOCUMENT_BYTES = env_int("EVIDENCE_MAX_DOCUMENT_BYTES", 20 * 1024 * 1024, 1024)  # musters' PDFs
# Musters had their own names for these until the field work was one (#12): refused, not ignored.
for _old, _new in {
    "WHISTLE_GEOFENCE_M": "GEOFENCE_METRES",
    "WHISTLE_GEOFENCE_MODE": "GEOFENCE_MODE",
    "WHISTLE_EVIDENCE_MAX_BYTES": "EVIDENCE_MAX_PHOTO_BYTES / _VIDEO_ / _DOCUMENT_",
}.items():
    if os.environ.get(_old, "").strip():
        raise ImproperlyConfigured(f"{_old} is no longer read: set {_new} (tasks and musters alike)")
EVIDENCE_THUMBNAIL_PX = env_int("EVIDENCE_THUMBNAIL_PX", 320, 32)
# A photo whose EXIF time is farther than this from the check-in is flagged (never refused: many
# apps strip EXIF, and a flag is for the reviewer to weigh).
EVIDENCE_TIME_TOLERANCE_MINUTES = env_int("EVIDENCE_TIME_TOLERANCE_MINUTES", 120, 1)

# ==============================================================================================
# gridgov.realtime: WebSocket events (and the outbox purge)
# ==============================================================================================
# Outbox rows older than this many days are purged hourly; a phone offline for longer reloads
# its state over REST instead of replaying.
REALTIME_OUTBOX_DAYS = env_int("REALTIME_OUTBOX_DAYS", 7, 1)
# Seconds between server pings on a WebSocket: under the ~60 s idle cut-off of proxies and
# mobile carriers' NAT, so a quiet connection is not dropped silently.
REALTIME_HEARTBEAT = env_float("REALTIME_HEARTBEAT", 20.0, 1)
# A resume replays at most this many events; beyond that the client is told to reload.
REALTIME_REPLAY_MAX = env_int("REALTIME_REPLAY_MAX", 5000, 100)
# The core layer's per-channel capacity: the default of 100 drops messages silently under bursts.
CHANNEL_CAPACITY = env_int("CHANNEL_CAPACITY", 5000, 100)
# redis-py 8's asyncio pool allows 100 connections and then raises instead of waiting; a Daphne
# process whose 1,000 sockets close at once (a network blip) sends 1,000 group_discards at once.
CHANNEL_MAX_CONNECTIONS = env_int("CHANNEL_MAX_CONNECTIONS", 2000, 10)


def channel_layers(kind, prefix=CHANNEL_PREFIX):
    """CHANNEL_LAYERS for CHANNEL_LAYER=kind (the benchmark builds every kind from here).

    "redis-pubsub" (default): Redis pub/sub. A Daphne process gets each message pushed on its one
    subscriber connection; the core layer instead pops its process's queue one message at a
    time, four Redis commands each: for 1,000 events a process spent 0.9-2.9 s of CPU against
    0.2 s, and p99 of 2,000 events was 5-21 s against 1.4-2 s on a busy 2-core machine
    (tests/bench/bench_realtime.py). Pub/sub keeps nothing for a
    process that is away, and has no capacity to overflow: what it loses, the consumers' outbox
    sweep sends once a heartbeat, and a reconnecting client resumes from the outbox.
    "redis": channels_redis's core layer (sorted sets with CHANNEL_CAPACITY and expiry).
    "memory" is for one-process benchmarks and experiments only: events never leave the process.
    """
    # redis-py 8 defaults to a 5 s socket timeout, which kills consumers that sit idle on
    # BZPOPMIN/pubsub; None means wait as long as it takes. Senders use a twin of this layer with
    # REDIS_REQUEST_TIMEOUT (gridgov.realtime.broadcast.publisher_layer).
    hosts = [{"address": REDIS_URL, "socket_timeout": None, "max_connections": CHANNEL_MAX_CONNECTIONS}]
    if kind == "redis-pubsub":
        backend, config = "channels_redis.pubsub.RedisPubSubChannelLayer", {"hosts": hosts, "prefix": prefix}
    elif kind == "redis":
        backend = "channels_redis.core.RedisChannelLayer"
        config = {"hosts": hosts, "prefix": prefix, "capacity": CHANNEL_CAPACITY, "expiry": 60, "group_expiry": 86400}
    elif kind == "memory":
        backend, config = "channels.layers.InMemoryChannelLayer", {"capacity": CHANNEL_CAPACITY, "expiry": 60}
    else:
        raise ImproperlyConfigured(f"CHANNEL_LAYER={kind!r}: expected redis-pubsub, redis or memory")
    return {"default": {"BACKEND": backend, "CONFIG": config}}


CHANNEL_LAYER = os.environ.get("CHANNEL_LAYER", "").strip().lower() or "redis-pubsub"
CHANNEL_LAYERS = channel_layers(CHANNEL_LAYER)
CELERY_BEAT_SCHEDULE["realtime-outbox-purge"] = {"task": "gridgov.realtime.tasks.outbox_purge", "schedule": 3600.0}

# ==============================================================================================
# gridgov.whistles: hotspots and whistles (and their beat entries)
# ==============================================================================================
# --- hotspots and whistles (吹哨报到) -------------------------------------------------------------
# Gi* time windows in days, and how many earlier windows of the same length the trend looks at.
_windows = os.environ.get("WHISTLE_WINDOWS", "").strip() or "7,30"
try:
    WHISTLE_WINDOWS = tuple(sorted({int(part) for part in _windows.split(",") if part.strip()}))
except ValueError:
    raise ImproperlyConfigured(f"WHISTLE_WINDOWS={_windows!r}: expected whole numbers of days, e.g. 7,30") from None
if not WHISTLE_WINDOWS or min(WHISTLE_WINDOWS) < 1 or max(WHISTLE_WINDOWS) > 366:
    raise ImproperlyConfigured(f"WHISTLE_WINDOWS={_windows!r}: expected 1–366 days each, e.g. 7,30")
WHISTLE_TREND_WINDOWS = env_int("WHISTLE_TREND_WINDOWS", 4, 1)
# A grid is stored as a hot spot only when it and its neighbours hold at least this many appeals
# in the window: on sparse counts Gi* calls a single appeal in an empty city significant.
WHISTLE_HOTSPOT_MIN_COUNT = env_int("WHISTLE_HOTSPOT_MIN_COUNT", 5, 1)
# Category groups analysed by default: every level-1 or level-2 group that has appeals (1 or 2).
WHISTLE_CATEGORY_LEVEL = env_int("WHISTLE_CATEGORY_LEVEL", 2, 1)
if WHISTLE_CATEGORY_LEVEL not in (1, 2, 3):
    raise ImproperlyConfigured(f"WHISTLE_CATEGORY_LEVEL={WHISTLE_CATEGORY_LEVEL}: expected 1, 2 or 3")
# Rule 1: a Gi* hot spot at this confidence bin (2 = 95 %, 3 = 99 %) with at least this many
# appeals in the grid itself suggests a whistle to the street office.
WHISTLE_RULE_MIN_BIN = env_int("WHISTLE_RULE_MIN_BIN", 2, 1)
if WHISTLE_RULE_MIN_BIN > 3:
    raise ImproperlyConfigured(f"WHISTLE_RULE_MIN_BIN={WHISTLE_RULE_MIN_BIN}: expected 1 (90 %), 2 (95 %) or 3 (99 %)")
WHISTLE_RULE_MIN_GRID_APPEALS = env_int("WHISTLE_RULE_MIN_GRID_APPEALS", 5, 1)
# Rule 2 (and the DBSCAN spots): N appeals of one category within R metres in D days.
WHISTLE_RULE_N = env_int("WHISTLE_RULE_N", 5, 2)
WHISTLE_RULE_RADIUS_M = env_float("WHISTLE_RULE_RADIUS_M", 50.0, 1)
WHISTLE_RULE_DAYS = env_int("WHISTLE_RULE_DAYS", 7, 1)
# Departments must be on site within this many minutes of the whistle unless the street says
# otherwise. Their check-in and evidence follow the field-work settings (GEOFENCE_*, EVIDENCE_*).
WHISTLE_MUSTER_MINUTES = env_int("WHISTLE_MUSTER_MINUTES", 120, 5)
WHISTLE_RECOMPUTE_SECONDS = env_int("WHISTLE_RECOMPUTE_SECONDS", 3600, 60)
CELERY_BEAT_SCHEDULE["whistles-recompute-hotspots"] = {
    "task": "gridgov.whistles.tasks.recompute_hotspots",
    "schedule": float(WHISTLE_RECOMPUTE_SECONDS),
    "options": {"expires": WHISTLE_RECOMPUTE_SECONDS},
}
CELERY_BEAT_SCHEDULE["whistles-sweep-musters"] = {
    "task": "gridgov.whistles.tasks.sweep_musters",
    "schedule": float(SWEEP_INTERVAL_SECONDS),
    "options": {"expires": SWEEP_INTERVAL_SECONDS},
}

# ==============================================================================================
# gridgov.idempotency: stored answers to Idempotency-Key requests
# ==============================================================================================
# Stored first answers to Idempotency-Key requests are kept this long (a phone's offline queue
# is replayed within hours; a week covers a long weekend without network).
IDEMPOTENCY_KEEP_DAYS = env_int("IDEMPOTENCY_KEEP_DAYS", 7, 1)
CELERY_BEAT_SCHEDULE["idempotency-purge"] = {
    "task": "gridgov.idempotency.tasks.idempotency_purge",
    "schedule": 3600.0,
    "options": {"expires": 3600},
}

# ==============================================================================================
# mobile_api: the phone API's tokens and login throttle
# ==============================================================================================
MOBILE_TOKEN_TTL_HOURS = env_int("MOBILE_TOKEN_TTL_HOURS", 72, 1)
LOGIN_THROTTLE_RATE = os.environ.get("LOGIN_THROTTLE_RATE", "").strip() or "10/min"
_rate_n, _, _rate_period = LOGIN_THROTTLE_RATE.partition("/")
if not (_rate_n.isdigit() and int(_rate_n) > 0 and _rate_period[:1] in ("s", "m", "h", "d")):
    raise ImproperlyConfigured(f"LOGIN_THROTTLE_RATE={LOGIN_THROTTLE_RATE!r}: expected e.g. 10/min")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"login": LOGIN_THROTTLE_RATE}
# Login attempts are counted in Redis so that every Daphne process shares one count.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{CHANNEL_PREFIX}-throttle",
        "OPTIONS": {"socket_connect_timeout": REDIS_REQUEST_TIMEOUT, "socket_timeout": REDIS_REQUEST_TIMEOUT},
    },
}

# ==============================================================================================
# maps: basemap, map pages (and the roll-up's beat entry)
# ==============================================================================================
# --- maps ------------------------------------------------------------------------------------
# Basemap under folium maps and the admin map widget. "none" (grid outlines on a plain
# background, no tiles) is the only one that works on an intranet without internet; "amap"
# tiles are GCJ-02, so maps/builders.py shifts overlays to match.
MAP_BASEMAP = os.environ.get("MAP_BASEMAP", "").strip().lower() or "none"
if MAP_BASEMAP not in ("none", "osm", "tianditu", "amap"):
    raise ImproperlyConfigured(f"MAP_BASEMAP={MAP_BASEMAP!r}: expected one of none, osm, tianditu, amap")
# 天地图 browser-side key; it ends up in every map page, so restrict it to our domain at Tianditu.
TIANDITU_KEY = os.environ.get("TIANDITU_KEY", "").strip()
if TIANDITU_KEY and not (TIANDITU_KEY.isascii() and TIANDITU_KEY.isalnum()):
    raise ImproperlyConfigured("TIANDITU_KEY: expected letters and digits only (the key from console.tianditu.gov.cn)")
if MAP_BASEMAP == "tianditu" and not TIANDITU_KEY:
    raise ImproperlyConfigured("MAP_BASEMAP=tianditu needs TIANDITU_KEY")
# The leader's grid level draws its grids from vector tiles (/maps/tiles/grids/) rather than
# embedding every polygon once the scope has more grids than this (10,000 grids: 4.5 MB).
MAP_GRID_TILES_ABOVE = env_int("MAP_GRID_TILES_ABOVE", 2000, 0)

# The maps' roll-up (maps.tasks): hourly, each run expiring before the next is due.
CELERY_BEAT_SCHEDULE["maps-rollup-refresh"] = {
    "task": "maps.tasks.rollup_refresh",
    "schedule": 3600.0,
    "options": {"expires": 3600.0},
}
