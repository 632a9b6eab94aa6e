from __future__ import annotations

from boundary.triples import Triple
from training.evaluation import calibrate, mentions_every_entity


def test_it_picks_the_lowest_threshold_that_reaches_the_target():
    confidences = [0.9, 0.8, 0.7, 0.6, 0.5]
    agreements = [True, True, True, False, False]
    calibration = calibrate(confidences, agreements, target=0.95)
    assert calibration.threshold == 0.7
    assert calibration.expected_fallback_rate == 0.4
    assert calibration.accepted_agreement == 1.0


def test_a_lower_target_accepts_more():
    confidences = [0.9, 0.8, 0.7, 0.6, 0.5]
    agreements = [True, True, True, False, True]
    assert calibrate(confidences, agreements, target=0.8).threshold == 0.5


def test_tied_confidences_are_accepted_or_refused_together():
    calibration = calibrate([0.9, 0.7, 0.7], [True, True, False], target=0.95)
    assert calibration.threshold == 0.9


def test_when_nothing_reaches_the_target_everything_falls_back():
    calibration = calibrate([0.9, 0.8], [False, False], target=0.95)
    assert (calibration.threshold, calibration.expected_fallback_rate) == (1.0, 1.0)
    assert calibration.accepted_agreement is None


def test_a_recomposition_agrees_when_it_mentions_every_entity():
    triples = [Triple("Alan_Bean", "birthPlace", "Wheeler,_Texas")]
    assert mentions_every_entity("Alan Bean was born in Wheeler, Texas.", triples)
    assert not mentions_every_entity("Alan Bean was born in Texas.", triples)
