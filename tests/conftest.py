from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx
from rest_framework.test import APIClient

from boundary import authentication, serving, students, throttling, warming
from tests.anthropic_mock import API, KEY
from tests.factories import TokenFactory, UserFactory
from tests.scripted_student import ScriptedLoader
from tests.tiny_models import build_tiny_causal_lm


@pytest.fixture(autouse=True)
def _isolated_process_state(settings, tmp_path) -> Iterator[None]:
    """Each test starts with no cached local models, tokens or throttling history."""
    from django.core.cache import caches
    from django.core.cache.backends.db import DatabaseCache

    # A database cache (PostgreSQL runs) is cleared by each test's rolled-back transaction, and
    # a test without database access must not touch it.
    if not isinstance(caches["default"], DatabaseCache):
        caches["default"].clear()
    students.clear_cache()
    warming.forget()
    serving.clear()
    authentication.forget()
    throttling.forget_stores()
    settings.VALENCE_RATE_LIMIT_FILE = tmp_path / "ratelimits.sqlite3"
    # Tests change versions with queryset.update(), which sends no signal: no caching here
    # (tests/test_serving_cache.py covers the cache itself).
    settings.VALENCE_REGISTRY_CACHE_SECONDS = 0
    # Fake students load instantly; loading them in the background would only make the first
    # request's answer depend on thread scheduling (tests/test_warming.py covers that path).
    settings.VALENCE_LOAD_IN_BACKGROUND = False
    settings.ANTHROPIC_API_KEY = ""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed
    # The manifest exists only after collectstatic; tests render pages without running it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    yield
    students.clear_cache()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated with a real token, as an app would be."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
    return client


@pytest.fixture
def scripted_loader() -> Iterator[ScriptedLoader]:
    """Registers the "scripted" backend; versions with backend="scripted" answer from it."""
    loader = ScriptedLoader()
    students.register_backend("scripted", loader)
    yield loader
    students.unregister_backend("scripted")


@pytest.fixture
def anthropic_api() -> Iterator[respx.Router]:
    """The Anthropic API, faked at the HTTP layer; routes are added by each test."""
    with respx.mock(using="httpx2", base_url=API, assert_all_called=False) as router:
        yield router


@pytest.fixture
def teacher_api(anthropic_api, settings) -> respx.Route:
    """POST /v1/messages of a configured teacher (key set, no retries: each test scripts them)."""
    settings.ANTHROPIC_API_KEY = KEY
    settings.VALENCE_TEACHER_MAX_RETRIES = 0
    return anthropic_api.post("/v1/messages")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture
def tiny_setup(settings, tmp_path, tiny_base):
    """Train on the tiny random model, serve with transformers, let any result pass the gate."""
    settings.VALENCE_MODEL_DIR = tmp_path / "models"
    settings.VALENCE_BASE_MODELS = {
        "decomposition": str(tiny_base),
        "recomposition": str(tiny_base),
    }
    settings.VALENCE_GENERATIVE_BACKEND = "transformers"
    settings.VALENCE_GATE_FLOORS = {"decomposition": 0.0, "recomposition": 0.0}
    settings.VALENCE_CALIBRATION_TARGET = 0.5
    settings.VALENCE_CALIBRATION_Z = 0.0  # a handful of eval pairs: the point estimate
    return settings


@pytest.fixture
def memorising_split(monkeypatch) -> None:
    """Train and evaluate on the same pairs, stored in both splits on purpose.

    A tiny random model can only be right about what it memorised, and the pipeline tests
    need a model that is sometimes right. The product withholds such leaks from training
    (tests/test_leak_free_split.py proves it); these tests switch that off, and only that.
    """
    from training import pipeline
    from training.datasets import DataSplit

    def stored_split(pairs, *, held_out=None, max_train=None, max_eval=None) -> DataSplit:
        return DataSplit(
            [p for p in pairs if p.split == "train"][:max_train],
            [p for p in pairs if p.split == "eval"][:max_eval],
            withheld=0,
        )

    monkeypatch.setattr(pipeline, "split_pairs", stored_split)


@pytest.fixture
def no_proxy(monkeypatch) -> None:
    """A proxy from the environment would carry the SDK's loopback calls elsewhere."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
