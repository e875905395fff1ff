"""Settings of the on-call platform.

Every value comes from the environment (or a `.env` file beside manage.py) through django-environ, with safe
defaults for the embedded mode: SQLite in the project folder and django-q2 on the ORM broker. Any variable can
also be read from a file named by `<NAME>_FILE`, which is how container secrets are usually mounted.
`.env.example` lists every variable.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


class _Env(environ.FileAwareEnv):
    """django-environ, naming the variable whose value is not of its type (Q_WORKERS=two, EMAIL_PORT=) instead of
    failing with a bare traceback."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except (ValueError, TypeError) as exc:
            kind = getattr(cast, "__name__", "value")
            raise ImproperlyConfigured(f"{var}={self.ENVIRON.get(var, '')!r} is not a valid {kind}: {exc}") from None


env = _Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

# Signing key for sessions, signed links and django-q2 task packages: web, worker and ticker must share it.
_DEV_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random string, "
            "or set DEBUG=true for local development."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Base of every link the platform puts in a notification (incident pages, acknowledge links, voice callbacks).
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "oncall.apps.OncallAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "anymail",
    "axes",
    "oncall.apps.OncallConfig",
    "channels_app.apps.ChannelsAppConfig",
    "escalation.apps.EscalationConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "oncall.web.middleware.PersonTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a sign-in refused by the lockout into its answer (oncall.signin).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "oncall.urls"
WSGI_APPLICATION = "oncall.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite in the project folder by default (WAL, so the web, worker and ticker processes can share it);
# PostgreSQL in production, e.g. DATABASE_URL=postgres://oncall:secret@db.internal:5432/oncall
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'oncall.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock when a transaction
            # starts, so concurrent writers queue on the busy timeout instead of failing half-way.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # A database host that does not answer (down, or a network partition) fails a request or task after this many
    # seconds instead of holding it until the OS gives up; `?connect_timeout=` in DATABASE_URL overrides it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=10)
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "oncall.User"

# The engineer pages' own sign-in (also where the acknowledge link of a notification sends a signed-out person).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/incidents/"

# Password guessing at the sign-in pages (the engineers' and the admin's) is limited by django-axes, which counts
# failures in the database, so every web process and machine shares the counts (oncall.signin). An account is
# locked for one client address after SIGNIN_MAX_FAILURES failures from that address, and an address for every
# account after SIGNIN_MAX_FAILURES_PER_IP failures over any accounts, each until SIGNIN_LOCKOUT_MINUTES after its
# last failure (attempts while locked count too, so a script that keeps trying stays locked). Why these keys:
# - Not the account alone: anyone, from anywhere, could then keep an on-call engineer out of the web with a few
#   wrong passwords every quarter of an hour. Keyed by account and address, a lock stops the guessing client only.
# - The address over all accounts, with a higher limit: a few common passwords tried on every account stay under
#   each account's limit; the higher limit leaves the people behind one office or VPN address room for typos.
# - A cool-off, not a lock until an admin lifts it: a lock nobody lifts at 3 a.m. is the attacker's win.
# Guesses spread over many addresses (a botnet) are slowed, not stopped; long, unique passwords remain the defence.
# A successful sign-in clears that account's failures from that address, not the address's others (or signing in
# to one's own account would reset the count); a new password set through the emailed reset link lifts the
# account's locks (oncall.web.accounts). The client address is TRUSTED_PROXY_COUNT's (below). The admin lists
# current lockouts (Axes > Access attempts); deleting one lifts it.
SIGNIN_MAX_FAILURES = env.int("SIGNIN_MAX_FAILURES", default=10)
SIGNIN_MAX_FAILURES_PER_IP = env.int("SIGNIN_MAX_FAILURES_PER_IP", default=50)
SIGNIN_LOCKOUT_MINUTES = env.int("SIGNIN_LOCKOUT_MINUTES", default=15)
if SIGNIN_MAX_FAILURES < 1 or SIGNIN_MAX_FAILURES_PER_IP < SIGNIN_MAX_FAILURES or SIGNIN_LOCKOUT_MINUTES < 1:
    raise ImproperlyConfigured(
        "SIGNIN_MAX_FAILURES and SIGNIN_LOCKOUT_MINUTES must be at least 1, and SIGNIN_MAX_FAILURES_PER_IP at least "
        "SIGNIN_MAX_FAILURES."
    )
AUTHENTICATION_BACKENDS = ["oncall.signin.SignInBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "oncall.signin.SignInAttempts"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = SIGNIN_MAX_FAILURES
AXES_COOLOFF_TIME = timedelta(minutes=SIGNIN_LOCKOUT_MINUTES)
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_LOCKOUT_CALLABLE = "oncall.signin.lockout_response"
AXES_CLIENT_IP_CALLABLE = "oncall.lib.client_ip.client_ip"
# No row for every successful sign-in, kept forever; the admin registers the lockouts itself (oncall.admin), on the
# platform's admin site.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
# No banner in the log of every process and management command at start.
AXES_VERBOSE = False

# Password-reset mails: the form takes any address from anyone, so at most PASSWORD_RESET_PER_EMAIL_PER_HOUR mails
# go to one address and PASSWORD_RESET_PER_IP_PER_HOUR requests are served per client address. Over a limit no mail
# is sent but the answer is the usual one, so the form still tells no one which addresses have an account. Counted
# in the cache (CACHE_URL): per web process unless the cache is shared.
PASSWORD_RESET_PER_EMAIL_PER_HOUR = env.int("PASSWORD_RESET_PER_EMAIL_PER_HOUR", default=3)
PASSWORD_RESET_PER_IP_PER_HOUR = env.int("PASSWORD_RESET_PER_IP_PER_HOUR", default=20)
if PASSWORD_RESET_PER_EMAIL_PER_HOUR < 1 or PASSWORD_RESET_PER_IP_PER_HOUR < 1:
    raise ImproperlyConfigured(
        "PASSWORD_RESET_PER_EMAIL_PER_HOUR and PASSWORD_RESET_PER_IP_PER_HOUR must be at least 1 (mails per hour)."
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Times are stored in UTC; people and channels carry their own time zone for display and time windows.
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://oncall")}

# Email. Any django-anymail backend works (EMAIL_BACKEND=anymail.backends.postmark.EmailBackend plus ANYMAIL_*
# settings); SMTP by default in production; in DEBUG the mail (text part) is printed on the console.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="oncall.lib.mail.ConsoleTextBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="On-call <oncall@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ANYMAIL = env.json("ANYMAIL", default={})

# People's contacts: phone numbers without a leading + are read in this region (an ISO 3166 code such as US or
# CN; empty: numbers must be written with their country code). Verification codes expire, allow a few wrong
# guesses, and are rate-limited per person and per phone number or address.
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="").upper() or None
VERIFICATION_CODE_TTL_SECONDS = env.int("VERIFICATION_CODE_TTL_SECONDS", default=600)
VERIFICATION_MAX_ATTEMPTS = env.int("VERIFICATION_MAX_ATTEMPTS", default=5)
VERIFICATION_PER_PERSON_PER_HOUR = env.int("VERIFICATION_PER_PERSON_PER_HOUR", default=5)
VERIFICATION_PER_TARGET_PER_HOUR = env.int("VERIFICATION_PER_TARGET_PER_HOUR", default=3)
# Calls and SMS one person may receive per day (their local day), so a flapping alert cannot flood a phone.
VOICE_DAILY_QUOTA = env.int("VOICE_DAILY_QUOTA", default=200)
SMS_DAILY_QUOTA = env.int("SMS_DAILY_QUOTA", default=200)

# Twilio: voice calls and SMS. Callbacks (TwiML, keypad, statuses) come to PUBLIC_URL/hooks/twilio/... and are
# checked against TWILIO_AUTH_TOKEN. TWILIO_VOICE_FROM is the list of caller IDs (a phone can whitelist them from
# /api/v1/me/voice-numbers.vcf); a call uses the one in the callee's country, else the first.
TWILIO_API_URL = env.str("TWILIO_API_URL", default="https://api.twilio.com").rstrip("/")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
# The secret of the SharedKey a Twilio Webhook Rule signs our callbacks with, if one does (they then carry
# X-Twilio-Webhooks-Signature-Settings and are checked against this instead of TWILIO_AUTH_TOKEN).
TWILIO_WEBHOOK_SHARED_KEY_SECRET = env.str("TWILIO_WEBHOOK_SHARED_KEY_SECRET", default="")
TWILIO_VOICE_FROM = env.list("TWILIO_VOICE_FROM", default=[])
TWILIO_SMS_FROM = env.str("TWILIO_SMS_FROM", default="")
TWILIO_CALL_TIMEOUT = env.int("TWILIO_CALL_TIMEOUT", default=45)
TWILIO_SAY_LANGUAGE = env.str("TWILIO_SAY_LANGUAGE", default="en-US")
TWILIO_SAY_VOICE = env.str("TWILIO_SAY_VOICE", default="")

# App push. Android: FCM HTTP v1 with a Google service account (the JSON key, or FCM_SERVICE_ACCOUNT_FILE naming
# the file). iOS: APNs over HTTP/2 with a token-based (.p8) key. The platform's own web app: Web Push with VAPID.
FCM_API_URL = env.str("FCM_API_URL", default="https://fcm.googleapis.com").rstrip("/")
FCM_SERVICE_ACCOUNT = env.str("FCM_SERVICE_ACCOUNT", default="")
APNS_API_URL = env.str("APNS_API_URL", default="https://api.push.apple.com").rstrip("/")
APNS_TEAM_ID = env.str("APNS_TEAM_ID", default="")
APNS_KEY_ID = env.str("APNS_KEY_ID", default="")
APNS_PRIVATE_KEY = env.str("APNS_PRIVATE_KEY", default="", multiline=True)
APNS_TOPIC = env.str("APNS_TOPIC", default="")
# Critical incidents as iOS critical alerts (they sound through silent mode and Focus); needs Apple's entitlement.
APNS_CRITICAL_ALERTS = env.bool("APNS_CRITICAL_ALERTS", default=True)
WEBPUSH_VAPID_PRIVATE_KEY = env.str("WEBPUSH_VAPID_PRIVATE_KEY", default="")
WEBPUSH_VAPID_SUBJECT = env.str("WEBPUSH_VAPID_SUBJECT", default="mailto:oncall@localhost")
# How long a push service keeps a notification for a device that is offline.
PUSH_TTL_SECONDS = env.int("PUSH_TTL_SECONDS", default=3600)

# django-q2 on the ORM broker: tasks are rows in the same database, with delivery receipts, so a worker that dies
# mid-task has its task handed out again after `retry` seconds. `retry` must exceed `timeout` or a slow task runs
# twice; failures are acknowledged (not replayed in a hot loop) because our own rows carry the retry state.
Q_CLUSTER = {
    "name": "oncall",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=30),
    "retry": env.int("Q_RETRY", default=60),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "ack_failures": True,
    "catch_up": False,
    # -1: successful tasks are not kept (our own rows record what happened); failed ones are, for the admin.
    # Keeping N successes costs a locking scan of all N on every task.
    "save_limit": env.int("Q_SAVE_LIMIT", default=-1),
    "poll": env.float("Q_POLL", default=0.1),
    "label": "Task queue",
    "sync": env.bool("Q_SYNC", default=False),
}
# Optional: django-q2 on Redis instead of the ORM broker, for several machines or high task rates. Tasks are then
# handed over after the deciding transaction commits rather than inside it; a task lost in between (or popped by a
# worker that died) is handed out again by the ticker, since timers, deliveries and batches are rows with leases.
Q_REDIS_URL = env.str("Q_REDIS_URL", default="")
if Q_REDIS_URL:
    del Q_CLUSTER["orm"]
    Q_CLUSTER["redis"] = Q_REDIS_URL
if Q_CLUSTER["retry"] <= Q_CLUSTER["timeout"]:
    raise ImproperlyConfigured("Q_RETRY must be larger than Q_TIMEOUT, or a slow task is handed out twice.")
# A worker task does the follow-ups it decides (a level due now, the deliveries it writes) itself, right after
# they commit, for this many seconds of its run; later ones go through the queue (oncall.lib.queue). 0: never.
WORKER_INLINE_SECONDS = env.float("WORKER_INLINE_SECONDS", default=10.0)

# The ticker: how often it wakes, and how long a claimed timer or delivery stays leased to the worker it was
# handed to before another ticker may hand it out again.
TICKER_INTERVAL = env.float("TICKER_INTERVAL", default=1.0)
if TICKER_INTERVAL <= 0:
    raise ImproperlyConfigured("TICKER_INTERVAL must be above 0 seconds (1 by default); 0 would spin the ticker.")
TIMER_LEASE_SECONDS = env.int("TIMER_LEASE_SECONDS", default=30)
DELIVERY_SEND_LEASE_SECONDS = env.int("DELIVERY_SEND_LEASE_SECONDS", default=45)
# An attempt whose worker died (its lease ran out while sending) by a method whose provider calls back about every
# message (Twilio's status callbacks) is not sent again at once: the provider may have accepted it. A callback
# within this many seconds after the lease settles it as sent; without one it is sent again.
DELIVERY_RECONCILE_SECONDS = env.int("DELIVERY_RECONCILE_SECONDS", default=120)
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=4)
# The delivery bulkhead (channels_app.bulkhead): a provider whose attempt has been in flight this long, or whose
# last attempt took this long, is slow and may have only DELIVERY_BULKHEAD_SLOW_LIMIT attempts in flight; one more
# for each quick answer since, up to DELIVERY_BULKHEAD_MAX_IN_FLIGHT (0: no cap). Attempts over the limit wait
# DELIVERY_BULKHEAD_DEFER_SECONDS without counting as attempts, and the other providers keep the workers.
DELIVERY_BULKHEAD_SLOW_SECONDS = env.float("DELIVERY_BULKHEAD_SLOW_SECONDS", default=5.0)
DELIVERY_BULKHEAD_SLOW_LIMIT = env.int("DELIVERY_BULKHEAD_SLOW_LIMIT", default=1)
DELIVERY_BULKHEAD_MAX_IN_FLIGHT = env.int("DELIVERY_BULKHEAD_MAX_IN_FLIGHT", default=0)
DELIVERY_BULKHEAD_DEFER_SECONDS = env.float("DELIVERY_BULKHEAD_DEFER_SECONDS", default=3.0)
if DELIVERY_BULKHEAD_SLOW_LIMIT < 1 or DELIVERY_BULKHEAD_MAX_IN_FLIGHT < 0:
    raise ImproperlyConfigured(
        "DELIVERY_BULKHEAD_SLOW_LIMIT must be at least 1 and DELIVERY_BULKHEAD_MAX_IN_FLIGHT at least 0 (no cap)."
    )

# Notification templates: SMS are cut to this many segments (160 GSM-7 / 70 UCS-2 characters, 153 / 67 each
# when split); acknowledge links in messages stay valid this many seconds.
SMS_MAX_SEGMENTS = env.int("SMS_MAX_SEGMENTS", default=3)
if not 1 <= SMS_MAX_SEGMENTS <= 10:
    raise ImproperlyConfigured("SMS_MAX_SEGMENTS must be between 1 and 10 (Twilio takes at most 1600 characters).")
ACK_LINK_MAX_AGE = env.int("ACK_LINK_MAX_AGE", default=24 * 3600)

# Outbound HTTP (oncall.lib.http): connect and total timeouts in seconds.
HTTP_CONNECT_TIMEOUT = env.float("HTTP_CONNECT_TIMEOUT", default=5.0)
HTTP_TOTAL_TIMEOUT = env.float("HTTP_TOTAL_TIMEOUT", default=15.0)
_inline_end = WORKER_INLINE_SECONDS + HTTP_TOTAL_TIMEOUT
if WORKER_INLINE_SECONDS < 0 or (WORKER_INLINE_SECONDS and Q_CLUSTER["timeout"] <= _inline_end):
    raise ImproperlyConfigured(
        "WORKER_INLINE_SECONDS + HTTP_TOTAL_TIMEOUT must stay under Q_TIMEOUT, or a task doing a send itself near "
        "the end of its budget is killed mid-send."
    )
# Whether bots and webhooks may call loopback and private addresses (the embedded demo and tests do; a production
# server should not, or an admin's URL could reach the platform's own network).
OUTBOUND_ALLOW_PRIVATE = env.bool("OUTBOUND_ALLOW_PRIVATE", default=DEBUG)

# Ingest limits (Flashduty's): bodies over 512 KB are refused.
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=512 * 1024)
INTEGRATION_KEY_CACHE_SECONDS = env.int("INTEGRATION_KEY_CACHE_SECONDS", default=10)
# Per-integration push limits (Flashduty's); an integration may set its own in the admin.
INGEST_RATE_LIMIT_PER_SECOND = env.int("INGEST_RATE_LIMIT_PER_SECOND", default=100)
INGEST_RATE_LIMIT_PER_MINUTE = env.int("INGEST_RATE_LIMIT_PER_MINUTE", default=1000)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES * 2, 2_621_440)

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "oncall.api.errors.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "oncall.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "oncall.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "On-call platform API",
    "DESCRIPTION": "Incidents, their lifecycle and your own profile. Authenticate with a personal API token: "
    "`Authorization: Bearer oncall_...`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One enum for the notification methods, however many preference fields list them.
    "ENUM_NAME_OVERRIDES": {"NotificationMethodEnum": "channels_app.registry.METHOD_KEYS"},
}

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG and PUBLIC_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# How many proxies in front of the web processes append the address they got a request from to X-Forwarded-For
# (nginx's $proxy_add_x_forwarded_for, Caddy, Traefik, HAProxy's forwardfor and cloud load balancers do). The
# sign-in lockout and the password-reset limits take the client's address from the entry this many from the right;
# the entries left of it are the client's own writing. 0: the header is ignored (anyone can send it) and the
# connection's address counts. Behind a proxy that does not set the header, every client has the proxy's address
# and one guesser locks everybody out.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if BEHIND_TLS_PROXY else 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 (no proxy) or more.")

# /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>` when it is set (open otherwise).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in logging.getLevelNamesMapping():
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL.")
# "text" (one line per record) or "json" (one JSON object per line, for log shippers). Either way each record
# carries the incident, delivery, timer or integration id it is about (oncall.lib.logs).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use text or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "oncall.lib.logs.ContextFilter"},
        "no_query_string": {"()": "oncall.lib.logs.QueryStringFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"},
        "json": {"()": "oncall.lib.logs.json_formatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["context", "no_query_string"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # runserver's request lines (the embedded web process) through our handler, so without query strings.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
