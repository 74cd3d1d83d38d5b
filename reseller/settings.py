"""Settings for every environment, read from the environment (12-factor).

With nothing set you get the embedded set-up: SQLite under var/, Celery eager, mail written to var/mail/.
DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis; DJANGO_ENV=production demands the settings
a real deployment cannot guess (SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL) and turns on the HTTPS hardening.
"""

import sys
from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

if PRODUCTION:
    # SITE_URL: links in emails point there (development takes them from the request instead).
    _missing = [
        name for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "SITE_URL") if not env.str(name, "")
    ]
    if _missing:
        # A clear sentence, not a traceback: this is the first thing an operator sees.
        sys.exit(
            f"Refusing to start with DJANGO_ENV=production: set {', '.join(_missing)} in the environment."
        )

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-never-use-in-production")
# Old keys still accepted when checking signatures (tracking and unsubscribe links in mail already sent).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Where recipients' mail clients reach the tracking pixel, tracked links and unsubscribe links
# (mailing/tracking/): this site unless a separate host serves /t/.
TRACKING_BASE_URL = env.str("TRACKING_BASE_URL", default=SITE_URL).rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "allauth",
    "accounts.apps.LoginEmailsConfig",  # allauth.account, with a name of its own in the admin
    "hijack",
    "django_htmx",
    "accounts",
    "mailing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hijack.middleware.HijackUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.HtmxAnswersMiddleware",
    "accounts.middleware.ImpersonationLimitsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.CurrentAccountMiddleware",
    "accounts.middleware.UserTimeZoneMiddleware",
]

# Paths that programs call: the API (a key in the body), the probes and the metrics, and what mail
# clients fetch (the open pixel, tracked links: a signed token in the path). Under the WSGI application
# they skip the pages' stack above and run only this one (reseller/handlers.py). The unsubscribe page
# (/t/u/) is a page for a person and keeps the pages' stack.
MACHINE_PATH_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics", "/t/o/", "/t/c/")
# CommonMiddleware for its Content-Length: without it gunicorn answers chunked, which clients that frame
# by Content-Length (and load balancers keeping connections alive) handle worse.
MACHINE_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

if PRODUCTION:  # in development runserver serves static files from the finders
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "reseller.urls"
WSGI_APPLICATION = "reseller.wsgi.application"
ASGI_APPLICATION = "reseller.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.current_account",
            ],
        },
    },
]

# --- Data -----------------------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Threads per web process (gunicorn's gthread workers, reseller/gunicorn.py) and per SMTP server process.
GUNICORN_THREADS = env.int("GUNICORN_THREADS", default=4)
SMTP_WORKER_THREADS = env.int("SMTP_WORKER_THREADS", default=8)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # An unreachable server fails the request after this many seconds instead of hanging it for minutes.
    _options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
    if env.bool("DATABASE_PGBOUNCER", default=False):
        # Behind PgBouncer in transaction mode a server connection is ours for one transaction only, so
        # nothing may outlive one: no server-side cursors (a WITH HOLD cursor stays on a connection the
        # next query may not get), no prepared statements (psycopg prepares a query run often), and no
        # pool of our own (PgBouncer is the pool). docs/scaling.md.
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60 if PRODUCTION else 0)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        _options["prepare_threshold"] = None
    elif env.bool("DATABASE_POOL", default=PRODUCTION):
        # psycopg 3's pool, one per process. A thread holds at most one connection at a time, so a
        # process never needs more than it has threads: the pool is sized for the web process's
        # GUNICORN_THREADS or the SMTP server's worker threads, whichever is more, and a process opens
        # only what its threads use. docs/operations.md adds it up against max_connections.
        _max = env.int("DATABASE_POOL_MAX", default=max(GUNICORN_THREADS, SMTP_WORKER_THREADS))
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        _options["pool"] = {
            "min_size": min(env.int("DATABASE_POOL_MIN", default=2), _max),
            "max_size": _max,
            "timeout": 10,
        }
    else:
        # Kept connections belong to threads that live long (gunicorn's, Celery's, the SMTP server's).
        # runserver starts a thread per request, and a kept connection outlives its thread: in
        # development each request closes its own, so a burst of requests cannot exhaust the server.
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60 if PRODUCTION else 0)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("TEST_DATABASE_NAME", default=None)

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # The cache only holds rate-limit counters, which fail open: a dead or hung Redis must cost a request
    # a fraction of a second, not hang it (redis-py waits for ever by default).
    CACHES = {
        "default": {
            # Rate-limit counters only: when Redis is down the limits open (reseller/cache.py).
            "BACKEND": "reseller.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
SITE_ID = 1

# --- Auth (django-allauth: email and password, no public sign-up) -----------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# The reset link is consumed under a row lock, so simultaneous posts of one link set the password once.
# The other forms only write allauth's Title Case labels as sentences.
ACCOUNT_FORMS = {
    "login": "accounts.forms.LoginForm",
    "change_password": "accounts.forms.ChangePasswordForm",
    "reset_password": "accounts.forms.ResetPasswordForm",
    "reset_password_from_key": "accounts.forms.ResetPasswordKeyForm",  # nosec B105 - a form's path
}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
# Addresses are vouched for by whoever creates the account; the invite and reset links prove ownership.
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
# Rates, not a password: bandit's B105 sees only "password" in the key.
ACCOUNT_RATE_LIMITS = {"reset_password": "20/m/ip,5/m/key", "login_failed": "10/m/ip,5/300s/key"}  # nosec B105

# --- Log in as (django-hijack, with our own permission check) ---------------------------------------
HIJACK_PERMISSION_CHECK = "accounts.impersonation.may_log_in_as"
HIJACK_INSERT_BEFORE = None  # our own banner lives in base.html, so it survives htmx swaps
IMPERSONATION_MAX_MINUTES = env.int("IMPERSONATION_MAX_MINUTES", default=60)

# --- Product rules ---------------------------------------------------------------------------------
INVITE_VALID_HOURS = env.int("INVITE_VALID_HOURS", default=24)
STANDALONE_MONTHLY_LIMIT = env.int("STANDALONE_MONTHLY_LIMIT", default=1000)
MASTER_DEFAULT_MONTHLY_LIMIT = env.int("MASTER_DEFAULT_MONTHLY_LIMIT", default=100_000)
# A subaccount added through the API without `monthly_quota` gets this allowance (documented in docs/api.md).
SUBACCOUNT_DEFAULT_MONTHLY_LIMIT = env.int("SUBACCOUNT_DEFAULT_MONTHLY_LIMIT", default=10_000)
API_CALLS_PER_MINUTE = env.int("API_CALLS_PER_MINUTE", default=600)
API_FAILED_KEYS_PER_MINUTE = env.int("API_FAILED_KEYS_PER_MINUTE", default=20)
# Each process keeps an API key it found for this many seconds (mailing/keys.py): a revoked key, or a
# closed account's, stops working in every process within it. 0: look the key up on every call.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)
# Each process counts a key's calls locally and adds them to the shared counter at least this often
# (accounts/ratelimit.py): the per-key budget may be overshot by what the other processes let through
# in that time. 0: one cache round trip per call.
API_RATE_SYNC_SECONDS = env.float("API_RATE_SYNC_SECONDS", default=1.0)
API_MAX_RECIPIENTS = env.int("API_MAX_RECIPIENTS", default=1000)
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=10 * 1024 * 1024)
# API bodies carry attachments: let Django read up to the API's own limit, which answers in Mandrill's shape.
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Reseller Dashboard <no-reply@reseller.test>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Email: Django 6.1 mailers ------------------------------------------------------------------------
# "default" hands each message to a Celery task; the task sends it through "delivery".
_relay = env.email_url("SMTP_RELAY_URL", default="") if env.str("SMTP_RELAY_URL", "") else None
MAILERS = {
    "default": {"BACKEND": "mailing.email_backend.CeleryEmailBackend"},
    "delivery": (
        {
            "BACKEND": "mailing.relay.RelayEmailBackend",
            "OPTIONS": {
                "host": _relay["EMAIL_HOST"],
                "port": _relay["EMAIL_PORT"],
                "username": _relay["EMAIL_HOST_USER"],
                "password": _relay["EMAIL_HOST_PASSWORD"],
                "use_tls": _relay.get("EMAIL_USE_TLS", False),
                "use_ssl": _relay.get("EMAIL_USE_SSL", False),
                "timeout": 30,
            },
        }
        if _relay
        else {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": env.str("MAIL_FILE_PATH", default=str(VAR_DIR / "mail"))},
        }
    ),
}

# --- Celery ----------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Longer than the longest retry countdown, so an unacked task is redelivered only when its worker died.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 2 * 3600,
    "socket_timeout": 2,
    "socket_connect_timeout": 0.5,
    # Connecting to publish: one immediate retry, then give up (kombu's default retries for
    # CELERY_BROKER_CONNECTION_TIMEOUT, 2 s apart, which held an accept for 6 s with the broker down).
    # A worker's own connection retries by CELERY_BROKER_CONNECTION_MAX_RETRIES, not by these.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 1  # seconds a publish may spend connecting, retries included
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
# Publishing never blocks a request for long: an accepted message stays queued in the database and the
# sweep enqueues it again if the broker was down.
CELERY_TASK_PUBLISH_RETRY = False
# Usage's billing index carries the account (INCLUDE) on PostgreSQL, so the pages that sort or scan a
# month's usage read the index alone; the embedded SQLite set-up simply has the index without it.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

CELERY_BEAT_SCHEDULE = {
    "sweep-queued-mail": {"task": "mailing.tasks.sweep_queued", "schedule": 60.0},
    "release-scheduled-mail": {"task": "mailing.tasks.release_scheduled", "schedule": 60.0},
    "expire-held-mail": {"task": "mailing.tasks.expire_held_mail", "schedule": crontab(minute="*/10")},
    "purge-archive": {"task": "mailing.tasks.purge_archive", "schedule": crontab(minute=17, hour=3)},
    "ensure-partitions": {"task": "mailing.tasks.ensure_partitions", "schedule": crontab(minute=7, hour=2)},
    "purge-old-events": {"task": "mailing.tasks.purge_old_events", "schedule": crontab(minute=37, hour=3)},
    # After the archive's purge (03:17), which leaves the bodies only its copies pointed at unused.
    "purge-unused-contents": {
        "task": "mailing.tasks.purge_unused_contents",
        "schedule": crontab(minute=47, hour=3),
    },
    "purge-idempotency-keys": {
        "task": "mailing.tasks.purge_idempotent_calls",
        "schedule": crontab(minute=41),
    },
    "scan-limit-alerts": {"task": "accounts.tasks.scan_limit_alerts", "schedule": crontab(minute="*/15")},
    # Exports: re-enqueue what a lost broker message left waiting, fail what a dead worker left running,
    # and delete files past their retention.
    "sweep-exports": {"task": "mailing.tasks.sweep_exports", "schedule": crontab(minute="*/5")},
    # Yesterday's hourly Usage into day rows for the overview; hourly, so a missed run costs an hour at most.
    "roll-up-usage": {"task": "accounts.tasks.roll_up_usage", "schedule": crontab(minute=7)},
    # Webhooks: what the after-commit enqueue missed (a lost broker message, a retry that is due).
    "sweep-webhooks": {"task": "mailing.webhooks.tasks.sweep_webhooks", "schedule": 30.0},
    "purge-webhook-attempts": {
        "task": "mailing.webhooks.tasks.purge_webhook_attempts",
        "schedule": crontab(minute=23, hour=4),
    },
}

# --- Webhooks ----------------------------------------------------------------------------------------
# Events per POST (Mandrill sends at most 1000).
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=1000)
# Batches one delivery run posts before it hands over to a new task (so one busy webhook cannot hold a
# worker for long).
WEBHOOK_BATCHES_PER_RUN = env.int("WEBHOOK_BATCHES_PER_RUN", default=10)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_MAX_RESPONSE_BYTES = env.int("WEBHOOK_MAX_RESPONSE_BYTES", default=64 * 1024)
# A webhook failing for this long is disabled and its account's admins are emailed.
WEBHOOK_DISABLE_AFTER_HOURS = env.int("WEBHOOK_DISABLE_AFTER_HOURS", default=24)
# Events younger than this wait for the next run: a transaction that took an earlier id may not have
# committed yet, and the cursor must not pass it (see docs/architecture.md, Webhooks). With eager Celery
# (the embedded set-up: no broker, no beat) nothing can wait, so nothing does.
WEBHOOK_SETTLE_SECONDS = env.float("WEBHOOK_SETTLE_SECONDS", default=0.0 if CELERY_TASK_ALWAYS_EAGER else 5.0)
WEBHOOK_ATTEMPT_RETENTION_DAYS = env.int("WEBHOOK_ATTEMPT_RETENTION_DAYS", default=14)
# Loopback receivers (tests, a receiver on the developer's machine). Never in production.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = not PRODUCTION and env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=True)

# --- Sending -----------------------------------------------------------------------------------------
HELD_MAX_HOURS = env.int("HELD_MAX_HOURS", default=72)
ARCHIVE_RETENTION_DAYS = env.int("ARCHIVE_RETENTION_DAYS", default=30)
# Message events (the timeline, messages/info) are kept at least this long; whole months older go at once.
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=90)
# A CSV export of at most this many rows downloads at once; a larger one is written by a worker while the
# page shows its progress, then offered for download for EXPORT_RETENTION_DAYS.
EXPORT_INLINE_MAX = env.int("EXPORT_INLINE_MAX", default=10_000)
EXPORT_RETENTION_DAYS = env.int("EXPORT_RETENTION_DAYS", default=7)
# A repeated Idempotency-Key returns the first answer for this long (then the key may be reused).
IDEMPOTENCY_HOURS = env.int("IDEMPOTENCY_HOURS", default=24)
# Bulk actions over more subaccounts than this run in a worker, with a progress bar (accounts/bulk_jobs.py).
BULK_INLINE_MAX = env.int("BULK_INLINE_MAX", default=50)
# `.test` addresses (RFC 2606's domain for testing, which the demo and the tests use) are valid recipients
# and senders only outside production; elsewhere they are `invalid`, like `@localhost`.
# DKIM keys are encrypted at rest with this Fernet key (derived from SECRET_KEY when unset; set it in
# production so that rotating SECRET_KEY does not lose them). Sending domains publish an SPF include.
DKIM_ENCRYPTION_KEY = env.str("DKIM_ENCRYPTION_KEY", default="")
SPF_INCLUDE = env.str("SPF_INCLUDE", default="spf.reseller.example")
# Bounces come back to bounces+<message id>@BOUNCE_DOMAIN (VERP); unset, the envelope sender is the From.
BOUNCE_DOMAIN = env.str("BOUNCE_DOMAIN", default="")
# The bounce listener (manage.py bouncesmtpd): where it listens, the largest report it takes (a DSN with
# the returned message's headers is a few kB; the parser refuses anything over 1 MB in any case), how
# many recipients one report may name, and the threads that record reports in the database.
BOUNCE_SMTP_HOST = env.str("BOUNCE_SMTP_HOST", default="127.0.0.1")
BOUNCE_SMTP_PORT = env.int("BOUNCE_SMTP_PORT", default=2526)
BOUNCE_MAX_REPORT_BYTES = env.int("BOUNCE_MAX_REPORT_BYTES", default=512 * 1024)
BOUNCE_MAX_RECIPIENTS = env.int("BOUNCE_MAX_RECIPIENTS", default=5)
BOUNCE_WORKER_THREADS = env.int("BOUNCE_WORKER_THREADS", default=4)
# An address that soft-bounces this many times in this many days is suppressed for that many days.
SOFT_BOUNCES_TO_SUPPRESS = env.int("SOFT_BOUNCES_TO_SUPPRESS", default=3)
SOFT_BOUNCE_WINDOW_DAYS = env.int("SOFT_BOUNCE_WINDOW_DAYS", default=30)
ALLOW_TEST_EMAIL_DOMAINS = env.bool("ALLOW_TEST_EMAIL_DOMAINS", default=not PRODUCTION)
# A worker renews its claim on a batch every DELIVERY_MARK_EVERY messages; a claim not renewed for
# this long belongs to a dead worker and the sweep (every minute) hands it to another. Longer than the
# relay's timeout (30 s), so a slow but living worker keeps its batch.
DELIVERY_CLAIM_LEASE_SECONDS = env.int("DELIVERY_CLAIM_LEASE_SECONDS", default=90)
# Sent messages are recorded every this many: at most this many are sent twice after a worker is killed
# (each copy with the same Message-ID). One task's batch (mailing.tasks.DELIVERY_BATCH): recording costs
# about five queries however many it records, which every 10 messages was most of a delivery's time; at
# a thousand deliveries a second a batch of 50 is 50 ms of sending.
DELIVERY_MARK_EVERY = env.int("DELIVERY_MARK_EVERY", default=50)
# A delivery task with fewer than DELIVERY_BATCH messages takes other queued, due messages along (oldest
# first), so one-recipient calls go out in full batches rather than one connection and claim each.
DELIVERY_FILL_BATCHES = env.bool("DELIVERY_FILL_BATCHES", default=True)
# Connections a delivery run opens to the relay, each with a thread waiting for its replies. More
# overlap a distant relay's round trips (bench/delivery.py: 136 messages/s with one, 214 with two against
# a relay 1 ms away) but no longer hand a batch to the relay in order (a resumed account's held mail
# leaves oldest first with one); against a relay on the same host one is as fast.
DELIVERY_RELAY_CONNECTIONS = env.int("DELIVERY_RELAY_CONNECTIONS", default=1)
# The right side of every Message-ID we give (<message id@this>), so a copy sent twice is recognisable.
MESSAGE_ID_DOMAIN = env.str("MESSAGE_ID_DOMAIN", default="")
DELIVERY_SWEEP_GRACE_SECONDS = 60

# Mail must come from a domain the account verified (or its master shares); else it is rejected "unsigned".
REQUIRE_VERIFIED_SENDING_DOMAIN = env.bool("REQUIRE_VERIFIED_SENDING_DOMAIN", default=True)
DNS_RESOLVER_NAMESERVERS = env.list("DNS_RESOLVER_NAMESERVERS", default=[])  # empty: the system's resolver
DNS_RESOLVER_PORT = env.int("DNS_RESOLVER_PORT", default=53)
DNS_RESOLVER_TIMEOUT = env.float("DNS_RESOLVER_TIMEOUT", default=5.0)

# --- SMTP submission (manage.py smtpd) ---------------------------------------------------------------
SMTP_HOST = env.str("SMTP_HOST", default="127.0.0.1")
SMTP_PORT = env.int("SMTP_PORT", default=2525)
SMTP_HOSTNAME = env.str("SMTP_HOSTNAME", default="localhost")
SMTP_PUBLIC_HOST = env.str("SMTP_PUBLIC_HOST", default="")  # what customers configure; default: the web host
SMTP_TLS_CERT = env.str("SMTP_TLS_CERT", default="")
SMTP_TLS_KEY = env.str("SMTP_TLS_KEY", default="")
SMTP_MAX_MESSAGE_BYTES = env.int("SMTP_MAX_MESSAGE_BYTES", default=25 * 1024 * 1024)
SMTP_MAX_RECIPIENTS = env.int("SMTP_MAX_RECIPIENTS", default=100)
SMTP_MAX_CONNECTIONS_PER_IP = env.int("SMTP_MAX_CONNECTIONS_PER_IP", default=20)
SMTP_FAILED_AUTH_PER_MINUTE = env.int("SMTP_FAILED_AUTH_PER_MINUTE", default=10)
# Server processes sharing the SMTP port (`manage.py smtpd --processes`): one per core in production.
SMTP_PROCESSES = env.int("SMTP_PROCESSES", default=1)
# SMTP_WORKER_THREADS is set with the database, whose pool it sizes.

# --- Operations ------------------------------------------------------------------------------------
# /metrics answers only to "Authorization: Bearer <METRICS_TOKEN>"; unset, it does not exist (404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Front end -------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The CSS framework and the chart library come from npm at set-up; they are served from node_modules.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/pico", BASE_DIR / "node_modules" / "@picocss" / "pico" / "css"),
    ("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # CSV exports hold tenants' data: a storage of their own, never under MEDIA_URL; the download view
    # checks the tenant and streams the file (mailing/exports.py).
    "exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env.str("EXPORTS_DIR", default=str(VAR_DIR / "exports"))},
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Production hardening ---------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers, orchestrators and Prometheus reach each process directly, over plain HTTP on the
    # private network (reseller/health.py, reseller/metrics.py). A redirect would not protect the
    # metrics token: a client that sent it over HTTP has already sent it.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "reseller.log_format.JsonFormatter"},
    },
    # JSON lines in production (LOG_FORMAT=plain to read them by eye), plain text elsewhere.
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain"),
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
