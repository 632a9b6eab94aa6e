"""The decomposition encoder for real, on a tiny random BERT: train, export to ONNX, quantise to
int8, serve with onnxruntime, and run it through the registry and the API. A tiny MPNet (the
all-mpnet-base-v2 architecture) goes through training and serving too."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest

from boundary.encoder import ARTIFACT_VERSION, TAG_B, TAG_I, TAG_O, EncoderStudent, decode_spans
from boundary.models import ModelVersion
from boundary.students import StudentAnswer
from boundary.triples import Triple
from tests.factories import BoundaryCallFactory
from tests.tiny_models import build_tiny_encoder, build_tiny_mpnet
from training.evaluation import Example, Prediction, calibrate_per_triple, deliver, evaluate
from training.management.commands.bench_boundary import SENTENCES
from training.pipeline import queue_training, run_training
from training.trainers.encoder import EncoderConfig, train_encoder

T = Triple
EXAMPLES = [
    (
        "Alan Bean was born on March 15, 1932 in Wheeler, Texas.",
        [
            T("Alan_Bean", "birthDate", '"1932-03-15"'),
            T("Alan_Bean", "birthPlace", "Wheeler,_Texas"),
        ],
    ),
    (
        "Aarhus Airport serves the city of Aarhus, Denmark.",
        [T("Aarhus_Airport", "cityServed", '"Aarhus, Denmark"')],
    ),
    (
        "The runway of Abilene Regional Airport is 2776.0 metres long.",
        [T("Abilene_Regional_Airport", "runwayLength", "2776.0")],
    ),
    ("The leader of Aarhus is Jacob Bundsgaard.", [T("Aarhus", "leader", "Jacob_Bundsgaard")]),
]
# Enough steps at a high rate for a 30k-parameter model to learn four sentences by heart.
MEMORISE = EncoderConfig(
    epochs=40,
    batch_size=8,
    learning_rate=3e-3,
    head_learning_rate=3e-3,
    pair_hidden=32,
    warmup_ratio=0.0,
)


@pytest.fixture(scope="session")
def tiny_encoder_base(tmp_path_factory):
    return build_tiny_encoder(
        tmp_path_factory.mktemp("tiny-encoder") / "base", [text for text, _ in EXAMPLES]
    )


@pytest.fixture(scope="session")
def trained(tiny_encoder_base, tmp_path_factory):
    return train_encoder(
        tiny_encoder_base, EXAMPLES * 8, tmp_path_factory.mktemp("trained"), MEMORISE
    )


@pytest.fixture(scope="session")
def student(trained):
    return EncoderStudent(trained.artifact_dir)


def test_training_writes_an_int8_onnx_encoder_a_pair_head_and_the_labels(trained):
    folder = trained.artifact_dir
    assert {p.name for p in folder.iterdir()} == {
        "model.onnx",
        "pairs.onnx",
        "tokenizer.json",
        "encoder.json",
    }
    operators = {node.op_type for node in onnx.load(str(folder / "model.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= operators
    meta = json.loads((folder / "encoder.json").read_text())
    assert meta["predicates"] == ["birthDate", "birthPlace", "cityServed", "leader", "runwayLength"]
    assert trained.aligned_share == 1.0


@pytest.mark.parametrize(("text", "triples"), EXAMPLES)
def test_the_served_int8_encoder_reproduces_what_it_learned(student, text, triples):
    assert student.decompose(text).output == triples


def test_an_mpnet_base_trains_exports_and_serves_like_a_bert(tmp_path):
    """MPNet has no token types, <pad> = 1 and relative attention: none of it may matter."""
    base = build_tiny_mpnet(tmp_path / "mpnet", [text for text, _ in EXAMPLES])
    trained = train_encoder(base, EXAMPLES * 8, tmp_path / "trained", MEMORISE)
    mpnet_student = EncoderStudent(trained.artifact_dir)
    assert [mpnet_student.decompose(text).output for text, _ in EXAMPLES] == [
        triples for _, triples in EXAMPLES
    ]


def test_spans_come_back_in_the_training_datas_canonical_forms(student):
    """Dates become quoted ISO dates, multi-word resources get underscores, as in training."""
    [date, place] = student.decompose(EXAMPLES[0][0]).output
    assert (date.object, place.object) == ('"1932-03-15"', "Wheeler,_Texas")


def test_each_triple_has_its_own_confidence_and_the_answer_a_completeness(student):
    answer = student.decompose(EXAMPLES[0][0])
    assert len(answer.triple_confidences) == len(answer.output) == 2
    assert all(0.5 < c <= 1.0 for c in answer.triple_confidences)
    assert 0.0 <= answer.complete <= 1.0
    assert answer.confidence == min(answer.complete, *answer.triple_confidences)


def test_a_text_longer_than_the_encoder_reads_is_never_complete(student):
    text = " ".join(EXAMPLES[3][0] for _ in range(30))
    answer = student.decompose(text)
    assert (answer.complete, answer.confidence) == (0.0, 0.0)


def test_a_sentence_without_entities_gives_no_triples(student):
    answer = student.decompose("...")
    assert answer.output == []
    assert answer.triple_confidences == ()


def test_an_encoder_does_not_recompose(student):
    with pytest.raises(TypeError):
        student.recompose(EXAMPLES[0][1])


def test_an_artefact_of_another_format_version_is_refused(trained, tmp_path):
    import shutil

    folder = tmp_path / "encoder"
    shutil.copytree(trained.artifact_dir, folder)
    meta = json.loads((folder / "encoder.json").read_text())
    (folder / "encoder.json").write_text(json.dumps({**meta, "artifact_version": 99}))
    with pytest.raises(ValueError, match=f"this code reads version {ARTIFACT_VERSION}"):
        EncoderStudent(folder)


def test_spans_are_decoded_from_bio_tags_and_snapped_to_whole_words():
    text = "Aarhus Airport serves Aarhus"
    # [CLS] aar ##hus airport serves aarhus [SEP]; the tagger missed "##hus".
    offsets = [(0, 0), (0, 3), (3, 6), (7, 14), (15, 21), (22, 28), (0, 0)]
    special = [1, 0, 0, 0, 0, 0, 1]
    tags = [TAG_O, TAG_B, TAG_O, TAG_I, TAG_O, TAG_I, TAG_O]
    probs = np.full((7, 3), 0.05)
    for i, tag in enumerate(tags):
        probs[i, tag] = 0.9
    spans = decode_spans(probs, special, offsets, text)
    assert [text[s.char_start : s.char_end] for s in spans] == ["Aarhus", "Airport", "Aarhus"]
    assert spans[0].probability == pytest.approx(0.9 * 0.95)


def test_calibration_keeps_triples_only_where_they_are_right_often_enough():
    right, wrong = T("a", "p", "b"), T("a", "p", "c")
    examples = [Example(source=f"s{i}", references=((right,),)) for i in range(4)]
    predictions = [
        Prediction([right], 0.9, triple_confidences=(0.9,)),
        Prediction([right, wrong], 0.4, triple_confidences=(0.8, 0.4)),
        Prediction([wrong], 0.3, triple_confidences=(0.3,)),
        Prediction([right], 0.7, triple_confidences=(0.7,)),
    ]
    agreements = [True, False, False, True]
    calibration = calibrate_per_triple(predictions, examples, agreements, target=0.95, z=0)
    assert calibration.threshold == 0.7
    assert calibration.expected_fallback_rate == 0.5


def test_a_wrong_kept_triple_spoils_the_answer_it_completes_however_precise_the_rest():
    """Ten unsure answers keep 101 triples at 0.8, one of them wrong: 99 % triple precision,
    but only 9 of the 10 answers the next stage completes are right as a whole."""
    examples, predictions = [], []
    for i in range(20):
        facts = tuple(T(f"a{i}", "p", f"b{j}") for j in range(10))
        examples.append(Example(source=f"s{i}", references=(facts,)))
        if i < 10:  # sure and right
            predictions.append(Prediction(list(facts), 0.9, triple_confidences=(0.9,) * 10))
        else:  # unsure, though each triple alone looks sure enough
            extra = [T(f"a{i}", "p", "wrong")] if i == 10 else []
            output = list(facts) + extra
            predictions.append(Prediction(output, 0.1, triple_confidences=(0.8,) * len(output)))
    agreements = [i < 10 for i in range(20)]
    calibration = calibrate_per_triple(predictions, examples, agreements, target=0.95, z=0)
    assert calibration.threshold == 0.9  # 0.8 would keep the wrong triple


def test_delivered_answers_say_how_many_it_completes_and_how_many_come_out_right():
    right, wrong = T("a", "p", "b"), T("a", "p", "c")
    examples = [Example(source=f"s{i}", references=((right,),)) for i in range(3)]
    predictions = [
        Prediction([right], 0.9, triple_confidences=(0.9,)),
        Prediction([right, wrong], 0.2, triple_confidences=(0.8, 0.2)),
        Prediction([right, wrong], 0.2, triple_confidences=(0.8, 0.7)),
    ]
    delivered = deliver(predictions, examples, [True, False, False], threshold=0.5)
    assert (delivered["completed"]["answers"], delivered["completed"]["right"]) == (2, 1)


class ListStudent:
    """Answers text "s<i>" with the i-th prediction."""

    def __init__(self, predictions: list[Prediction]) -> None:
        self.predictions = predictions

    def decompose(self, text: str) -> StudentAnswer:
        p = self.predictions[int(text[1:])]
        return StudentAnswer(p.output, p.confidence, triple_confidences=p.triple_confidences)


def test_where_no_threshold_keeps_triples_right_it_calibrates_on_whole_answers():
    """Answers ranked well; single triples of answers it knew to be wrong scored high."""
    right, wrong = T("a", "p", "b"), T("a", "p", "c")
    examples = [Example(source=f"s{i}", references=((right,),)) for i in range(40)]
    predictions = [
        Prediction([right], 0.9, triple_confidences=(0.9,))
        if i % 2
        else Prediction([wrong], 0.1, triple_confidences=(0.95,))
        for i in range(40)
    ]
    report = evaluate(ListStudent(predictions), "decomposition", examples, target=0.95, z=0)
    calibration = report.metrics["calibration"]
    assert (calibration["calibrated"], calibration["per_triple"]) == (True, False)
    assert calibration["threshold"] == 0.9
    assert "kept_triples" not in calibration["choice"]


def test_keeping_triples_gives_way_when_whole_answers_alone_answer_more():
    """Per triple, 0.5 would keep the sure-looking wrong triples of the 20 wrong answers, so
    that rule must stop at 0.9 (30 of 90 held out); whole answers accept 0.5 (60 of 90)."""
    examples, predictions = [], []
    for i in range(90):
        right = T(f"a{i}", "p", "b")
        examples.append(Example(source=f"s{i}", references=((right,),)))
        if i % 3 == 0:
            predictions.append(Prediction([right], 0.9, triple_confidences=(0.9,)))
        elif i % 3 == 1:
            predictions.append(Prediction([right], 0.5, triple_confidences=(0.5,)))
        else:
            wrong = T(f"a{i}", "p", "c")
            predictions.append(Prediction([wrong], 0.3, triple_confidences=(0.6,)))
    report = evaluate(ListStudent(predictions), "decomposition", examples, target=0.95, z=0)
    calibration = report.metrics["calibration"]
    assert (calibration["per_triple"], calibration["threshold"]) == (False, 0.5)
    assert calibration["held_out"]["answered"] == 60


def test_an_unproven_whole_answer_threshold_is_kept_for_the_next_look_to_measure():
    """60 right answers in a row show 95 % on all 90 texts but on neither half; per triple,
    the wrong answers' sure-looking triples leave no threshold at all. The whole-answer
    threshold is kept (still refused by the gate), so held out by time can measure it later."""
    examples, predictions = [], []
    for i in range(90):
        right = T(f"a{i}", "p", "b")
        examples.append(Example(source=f"s{i}", references=((right,),)))
        if i < 60:
            predictions.append(Prediction([right], 0.9, triple_confidences=(0.9,)))
        else:
            wrong = T(f"a{i}", "p", "c")
            predictions.append(Prediction([wrong], 0.1, triple_confidences=(0.95,)))
    report = evaluate(ListStudent(predictions), "decomposition", examples, target=0.95)
    calibration = report.metrics["calibration"]
    assert (calibration["calibrated"], calibration["per_triple"]) == (True, False)
    assert (calibration["threshold"], calibration["held_out"]["answered"]) == (0.9, 0)


@pytest.fixture
def encoder_setup(tiny_setup, tiny_encoder_base, memorising_split):
    tiny_setup.VALENCE_ENCODER_BASE_MODEL = str(tiny_encoder_base)
    for text, triples in EXAMPLES:
        for split in ("train", "eval"):
            BoundaryCallFactory(
                input=text,
                output=[t.as_dict() for t in triples],
                served_by="imported",
                split=split,
                # Both splits on purpose (the hash is forced): the tiny model memorises.
                input_hash=hashlib.sha256(f"{split}:{text}".encode()).hexdigest(),
            )
    return tiny_setup


def train_by_pipeline(**overrides) -> ModelVersion:
    config = {**MEMORISE.as_dict(), "epochs": 200, "max_steps": 200, **overrides}
    version = queue_training(
        "decomposition",
        kind="encoder",
        trigger="automatic",
        config={"train": config},
        enqueue=False,
    )
    return run_training(version.pk)


@pytest.mark.django_db
def test_the_pipeline_trains_evaluates_calibrates_and_promotes_an_encoder(encoder_setup):
    version = train_by_pipeline()
    run = version.training_run
    assert (run.status, version.status, version.is_active) == ("succeeded", "ready", True), run.log
    assert (version.kind, version.backend) == ("encoder", "onnx")
    assert version.headline_metric == 1.0
    assert version.metrics["calibration"]["choice"]["kept_triples"]["precision"] == 1.0


@pytest.mark.django_db
def test_the_api_serves_decompositions_from_the_promoted_encoder(encoder_setup, api):
    version = train_by_pipeline()
    body = api.post("/api/v1/decompose", {"text": EXAMPLES[3][0]}, format="json").json()
    assert (body["served_by"], body["model_version"]) == ("student", version.pk)
    [triple] = body["triples"]
    assert (triple["subject"], triple["object"]) == ("Aarhus", "Jacob_Bundsgaard")
    assert triple["source"]["stage"] == "encoder"


@pytest.mark.django_db
def test_an_encoder_cannot_be_trained_for_recomposition(encoder_setup):
    with pytest.raises(ValueError, match="cannot be trained"):
        queue_training("recomposition", kind="encoder", trigger="manual", enqueue=False)


@pytest.mark.django_db
def test_the_encoder_has_its_own_training_trigger(settings):
    from training.pipeline import maybe_queue_training

    settings.VALENCE_TRAIN_EVERY = 100
    settings.VALENCE_ENCODER_TRAIN_EVERY = 2
    BoundaryCallFactory.create_batch(2)
    assert [v.kind for v in maybe_queue_training("decomposition")] == ["encoder"]
    assert maybe_queue_training("recomposition") == []


@pytest.mark.django_db
def test_the_api_benchmark_runs_end_to_end_on_loopback(encoder_setup):
    """Not a timed test: it checks the one-command benchmark works, not how fast it is."""
    from io import StringIO

    from django.core.management import call_command

    version = train_by_pipeline()
    out = StringIO()
    call_command(
        "bench_api",
        "--encoder",
        str(version.pk),
        "--runs",
        "1",
        "--seconds",
        "1",
        "--concurrency",
        "2",
        "--workers",
        "1",
        "--json",
        stdout=out,
        stderr=StringIO(),
    )
    report = json.loads(out.getvalue())
    assert report["encoder_latency"]["requests"] == len(SENTENCES)
    assert report["encoder_latency"]["errors"] == 0
    assert report["encoder_in_process"]["requests"] == len(SENTENCES)  # the model alone, same runs
    assert report["transport"]["requests"] == len(SENTENCES)  # GET /healthz, same count
    assert report["encoder_throughput"]["completed"] > 0
    assert report["stored_calls"] >= report["encoder_throughput"]["completed"]
    assert ModelVersion.objects.filter(is_active=True).count() == 1  # the real registry untouched


@pytest.mark.django_db
def test_the_api_benchmark_can_measure_the_sure_path_only(encoder_setup):
    """--sure serves the scratch copy at threshold 0: no answer is degraded, the registry's own
    threshold is untouched."""
    from io import StringIO

    from django.core.management import call_command

    version = train_by_pipeline()
    threshold = version.threshold
    out = StringIO()
    call_command(
        "bench_api",
        "--encoder",
        str(version.pk),
        "--runs",
        "1",
        "--seconds",
        "0.5",
        "--concurrency",
        "1",
        "--workers",
        "1",
        "--sure",
        "--json",
        stdout=out,
        stderr=StringIO(),
    )
    report = json.loads(out.getvalue())
    assert report["encoder_latency"]["served_by"] == {"student": len(SENTENCES)}
    assert "threshold 0 (every answer sure)" in report["configuration"]
    version.refresh_from_db()
    assert version.threshold == threshold


def test_the_words_between_two_spans_are_averaged_alike_in_training_and_serving():
    import numpy as np
    import torch

    from boundary.encoder import between_tokens
    from training.trainers.encoder import _between

    context = np.random.default_rng(0).normal(size=(9, 3)).astype(np.float32)
    # (subject start, end, object start, end): words between, reversed order, touching spans
    spans = [(0, 1, 5, 6), (6, 7, 1, 2), (2, 3, 4, 4)]
    pairs = torch.tensor([[0, *span] for span in spans])
    trained = _between(torch.from_numpy(context)[None], pairs[:, 0], pairs).numpy()
    served = between_tokens(
        context,
        (np.array([s[0] for s in spans]), np.array([s[1] for s in spans])),
        (np.array([s[2] for s in spans]), np.array([s[3] for s in spans])),
    )
    np.testing.assert_allclose(trained, served, rtol=1e-5)
    np.testing.assert_allclose(served[0], context[2:5].mean(0), rtol=1e-5)
    np.testing.assert_allclose(served[1], context[3:6].mean(0), rtol=1e-5)
    assert not served[2].any()
