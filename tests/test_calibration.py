from __future__ import annotations

import pytest

from boundary.triples import Triple
from training.evaluation import (
    Example,
    calibrate,
    evaluate,
    expected_calibration_error,
    held_apart,
    mentions_every_entity,
    round_trip,
    wilson_interval,
)


def test_it_picks_the_lowest_threshold_that_reaches_the_target():
    confidences = [0.9, 0.8, 0.7, 0.6, 0.5]
    agreements = [True, True, True, False, False]
    calibration = calibrate(confidences, agreements, target=0.95, z=0)
    assert calibration.threshold == 0.7
    assert calibration.expected_fallback_rate == 0.4
    assert calibration.accepted_agreement == 1.0


def test_a_lower_target_accepts_more():
    confidences = [0.9, 0.8, 0.7, 0.6, 0.5]
    agreements = [True, True, True, False, True]
    assert calibrate(confidences, agreements, target=0.8, z=0).threshold == 0.5


def test_tied_confidences_are_accepted_or_refused_together():
    calibration = calibrate([0.9, 0.7, 0.7], [True, True, False], target=0.95, z=0)
    assert calibration.threshold == 0.9


def test_the_threshold_needs_confidence_not_a_lucky_streak():
    # 19 of the top 20 agree (95 %): enough for the point estimate, not for a 95 % lower bound.
    confidences = [1 - n / 100 for n in range(40)]
    agreements = [n != 7 for n in range(20)] + [True] * 20
    assert calibrate(confidences[:20], agreements[:20], target=0.9, z=0).threshold == 0.81
    assert calibrate(confidences[:20], agreements[:20], target=0.9).threshold is None
    # Forty answers with one miss: the lower bound (≈ 0.87) clears 0.85 at the lowest one.
    assert calibrate(confidences, agreements, target=0.85).threshold == 0.61


def test_when_nothing_reaches_the_target_it_is_uncalibrated():
    calibration = calibrate([1.0, 0.8], [False, False], target=0.95)
    assert (calibration.threshold, calibration.expected_fallback_rate) == (None, 1.0)
    assert calibration.accepted_agreement is None


def test_a_recomposition_agrees_when_it_mentions_every_entity():
    triples = [Triple("Alan_Bean", "birthPlace", "Wheeler,_Texas")]
    assert mentions_every_entity("Alan Bean was born in Wheeler, Texas.", triples)
    assert not mentions_every_entity("Alan Bean was born in Texas.", triples)


CHRIS = Triple("Chris", "prefers", "composable architectures")
ANA = Triple("Ana", "uses", "Vim")


def test_round_trip_agrees_when_the_text_states_exactly_its_facts():
    assert round_trip([CHRIS, ANA], [ANA, CHRIS]).agrees


def test_round_trip_catches_a_wrong_predicate():
    hates = Triple("Chris", "hates", "composable architectures")
    trip = round_trip([CHRIS], [hates])
    assert not trip.agrees
    assert (trip.recalled, trip.supported) == (0, 0)


def test_round_trip_catches_an_invented_fact():
    trip = round_trip([CHRIS], [CHRIS, Triple("Chris", "livesIn", "Paris")])
    assert not trip.agrees
    assert (trip.recalled, trip.supported, trip.recovered) == (1, 1, 2)


def test_round_trip_forgives_another_spelling_of_a_date():
    born = Triple("Ana", "birthDate", "1932-03-15")
    assert round_trip([born], [Triple("Ana", "birthDate", "March 15, 1932")]).agrees


def test_wilson_interval_brackets_the_share_and_is_narrower_with_more_data():
    low, high = wilson_interval(19, 20)
    assert low < 0.95 < high
    low_big, high_big = wilson_interval(950, 1000)
    assert high_big - low_big < high - low
    assert wilson_interval(0, 0) is None


def test_ece_is_zero_when_confidence_matches_agreement_and_large_when_overconfident():
    assert expected_calibration_error([1.0, 1.0, 0.0, 0.0], [True, True, False, False]) == 0.0
    assert expected_calibration_error([0.95] * 4, [False] * 4) == 0.95


def _examples(count: int) -> list[Example]:
    return [
        Example(f"Person {n} uses tool {n}.", ((Triple(f"Person {n}", "uses", f"tool {n}"),),))
        for n in range(count)
    ]


def test_held_apart_halves_never_share_a_triple_set():
    examples = _examples(200)
    wordings = [Example(f"Another wording {n}.", e.references) for n, e in enumerate(examples)]
    choose, measure = held_apart(examples + wordings)
    assert choose and measure
    sets = lambda indexes: {(examples + wordings)[i].references for i in indexes}  # noqa: E731
    assert not sets(choose) & sets(measure)


class _Student:
    """Right on even-numbered people, wrong on odd ones, always confident 0.9: a threshold
    chosen on one half cannot promise the other half more than it delivers."""

    def decompose(self, text: str):
        from boundary.students import StudentAnswer

        number = int(text.split()[1])
        obj = f"tool {number}" if number % 2 == 0 else "something else"
        return StudentAnswer([Triple(f"Person {number}", "uses", obj)], 0.9)


def test_calibration_reports_agreement_measured_on_examples_it_did_not_choose_on():
    report = evaluate(_Student(), "decomposition", _examples(200), target=0.3)
    calibration = report.metrics["calibration"]
    assert calibration["chosen_on"] == calibration["measured_on"] == 200  # cross-fitted
    held_out = calibration["held_out"]
    assert held_out["count"] == calibration["measured_on"]
    low, high = held_out["agreement_interval"]
    assert low <= held_out["agreement"] <= high
    assert calibration["accepted_agreement"] == held_out["agreement"]
    assert calibration["ece"] is not None


def test_a_student_that_never_reaches_the_target_is_uncalibrated():
    report = evaluate(_Student(), "decomposition", _examples(40), target=0.95)
    assert report.metrics["calibration"]["calibrated"] is False
    assert report.calibration.threshold is None


def test_the_decomposition_headline_is_strict_f1():
    report = evaluate(_Student(), "decomposition", _examples(20), target=0.5)
    assert report.metrics["headline"] == report.metrics["strict"]["f1"]


class _Writer:
    def recompose(self, triples):
        from boundary.students import StudentAnswer

        return StudentAnswer("Chris hates composable architectures.", 0.99)


def test_recomposition_agreement_is_a_round_trip_when_a_decomposer_exists():
    examples = [Example((CHRIS,), ("Chris prefers composable architectures.",))]
    hates = [Triple("Chris", "hates", "composable architectures")]
    report = evaluate(
        _Writer(), "recomposition", examples, target=0.5, decomposer=lambda text: hates
    )
    assert report.agreements == [False]
    assert report.metrics["round_trip"]["recall"] == 0.0
    without = evaluate(_Writer(), "recomposition", examples, target=0.5)
    assert without.agreements == [True]  # only the entity pre-check, and it says so
    assert "no decomposer" in without.metrics["agreement_method"]


@pytest.mark.django_db
def test_recomposition_is_round_tripped_through_the_active_local_decomposer(scripted_loader):
    from tests.factories import ModelVersionFactory
    from tests.scripted_student import ScriptedStudent
    from training.pipeline import round_trip_decomposer

    assert round_trip_decomposer("recomposition") == (None, "")
    version = ModelVersionFactory(backend="scripted", is_active=True)
    scripted_loader.students[version.pk] = ScriptedStudent([CHRIS])
    decomposer, name = round_trip_decomposer("recomposition")
    assert decomposer("Chris likes composable architectures.") == [CHRIS]
    assert name == f"v{version.pk} (generative)"
    assert round_trip_decomposer("decomposition") == (None, "")


class _RightOnOneHalf:
    """Confident everywhere, right only on the examples of `right`: a threshold chosen there
    looks perfect, and only measuring it on the other half shows what it delivers."""

    def __init__(self, right: set[str]) -> None:
        self.right = right

    def decompose(self, text: str):
        from boundary.students import StudentAnswer

        number = int(text.split()[1])
        obj = f"tool {number}" if text in self.right else "something else"
        return StudentAnswer([Triple(f"Person {number}", "uses", obj)], 0.9)


def test_each_half_is_measured_by_the_threshold_chosen_on_the_other():
    examples = _examples(200)
    first, second = held_apart(examples)
    right = {str(examples[i].source) for i in first}
    report = evaluate(_RightOnOneHalf(right), "decomposition", examples, target=0.9)
    held_out = report.metrics["calibration"]["held_out"]
    # Chosen on the right half, 0.9 accepts the wrong half: all of its answers disagree.
    # Chosen on the wrong half, no threshold exists: the right half is never answered.
    assert held_out["answered"] == len(second)
    assert held_out["agreement"] == 0.0


def test_pooled_folds_add_up_as_one_measurement():
    from training.evaluation import pooled, wilson_interval

    folds = [
        {"count": 10, "answered": 4, "right": 4, "kept_triples": {"kept": 5, "right": 5}},
        {"count": 30, "answered": 6, "right": 3, "kept_triples": {"kept": 5, "right": 0}},
    ]
    result = pooled(folds)
    assert (result["count"], result["answered"], result["agreement"]) == (40, 10, 0.7)
    assert result["fallback_rate"] == 0.75
    assert result["agreement_interval"] == wilson_interval(7, 10)
    assert result["kept_triples"]["precision"] == 0.5
