"""Aligning canonical entities to text, and learning to turn spans back into canonical forms."""

from __future__ import annotations

from datetime import date

import pytest

from boundary.entities import apply_format, parse_date
from boundary.triples import Triple
from training.normaliser import align, display_form, find_span, learn_normaliser


@pytest.mark.parametrize(
    ("canonical", "shown"),
    [
        ("Aarhus_Airport", "Aarhus Airport"),
        ('"Aarhus, Denmark"', "Aarhus, Denmark"),
        ('"1932-03-15"^^xsd:date', "1932-03-15"),
        ('"Ajo blanco"@en', "Ajo blanco"),
    ],
)
def test_display_form_drops_quotes_tags_and_underscores(canonical, shown):
    assert display_form(canonical) == shown


@pytest.mark.parametrize(
    "text",
    ["1932-03-15", "March 15, 1932", "15 March 1932", "March 15th, 1932", "15th of Mar 1932"],
)
def test_dates_parse_in_the_usual_english_forms(text):
    assert parse_date(text) == date(1932, 3, 15)


def test_an_impossible_date_is_not_a_date():
    assert parse_date("February 30, 1932") is None


def _surface(text: str, canonical: str) -> str | None:
    span = find_span(text, canonical)
    return text[span[0] : span[1]] if span else None


@pytest.mark.parametrize(
    ("text", "canonical", "surface"),
    [
        ("He was born on March 15th, 1932.", '"1932-03-15"', "March 15th, 1932"),
        ("The runway is 2,776 metres long.", "2776.0", "2,776"),
        ("It serves Aarhus in Denmark.", '"Aarhus, Denmark"', "Aarhus"),
        ("Ardmore Airport is in New Zealand.", "Ardmore_Airport_(New_Zealand)", "Ardmore Airport"),
        ("The Abilene regional airport", "Abilene_Regional_Airport", "Abilene regional airport"),
    ],
)
def test_entities_are_found_where_the_text_words_them_differently(text, canonical, surface):
    assert _surface(text, canonical) == surface


def test_an_entity_absent_from_the_text_is_not_aligned():
    assert find_span("Alan Bean flew to the Moon.", "United_States") is None


def test_alignment_places_longer_entities_first_and_shares_subjects():
    text = "Aarhus Airport serves Aarhus, whose leader is Jacob Bundsgaard."
    triples = [
        Triple("Aarhus_Airport", "cityServed", "Aarhus"),
        Triple("Aarhus", "leader", "Jacob_Bundsgaard"),
    ]
    spans = align(text, triples)
    assert {entity: text[a:b] for entity, (a, b) in spans.items()} == {
        "Aarhus_Airport": "Aarhus Airport",
        "Aarhus": "Aarhus",
        "Jacob_Bundsgaard": "Jacob Bundsgaard",
    }
    assert spans["Aarhus"][0] > spans["Aarhus_Airport"][1]


@pytest.mark.parametrize(
    ("name", "surface", "canonical"),
    [
        ("underscored", "Aarhus Airport", "Aarhus_Airport"),
        ("quoted_iso_date", "March 15, 1932", '"1932-03-15"'),
        ("decimal", "2,776", "2776.0"),
        ("integer", "1,500", "1500"),
        ("iso_date", "Aarhus", None),
    ],
)
def test_formats_apply_only_where_they_make_sense(name, surface, canonical):
    assert apply_format(name, surface) == canonical


def _observations():
    return [
        ("March 15, 1932", '"1932-03-15"', "birthDate", "object"),
        ("1 May 1940", '"1940-05-01"', "birthDate", "object"),
        ("25", "25.0", "elevation", "object"),
        ("25.5", "25.5", "elevation", "object"),
        ("Alan Bean", "Alan_Bean", "birthDate", "subject"),
        ("Aarhus Airport", "Aarhus_Airport", "elevation", "subject"),
        ("the Big Apple", "New_York_City", "location", "object"),
        ("the Big Apple", "New_York_City", "location", "object"),
    ]


def test_the_normaliser_learns_each_predicates_format():
    normaliser = learn_normaliser(_observations())
    assert normaliser.canonical("June 2, 1950", "birthDate", "object") == '"1950-06-02"'
    assert normaliser.canonical("1,200", "elevation", "object") == "1200.0"
    assert normaliser.canonical("Buzz Aldrin", "birthDate", "subject") == "Buzz_Aldrin"


def test_the_normaliser_falls_back_to_the_roles_format_for_an_unknown_predicate():
    normaliser = learn_normaliser(_observations())
    assert normaliser.canonical("Wheeler Texas", "unseen", "subject") == "Wheeler_Texas"


def test_a_repeated_surface_no_rule_explains_enters_the_lexicon():
    normaliser = learn_normaliser(_observations())
    assert normaliser.lexicon == {"the big apple": "New_York_City"}
    assert normaliser.canonical("The Big  Apple", "location", "object") == "New_York_City"


def test_the_normaliser_survives_a_json_round_trip():
    from boundary.entities import Normaliser

    normaliser = learn_normaliser(_observations())
    assert Normaliser.from_dict(normaliser.as_dict()) == normaliser


@pytest.mark.parametrize(
    ("text", "canonical", "surface"),
    [
        (
            "Ajoblanco is from Andalusia, where Susana Diaz is the leader.",
            "Susana_Díaz",
            "Susana Diaz",
        ),
        ("Noodles are an ingredient in batchoy.", "Noodle", "Noodles"),
        ("Baked Alaska and cookies are desserts.", "Cookie", "cookies"),
        ("A bacon sandwich is popular in the UK.", "United_Kingdom", "UK"),
        ("The capital of the U.S. is Washington.", "United_States", "U.S."),
    ],
)
def test_entities_are_found_without_their_accents_in_the_plural_or_shortened(
    text, canonical, surface
):
    assert _surface(text, canonical) == surface


def test_an_acronym_matches_only_in_capitals():
    assert find_span("Tell us about it.", "United_States") is None


def test_offsets_survive_accent_folding():
    text = "Arròs negre comes from Spain."
    assert _surface(text, "Arros_negre") == "Arròs negre"


def test_a_slot_whose_entities_are_singular_learns_to_singularise():
    observations = [
        ("noodles", "Noodle", "ingredient", "object"),
        ("lemons", "Lemon", "ingredient", "object"),
        ("shrimps", "Shrimp", "ingredient", "object"),
        ("Bacon", "Bacon", "ingredient", "object"),
        ("fried chicken", "Fried_chicken", "ingredient", "object"),
    ]
    normaliser = learn_normaliser(observations, entities=["Tomato"])
    assert normaliser.canonical("tomatoes", "ingredient", "object") == "Tomato"
    assert normaliser.canonical("strawberries", "ingredient", "object") == "strawberry"
    assert normaliser.canonical("Gram flour", "ingredient", "object") == "Gram_flour"


def test_a_span_without_its_accents_comes_out_as_the_entity_the_data_knows():
    normaliser = learn_normaliser(
        [("Aarhus Airport", "Aarhus_Airport", "location", "subject")],
        entities=["Arròs_negre"],
    )
    assert normaliser.canonical("Arros negre", "country", "subject") == "Arròs_negre"


def test_a_known_entity_does_not_override_a_slots_quoting():
    observations = [("1.8 g", '"1.8 g"', "fat", "object"), ("Bacon", "Bacon", "food", "object")]
    normaliser = learn_normaliser(observations, entities=['"Bacon"'])
    assert normaliser.canonical("Bacon", "food", "object") == "Bacon"


def test_a_lexicon_written_before_accents_folded_still_looks_up():
    from boundary.entities import Normaliser

    old = Normaliser.from_dict({"lexicon": {"susana díaz": "Susana_Díaz_(politician)"}})
    assert old.canonical("Susana Diaz", "leader", "object") == "Susana_Díaz_(politician)"


@pytest.mark.parametrize(("text", "value"), [("seven", 7), ("Twenty-one", 21), ("ninety", 90)])
def test_small_numbers_written_in_words_parse(text, value):
    from boundary.entities import parse_number

    assert parse_number(text) == value


def test_a_count_written_in_words_is_found_and_comes_back_as_digits():
    text = "The Growth team is an eight-person team."
    assert _surface(text, "8") == "eight"
    assert apply_format("integer", "eight") == "8"
