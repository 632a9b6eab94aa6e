"""simulate-flywheel: the stream, the scoring of served answers, the windows, and one real run.

The end-to-end test starts what the command starts (gunicorn, the django-q2 cluster with the
product's schedule, the teacher stand-in) on tiny random models and a short stream. It bounds
nothing in time (the machine may be busy); it waits for the real every-minute trigger.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from boundary.triples import Triple
from tests.tiny_models import build_tiny_causal_lm, build_tiny_encoder
from training.flywheel import (
    Flywheel,
    FlywheelConfig,
    Outcome,
    Request,
    entries,
    load_requests,
    score,
    summarise,
)
from training.management.commands.simulate_flywheel import format_summary


def record(category: str, text: str, *triples: tuple[str, str, str]) -> dict:
    return {"category": category, "text": text, "triples": [list(t) for t in triples]}


RECORDS = [
    record("Food", "Ajoblanco is from Spain.", ("Ajoblanco", "country", "Spain")),
    record("Food", "Ajoblanco comes from Spain.", ("Ajoblanco", "country", "Spain")),
    record("Food", "Bakso is from Indonesia.", ("Bakso", "country", "Indonesia")),
    record(
        "Food",
        "Arem-arem is from Indonesia and contains rice.",
        ("Arem-arem", "country", "Indonesia"),
        ("Arem-arem", "ingredient", "Rice"),
    ),
    record("Airport", "Aarhus Airport serves Aarhus.", ("Aarhus_Airport", "cityServed", "Aarhus")),
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture
def stream_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "stream.jsonl", RECORDS)


def request(direction: str = "decomposition", triples=(("A", "p", "B"),), texts=("A p B.",)):
    triple_set = tuple(Triple(*t) for t in triples)
    body = (
        {"text": texts[0]}
        if direction == "decomposition"
        else {"triples": [t.as_dict() for t in triple_set]}
    )
    return Request(direction, body, triple_set, tuple(texts))


# --- the stream -------------------------------------------------------------------------------


def test_it_makes_one_call_per_record_and_direction_of_the_category(stream_file):
    requests, records = load_requests(
        stream_file, directions=("decomposition", "recomposition"), category="Food"
    )
    assert len(records) == 4
    assert [r.direction for r in requests[:2]] == ["decomposition", "recomposition"]
    assert len(requests) == 8


def test_the_order_is_seeded(stream_file):
    def order(seed):
        requests, _ = load_requests(stream_file, directions=("decomposition",), seed=seed)
        return [r.body["text"] for r in requests]

    assert order(1) == order(1)
    assert sorted(order(1)) == sorted(order(2))


def test_a_recomposition_knows_every_text_of_its_triple_set(stream_file):
    requests, _ = load_requests(stream_file, directions=("recomposition",), category="Food")
    spain = [r for r in requests if r.triples == (Triple("Ajoblanco", "country", "Spain"),)]
    assert {tuple(sorted(r.texts)) for r in spain} == {
        ("Ajoblanco comes from Spain.", "Ajoblanco is from Spain.")
    }


def test_an_evaluation_counts_each_triple_set_once_for_recomposition(stream_file):
    requests, _ = load_requests(
        stream_file, directions=("decomposition", "recomposition"), category="Food"
    )
    kept = entries(requests)
    assert sum(r.direction == "decomposition" for r in kept) == 4
    assert sum(r.direction == "recomposition" for r in kept) == 3


# --- scoring what was served ----------------------------------------------------------------------


def test_an_answer_in_another_naming_style_is_exactly_right():
    outcome = Outcome(
        request(), 200, "student", output=[{"subject": "a", "predicate": "P", "object": "b"}]
    )
    assert score(outcome).exact is True
    assert (outcome.precision, outcome.recall) == (1.0, 1.0)


def test_a_missing_triple_costs_recall_not_precision():
    wanted = (("A", "p", "B"), ("A", "q", "C"))
    outcome = Outcome(
        request(triples=wanted),
        200,
        "teacher",
        output=[{"subject": "A", "predicate": "p", "object": "B"}],
    )
    score(outcome)
    assert (outcome.exact, outcome.precision, outcome.recall) == (False, 1.0, 0.5)


def test_a_recomposition_is_scored_against_every_reference_text():
    outcome = score(
        Outcome(
            request("recomposition", texts=("x y z.", "A p B.")), 200, "student", output="A p B."
        )
    )
    assert outcome.chrf == pytest.approx(100.0)


def test_a_failed_call_is_not_scored():
    assert score(Outcome(request(), 503)).exact is None


# --- windows -------------------------------------------------------------------------------------


def test_a_window_reports_local_share_agreement_and_spend_per_thousand_calls():
    right = [{"subject": "A", "predicate": "p", "object": "B"}]
    wrong = [{"subject": "A", "predicate": "p", "object": "X"}]
    outcomes = [
        score(Outcome(request(), 200, "student", call_id=1, output=right)),
        score(Outcome(request(), 200, "teacher", call_id=2, output=right)),
        score(Outcome(request(), 200, "student", call_id=3, output=wrong)),
        Outcome(request(), 503),
    ]
    row = summarise(outcomes, {1: (0.0, 0.002), 2: (0.002, 0.002), 3: (0.0, 0.002)})
    assert (row["calls"], row["errors"]) == (4, 1)
    assert row["dec_local_share"] == pytest.approx(2 / 3)
    assert row["dec_local_exact"] == pytest.approx(0.5)
    assert row["dec_served_exact"] == pytest.approx(2 / 3)
    assert row["spend_per_1k_usd"] == pytest.approx(2 / 3)
    assert row["baseline_per_1k_usd"] == pytest.approx(2.0)


def test_a_degraded_answer_is_not_counted_as_answered_locally():
    row = summarise([Outcome(request(), 200, "degraded")], {})
    assert (row["dec_local_share"], row["dec_degraded_share"]) == (0.0, 1.0)


def test_a_remembered_answer_is_counted_apart_from_the_local_share():
    row = summarise([Outcome(request(), 200, "memory"), Outcome(request(), 200, "teacher")], {})
    assert (row["dec_local_share"], row["dec_memory_share"]) == (0.0, 0.5)


# --- the command -------------------------------------------------------------------------------


def waiting_for(calibration: dict, looked_at: int | None = None) -> list[str]:
    """What the simulator would wait for, for a refused encoder judged on 2 of its 3 eval pairs
    (and, with `looked_at`, last seen being judged again when it had that many new answers)."""
    config = FlywheelConfig(
        stream=Path("unused"),
        out_dir=Path("unused"),
        recalibrate_every=1,
        auto_train=("decomposition:encoder",),
    )
    version = {
        "id": 1,
        "direction": "decomposition",
        "kind": "encoder",
        "status": "ready",
        "is_active": False,
        "is_calibrated": calibration.get("calibrated", False),
        "eval_count": 3,
        "data_watermark": 0,
        "metrics": {"calibration": calibration},
    }
    flywheel = Flywheel(config, say=lambda line: None)
    if looked_at is not None:
        flywheel.looked_at[1] = looked_at
    return flywheel._recalibrations_due([version])


def test_it_waits_for_the_recalibration_of_an_unproven_threshold():
    unproven = {"calibrated": True, "chosen_on": 2, "held_out": {"answered": 0}}
    assert waiting_for(unproven) == ["recalibrate v1"]


def test_it_does_not_wait_for_a_version_whose_threshold_answered_held_out():
    proven = {"calibrated": True, "chosen_on": 2, "held_out": {"answered": 5}}
    assert waiting_for(proven) == []


def test_after_a_look_it_waits_only_for_new_answers_since():
    # "chosen on 2 of 3" says due, but the last look had the same (zero) answers: the server,
    # which counts labels since its last look, queues nothing, so nothing is waited for.
    unproven = {"calibrated": True, "chosen_on": 2, "held_out": {"answered": 0}}
    assert waiting_for(unproven, looked_at=0) == []


def test_the_command_refuses_a_missing_stream(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("simulate_flywheel", "--stream", str(tmp_path / "none.jsonl"))


def test_the_command_refuses_a_setting_that_is_not_the_services(stream_file):
    with pytest.raises(CommandError, match="VALENCE_NAME=VALUE"):
        call_command(
            "simulate_flywheel",
            *("--stream", str(stream_file), "--evaluate", ""),
            *("--setting", "ANTHROPIC_BASE_URL=x"),
        )


def test_the_command_refuses_an_error_rate_above_one(stream_file):
    with pytest.raises(CommandError, match="error-rate"):
        call_command("simulate_flywheel", "--stream", str(stream_file), "--teacher-error-rate", "2")


# --- one real run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flywheel_run(tmp_path_factory) -> tuple[dict, Path]:
    """Twelve records through the real service on tiny models: both students train once."""
    folder = tmp_path_factory.mktemp("flywheel")
    texts = [r["text"] for r in RECORDS]
    lm = build_tiny_causal_lm(folder / "lm")
    encoder = build_tiny_encoder(
        folder / "encoder", [w.strip(".,") for t in texts for w in t.split()]
    )
    stream = write_jsonl(folder / "stream.jsonl", (RECORDS[:4] * 3))
    dev = write_jsonl(folder / "dev.jsonl", RECORDS[:4])
    config = FlywheelConfig(
        stream=stream,
        out_dir=folder / "report",
        evaluation=dev,
        window=8,
        concurrency=2,
        teacher_latency_ms=(0.0, 5.0),
        train_every=10,
        encoder_train_every=10,
        environment={
            "VALENCE_BASE_MODEL_DECOMPOSITION": str(lm),
            "VALENCE_BASE_MODEL_RECOMPOSITION": str(lm),
            "VALENCE_ENCODER_BASE_MODEL": str(encoder),
            "VALENCE_GENERATIVE_BACKEND": "transformers",
            "VALENCE_TRAIN_MAX_STEPS": "4",
            "VALENCE_ENCODER_EPOCHS": "1",
            "VALENCE_ENCODER_MIN_STEPS": "0",
            "VALENCE_EVAL_FRACTION": "0.5",
            "VALENCE_EVAL_MAX_PAIRS": "8",
            "VALENCE_AUDIT_RATE": "0",
            # The stream repeats its four records; remembered, the repeats would never reach
            # the LLM, and these tests are about what its answers train.
            "VALENCE_MEMORY": "off",
        },
    )
    lines: list[str] = []
    return Flywheel(config, say=lines.append).run(), folder / "report"


@pytest.mark.django_db
def test_the_stream_is_replayed_in_windows_through_the_service(flywheel_run):
    report, _ = flywheel_run
    assert [w["calls"] for w in report["windows"]] == [8, 8, 8]
    assert report["stream"]["errors"] == 0
    assert report["teacher"]["requests"] > 0  # the server's SDK reached the stand-in


@pytest.mark.django_db
def test_the_products_trigger_trained_both_students_on_the_way(flywheel_run):
    report, _ = flywheel_run
    trained = {(v["direction"], v["kind"]) for v in report["versions"]}
    assert trained == {("decomposition", "encoder"), ("recomposition", "generative")}
    assert report["pauses"], "the replay waited for the trainings"
    assert all(v["status"] in ("ready", "retired", "failed") for v in report["versions"])


@pytest.mark.django_db
def test_spend_is_measured_against_the_all_llm_baseline(flywheel_run):
    report, _ = flywheel_run
    stream = report["stream"]
    assert 0 < stream["spend_per_1k_usd"] <= stream["baseline_per_1k_usd"]
    assert 0 < report["stream_spend_share"] <= 1


@pytest.mark.django_db
def test_the_teachers_answers_agree_with_the_reference(flywheel_run):
    report, _ = flywheel_run
    first = report["windows"][0]  # nothing is trained yet: the teacher answers everything
    assert first["dec_local_share"] == 0.0
    assert first["dec_served_exact"] == 1.0
    assert first["rec_served_chrf"] == pytest.approx(100.0)


@pytest.mark.django_db
def test_the_held_out_entries_are_measured_after_the_stream(flywheel_run):
    report, _ = flywheel_run
    assert report["evaluation"]["entries"] == 7
    assert report["evaluation"]["calls"] == 7


@pytest.mark.django_db
def test_it_writes_json_csv_and_a_chart(flywheel_run):
    report, out = flywheel_run
    assert json.loads((out / "flywheel.json").read_text())["windows"] == report["windows"]
    rows = (out / "flywheel.csv").read_text().splitlines()
    assert rows[0].startswith("window,first_call,calls,errors") and len(rows) == 4
    assert ElementTree.parse(out / "flywheel.svg").getroot().tag.endswith("svg")
    assert (out / "service" / "bench.sqlite3").is_file()  # its dashboards can be opened


@pytest.mark.django_db
def test_the_summary_states_its_configuration_and_teacher(flywheel_run):
    report, out = flywheel_run
    summary = format_summary(report, out)
    assert "teacher: stand-in" in summary and "configuration:" in summary
