from __future__ import annotations

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from boundary import students
from tests.factories import TokenFactory, UserFactory
from tests.scripted_student import ScriptedLoader


@pytest.fixture(autouse=True)
def _isolated_process_state(settings) -> Iterator[None]:
    """Each test starts with no cached local models and no throttling history."""
    from django.core.cache import cache

    cache.clear()
    students.clear_cache()
    settings.ANTHROPIC_API_KEY = ""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed
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
