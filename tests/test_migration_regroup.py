"""Migration boundary/0005 regroups the calls stored before it: one split per triple set."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from boundary.fingerprint import call_group_key, split_for, text_fingerprint

BEFORE = [("boundary", "0004_review_console")]
AFTER = [("boundary", "0005_group_split_and_demotion")]
TRIPLES = [{"subject": "Ana", "predicate": "uses", "object": "Vim"}]


@pytest.mark.django_db(transaction=True)
def test_existing_calls_get_their_group_and_its_split(settings):
    settings.VALENCE_EVAL_FRACTION = 0.5
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("boundary", "BoundaryCall")
    texts = [f"Ana uses Vim ({n})." for n in range(12)]
    for text in texts:  # the old split hashed each text: both splits for one triple set
        old.objects.create(
            direction="decomposition",
            input=text,
            output=TRIPLES,
            input_hash=text_fingerprint(text),
            split=split_for(text_fingerprint(text), 0.5),
            served_by="imported",
            latency_ms=0,
        )
    assert old.objects.values("split").distinct().count() == 2

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("boundary", "BoundaryCall")
    group = call_group_key("decomposition", texts[0], TRIPLES)
    assert set(new.objects.values_list("group_key", "split")) == {(group, split_for(group, 0.5))}
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
