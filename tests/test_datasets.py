from __future__ import annotations

import json

import pytest

from boundary.models import BoundaryCall
from boundary.triples import Triple
from tests.factories import BoundaryCallFactory, ModelVersionFactory
from training.datasets import ImportFileError, eligible_pairs, export_pairs, import_pairs

pytestmark = pytest.mark.django_db

TEA = [{"subject": "Chris", "predicate": "prefers", "object": "tea"}]
COFFEE = [{"subject": "Chris", "predicate": "prefers", "object": "coffee"}]


def test_an_unreviewed_teacher_answer_is_a_training_pair():
    call = BoundaryCallFactory(output=TEA)
    [pair] = eligible_pairs("decomposition")
    assert (pair.call_id, pair.source, pair.target) == (
        call.pk,
        call.input,
        (Triple("Chris", "prefers", "tea"),),
    )


def test_a_correction_replaces_the_original_output():
    BoundaryCallFactory(output=TEA, corrected_output=COFFEE, review_status="corrected")
    [pair] = eligible_pairs("decomposition")
    assert pair.target == (Triple("Chris", "prefers", "coffee"),)


def test_rejected_calls_are_never_trained_on():
    BoundaryCallFactory(review_status="rejected")
    assert eligible_pairs("decomposition") == []


def test_a_students_own_unreviewed_answers_are_not_trained_on():
    version = ModelVersionFactory()
    BoundaryCallFactory(served_by="student", model_version=version)
    BoundaryCallFactory(served_by="degraded", model_version=version)
    assert eligible_pairs("decomposition") == []


def test_an_accepted_student_answer_is_trained_on():
    BoundaryCallFactory(
        served_by="student", model_version=ModelVersionFactory(), review_status="accepted"
    )
    assert len(eligible_pairs("decomposition")) == 1


def test_answers_scored_below_the_quality_floor_are_left_out(settings):
    settings.VALENCE_TRAIN_QUALITY_FLOOR = 0.5
    BoundaryCallFactory(quality_score=0.2)
    BoundaryCallFactory(input="Ana uses Vim.", quality_score=0.8)
    assert [p.source for p in eligible_pairs("decomposition")] == ["Ana uses Vim."]


def test_a_better_tier_hides_weaker_pairs_of_the_same_input():
    BoundaryCallFactory(input="Chris prefers tea.", output=TEA)
    BoundaryCallFactory(
        input="Chris prefers tea.", output=TEA, corrected_output=COFFEE, review_status="corrected"
    )
    [pair] = eligible_pairs("decomposition")
    assert pair.target == (Triple("Chris", "prefers", "coffee"),)


def test_identical_pairs_are_kept_once():
    BoundaryCallFactory.create_batch(3, input="Chris prefers tea.", output=TEA)
    assert len(eligible_pairs("decomposition")) == 1


def test_different_wordings_of_one_triple_set_are_all_kept():
    for text in ["Chris prefers tea.", "Tea is what Chris prefers."]:
        BoundaryCallFactory(
            direction="recomposition", input=TEA, output=text, input_hash="same-triples"
        )
    assert len(eligible_pairs("recomposition")) == 2


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_import_stores_each_record_in_both_directions(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"text": "Chris prefers tea.", "triples": [["Chris", "prefers", "tea"]]}],
    )
    assert import_pairs(path) == {"decomposition": 1, "recomposition": 1}
    decomposition = BoundaryCall.objects.get(direction="decomposition")
    recomposition = BoundaryCall.objects.get(direction="recomposition")
    assert (decomposition.input, decomposition.output) == ("Chris prefers tea.", TEA)
    assert (recomposition.input, recomposition.output) == (TEA, "Chris prefers tea.")
    assert decomposition.served_by == "imported"


def test_a_bad_line_imports_nothing_and_names_the_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        json.dumps({"text": "ok", "triples": [["a", "b", "c"]]})
        + "\n"
        + json.dumps({"text": "bad", "triples": [["a", "", "c"]]})
        + "\n"
    )
    with pytest.raises(ImportFileError, match=":2:"):
        import_pairs(path)
    assert BoundaryCall.objects.count() == 0


def test_import_can_take_a_reproducible_sample(tmp_path):
    records = [
        {"text": f"Person {i} uses Vim.", "triples": [[f"Person {i}", "uses", "Vim"]]}
        for i in range(20)
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    import_pairs(path, directions=["decomposition"], limit=5, seed=3)
    first = set(BoundaryCall.objects.values_list("input", flat=True))
    BoundaryCall.objects.all().delete()
    import_pairs(path, directions=["decomposition"], limit=5, seed=3)
    assert set(BoundaryCall.objects.values_list("input", flat=True)) == first
    assert len(first) == 5


def test_import_can_hold_out_a_larger_share_for_evaluation(tmp_path):
    records = [
        {"text": f"Person {i} uses Vim.", "triples": [[f"Person {i}", "uses", "Vim"]]}
        for i in range(400)
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    import_pairs(path, directions=["decomposition"], eval_fraction=0.25)
    held_out = BoundaryCall.objects.filter(split="eval").count()
    assert 70 <= held_out <= 130  # about 100: a hash decides, not a shuffle


def test_export_writes_what_import_reads(tmp_path):
    BoundaryCallFactory(output=TEA)
    out = tmp_path / "out.jsonl"
    assert export_pairs(out, ["decomposition"]) == 1
    BoundaryCall.objects.all().delete()
    import_pairs(out, directions=["decomposition"])
    assert BoundaryCall.objects.get().output == TEA


def test_building_a_dataset_is_one_query_however_many_pairs(django_assert_max_num_queries):
    BoundaryCallFactory.create_batch(20)
    with django_assert_max_num_queries(2):
        pairs = eligible_pairs("decomposition")
    assert len(pairs) == 20


def test_a_capped_eval_set_keeps_every_reviewed_pair_first():
    from training.datasets import split_pairs

    for n in range(6):
        BoundaryCallFactory(input=f"Unreviewed {n}.", split="eval")
    gold = BoundaryCallFactory(
        input="Reviewed.",
        split="eval",
        review_status="corrected",
        corrected_output=[{"subject": "A", "predicate": "b", "object": "C"}],
    )
    evaluation = split_pairs(eligible_pairs("decomposition"), max_eval=3).evaluation
    assert len(evaluation) == 3
    assert gold.pk in [pair.call_id for pair in evaluation]
