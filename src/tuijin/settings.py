"""Django settings, read from the environment.

Defaults work on one machine (SQLite under var/, embedded Huey queue). A
production deployment sets TUIJIN_SECRET_KEY and TUIJIN_AUDIT_KEY (there is no
default secret outside demo/debug mode), DATABASE_URL, REDIS_URL and TUIJIN_ALLOWED_HOSTS.
"""

import hashlib
import hmac
import ipaddress
import os
import sys
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

SRC_DIR = Path(__file__).resolve().parent
BASE_DIR = SRC_DIR.parent.parent  # the checkout: holds var/ and node_modules/
VAR_DIR = Path(os.environ.get("TUIJIN_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("TUIJIN_DEBUG", False)
DEMO_MODE = env_bool("TUIJIN_DEMO", False)
# Under pytest: fast password hashing, inline Huey tasks, local-memory cache.
TESTING = env_bool("TUIJIN_TESTING", "pytest" in sys.modules)

SECRET_KEY = os.environ.get("TUIJIN_SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or DEMO_MODE or TESTING:
        # Only for a local demo or a test run; never used in production mode.
        SECRET_KEY = "tuijin-insecure-demo-key-do-not-use-in-production"
    else:
        raise ImproperlyConfigured(
            "TUIJIN_SECRET_KEY is not set. Set it, or set TUIJIN_DEMO=1 for a local demo."
        )

# Key of the change-trail chain (HMAC-SHA256, docs/audit.md): from the environment only, never the database.
TUIJIN_AUDIT_KEY = os.environ.get("TUIJIN_AUDIT_KEY", "")
if not TUIJIN_AUDIT_KEY:
    if DEBUG or DEMO_MODE or TESTING:
        # Derived from the (demo) secret key with a label, so a demo chain verifies across restarts.
        TUIJIN_AUDIT_KEY = hmac.new(SECRET_KEY.encode(), b"tuijin audit chain key v1", hashlib.sha256).hexdigest()
    else:
        raise ImproperlyConfigured(
            "TUIJIN_AUDIT_KEY is not set. Set it (32+ random characters, kept outside the database), "
            "or set TUIJIN_DEMO=1 for a local demo."
        )
elif len(TUIJIN_AUDIT_KEY) < 32:
    raise ImproperlyConfigured("TUIJIN_AUDIT_KEY is too short: use at least 32 random characters.")
# Append-only checkpoint file of the chain head (written daily and by `tuijin audit checkpoint`).
TUIJIN_AUDIT_CHECKPOINT_FILE = Path(os.environ.get("TUIJIN_AUDIT_CHECKPOINT_FILE", "") or (
    # Under tests a per-process file, so a stray checkpoint never leaks into the next run's verify().
    Path(tempfile.gettempdir()) / f"tuijin-test-audit-checkpoints-{os.getpid()}.log" if TESTING
    else VAR_DIR / "audit-checkpoints.log"))

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("TUIJIN_ALLOWED_HOSTS", "").split(",") if h.strip()]
if not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver", "[::1]"]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("TUIJIN_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",
    "huey.contrib.djhuey",
    "tuijin.core",
    "tuijin.org",
    "tuijin.notify",
    "tuijin.customers",
    "tuijin.pipeline",
    "tuijin.followups",
    "tuijin.goals",
    "tuijin.health",
    "tuijin.forecasting",
    "tuijin.integrations.excel",
    "tuijin.web",
    "tuijin.demo",  # the `demo` management command only (docs/architecture.md "Layout")
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tuijin.core.middleware.RequestIdMiddleware",
    "tuijin.core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tuijin.org.middleware.UserLanguageMiddleware",
    "tuijin.org.middleware.VisibilityScopeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tuijin.web.middleware.BadParameterMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tuijin.urls"
WSGI_APPLICATION = "tuijin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SRC_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tuijin.notify.context_processors.unread_notifications",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
TUIJIN_SQLITE_BUSY_TIMEOUT = float(os.environ.get("TUIJIN_SQLITE_BUSY_TIMEOUT", "20"))  # seconds
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "tuijin.sqlite3",
            # Persistent connections: a new SQLite connection per request starts with a cold page
            # cache and re-runs the PRAGMAs (measured under wrk at scale M: docs/benchmarks.md).
            "CONN_MAX_AGE": 300,
            "CONN_HEALTH_CHECKS": True,
            # WAL lets the web server read while the worker writes.
            "OPTIONS": {
                # 64 MB page cache per connection (SQLite's default is 2 MB).
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-64000;",
                "transaction_mode": "IMMEDIATE",
                # sqlite3's busy timeout: a request waits this long for another's write lock before
                # "database is locked" (SQLite's default is 5 s).
                "timeout": TUIJIN_SQLITE_BUSY_TIMEOUT,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "org.User"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    # Argon2 is deliberately slow; tests create hundreds of users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Run by user_create and every password change (org.services); NIST SP 800-63B: length over composition rules.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ["username", "display_name", "email", "phone"]}},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": int(os.environ.get("TUIJIN_PASSWORD_MIN_LENGTH", "8"))}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Login throttling (org.throttle, docs/security.md), all within the window: failures per username+address
# lock that pair; per address (any usernames) lock the address; per username (from anywhere) lock the
# username for every address that failed on it (a clean address may still sign in).
LOGIN_MAX_FAILURES = int(os.environ.get("TUIJIN_LOGIN_MAX_FAILURES", "5"))
LOGIN_MAX_FAILURES_PER_IP = int(os.environ.get("TUIJIN_LOGIN_MAX_FAILURES_PER_IP", "10"))
LOGIN_MAX_FAILURES_PER_USERNAME = int(os.environ.get("TUIJIN_LOGIN_MAX_FAILURES_PER_USERNAME", "20"))
LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("TUIJIN_LOGIN_FAILURE_WINDOW", "900"))
# Reverse proxies (addresses or networks, comma-separated) whose forwarding header names the real client;
# the header is ignored from anyone else, so a client cannot pick its own address.
TUIJIN_TRUSTED_PROXIES = [p.strip() for p in os.environ.get("TUIJIN_TRUSTED_PROXIES", "").split(",") if p.strip()]
TUIJIN_CLIENT_IP_HEADER = os.environ.get("TUIJIN_CLIENT_IP_HEADER", "X-Forwarded-For")
for _proxy in TUIJIN_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TUIJIN_TRUSTED_PROXIES: {_proxy!r} is not an address or network")

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [SRC_DIR / "locale"]
FORMAT_MODULE_PATH = ["tuijin.formats"]  # zh-Hans amounts with thousands separators (1,234,567)
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start when it is missing
# Only the npm files the pages load are served (under vendor/), not all of node_modules:
# tuijin.web.vendor.VendorFinder serves exactly this list, for WhiteNoise and for collectstatic.
TUIJIN_VENDOR_ROOT = BASE_DIR / "node_modules"
TUIJIN_VENDOR_FILES = [
    "bootstrap/dist/css/bootstrap.min.css",
    "bootstrap/dist/js/bootstrap.bundle.min.js",
    "echarts/dist/echarts.min.js",
    "htmx.org/dist/htmx.min.js",
    "sortablejs/Sortable.min.js",
]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "tuijin.web.vendor.VendorFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Request bodies other than uploaded files (JSON API bodies, form posts); beyond it the answer is 400.
# Lists and strings inside bodies have their own limits (core.limits, docs/api.md); files have TUIJIN_IMPORT_MAX_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("TUIJIN_MAX_BODY_BYTES", str(1024 * 1024)))
# Duplicate checks (/api/customers/duplicates) per user and minute; beyond it 429 (a reverse lookup must stay slow).
TUIJIN_DUPLICATE_CHECKS_PER_MINUTE = int(os.environ.get("TUIJIN_DUPLICATE_CHECKS_PER_MINUTE", "30"))
TUIJIN_IMPORT_MAX_BYTES = int(os.environ.get("TUIJIN_IMPORT_MAX_BYTES", str(50 * 1024 * 1024)))
TUIJIN_IMPORT_MAX_ROWS = int(os.environ.get("TUIJIN_IMPORT_MAX_ROWS", "200000"))  # data rows per import file
TUIJIN_IMPORT_FILE_RETENTION_DAYS = int(os.environ.get("TUIJIN_IMPORT_FILE_RETENTION_DAYS", "30"))  # uploads of finished jobs
# Decompression-bomb bounds, checked before any parser runs (integrations/excel/parsing.py, README):
TUIJIN_IMPORT_MAX_UNCOMPRESSED_BYTES = int(os.environ.get("TUIJIN_IMPORT_MAX_UNCOMPRESSED_BYTES",
                                                          str(400 * 1024 * 1024)))  # an .xlsx unpacked, all parts
TUIJIN_IMPORT_MAX_ZIP_ENTRIES = int(os.environ.get("TUIJIN_IMPORT_MAX_ZIP_ENTRIES", "1000"))
TUIJIN_IMPORT_MAX_PART_BYTES = int(os.environ.get("TUIJIN_IMPORT_MAX_PART_BYTES", str(16 * 1024 * 1024)))  # parsed-whole parts
TUIJIN_IMPORT_MAX_SHARED_STRINGS = int(os.environ.get("TUIJIN_IMPORT_MAX_SHARED_STRINGS", "1000000"))
TUIJIN_IMPORT_MAX_CELL_CHARS = int(os.environ.get("TUIJIN_IMPORT_MAX_CELL_CHARS", "32767"))  # Excel's own cell limit
TUIJIN_IMPORT_CSV_MAX_LINE_CHARS = int(os.environ.get("TUIJIN_IMPORT_CSV_MAX_LINE_CHARS", "1000000"))
# Import jobs: a running job renews its heartbeat; without one for this long it is marked interrupted.
# A job waiting in the queue longer than TUIJIN_IMPORT_QUEUE_TIMEOUT is marked interrupted too.
TUIJIN_IMPORT_HEARTBEAT_TIMEOUT = int(os.environ.get("TUIJIN_IMPORT_HEARTBEAT_TIMEOUT", "120"))  # seconds
TUIJIN_IMPORT_QUEUE_TIMEOUT = int(os.environ.get("TUIJIN_IMPORT_QUEUE_TIMEOUT", "3600"))  # seconds

REDIS_URL = os.environ.get("REDIS_URL", "")
# Queue name (several deployments may share one Redis) and worker threads per `tuijin worker`.
# Periodic jobs are scheduled only by workers started without --no-periodic (see docs/notifications.md).
HUEY_NAME = os.environ.get("TUIJIN_HUEY_NAME", "tuijin")
HUEY_CONSUMER = {"workers": int(os.environ.get("TUIJIN_WORKER_THREADS", "2")), "worker_type": "thread"}
if REDIS_URL:
    # Timeouts so a request (and /healthz) answers when Redis is away instead of hanging.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": 3, "socket_timeout": 3}}}
    # A short connect timeout: notify() enqueues after commit and must not hang a request when Redis is away.
    _huey_url = REDIS_URL if "socket_connect_timeout" in REDIS_URL else (
        REDIS_URL + ("&" if "?" in REDIS_URL else "?") + "socket_connect_timeout=3")
    HUEY = {"huey_class": "huey.RedisHuey", "name": HUEY_NAME, "url": _huey_url, "immediate": False,
            "consumer": HUEY_CONSUMER}
else:
    # File-based, not the database: import progress is written while the import's
    # own transaction holds SQLite's write lock.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": HUEY_NAME,
        "filename": str(VAR_DIR / "huey.sqlite3"),
        "immediate": False,
        "consumer": HUEY_CONSUMER,
    }
if TESTING:
    HUEY["immediate"] = True
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Security defaults; production mode (not DEBUG) hardens cookies.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-less meta tag instead
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG and not DEMO_MODE and not TESTING:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("TUIJIN_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("TUIJIN_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (tuijin.core.middleware.SecurityHeadersMiddleware): inline event handlers
# still allowed by hash ('unsafe-hashes'). Only `this.form.submit()`, the auto-submitting filter selects
# of the notification outbox and the daily-report list; it can do nothing but submit its own form.
TUIJIN_CSP_SCRIPT_HASHES = ["sha256-osjxnKEPL/pQJbFk1dKsF7PYFmTyMWGmVSiL9inhxJY="]
# /api/docs and /api/openapi.json: open to anyone in debug/demo mode, otherwise only to a signed-in
# user or a bearer token (the schema maps every endpoint and parameter).
TUIJIN_API_DOCS_PUBLIC = env_bool("TUIJIN_API_DOCS_PUBLIC", DEBUG or DEMO_MODE)

EMAIL_BACKEND = os.environ.get("TUIJIN_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("TUIJIN_FROM_EMAIL", "tuijin@localhost")

# Chat-robot webhooks may only point at these hosts, over https. An entry "http://HOST" also allows plain
# http for that one host (a local test server); the variable replaces the whole list (docs/notifications.md).
TUIJIN_ROBOT_ALLOWED_HOSTS = [h.strip() for h in os.environ.get(
    "TUIJIN_ROBOT_ALLOWED_HOSTS", "qyapi.weixin.qq.com,oapi.dingtalk.com,open.feishu.cn,open.larksuite.com",
).split(",") if h.strip()]
# Only the worker holding this lease schedules periodic jobs; a standby worker takes over after it expires.
TUIJIN_SCHEDULER_LEASE_SECONDS = int(os.environ.get("TUIJIN_SCHEDULER_LEASE_SECONDS", "45"))

TUIJIN_INDUSTRY_TEMPLATE = os.environ.get("TUIJIN_INDUSTRY_TEMPLATE", "medical_devices")
TUIJIN_DEMO_PASSWORD = os.environ.get("TUIJIN_DEMO_PASSWORD", "tuijin-demo")
TUIJIN_API_TOKEN_DAYS = int(os.environ.get("TUIJIN_API_TOKEN_DAYS", "30"))
# Goals (SPEC G4, G7): the day of the month the deviation report is generated; days in one stage = stalled.
TUIJIN_GOAL_REPORT_DAY = int(os.environ.get("TUIJIN_GOAL_REPORT_DAY", "25"))
TUIJIN_GOAL_STAGE_STALL_DAYS = int(os.environ.get("TUIJIN_GOAL_STAGE_STALL_DAYS", "30"))
# Forecast lines deviating more than this share from the customer's mean signed deal need a reason (R2-2).
TUIJIN_FORECAST_DEVIATION = float(os.environ.get("TUIJIN_FORECAST_DEVIATION", "0.35"))
# Weekly alignment (SPEC G5): "<weekday> HH:MM" in TIME_ZONE, counted from the Monday of the week.
TUIJIN_ALIGNMENT_DEADLINE = os.environ.get("TUIJIN_ALIGNMENT_DEADLINE", "MON 12:00")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TUIJIN_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
