"""Settings for Reliability Studio.

Everything comes from the environment (12-factor). With nothing set, the project runs on
its embedded default: SQLite, in-memory cache and channel layer, Celery in eager mode.
Set ``DATABASE_URL`` and ``REDIS_URL`` for the production topology.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-embedded-default-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "channels",
    "django_celery_beat",
    "reliability",
    "incidents",
    "intelligence",
    "remediation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "reliability.audit.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "reliability.urls"
ASGI_APPLICATION = "reliability.asgi.application"

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
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # parameters travel separately from the SQL: bulk upserts of alerts skip client-side
    # quoting of every value
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env.bool(
        "DATABASE_SERVER_SIDE_BINDING", default=True
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="rs"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": env("CHANNELS_PREFIX", default="rs-asgi"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user object

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

# Ingestion: the largest webhook body accepted, in bytes (413 above it).
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES, 2_621_440)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["reliability.api.throttles.TokenRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "reliability.api.filters.StableOrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "reliability.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "user": env("THROTTLE_USER_RATE", default="1200/min"),
        "analysis_rerun": env("ANALYSIS_RERUN_RATE", default="6/min"),  # per user + team
        "rca_summary_user": env("RCA_SUMMARY_USER_RATE", default="3/min"),
        "rca_summary_team": env("RCA_SUMMARY_TEAM_RATE", default="20/hour"),
        "integration": env("THROTTLE_INTEGRATION_RATE", default="600/min"),
    },
    "EXCEPTION_HANDLER": "reliability.api.exceptions.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "reliability.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Reliability Studio API",
    "DESCRIPTION": "Incidents, alerts, services, SLOs, integrations and audit log.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "IncidentStatusEnum": "incidents.lifecycle.IncidentStatus",
        "AlertStatusEnum": "incidents.models.Alert.Status",
        "InsightStatusEnum": "intelligence.models.Insight.Status",
        "ActionStatusEnum": "remediation.models.RemediationAction.Status",
    },
}

# Celery: Redis broker in production, eager in the embedded default.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "incidents.tasks.correlate_*": {"queue": "correlation"},
    "incidents.tasks.housekeeping*": {"queue": "default"},
    "intelligence.tasks.*": {"queue": "analysis"},
    "remediation.tasks.*": {"queue": "remediation"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# Incident behaviour
INCIDENT_AUTO_RESOLVE = env.bool("INCIDENT_AUTO_RESOLVE", default=True)
INCIDENT_STALE_AFTER_HOURS = env.int("INCIDENT_STALE_AFTER_HOURS", default=24)
# An SLO burn alert's endsAt is this far ahead; the beat job re-sends it while it burns
SLO_ALERT_HOLD_SECONDS = env.int("SLO_ALERT_HOLD_SECONDS", default=600)

# Outside systems (used by intelligence and remediation)
PROMETHEUS_URL = env("PROMETHEUS_URL", default="")
LOKI_URL = env("LOKI_URL", default="")
TEMPO_URL = env("TEMPO_URL", default="")
ALERTMANAGER_URL = env("ALERTMANAGER_URL", default="")

# Incident analysis (intelligence): when it runs and what it looks at
ANALYSIS_AUTO = env.bool("ANALYSIS_AUTO", default=True)  # analyse incidents as they open/grow
ANALYSIS_DEBOUNCE_S = env.float("ANALYSIS_DEBOUNCE_S", default=5.0)  # joins coalesce this long
ANALYSIS_DEADLINE_S = env.float("ANALYSIS_DEADLINE_S", default=25.0)  # a step's answer, at most
ANALYSIS_HOPS = env.int("ANALYSIS_HOPS", default=2)  # neighbours on the dependency graph
ANALYSIS_LEAD_S = env.int("ANALYSIS_LEAD_S", default=300)  # symptoms precede their alert
ANALYSIS_BASELINE_S = env.int("ANALYSIS_BASELINE_S", default=3600)
ANALYSIS_MIN_BASELINE_S = env.int("ANALYSIS_MIN_BASELINE_S", default=300)
ANALYSIS_REANALYSE_AFTER_S = env.int("ANALYSIS_REANALYSE_AFTER_S", default=300)  # beat
ANALYSIS_STALE_AFTER_S = env.int("ANALYSIS_STALE_AFTER_S", default=600)  # a lost worker's run
# Embedded mode (eager Celery, no worker): run analyses on a background thread so a webhook
# never waits for one. scripts/run.sh turns it on; tests run them inline.
ANALYSIS_IN_THREAD = env.bool("ANALYSIS_IN_THREAD", default=False)

# Optional LLM for the RCA summary (off unless URL and model are set; docs/rca.md)
RELIABILITY_LLM_URL = env("RELIABILITY_LLM_URL", default="")
RELIABILITY_LLM_MODEL = env("RELIABILITY_LLM_MODEL", default="")
RELIABILITY_LLM_API_KEY = env("RELIABILITY_LLM_API_KEY", default="")
RELIABILITY_LLM_TIMEOUT = env.float("RELIABILITY_LLM_TIMEOUT", default=20.0)
RELIABILITY_LLM_CALLS_PER_HOUR = env.int("RELIABILITY_LLM_CALLS_PER_HOUR", default=30)  # per team

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # credentials in URLs (?secret=) and Authorization values never reach a log line
    "filters": {"redact_secrets": {"()": "reliability.redaction.RedactSecretsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
