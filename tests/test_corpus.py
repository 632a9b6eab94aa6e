"""The shipped example corpus: reproducible, big and varied enough, and faithful to its triples."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import cache
from typing import Any

import pytest

from boundary.triples import parse_triples
from tools import corpus_generate as generate

Record = dict[str, Any]

# Literals are canonical in the triple and may be worded differently in the text.
LITERAL = re.compile(r"\d{4}-\d{2}-\d{2}|\d{4}|\d+|\d+ (USD|EUR|GBP)")
DATE_PREDICATES = {"joinedOn", "releasedOn", "deadline"}
NUMBER_PREDICATES = {"teamSize", "employeeCount", "yearsOfExperience"}
MONTHS = "January February March April May June July August September October November December"
NUMBER_WORDS = (
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty twenty-five thirty forty fifty"
)
SIZE_TARGETS = {"1": 0.35, "2": 0.30, "3": 0.20, "4-5": 0.15}


@cache
def _records() -> tuple[Record, ...]:
    with generate.OUTPUT.open(encoding="utf-8") as handle:
        return tuple(json.loads(line) for line in handle)


@pytest.fixture
def records() -> tuple[Record, ...]:
    return _records()


def skeleton(record: Record) -> str:
    """The text with its entities, dates and numbers blanked: what is left is the wording."""
    text = record["text"]
    names = {part for triple in record["triples"] for part in (triple[0], triple[2])}
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, "E")
    text = re.sub(rf"\b({'|'.join(MONTHS.split())})\b", "M", text)
    text = re.sub(r"[$€£]?\d[\d,.]*(-\d+)*(st|nd|rd|th)?", "N", text)
    return re.sub(rf"\b({'|'.join(NUMBER_WORDS.split())})\b", "N", text, flags=re.IGNORECASE)


def test_committed_file_is_the_generator_output() -> None:
    expected = generate.dumps(generate.generate())
    assert generate.OUTPUT.read_text(encoding="utf-8") == expected, (
        "valence_examples.jsonl is stale: run `python tools/corpus_generate.py`"
    )


def test_it_has_at_least_1200_records(records: tuple[Record, ...]) -> None:
    assert len(records) >= 1200


def test_records_have_the_webnlg_shape_and_unique_ids(records: tuple[Record, ...]) -> None:
    for record in records:
        assert set(record) == {"id", "entry_id", "text", "triples"}
        assert re.fullmatch(r"valence/\d+", record["id"])
        assert re.fullmatch(r"valence/e\d+", record["entry_id"])
    assert len({record["id"] for record in records}) == len(records)


def test_every_record_parses_as_triples(records: tuple[Record, ...]) -> None:
    for record in records:
        triples = parse_triples(record["triples"], path=record["id"])
        assert [t.as_list() for t in triples] == record["triples"]


def test_texts_are_unique_and_tidy(records: tuple[Record, ...]) -> None:
    texts = [record["text"] for record in records]
    assert len(set(texts)) == len(texts)
    for text in texts:
        assert text == " ".join(text.split())
        assert text[0].isupper() and text.endswith("."), text


def test_records_of_one_entry_share_one_triple_set(records: tuple[Record, ...]) -> None:
    by_entry: dict[str, set[str]] = defaultdict(set)
    for record in records:
        by_entry[record["entry_id"]].add(json.dumps(record["triples"]))
    assert all(len(sets) == 1 for sets in by_entry.values())
    assert len(by_entry) < len(records)  # some entries have several wordings


def test_it_uses_at_least_40_camel_case_predicates(records: tuple[Record, ...]) -> None:
    predicates = {triple[1] for record in records for triple in record["triples"]}
    assert len(predicates) >= 40
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)*", p) for p in predicates), predicates


def test_every_predicate_is_well_represented(records: tuple[Record, ...]) -> None:
    counts = Counter(triple[1] for record in records for triple in record["triples"])
    assert min(counts.values()) >= 20, counts.most_common()[-5:]


def test_size_distribution_is_near_the_targets(records: tuple[Record, ...]) -> None:
    sizes = Counter(len(record["triples"]) for record in records)
    assert set(sizes) <= {1, 2, 3, 4, 5}
    shares = {
        "1": sizes[1] / len(records),
        "2": sizes[2] / len(records),
        "3": sizes[3] / len(records),
        "4-5": (sizes[4] + sizes[5]) / len(records),
    }
    for bucket, target in SIZE_TARGETS.items():
        assert abs(shares[bucket] - target) <= 0.03, (bucket, shares[bucket])


def test_wording_varies_rather_than_repeating_templates(records: tuple[Record, ...]) -> None:
    skeletons = Counter(skeleton(record) for record in records)
    openings = {" ".join(s.split()[:3]) for s in skeletons.elements()}
    assert len(openings) >= 300
    assert len(skeletons) >= 0.75 * len(records)
    assert skeletons.most_common(1)[0][1] <= 0.01 * len(records)


def test_each_predicate_is_worded_several_ways_on_its_own(records: tuple[Record, ...]) -> None:
    wordings: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if len(record["triples"]) == 1:
            wordings[record["triples"][0][1]].add(skeleton(record))
    fewest = min(wordings, key=lambda predicate: len(wordings[predicate]))
    assert len(wordings[fewest]) >= 3, (fewest, wordings[fewest])


def test_every_entity_appears_verbatim_in_its_text(records: tuple[Record, ...]) -> None:
    for record in records:
        for subject, _, obj in record["triples"]:
            for name in (subject, obj):
                if not LITERAL.fullmatch(name):
                    assert name in record["text"], (name, record["text"])


def test_literals_use_the_canonical_forms(records: tuple[Record, ...]) -> None:
    for record in records:
        for _, predicate, obj in record["triples"]:
            if predicate in DATE_PREDICATES:
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", obj), obj
            elif predicate in NUMBER_PREDICATES:
                assert re.fullmatch(r"[1-9]\d*", obj), obj
            elif predicate == "foundedIn":
                assert re.fullmatch(r"\d{4}", obj), obj
            elif predicate == "budget":
                assert re.fullmatch(r"[1-9]\d* (USD|EUR|GBP)", obj), obj
        for subject, _, obj in record["triples"]:
            assert "_" not in subject + obj


def test_every_literal_is_said_in_its_text(records: tuple[Record, ...]) -> None:
    forms = {
        **dict.fromkeys(DATE_PREDICATES, generate.date_forms),
        **dict.fromkeys(NUMBER_PREDICATES, generate.number_forms),
        "budget": generate.money_forms,
        "foundedIn": lambda year: [year],
    }
    for record in records:
        for _, predicate, obj in record["triples"]:
            if predicate in forms:
                said = [form for form in forms[predicate](obj) if form in record["text"]]
                assert said, (obj, record["text"])
