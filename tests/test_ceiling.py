"""The span ceiling: what alignment and the normaliser alone get right, before any model."""

from __future__ import annotations

import json

from django.core.management import call_command

from training.ceiling import span_ceiling


def _record(text: str, *triples: list[str]) -> dict:
    return {"text": text, "triples": [list(t) for t in triples]}


LEARN = [
    _record("Alan Bean was born on March 15, 1932.", ["Alan_Bean", "birthDate", '"1932-03-15"']),
    _record(
        "Buzz Aldrin was born on 20 January 1930.", ["Buzz_Aldrin", "birthDate", '"1930-01-20"']
    ),
]


def test_a_record_whose_spans_normalise_to_its_triples_counts_as_reachable():
    score = [
        _record(
            "Pete Conrad was born on June 2, 1930.", ["Pete_Conrad", "birthDate", '"1930-06-02"']
        )
    ]
    ceiling = span_ceiling(LEARN, score)
    assert (ceiling.all_aligned, ceiling.exactly_right) == (1, 1)


def test_an_entity_missing_from_the_sentence_is_out_of_reach():
    score = [_record("Pete Conrad was an astronaut.", ["Pete_Conrad", "birthDate", '"1930-06-02"'])]
    ceiling = span_ceiling(LEARN, score)
    assert ceiling.exactly_right == 0
    assert ceiling.misses["unaligned"] == 1


def test_the_command_reports_the_share_of_one_fold(tmp_path, capsys):
    path = tmp_path / "records.jsonl"
    rows = [
        {
            **_record(
                f"Person {n} was born on March {n}, 1930.",
                [f"Person_{n}", "birthDate", f'"1930-03-{n:02d}"'],
            ),
            "entry_id": f"e{n}",
        }
        for n in range(1, 29)
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows))
    call_command("span_ceiling", str(path))
    report = json.loads(capsys.readouterr().out)
    assert report["records"] + report["learned_on"] == 28
    assert report["exactly_right"] == 1.0
