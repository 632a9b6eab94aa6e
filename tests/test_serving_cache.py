"""The per-process cache of serving versions: no query per request, no stale promotion."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from boundary.serving import serving_versions
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings):
    settings.VALENCE_REGISTRY_CACHE_SECONDS = 60


def test_a_second_request_reads_the_registry_from_memory(cached):
    version = ModelVersionFactory(is_active=True)
    assert serving_versions("decomposition") == [version]
    with CaptureQueriesContext(connection) as queries:
        assert serving_versions("decomposition") == [version]
    assert len(queries) == 0


def test_a_promotion_in_this_process_is_seen_at_once(cached):
    old = ModelVersionFactory(is_active=True)
    serving_versions("decomposition")
    old.is_active = False
    old.save()
    new = ModelVersionFactory(is_active=True)
    assert serving_versions("decomposition") == [new]


def test_the_encoder_is_asked_before_the_generative_student(cached):
    generative = ModelVersionFactory(is_active=True)
    encoder = ModelVersionFactory(kind="encoder", is_active=True)
    assert serving_versions("decomposition") == [encoder, generative]
