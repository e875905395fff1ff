"""Settings for the test suite: the platform's own settings, with tasks run inline and mail kept in memory.

DATABASE_URL chooses the database as in production (SQLite by default; CI also runs PostgreSQL).
"""

import os
import tempfile

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("Q_SYNC", "true")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("PUBLIC_URL", "https://oncall.example.test")
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE", "true")  # the fake providers live on 127.0.0.1

from oncall.settings import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}

# Each test run gets its own database, so runs side by side (two terminals, two agents) never share one.
_RUN = os.getpid()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory: the test database then behaves as in production (WAL, one writer at a time, busy
    # timeout), also when tests run threads against it.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"oncall-test-{_RUN}.sqlite3")}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_oncall_{_RUN}"}  # noqa: F405
