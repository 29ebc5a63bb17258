"""Django settings for benchmark runs: the product's settings on a bench-only database and URLconf.

The database is chosen by bench.__main__ through environment variables before
Django starts: TUIJIN_BENCH_SQLITE (a file per scale under var/) or
DATABASE_URL (PostgreSQL). The dev database (var/tuijin.sqlite3) is never touched.
The URLconf adds one bare endpoint (bench.views) used as the API-overhead reference;
it exists only here, never in the product's URLs.
"""

import os

from tuijin.settings import *  # noqa: F403
from tuijin.settings import DATABASES, HUEY, SRC_DIR  # noqa: F401

_sqlite = os.environ.get("TUIJIN_BENCH_SQLITE")
if _sqlite and not os.environ.get("DATABASE_URL"):
    DATABASES["default"]["NAME"] = _sqlite
    # Bulk generation writes millions of rows; a larger page cache helps, durability is not needed.
    DATABASES["default"]["OPTIONS"]["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-200000;"
    )

ROOT_URLCONF = "bench.urls"
# The import scenario starts its job inline, as the product's worker would run it.
HUEY = {**HUEY, "immediate": True}
# Argon2 is deliberately slow; bench users log in once to get a token, not per request.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
