"""Settings for Valence Boundary: one module, every knob read from the environment.

The README's configuration table lists each variable. Defaults are safe for production
(no DEBUG, HTTPS hardening on, a real SECRET_KEY required); `bin/serve` sets the few values a
laptop needs to serve plain HTTP on loopback.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from valence_site.env import (
    env_bool,
    env_float,
    env_int,
    env_json,
    env_list,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("VALENCE_DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("VALENCE_DEBUG", False)

SECRET_KEY = env_secret("VALENCE_SECRET_KEY")
GENERATED_KEY_FILE = DATA_DIR / "secret_key"  # what bin/serve writes on its first run
if not SECRET_KEY and GENERATED_KEY_FILE.is_file():
    # So `valence create-token` in any shell finds the key the running service uses.
    SECRET_KEY = GENERATED_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "VALENCE_SECRET_KEY (or VALENCE_SECRET_KEY_FILE) is required unless VALENCE_DEBUG=1. "
            f"bin/serve generates one at {GENERATED_KEY_FILE} on its first run; run it once, or "
            "set VALENCE_DATA_DIR to the data folder it used."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-VALENCE_DEBUG-is-on"

ALLOWED_HOSTS = env_list("VALENCE_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("VALENCE_CSRF_TRUSTED_ORIGINS", [])

# HTTPS hardening is on unless the deployment says it serves plain HTTP (bin/serve on loopback).
HTTPS = env_bool("VALENCE_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
# Probes and the metrics scraper talk to gunicorn directly, often over plain HTTP on this host.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("VALENCE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("VALENCE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("VALENCE_HSTS_PRELOAD", HTTPS)
if env_bool("VALENCE_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_q",
    "boundary",
    "training",
    "review",
]

MIDDLEWARE = [
    # First, so it times and counts every answer, also those of the middleware below it.
    "boundary.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "boundary.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so its process_exception sees a view's database error first.
    "boundary.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "valence_site.urls"
WSGI_APPLICATION = "valence_site.wsgi.application"

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

# SQLite under DATA_DIR by default; PostgreSQL (psycopg 3) when DATABASE_URL is set.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'valence.sqlite3'}",
        conn_max_age=env_int("VALENCE_DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web process read while the worker writes; IMMEDIATE avoids lock upgrades.
    # synchronous=FULL syncs the log at every commit, so a stored call the API acknowledged
    # survives a power loss, not only a crash of the process (about 0.2 ms a commit here).
    # Connections are kept (CONN_MAX_AGE, as for PostgreSQL): opening one and closing the last
    # one, which checkpoints the log, cost about 1.5 ms of every request.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One cache for every web process: Redis when REDIS_URL is set (any number of hosts); else a
# table in PostgreSQL (every host using that database; created by `migrate`); else files under
# DATA_DIR (SQLite is one host). A Redis that is down makes the cache a miss, not an error.
# The API's rate limit is shared the same way but keeps its own store (boundary.throttling):
# Redis, else an UNLOGGED table in PostgreSQL, else this file beside the SQLite database.
REDIS_URL = env_str("REDIS_URL")
VALENCE_RATE_LIMIT_FILE = DATA_DIR / "ratelimits.sqlite3"
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "valence_site.cache.TolerantRedisCache", "LOCATION": REDIS_URL}
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "valence_cache",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Input limits: enforced by the API before any model or LLM sees the input. ---
VALENCE_MAX_TEXT_CHARS = env_int("VALENCE_MAX_TEXT_CHARS", 5_000, minimum=1)
VALENCE_MAX_TRIPLES = env_int("VALENCE_MAX_TRIPLES", 64, minimum=1)
VALENCE_MAX_FIELD_CHARS = env_int("VALENCE_MAX_FIELD_CHARS", 500, minimum=1)
VALENCE_MAX_REQUEST_BYTES = env_int("VALENCE_MAX_REQUEST_BYTES", 256 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = VALENCE_MAX_REQUEST_BYTES
# A model version archive (export / import on the models page), packed or unpacked.
VALENCE_ARCHIVE_MAX_BYTES = env_int("VALENCE_ARCHIVE_MAX_BYTES", 2 * 1024**3, minimum=1024)

# --- Teacher (Anthropic). ---
ANTHROPIC_API_KEY = env_secret("ANTHROPIC_API_KEY")
VALENCE_TEACHER_MODELS = {
    "decomposition": env_str("VALENCE_TEACHER_MODEL_DECOMPOSITION", "claude-haiku-4-5"),
    "recomposition": env_str("VALENCE_TEACHER_MODEL_RECOMPOSITION", "claude-haiku-4-5"),
}
# USD per million tokens, merged over boundary.pricing.DEFAULT_PRICES:
# VALENCE_TEACHER_PRICES='{"my-model": {"input": 2, "output": 8}}'
VALENCE_TEACHER_PRICES = env_json("VALENCE_TEACHER_PRICES", {})
if not isinstance(VALENCE_TEACHER_PRICES, dict):
    raise ImproperlyConfigured("VALENCE_TEACHER_PRICES must be a JSON object.")
VALENCE_TEACHER_TIMEOUT_S = env_float("VALENCE_TEACHER_TIMEOUT_S", 30.0, minimum=1.0)
VALENCE_TEACHER_MAX_RETRIES = env_int("VALENCE_TEACHER_MAX_RETRIES", 2, minimum=0)

# --- Students and data. ---
VALENCE_MODEL_DIR = Path(env_str("VALENCE_MODEL_DIR", str(DATA_DIR / "models"))).resolve()
# Where every host finds a version's files (boundary.artifacts): empty, where they were written
# (VALENCE_MODEL_DIR, or one volume shared by every host); file:///path or s3://bucket/prefix.
VALENCE_ARTIFACT_STORE = env_str("VALENCE_ARTIFACT_STORE").strip()
_store = urlsplit(VALENCE_ARTIFACT_STORE)
if VALENCE_ARTIFACT_STORE and not (
    (_store.scheme == "file" and not _store.netloc and _store.path.startswith("/"))
    or (_store.scheme == "s3" and _store.netloc)
):
    raise ImproperlyConfigured(
        "VALENCE_ARTIFACT_STORE must be file:///absolute/path or s3://bucket/prefix, "
        f"got {VALENCE_ARTIFACT_STORE!r}"
    )
# An S3-compatible server other than AWS (MinIO, Ceph, R2...); credentials: the AWS_* variables.
VALENCE_S3_ENDPOINT_URL = env_str("VALENCE_S3_ENDPOINT_URL")
# Share of inputs (by a stable hash) held out as the evaluation split; never trained on.
VALENCE_EVAL_FRACTION = env_float("VALENCE_EVAL_FRACTION", 0.1, minimum=0.0, maximum=0.5)
# A short name from training.base_models, a local HF folder, or a hub id (if you have a hub).
VALENCE_BASE_MODELS = {
    "decomposition": env_str("VALENCE_BASE_MODEL_DECOMPOSITION", "smollm2-135m-instruct"),
    "recomposition": env_str("VALENCE_BASE_MODEL_RECOMPOSITION", "smollm2-135m-instruct"),
}
# Which runtime serves generative students: "onnx" (onnxruntime-genai, int4; fast),
# "transformers" (the reference), "mlx" (Apple Silicon), or "auto" (mlx on macOS/arm64, else onnx).
VALENCE_GENERATIVE_BACKEND = env_str("VALENCE_GENERATIVE_BACKEND", "auto")
# Weight precision of the onnxruntime-genai export. int8 keeps 97 % of the reference's greedy
# tokens on SmolLM2 (int4: 73 %, as its GGUF weights are already 4-bit) at 230 ms for 25 tokens.
VALENCE_ORT_PRECISION = env_str("VALENCE_ORT_PRECISION", "int8")
VALENCE_TRAIN_EVERY = env_int("VALENCE_TRAIN_EVERY", 1_000, minimum=1)
# Which students the automatic trigger trains, as direction:kind (empty: all of them). Manual
# trainings are not limited. E.g. "decomposition:encoder,recomposition:generative".
VALENCE_AUTO_TRAIN = frozenset(env_list("VALENCE_AUTO_TRAIN", []))
_AUTO_TRAINABLE = {"decomposition:encoder", "decomposition:generative", "recomposition:generative"}
if VALENCE_AUTO_TRAIN - _AUTO_TRAINABLE:
    raise ImproperlyConfigured(
        f"VALENCE_AUTO_TRAIN: unknown {sorted(VALENCE_AUTO_TRAIN - _AUTO_TRAINABLE)}; "
        f"choose from {sorted(_AUTO_TRAINABLE)}"
    )
# A queued training no worker picked up within this long (while no worker reported any
# training either) is failed by the every-minute reaper, so its direction can train again.
VALENCE_QUEUED_TIMEOUT_S = env_int("VALENCE_QUEUED_TIMEOUT_S", 30 * 60, minimum=60)
VALENCE_TRAIN_QUALITY_FLOOR = env_float("VALENCE_TRAIN_QUALITY_FLOOR", 0.5, minimum=0, maximum=1)
VALENCE_TRAIN_EPOCHS = env_float("VALENCE_TRAIN_EPOCHS", 2.0, minimum=0.01)
VALENCE_TRAIN_MAX_STEPS = env_int("VALENCE_TRAIN_MAX_STEPS", 0, minimum=0)  # 0: no cap
VALENCE_TRAIN_BATCH_SIZE = env_int("VALENCE_TRAIN_BATCH_SIZE", 8, minimum=1)
VALENCE_TRAIN_LEARNING_RATE = env_float("VALENCE_TRAIN_LEARNING_RATE", 1e-3, minimum=0)
VALENCE_LORA_RANK = env_int("VALENCE_LORA_RANK", 16, minimum=1)
VALENCE_LORA_LAYERS = env_int("VALENCE_LORA_LAYERS", 0, minimum=0)  # 0: all; N: the top N
# The decomposition encoder (kind "encoder"): its own trigger, base model and training knobs.
VALENCE_ENCODER_TRAIN_EVERY = env_int("VALENCE_ENCODER_TRAIN_EVERY", 10_000, minimum=1)
VALENCE_ENCODER_BASE_MODEL = env_str("VALENCE_ENCODER_BASE_MODEL", "all-minilm-l6-v2")
VALENCE_ENCODER_EPOCHS = env_float("VALENCE_ENCODER_EPOCHS", 3.0, minimum=0.01)
# Small datasets need more passes: on 900 Food pairs, 87 steps (3 epochs) got 23 % of Food dev
# texts exactly right, 290 steps 43 %, 609 steps 46 %; on 2,700 pairs 255 steps 41 %, 850 50 %.
VALENCE_ENCODER_MIN_STEPS = env_int("VALENCE_ENCODER_MIN_STEPS", 600, minimum=0)
VALENCE_ENCODER_BATCH_SIZE = env_int("VALENCE_ENCODER_BATCH_SIZE", 32, minimum=1)
VALENCE_ENCODER_LEARNING_RATE = env_float("VALENCE_ENCODER_LEARNING_RATE", 1e-4, minimum=0)
# onnxruntime threads per web process; 1 suits several workers sharing a few cores.
VALENCE_ENCODER_THREADS = env_int("VALENCE_ENCODER_THREADS", 1, minimum=1)
# Agreed held-out answers a committee needs before it may answer (training.committee).
VALENCE_COMMITTEE_MIN_AGREED = env_int("VALENCE_COMMITTEE_MIN_AGREED", 50, minimum=1)
# How long each web process trusts a token it has checked (a revocation's delay, at most).
VALENCE_TOKEN_CACHE_SECONDS = env_float("VALENCE_TOKEN_CACHE_SECONDS", 5.0, minimum=0.0)
# Token-authenticated JSON POSTs to decompose and recompose skip the general middleware and
# DRF's dispatch (boundary.hot_routes); anything else about them goes through the full stack.
VALENCE_HOT_ROUTES = env_bool("VALENCE_HOT_ROUTES", True)
# Answers remembered from earlier calls with the same input (boundary.memory), asked before a
# generative student or the LLM: "all" (every client's, as the students learn from all of
# them), "client" (only the asking client's own calls), or "off".
VALENCE_MEMORY = env_str("VALENCE_MEMORY", "all")
if VALENCE_MEMORY not in ("all", "client", "off"):
    raise ImproperlyConfigured("VALENCE_MEMORY must be all, client or off")
# How long each web process reuses its list of serving versions (a promotion's delay, at most).
VALENCE_REGISTRY_CACHE_SECONDS = env_float("VALENCE_REGISTRY_CACHE_SECONDS", 2.0, minimum=0.0)
# A newly active version loads in a background thread while the cascade passes over it
# (boundary.warming); off, the first request to meet it loads it and waits.
VALENCE_LOAD_IN_BACKGROUND = env_bool("VALENCE_LOAD_IN_BACKGROUND", True)
# The review console: how long an opened item stays reserved for its reviewer.
VALENCE_REVIEW_CLAIM_SECONDS = env_int("VALENCE_REVIEW_CLAIM_SECONDS", 600, minimum=10)
VALENCE_EVAL_MAX_PAIRS = env_int("VALENCE_EVAL_MAX_PAIRS", 300, minimum=1)
# An encoder answers in milliseconds, so it can be judged on many more pairs: a one-sided 95 %
# bound needs hundreds of accepted answers before it can show 95 % agreement.
VALENCE_ENCODER_EVAL_MAX_PAIRS = env_int("VALENCE_ENCODER_EVAL_MAX_PAIRS", 3000, minimum=1)
# A candidate refused only for want of calibration evidence is evaluated again once the LLM has
# answered this many new calls it never trained on (training.recalibration; 0 switches it off).
VALENCE_RECALIBRATE_EVERY = env_int("VALENCE_RECALIBRATE_EVERY", 200, minimum=0)
# Calibration: the lowest threshold whose accepted eval answers agree with the reference this often.
VALENCE_CALIBRATION_TARGET = env_float("VALENCE_CALIBRATION_TARGET", 0.95, minimum=0, maximum=1)
# ...and with how much confidence: the Wilson lower bound at this z must reach the target
# (1.645: one-sided 95 %; 0: the point estimate, which held-out data shows is optimistic).
VALENCE_CALIBRATION_Z = env_float("VALENCE_CALIBRATION_Z", 1.645, minimum=0, maximum=5)
VALENCE_AUTO_PROMOTE = env_bool("VALENCE_AUTO_PROMOTE", True)
# Live quality audit (training.audit): this share of locally served answers (a stable hash of the
# call id) is re-asked to the LLM by a background task, up to this many USD a day (UTC); an
# active version is demoted once it has this many audits and the 95 % interval of its live
# agreement lies below its calibration target. Off without an API key, or at rate 0.
VALENCE_AUDIT_RATE = env_float("VALENCE_AUDIT_RATE", 0.02, minimum=0.0, maximum=1.0)
VALENCE_AUDIT_DAILY_USD = env_float("VALENCE_AUDIT_DAILY_USD", 1.0, minimum=0.0)
VALENCE_AUDIT_MIN_SAMPLES = env_int("VALENCE_AUDIT_MIN_SAMPLES", 30, minimum=1)
# Offline start (no API key): a fixed, seeded number of optimiser steps per direction on the
# shipped example corpus, so every machine gets the same models (a busy one only takes longer).
# Decomposition is learned by the encoder by default (`generative` for a LoRA student).
VALENCE_BOOTSTRAP_STEPS = env_int("VALENCE_BOOTSTRAP_STEPS", 100, minimum=1)
VALENCE_BOOTSTRAP_ENCODER_STEPS = env_int("VALENCE_BOOTSTRAP_ENCODER_STEPS", 600, minimum=1)
# The share of the shipped corpus's triple sets held out to evaluate and calibrate the offline
# students: at the usual 10 % (178 texts) neither half of a cross-fitted calibration can show
# 95 % with confidence, so no offline student could pass the gate.
VALENCE_BOOTSTRAP_EVAL_FRACTION = env_float(
    "VALENCE_BOOTSTRAP_EVAL_FRACTION", 0.25, minimum=0.0, maximum=0.5
)
VALENCE_BOOTSTRAP_DECOMPOSER = env_str("VALENCE_BOOTSTRAP_DECOMPOSER", "encoder")
if VALENCE_BOOTSTRAP_DECOMPOSER not in ("encoder", "generative"):
    raise ImproperlyConfigured("VALENCE_BOOTSTRAP_DECOMPOSER must be encoder or generative")
# The gate's floors on each direction's headline metric (decomposition: Strict F1, our corrected
# scorer; recomposition: chrF++ / 100).
VALENCE_GATE_FLOORS = {
    "decomposition": env_float("VALENCE_GATE_MIN_DECOMPOSITION", 0.3, minimum=0, maximum=1),
    "recomposition": env_float("VALENCE_GATE_MIN_RECOMPOSITION", 0.3, minimum=0, maximum=1),
}

# --- API. ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "boundary.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["boundary.parsers.StrictJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["boundary.throttling.SharedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("VALENCE_API_RATE", "600/minute")},
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("VALENCE_API_PAGE_SIZE", 50, minimum=1),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "boundary.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Valence Boundary API",
    "DESCRIPTION": "Text <-> knowledge-graph triples, served local-first with an LLM fallback.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "boundary.schema.add_limits",
    ],
}

# --- Operations. ---
# /metrics (Prometheus): with a token, only `Authorization: Bearer <token>` may read it;
# without, only clients on this machine (loopback, not relayed by a proxy).
VALENCE_METRICS_TOKEN = env_secret("VALENCE_METRICS_TOKEN")

# --- Background jobs (django-q2): ORM broker by default, Redis when REDIS_URL is set. ---
VALENCE_TRAINING_QUEUE = env_str("VALENCE_TRAINING_QUEUE")
Q_CLUSTER = {
    "name": "valence",
    "workers": env_int("VALENCE_Q_WORKERS", 1, minimum=1),
    "timeout": env_int("VALENCE_Q_TIMEOUT_S", 4 * 3600, minimum=60),
    "retry": env_int("VALENCE_Q_TIMEOUT_S", 4 * 3600, minimum=60) + 600,
    "max_attempts": 1,
    "catch_up": False,
    "sync": env_bool("VALENCE_Q_SYNC", False),
    **({"redis": REDIS_URL} if REDIS_URL else {"orm": "default"}),
    # Trainings, recalibrations and evaluations of imported versions go to this queue when it
    # is named; a worker started with Q_CLUSTER_NAME=<it> (a GPU host) is the one that takes
    # them, while the default cluster keeps the every-minute schedules and the live audit.
    "ALT_CLUSTERS": (
        {VALENCE_TRAINING_QUEUE: {"workers": env_int("VALENCE_TRAINING_Q_WORKERS", 1, minimum=1)}}
        if VALENCE_TRAINING_QUEUE
        else {}
    ),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("VALENCE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
