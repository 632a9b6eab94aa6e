from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from valence_site.cli import main


def webnlg(record_id: str, triples: list[list[str]], text: str) -> dict:
    """A reference line shaped like shared/data/webnlg/*.jsonl."""
    entry_id = record_id.rsplit("/", 1)[0]
    return {
        "id": record_id,
        "split": "dev",
        "category": "Astronaut",
        "seen": None,
        "triples": triples,
        "text": text,
        "entry_id": entry_id,
        "size": len(triples),
        "lex_comment": "good",
        "release": "webnlg-3.0-en",
    }


REFERENCES = [
    webnlg(
        "dev/1triples/Astronaut/Id1/Id1",
        [["Alan_Bean", "birthPlace", "Wheeler,_Texas"]],
        "Alan Bean was born in Wheeler, Texas.",
    ),
    webnlg(
        "dev/1triples/Astronaut/Id1/Id2",
        [["Alan_Bean", "birthPlace", "Wheeler,_Texas"]],
        "Wheeler, Texas is the birthplace of Alan Bean.",
    ),
    webnlg(
        "dev/1triples/Astronaut/Id2/Id1",
        [["Alan_Bean", "occupation", "Test_pilot"]],
        "Alan Bean was a test pilot.",
    ),
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def references(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "references.jsonl", REFERENCES)


def score(direction: str, predictions: Path, references: Path, *extra: str) -> dict:
    out = StringIO()
    call_command(
        "score_boundary",
        "--direction",
        direction,
        "--predictions",
        str(predictions),
        "--references",
        str(references),
        *extra,
        stdout=out,
    )
    return json.loads(out.getvalue())


def test_it_scores_decomposition_predictions_joined_by_id(tmp_path, references):
    predictions = write_jsonl(
        tmp_path / "predictions.jsonl",
        [
            {
                "id": "dev/1triples/Astronaut/Id2/Id1",
                "triples": [
                    {"subject": "Alan Bean", "predicate": "occupation", "object": "Test pilot"}
                ],
            },
            {
                "id": "dev/1triples/Astronaut/Id1/Id2",
                "triples": [["Alan_Bean", "birthPlace", "Wheeler,_Texas"]],
            },
            {
                "id": "dev/1triples/Astronaut/Id1/Id1",
                "triples": [["Alan_Bean", "birthPlace", "Wheeler,_Texas"]],
            },
        ],
    )
    report = score("decomposition", predictions, references)
    assert report["direction"] == "decomposition"
    assert report["entries"] == 3 and report["missing_predictions"] == 0
    assert report["exact"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert report["exact_set"]["f1"] == 1.0


def test_it_scores_a_reference_without_a_prediction_as_empty(tmp_path, references):
    # Two records predicted exactly, one not at all: pairs 1.0, 1.0, 0 -> 2/3 in every scheme;
    # exact_set: 2 right of 2 predicted, of 3 expected -> P 1, R 2/3, F1 0.8.
    predictions = write_jsonl(
        tmp_path / "predictions.jsonl",
        [
            {
                "id": "dev/1triples/Astronaut/Id1/Id1",
                "triples": [["Alan_Bean", "birthPlace", "Wheeler,_Texas"]],
            },
            {
                "id": "dev/1triples/Astronaut/Id2/Id1",
                "triples": [["Alan_Bean", "occupation", "Test_pilot"]],
            },
        ],
    )
    report = score("decomposition", predictions, references)
    assert report["missing_predictions"] == 1
    assert report["exact"]["recall"] == pytest.approx(2 / 3)
    assert report["exact_set"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8})


def test_it_accepts_a_prediction_with_no_triples(tmp_path, references):
    predictions = write_jsonl(
        tmp_path / "predictions.jsonl", [{"id": "dev/1triples/Astronaut/Id1/Id1", "triples": []}]
    )
    report = score("decomposition", predictions, references)
    assert report["missing_predictions"] == 2
    assert report["exact"]["f1"] == 0.0


def test_it_scores_recomposition_against_every_text_of_an_entry(tmp_path, references):
    # Entry Id1 has two texts; the prediction equals the second one.
    predictions = write_jsonl(
        tmp_path / "predictions.jsonl",
        [
            {
                "entry_id": "dev/1triples/Astronaut/Id1",
                "text": "Wheeler, Texas is the birthplace of Alan Bean.",
            },
            {"entry_id": "dev/1triples/Astronaut/Id2", "text": "Alan Bean was a test pilot."},
        ],
    )
    report = score("recomposition", predictions, references)
    assert report["direction"] == "recomposition"
    assert report["entries"] == 2 and report["missing_predictions"] == 0
    assert report["bleu"] == pytest.approx(100.0)
    assert report["chrf_pp"] == pytest.approx(100.0)


def test_it_writes_the_report_to_an_output_file(tmp_path, references):
    predictions = write_jsonl(
        tmp_path / "predictions.jsonl",
        [{"entry_id": "dev/1triples/Astronaut/Id2", "text": "Alan Bean was a test pilot."}],
    )
    output = tmp_path / "report.json"
    printed = score("recomposition", predictions, references, "--output", str(output))
    assert json.loads(output.read_text(encoding="utf-8")) == printed
    assert printed["missing_predictions"] == 1


def test_it_rejects_a_prediction_for_an_unknown_id(tmp_path, references):
    predictions = write_jsonl(
        tmp_path / "predictions.jsonl", [{"id": "dev/nowhere/Id9", "triples": [["a", "b", "c"]]}]
    )
    with pytest.raises(
        CommandError, match=r"predictions\.jsonl, line 1: id 'dev/nowhere/Id9' is not in"
    ):
        score("decomposition", predictions, references)


def test_it_rejects_a_duplicate_prediction(tmp_path, references):
    line = {"entry_id": "dev/1triples/Astronaut/Id2", "text": "Alan Bean was a test pilot."}
    predictions = write_jsonl(tmp_path / "predictions.jsonl", [line, line])
    with pytest.raises(CommandError, match=r"line 2: duplicate entry_id"):
        score("recomposition", predictions, references)


def test_it_reports_a_missing_file(tmp_path, references):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(CommandError, match=r"nope\.jsonl: no such file"):
        score("decomposition", missing, references)


def test_it_reports_invalid_json_with_the_file_and_line(tmp_path, references):
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        '{"id": "dev/1triples/Astronaut/Id1/Id1", "triples": []}\n\n{"id": oops}\n',
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match=r"predictions\.jsonl, line 3: invalid JSON"):
        score("decomposition", predictions, references)


def test_it_reports_a_missing_key_with_the_file_and_line(tmp_path):
    references = write_jsonl(tmp_path / "references.jsonl", [REFERENCES[0], {"id": "x"}])
    predictions = write_jsonl(tmp_path / "predictions.jsonl", [{"id": "x", "triples": []}])
    with pytest.raises(CommandError, match=r"references\.jsonl, line 2: missing key 'triples'"):
        score("decomposition", predictions, references)


def test_it_reports_malformed_triples_with_the_file_and_line(tmp_path, references):
    predictions = write_jsonl(
        tmp_path / "predictions.jsonl",
        [{"id": "dev/1triples/Astronaut/Id1/Id1", "triples": [["Alan_Bean", "birthPlace"]]}],
    )
    with pytest.raises(CommandError, match=r"line 1: triples\[0\]: A triple list needs exactly 3"):
        score("decomposition", predictions, references)


def test_it_reports_a_line_that_is_not_an_object(tmp_path, references):
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"line 1: expected a JSON object"):
        score("recomposition", predictions, references)


def test_the_valence_script_prints_an_error_not_a_traceback(tmp_path, references, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "valence",
                "score-boundary",
                "--direction",
                "decomposition",
                "--predictions",
                str(tmp_path / "nope.jsonl"),
                "--references",
                str(references),
            ]
        )
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert "nope.jsonl: no such file" in error
    assert "Traceback" not in error


# --- seen and unseen entities ------------------------------------------------------------------


@pytest.fixture
def novelty_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [webnlg("train/1/Id1/Id1", [["Alan_Bean", "birthPlace", "Wheeler,_Texas"]], "x")],
    )
    references = write_jsonl(
        tmp_path / "refs.jsonl",
        [
            webnlg("dev/1/Id1/Id1", [["Alan_Bean", "birthPlace", "Wheeler,_Texas"]], "a"),
            webnlg("dev/1/Id2/Id1", [["Alan_Bean", "occupation", "Test_pilot"]], "b"),
            webnlg("dev/1/Id3/Id1", [["Elliot_See", "occupation", "Test_pilot"]], "c"),
        ],
    )
    predictions = write_jsonl(
        tmp_path / "predictions.jsonl",
        [
            {"id": "dev/1/Id1/Id1", "triples": [["Alan Bean", "birthPlace", "Wheeler, Texas"]]},
            {"id": "dev/1/Id2/Id1", "triples": [["Alan Bean", "occupation", "Test pilot"]]},
            {"id": "dev/1/Id3/Id1", "triples": []},
        ],
    )
    return train, references, predictions


def test_entries_are_scored_apart_by_whether_training_saw_their_entities(novelty_files):
    train, references, predictions = novelty_files
    report = score("decomposition", predictions, references, "--by-entity-novelty", str(train))[
        "by_entity_novelty"
    ]
    assert {group: report[group]["entries"] for group in ("seen", "mixed", "unseen")} == {
        "seen": 1,
        "mixed": 1,
        "unseen": 1,
    }
    assert report["seen"]["strict"]["f1"] == 1.0
    assert report["unseen"]["strict"]["f1"] == 0.0


def test_entity_novelty_applies_to_decomposition_only(novelty_files, references):
    train, _, _ = novelty_files
    predictions = write_jsonl(references.parent / "texts.jsonl", [])
    with pytest.raises(CommandError, match="decomposition only"):
        score("recomposition", predictions, references, "--by-entity-novelty", str(train))


# --- predictions from a registered version -------------------------------------------------------


def predict(version: int, data: Path, out: Path) -> None:
    call_command(
        "predict_boundary",
        *("--version", str(version), "--data", str(data), "--out", str(out)),
        stdout=StringIO(),
    )


@pytest.mark.django_db
def test_a_versions_predictions_score_as_they_are(scripted_loader, tmp_path, references):
    from boundary.triples import Triple
    from tests.factories import ModelVersionFactory
    from tests.scripted_student import ScriptedStudent

    version = ModelVersionFactory(backend="scripted")
    answer = [Triple("Alan_Bean", "birthPlace", "Wheeler,_Texas")]
    scripted_loader.students[version.pk] = ScriptedStudent(answer, confidence=0.7)
    out = tmp_path / "predictions.jsonl"
    predict(version.pk, references, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == [r["id"] for r in REFERENCES]
    assert lines[0]["confidence"] == 0.7
    report = score("decomposition", out, references)
    assert report["exact_set"]["f1"] == pytest.approx(2 / 3)  # two of three records right


@pytest.mark.django_db
def test_a_recomposition_is_predicted_once_per_entry(scripted_loader, tmp_path, references):
    from tests.factories import ModelVersionFactory
    from tests.scripted_student import ScriptedStudent

    version = ModelVersionFactory(backend="scripted", direction="recomposition")
    scripted_loader.students[version.pk] = ScriptedStudent(text="Alan Bean was a test pilot.")
    out = tmp_path / "texts.jsonl"
    predict(version.pk, references, out)
    assert [json.loads(line)["entry_id"] for line in out.read_text().splitlines()] == [
        "dev/1triples/Astronaut/Id1",
        "dev/1triples/Astronaut/Id2",
    ]


@pytest.mark.django_db
def test_predicting_with_an_unknown_version_is_refused(tmp_path, references):
    with pytest.raises(CommandError, match="no model version"):
        predict(999, references, tmp_path / "o")
