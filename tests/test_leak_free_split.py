"""The eval split never shares a triple set or an input with training, in either direction."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from boundary.cascade import decompose
from boundary.fingerprint import call_group_key, text_key, triple_set_key
from boundary.models import BoundaryCall
from boundary.triples import parse_triples
from tests.anthropic_mock import tool_message
from tests.factories import BoundaryCallFactory
from training.datasets import (
    DataSplit,
    eligible_pairs,
    held_out_keys,
    import_pairs,
    split_pairs,
)

pytestmark = pytest.mark.django_db

TEA = [{"subject": "Chris", "predicate": "prefers", "object": "tea"}]
CORPUS = Path(__file__).resolve().parent.parent / "training" / "corpus" / "valence_examples.jsonl"


def _leak_free_split(direction: str) -> DataSplit:
    return split_pairs(eligible_pairs(direction), held_out=held_out_keys())


def _contents(pairs) -> tuple[set[str], set[str]]:
    texts, triple_sets = set(), set()
    for pair in pairs:
        text, triples = (
            (pair.source, pair.target)
            if isinstance(pair.source, str)
            else (pair.target, pair.source)
        )
        texts.add(text_key(text))
        triple_sets.add(triple_set_key(triples))
    return texts, triple_sets


def _assert_no_leak() -> None:
    """No training pair of either direction shares a text or triple set with any eval pair."""
    splits = [_leak_free_split(d) for d in ("decomposition", "recomposition")]
    eval_texts, eval_sets = _contents(p for split in splits for p in split.evaluation)
    train_texts, train_sets = _contents(p for split in splits for p in split.train)
    assert splits[0].evaluation and splits[0].train
    assert not eval_texts & train_texts
    assert not eval_sets & train_sets


def _webnlg_shaped(path: Path, entries: int, texts_per_entry: int) -> Path:
    """Several texts per triple set, as WebNLG has, plus a text shared by two triple sets."""
    with path.open("w", encoding="utf-8") as handle:
        for entry in range(entries):
            triples = [[f"Person_{entry}", "birthPlace", f"Town_{entry}"]]
            for wording in range(texts_per_entry):
                text = f"Person {entry} was born in Town {entry} (wording {wording})."
                handle.write(json.dumps({"text": text, "triples": triples}) + "\n")
            shared = [[f"Person_{entry}", "birthPlace", f"Old Town {entry}"]]
            text = f"Person {entry} was born in Town {entry} (wording 0)."
            handle.write(json.dumps({"text": text, "triples": shared}) + "\n")
    return path


def test_every_wording_of_a_triple_set_lands_in_one_split(tmp_path, settings):
    settings.VALENCE_EVAL_FRACTION = 0.3
    import_pairs(_webnlg_shaped(tmp_path / "data.jsonl", entries=40, texts_per_entry=3))
    splits: dict[str, set[str]] = {}
    for call in BoundaryCall.objects.filter(direction="decomposition"):
        key = triple_set_key(parse_triples(call.output))
        splits.setdefault(key, set()).add(call.split)
    assert all(len(found) == 1 for found in splits.values())


def test_both_directions_of_a_record_share_its_split(tmp_path, settings):
    settings.VALENCE_EVAL_FRACTION = 0.3
    import_pairs(_webnlg_shaped(tmp_path / "data.jsonl", entries=40, texts_per_entry=2))
    for call in BoundaryCall.objects.filter(direction="recomposition"):
        twin = BoundaryCall.objects.get(
            direction="decomposition", input=call.output, output=call.input
        )
        assert (twin.group_key, twin.split) == (call.group_key, call.split)


def test_webnlg_shaped_data_does_not_leak(tmp_path, settings):
    settings.VALENCE_EVAL_FRACTION = 0.3
    import_pairs(_webnlg_shaped(tmp_path / "data.jsonl", entries=60, texts_per_entry=3))
    _assert_no_leak()


def test_the_shipped_corpus_does_not_leak(settings):
    settings.VALENCE_EVAL_FRACTION = 0.1
    import_pairs(CORPUS)
    _assert_no_leak()


def test_a_text_stored_with_two_triple_sets_is_withheld_from_training():
    coffee = [{"subject": "Chris", "predicate": "prefers", "object": "coffee"}]
    BoundaryCallFactory(input="Chris likes it.", output=TEA, split="eval")
    BoundaryCallFactory(input="Chris likes it.", output=coffee, split="train")
    split = _leak_free_split("decomposition")
    assert (split.train, split.withheld) == ([], 1)


def test_a_recomposition_eval_text_is_withheld_from_decomposition_training():
    BoundaryCallFactory(
        direction="recomposition", input=TEA, output="Chris drinks tea.", split="eval"
    )
    BoundaryCallFactory(
        input="Chris drinks tea.",
        output=[{"subject": "Chris", "predicate": "drinks", "object": "tea"}],
        split="train",
    )
    assert _leak_free_split("decomposition").withheld == 1


def test_the_group_is_stable_across_reimports(tmp_path):
    path = _webnlg_shaped(tmp_path / "data.jsonl", entries=10, texts_per_entry=2)
    import_pairs(path)
    first = sorted(BoundaryCall.objects.values_list("input_hash", "group_key", "split"))
    BoundaryCall.objects.all().delete()
    import_pairs(path)
    assert sorted(BoundaryCall.objects.values_list("input_hash", "group_key", "split")) == first


def test_served_calls_are_grouped_by_the_teachers_triple_set(teacher_api):
    teacher_api.return_value = httpx.Response(200, json=tool_message({"triples": TEA}))
    call = decompose("Chris prefers tea.")
    assert call.group_key == call_group_key("decomposition", "Other words.", call.output)
