"""GridGov settings. Everything that differs between machines comes from the environment,
and a bad value stops start-up with a message naming the variable."""

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"
    else:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
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
    "gridgov.audit",
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

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 defaults to a 5 s socket timeout, which kills consumers that sit idle
            # on BLPOP/pubsub; None means wait as long as it takes.
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            # The default of 100 drops messages silently under dispatch bursts.
            "capacity": env_int("CHANNEL_CAPACITY", 5000, 100),
            "expiry": 60,
            "group_expiry": 86400,
        },
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULE = {}

# --- auth ----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/admin/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "gridgov.api.exception_handler",
}
SPECTACULAR_SETTINGS = {"TITLE": "GridGov API", "VERSION": "1.0.0"}

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

# --- domain knobs ----------------------------------------------------------------------------
# A point in a gap between grids takes the nearest grid within this many metres.
LOCATE_GAP_TOLERANCE_M = env_float("LOCATE_GAP_TOLERANCE_M", 50.0, 0)
# The import validation report flags overlaps / children outside parents beyond this area.
IMPORT_TOLERANCE_M2 = env_float("IMPORT_TOLERANCE_M2", 1.0, 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# GDAL 3.6 (Debian 12) cannot block file/network access from crafted SRS strings; boundary
# files come only from administrators through import_areas, and CRS names are whitelisted.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

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

# --- intake --------------------------------------------------------------------------------
# A geocoded address below this confidence waits in the manual-location queue.
GEOCODE_MIN_CONFIDENCE = env_float("GEOCODE_MIN_CONFIDENCE", 0.6, 0)
