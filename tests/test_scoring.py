"""Hand-checked cases for training.scoring; each expected number is worked out in a comment.

Notation for the WebNLG text-to-RDF schemes: per pair, c/i/p/m/s = correct, incorrect, partial,
missed and spurious spans (one reference span per element, so 3 for a real triple);
P = (c [+ 0.5 p]) / (c + i + p + s), R = (c [+ 0.5 p]) / (c + i + p + m), the half-credit for
partial in the Partial scheme only.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest
import sacrebleu

from boundary.triples import Triple, parse_triples
from training.scoring import (
    PRF,
    SCHEMES,
    score_decomposition,
    score_recomposition,
    triple_set_f1,
)

DEV = Path(__file__).resolve().parents[2] / "shared/data/webnlg/dev.jsonl"

BEAN_BIRTHPLACE = Triple("Alan_Bean", "birthPlace", "Wheeler,_Texas")
BEAN_OCCUPATION = Triple("Alan_Bean", "occupation", "Test_pilot")
BEAN_MISSION = Triple("Alan_Bean", "was a crew member of", "Apollo_12")


def decompose(predicted: list[Triple], reference: list[Triple]) -> dict:
    return score_decomposition([predicted], [reference])


def prf(report: dict, scheme: str) -> tuple[float, float, float]:
    scores = report[scheme]
    return scores["precision"], scores["recall"], scores["f1"]


def same(scores: tuple[float, ...], *expected: float) -> bool:
    return scores == pytest.approx(expected)


# --- text -> triples: the WebNLG schemes ------------------------------------------------------


def test_it_gives_identical_triples_full_marks():
    report = decompose([BEAN_BIRTHPLACE, BEAN_OCCUPATION], [BEAN_BIRTHPLACE, BEAN_OCCUPATION])
    for scheme in (*SCHEMES, "exact_set"):
        assert same(prf(report, scheme), 1.0, 1.0, 1.0), scheme
    assert report["entries"] == 1 and report["pairs"] == 2


def test_it_gives_partial_credit_for_an_overlapping_object():
    # Object: reference [wheeler], candidate [wheeler, texas] (the comma is dropped). "wheeler"
    # matches the reference's first and last word, so "texas" joins its span: one candidate span
    # of 2 words over a reference span of 1, same role -> an overlap.
    # Subject and predicate are equal: c=2. Object: Strict/Exact incorrect, Partial partial,
    # Ent_type correct.
    #   strict, exact: c=2 i=1 -> P = R = 2/3;  partial: c=2 p=1 -> (2 + 0.5) / 3 = 5/6
    #   ent_type: c=3 -> 1.0;  exact_set: the triples differ -> 0
    report = decompose(
        [Triple("Alan_Bean", "birthPlace", "Wheeler, Texas")],
        [Triple("Alan_Bean", "birthPlace", "Wheeler")],
    )
    assert same(prf(report, "strict"), 2 / 3, 2 / 3, 2 / 3)
    assert same(prf(report, "exact"), 2 / 3, 2 / 3, 2 / 3)
    assert same(prf(report, "partial"), 5 / 6, 5 / 6, 5 / 6)
    assert same(prf(report, "ent_type"), 1.0, 1.0, 1.0)
    assert same(prf(report, "exact_set"), 0.0, 0.0, 0.0)


def test_it_gives_partial_credit_for_a_truncated_object():
    # The mirror case: candidate [wheeler] over reference [wheeler, texas]; the same counts.
    report = decompose(
        [Triple("Alan_Bean", "birthPlace", "Wheeler")],
        [Triple("Alan_Bean", "birthPlace", "Wheeler, Texas")],
    )
    assert same(prf(report, "exact"), 2 / 3, 2 / 3, 2 / 3)
    assert same(prf(report, "partial"), 5 / 6, 5 / 6, 5 / 6)
    assert same(prf(report, "ent_type"), 1.0, 1.0, 1.0)


def test_it_counts_an_inserted_word_as_a_spurious_span():
    # Object: reference [wheeler, texas], candidate [wheeler, in, texas]. "wheeler" and "texas"
    # match as two 1-grams, each its own candidate span overlapping the reference; "in" touches
    # neither end of the reference, so it is a spurious span of its own.
    # Subject, predicate: c=2. Object: 2 overlapping spans + 1 spurious.
    #   strict: c=2 i=2 s=1 -> P = 2/5, R = 2/4, F1 = 2 * 0.4 * 0.5 / 0.9 = 4/9
    #   partial: c=2 p=2 s=1 -> P = 3/5, R = 3/4, F1 = 2 * 0.6 * 0.75 / 1.35 = 2/3
    #   ent_type: c=4 s=1 -> P = 4/5, R = 4/4, F1 = 2 * 0.8 / 1.8 = 8/9
    report = decompose(
        [Triple("Alan_Bean", "birthPlace", "Wheeler in Texas")],
        [Triple("Alan_Bean", "birthPlace", "Wheeler_Texas")],
    )
    assert same(prf(report, "strict"), 2 / 5, 1 / 2, 4 / 9)
    assert same(prf(report, "exact"), 2 / 5, 1 / 2, 4 / 9)
    assert same(prf(report, "partial"), 3 / 5, 3 / 4, 2 / 3)
    assert same(prf(report, "ent_type"), 4 / 5, 1.0, 8 / 9)


def test_it_gives_boundary_but_not_role_credit_for_a_swapped_subject_and_object():
    # In place, neither subject nor object shares a word, so the scorer retries them swapped:
    # each candidate span then has the reference's exact boundaries but the other role.
    #   predicate: c=1;  subject, object: same boundaries, other label
    #   strict, ent_type: c=1 i=2 -> 1/3;  exact, partial: c=3 -> 1.0
    report = decompose(
        [Triple("Wheeler,_Texas", "birthPlace", "Alan_Bean")],
        [BEAN_BIRTHPLACE],
    )
    assert same(prf(report, "strict"), 1 / 3, 1 / 3, 1 / 3)
    assert same(prf(report, "ent_type"), 1 / 3, 1 / 3, 1 / 3)
    assert same(prf(report, "exact"), 1.0, 1.0, 1.0)
    assert same(prf(report, "partial"), 1.0, 1.0, 1.0)


def test_it_scores_a_missing_triple_as_a_padding_pair_of_zeros():
    # 2 reference triples, 1 prediction -> 2 pairs: (birthplace, birthplace) scores 1.0 and
    # (empty, occupation) scores 0 (all 3 spans missed; no spans predicted, so P = 0 too).
    # Every scheme: P = R = F1 = (1 + 0) / 2 = 0.5.
    # exact_set: 1 of 1 predicted is right, 1 of 2 expected found -> P 1, R 1/2, F1 2/3.
    report = decompose([BEAN_BIRTHPLACE], [BEAN_BIRTHPLACE, BEAN_OCCUPATION])
    assert report["pairs"] == 2
    for scheme in SCHEMES:
        assert same(prf(report, scheme), 0.5, 0.5, 0.5), scheme
    assert same(prf(report, "exact_set"), 1.0, 0.5, 2 / 3)


def test_it_scores_an_extra_triple_as_a_padding_pair_of_zeros():
    # 1 reference triple, 2 predictions -> 2 pairs: the match scores 1.0, (mission, empty)
    # scores 0 (all 3 spans spurious). Every scheme: (1 + 0) / 2 = 0.5.
    # exact_set: P 1/2, R 1, F1 2/3.
    report = decompose([BEAN_BIRTHPLACE, BEAN_MISSION], [BEAN_BIRTHPLACE])
    for scheme in SCHEMES:
        assert same(prf(report, scheme), 0.5, 0.5, 0.5), scheme
    assert same(prf(report, "exact_set"), 0.5, 1.0, 2 / 3)


def test_it_normalises_camel_case_underscores_spacing_and_a_trailing_parenthesis():
    # "Aarhus_Airport" -> "aarhus airport", "cityServed" -> "city served",
    # "Aarhus_(city)" -> "aarhus (city)" -> "aarhus": both triples normalise to the same strings.
    report = decompose(
        [Triple("aarhus  AIRPORT", "city served", "Aarhus")],
        [Triple("Aarhus_Airport", "cityServed", "Aarhus_(city)")],
    )
    for scheme in (*SCHEMES, "exact_set"):
        assert same(prf(report, scheme), 1.0, 1.0, 1.0), scheme


def test_it_drops_a_trailing_parenthesis_only_from_the_object():
    # "Twilight_(band)" as a subject keeps "(band)", so it differs from "Twilight".
    predicted = [Triple("Twilight", "genre", "Black_metal")]
    reference = [Triple("Twilight_(band)", "genre", "Black_metal")]
    assert triple_set_f1(predicted, reference) == 0.0


def test_it_ignores_the_order_of_triples():
    reference = [BEAN_BIRTHPLACE, BEAN_OCCUPATION, BEAN_MISSION]
    report = decompose(list(reversed(reference)), reference)
    for scheme in SCHEMES:
        assert same(prf(report, scheme), 1.0, 1.0, 1.0), scheme


def test_it_averages_over_pairs_not_over_entries():
    # Entry 1: one exact pair (1.0). Entry 2: one exact pair (1.0) and one padding pair (0).
    # Mean over the 3 pairs: (1 + 1 + 0) / 3 = 2/3 (a mean over entries would give 0.75).
    # exact_set (micro): 2 right of 2 predicted, of 3 expected -> P 1, R 2/3, F1 0.8.
    report = score_decomposition(
        [[BEAN_BIRTHPLACE], [BEAN_OCCUPATION]],
        [[BEAN_BIRTHPLACE], [BEAN_OCCUPATION, BEAN_MISSION]],
    )
    assert report["entries"] == 2 and report["pairs"] == 3
    for scheme in SCHEMES:
        assert same(prf(report, scheme), 2 / 3, 2 / 3, 2 / 3), scheme
    assert same(prf(report, "exact_set"), 1.0, 2 / 3, 0.8)


def test_it_sums_exact_set_counts_over_entries():
    # Entry 1: predicted {birthplace, mission}, expected {birthplace, occupation}: 1 right.
    # Entry 2: a duplicated prediction counts once: predicted {mission}, expected {mission}.
    # Totals: 2 right, 3 predicted, 3 expected -> P = R = F1 = 2/3.
    report = score_decomposition(
        [[BEAN_BIRTHPLACE, BEAN_MISSION], [BEAN_MISSION, BEAN_MISSION]],
        [[BEAN_BIRTHPLACE, BEAN_OCCUPATION], [BEAN_MISSION]],
    )
    assert same(prf(report, "exact_set"), 2 / 3, 2 / 3, 2 / 3)


def test_triple_set_f1_scores_one_entry():
    # {birthplace, mission} against {birthplace}: P 1/2, R 1 -> F1 2/3.
    assert triple_set_f1([BEAN_BIRTHPLACE, BEAN_MISSION], [BEAN_BIRTHPLACE]) == pytest.approx(2 / 3)
    assert triple_set_f1([], [BEAN_BIRTHPLACE]) == 0.0
    assert triple_set_f1([], []) == 1.0


def test_it_scores_empty_predictions_as_zero():
    report = score_decomposition([[], []], [[BEAN_BIRTHPLACE], [BEAN_OCCUPATION]])
    assert report["pairs"] == 2
    for scheme in (*SCHEMES, "exact_set"):
        assert same(prf(report, scheme), 0.0, 0.0, 0.0), scheme


def test_it_returns_a_json_serialisable_report():
    report = decompose([BEAN_BIRTHPLACE], [BEAN_OCCUPATION])
    assert json.loads(json.dumps(report)) == report
    assert set(report) == {"entries", "pairs", *SCHEMES, "exact_set"}
    assert all(type(value) is float for value in report["exact"].values())


def test_it_rejects_predictions_and_references_of_different_lengths():
    with pytest.raises(ValueError, match="paired by position"):
        score_decomposition([[BEAN_BIRTHPLACE]], [])


def test_prf_of_computes_f1():
    assert PRF.of(0.5, 1.0) == PRF(0.5, 1.0, pytest.approx(2 / 3))
    assert PRF.of(0.0, 0.0).f1 == 0.0


@pytest.mark.skipif(not DEV.exists(), reason=f"{DEV} is not here")
def test_it_scores_webnlg_dev_records_against_themselves_perfectly():
    with DEV.open(encoding="utf-8") as lines:
        triples = [parse_triples(json.loads(line)["triples"]) for line in islice(lines, 200)]
    report = score_decomposition(triples, triples)
    assert report["entries"] == 200
    for scheme in (*SCHEMES, "exact_set"):
        assert same(prf(report, scheme), 1.0, 1.0, 1.0), scheme


# --- triples -> text --------------------------------------------------------------------------


def test_it_gives_identical_text_100_bleu_and_chrf():
    report = score_recomposition(
        ["Alan Bean was born in Wheeler, Texas."], [["Alan Bean was born in Wheeler, Texas."]]
    )
    assert report == {"entries": 1, "bleu": pytest.approx(100.0), "chrf_pp": pytest.approx(100.0)}


def test_it_lets_a_hypothesis_match_any_of_its_references():
    report = score_recomposition(
        ["Alan Bean was born in Wheeler, Texas."],
        [["Wheeler, Texas is where Alan Bean was born.", "Alan Bean was born in Wheeler, Texas."]],
    )
    assert report["bleu"] == pytest.approx(100.0)
    assert report["chrf_pp"] == pytest.approx(100.0)


def test_it_matches_sacrebleu_with_multiple_references():
    hypotheses = ["Alan Bean, born in Wheeler, was a test pilot.", "Aarhus is led by Jacob."]
    references = [
        [
            "Alan Bean was born in Wheeler and was a test pilot.",
            "Test pilot Alan Bean was born in Wheeler.",
        ],
        ["The leader of Aarhus is Jacob Bundsgaard.", "Jacob Bundsgaard leads Aarhus."],
    ]
    streams = [[refs[0] for refs in references], [refs[1] for refs in references]]
    report = score_recomposition(hypotheses, references)
    assert report["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, streams).score)
    assert report["chrf_pp"] == pytest.approx(
        sacrebleu.corpus_chrf(hypotheses, streams, word_order=2).score
    )


def test_it_does_not_let_missing_references_lift_the_brevity_penalty():
    # Entry 2 has one reference. Padded with a blank string, that blank (0 words) would be the
    # closest reference length to the 2-word hypothesis, so corpus ref_len = 9 + 0 < sys_len 11
    # and BLEU would skip the brevity penalty. Padded with None, sacreBLEU ignores it:
    # ref_len = 9 + 6 = 15 > 11, so the penalty exp(1 - 15/11) applies.
    hypotheses = ["the quick brown fox jumps over the lazy dog", "the cat"]
    references = [
        ["the quick brown fox jumps over the lazy dog", "a fast brown fox leaps over a lazy dog"],
        ["the cat sat on the mat"],
    ]
    report = score_recomposition(hypotheses, references)
    ignored = sacrebleu.corpus_bleu(
        hypotheses, [[r[0] for r in references], [references[0][1], None]]
    )
    blank = sacrebleu.corpus_bleu(hypotheses, [[r[0] for r in references], [references[0][1], ""]])
    assert report["bleu"] == pytest.approx(ignored.score)
    assert ignored.ref_len == 15 and blank.ref_len == 9
    assert report["bleu"] < blank.score


def test_it_rejects_an_entry_without_references():
    with pytest.raises(ValueError, match="at least one reference"):
        score_recomposition(["Alan Bean was a test pilot."], [[]])
