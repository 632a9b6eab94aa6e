"""The stored call's prepared INSERT stores exactly what the ORM's `save()` would."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Value
from django.db.models.signals import post_save

from boundary.inserts import insert_call
from boundary.models import BoundaryCall
from tests.factories import BoundaryCallFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


def a_call(**overrides) -> BoundaryCall:
    """An unsaved call with every kind of field filled: JSON, decimal, key, float, text."""
    fields = {
        "direction": "decomposition",
        "input": "Chris prefers composable architectures – naïvely, 100 %.",
        "output": [{"subject": "Chris", "predicate": "prefers", "object": "composable"}],
        "input_hash": "h" * 64,
        "group_key": "g" * 64,
        "split": "eval",
        "served_by": "degraded",
        "model_version": ModelVersionFactory(kind="encoder"),
        "confidence": 0.42,
        "fallback_reason": "low_confidence",
        "teacher_error": "no_api_key",
        "diagnostics": {"student_answer": {"output": []}, "nested": [1, 2.5, None]},
        "triple_sources": [{"stage": "encoder", "version": 1, "confidence": 0.42}],
        "latency_ms": 3.25,
        "avoided_cost_usd": Decimal("0.000123"),
        "client": UserFactory(),
        "origin": "playground",
    }
    return BoundaryCall(**{**fields, **overrides})


def stored(call: BoundaryCall) -> dict:
    row = BoundaryCall.objects.filter(pk=call.pk).values().get()
    return {k: v for k, v in row.items() if k not in ("id", "created_at")}


def test_a_prepared_insert_stores_the_same_row_as_save():
    same = {"model_version": ModelVersionFactory(kind="encoder"), "client": UserFactory()}
    prepared = insert_call(a_call(**same))
    saved = a_call(**same)
    saved.save()
    assert stored(prepared) == stored(saved)


def test_a_prepared_insert_sets_the_key_creation_time_and_review_priority():
    call = insert_call(a_call())
    assert call.pk is not None and not call._state.adding
    row = BoundaryCall.objects.get(pk=call.pk)
    assert row.created_at is not None
    assert row.review_priority == call.compute_review_priority() > 0  # degraded answers rank


def test_a_stored_call_is_not_inserted_again():
    with pytest.raises(ValueError, match="new calls only"):
        insert_call(BoundaryCallFactory())


def test_save_signals_still_reach_a_listener():
    heard = []

    def listener(sender, instance, created, **kwargs):
        heard.append((instance.pk, created))

    post_save.connect(listener, sender=BoundaryCall, dispatch_uid="test_inserts.listener")
    try:
        call = insert_call(a_call())
    finally:
        post_save.disconnect(sender=BoundaryCall, dispatch_uid="test_inserts.listener")
    assert heard == [(call.pk, True)]


def test_a_value_given_as_sql_is_stored_by_save():
    call = insert_call(a_call(latency_ms=Value(3.25)))
    assert BoundaryCall.objects.get(pk=call.pk).latency_ms == 3.25
