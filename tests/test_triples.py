import pickle
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boundary.triples import (
    LinearFormatError,
    Triple,
    TripleLimits,
    TripleValidationError,
    from_linear,
    normalise_text,
    normalise_triple,
    parse_triples,
    same_triples,
    to_linear,
    triples_to_json,
)

# --- strategies -------------------------------------------------------------------------------

# Characters the linear form and the validator are most likely to get wrong.
_TRICKY = st.sampled_from(
    ["|", "\\", " ", "\u00a0", "\u0301", "e\u0301", "\u2028", "\x85", "ß", "日本", "\\|", "||"]
)
_RAW_FIELD = st.lists(
    st.one_of(_TRICKY, st.characters(exclude_categories=("Cs",))), min_size=1, max_size=20
).map("".join)


def _as_stored(raw: str) -> str:
    """What the spec says a valid field looks like after cleaning (written independently)."""
    return unicodedata.normalize("NFC", raw).strip()


_FIELD = _RAW_FIELD.map(_as_stored).filter(
    lambda value: value != "" and not re.search(r"[\x00-\x1f\x7f]", value)
)
_TRIPLE = st.builds(Triple, _FIELD, _FIELD, _FIELD)
_TRIPLES = st.lists(_TRIPLE, min_size=1, max_size=10)


def _errors(data: object, limits: TripleLimits | None = None) -> dict[str, list[str]]:
    limits = limits or TripleLimits()
    with pytest.raises(TripleValidationError) as caught:
        parse_triples(data, limits)
    return caught.value.errors


def _item(**fields: object) -> dict[str, object]:
    return {"subject": "Alan Turing", "predicate": "birthPlace", "object": "London"} | fields


# --- round trips --------------------------------------------------------------------------------


@given(_TRIPLES)
def test_linear_round_trip_is_lossless(triples: list[Triple]) -> None:
    assert from_linear(to_linear(triples)) == triples


@given(_TRIPLES)
def test_json_round_trip_is_lossless(triples: list[Triple]) -> None:
    assert parse_triples(triples_to_json(triples)) == triples


@given(_TRIPLES)
def test_list_form_round_trip_is_lossless(triples: list[Triple]) -> None:
    assert parse_triples([triple.as_list() for triple in triples]) == triples


@given(_RAW_FIELD)
def test_cleaning_a_field_twice_changes_nothing(raw: str) -> None:
    try:
        [once] = parse_triples([[raw, "p", "o"]])
    except TripleValidationError:
        return
    assert parse_triples([once.as_list()]) == [once]


# --- the Triple type ----------------------------------------------------------------------------


def test_triple_as_dict_and_as_list() -> None:
    triple = Triple("Alan Turing", "birthPlace", "London")
    assert triple.as_dict() == {
        "subject": "Alan Turing",
        "predicate": "birthPlace",
        "object": "London",
    }
    assert triple.as_list() == ["Alan Turing", "birthPlace", "London"]


def test_triples_to_json_keeps_order() -> None:
    triples = [Triple("b", "p", "o"), Triple("a", "p", "o")]
    assert triples_to_json(triples) == [
        {"subject": "b", "predicate": "p", "object": "o"},
        {"subject": "a", "predicate": "p", "object": "o"},
    ]


def test_limits_reject_values_below_one() -> None:
    with pytest.raises(ValueError):
        TripleLimits(max_triples=0)


# --- parse_triples: accepted input --------------------------------------------------------------


def test_it_accepts_dict_items() -> None:
    assert parse_triples([_item()]) == [Triple("Alan Turing", "birthPlace", "London")]


def test_it_accepts_webnlg_list_and_tuple_items() -> None:
    data = [["Alan Turing", "birthPlace", "London"], ("London", "country", "United Kingdom")]
    assert parse_triples(data) == [
        Triple("Alan Turing", "birthPlace", "London"),
        Triple("London", "country", "United Kingdom"),
    ]


def test_it_strips_surrounding_whitespace_but_keeps_inner_spaces() -> None:
    [triple] = parse_triples([["  Alan  Turing \n", "\tbirthPlace", "London "]])
    assert triple == Triple("Alan  Turing", "birthPlace", "London")


def test_it_nfc_normalises_fields() -> None:
    [triple] = parse_triples([["Cafe\u0301", "p", "o"]])
    assert triple.subject == "Caf\u00e9"


def test_it_keeps_duplicate_triples() -> None:
    assert len(parse_triples([_item(), _item()])) == 2


def test_it_accepts_exactly_the_limits() -> None:
    limits = TripleLimits(max_triples=2, max_field_chars=5)
    assert len(parse_triples([["abcde", "p", "o"]] * 2, limits)) == 2


# --- parse_triples: rejected input --------------------------------------------------------------


def test_it_rejects_missing_key() -> None:
    item = _item()
    del item["object"]
    assert _errors([item]) == {"triples[0].object": ["This field is required."]}


def test_it_rejects_extra_key() -> None:
    errors = _errors([_item(confidence=0.9)])
    assert list(errors) == ["triples[0]"]
    assert "'confidence'" in errors["triples[0]"][0]


@pytest.mark.parametrize("value", [None, 1, True, ["London"], {"name": "London"}, b"London"])
def test_it_rejects_non_string_field(value: object) -> None:
    errors = _errors([_item(object=value)])
    assert list(errors) == ["triples[0].object"]
    assert errors["triples[0].object"][0].startswith("Must be a string")


@pytest.mark.parametrize("value", ["", "   ", "\n\t ", "\u3000"])
def test_it_rejects_empty_subject(value: str) -> None:
    assert _errors([_item(subject=value)]) == {
        "triples[0].subject": ["Must not be empty or only whitespace."]
    }


def test_it_rejects_too_long_field() -> None:
    errors = _errors([["abcde", "x" * 6, "o"]], TripleLimits(max_field_chars=5))
    assert list(errors) == ["triples[0].predicate"]
    assert "5" in errors["triples[0].predicate"][0]


def test_it_measures_length_after_stripping() -> None:
    limits = TripleLimits(max_field_chars=5)
    assert parse_triples([["  abcde  ", "p", "o"]], limits)[0].subject == "abcde"


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x00", "\x1b", "\x1f", "\x7f"])
def test_it_rejects_control_characters_inside_a_field(char: str) -> None:
    errors = _errors([_item(subject=f"Alan{char}Turing")])
    assert list(errors) == ["triples[0].subject"]
    assert f"U+{ord(char):04X}" in errors["triples[0].subject"][0]


def test_it_reports_both_length_and_control_problems_of_one_field() -> None:
    errors = _errors([_item(subject="abc\tdef")], TripleLimits(max_field_chars=3))
    assert len(errors["triples[0].subject"]) == 2


def test_it_rejects_too_many_triples() -> None:
    errors = _errors([_item()] * 3, TripleLimits(max_triples=2))
    assert list(errors) == ["triples"]
    assert "At most 2 triples" in errors["triples"][0]


def test_it_rejects_empty_list() -> None:
    assert _errors([]) == {"triples": ["At least one triple is required."]}


@pytest.mark.parametrize("data", [None, "a | b | c", {"triples": []}, (["a", "b", "c"],), 3])
def test_it_rejects_data_that_is_not_a_list(data: object) -> None:
    errors = _errors(data)
    assert list(errors) == ["triples"]
    assert errors["triples"][0].startswith("Expected a list of triples")


@pytest.mark.parametrize("item", [["a", "b"], ["a", "b", "c", "d"], []])
def test_it_rejects_list_item_of_wrong_length(item: list[str]) -> None:
    errors = _errors([item])
    assert list(errors) == ["triples[0]"]
    assert f"got {len(item)}" in errors["triples[0]"][0]


@pytest.mark.parametrize("item", ["a | b | c", None, 7])
def test_it_rejects_item_that_is_neither_object_nor_list(item: object) -> None:
    assert list(_errors([item])) == ["triples[0]"]


def test_it_collects_every_problem_with_its_path() -> None:
    data = [
        _item(),
        {"subject": "", "predicate": 3},
        ["a", "b"],
        _item(extra="x", object="a\nb"),
    ]
    errors = _errors(data, TripleLimits(max_triples=3))
    assert sorted(errors) == [
        "triples",
        "triples[1].object",
        "triples[1].predicate",
        "triples[1].subject",
        "triples[2]",
        "triples[3]",
        "triples[3].object",
    ]


def test_it_uses_the_given_path_prefix() -> None:
    with pytest.raises(TripleValidationError) as caught:
        parse_triples([_item(subject="")], path="examples[4].triples")
    assert list(caught.value.errors) == ["examples[4].triples[0].subject"]


def test_error_str_is_a_one_line_summary_of_every_problem() -> None:
    with pytest.raises(TripleValidationError) as caught:
        parse_triples([_item(subject=""), _item(object=None)])
    summary = str(caught.value)
    assert "\n" not in summary
    assert "triples[0].subject: Must not be empty" in summary
    assert "triples[1].object: Must be a string" in summary


def test_error_survives_pickling() -> None:
    with pytest.raises(TripleValidationError) as caught:
        parse_triples([])
    restored = pickle.loads(pickle.dumps(caught.value))
    assert restored.errors == caught.value.errors
    assert str(restored) == str(caught.value)


# --- linear form --------------------------------------------------------------------------------


def test_to_linear_writes_one_escaped_line_per_triple() -> None:
    triples = [Triple("Alan Turing", "birthPlace", "London"), Triple("a|b", "c\\d", "e")]
    assert to_linear(triples) == "Alan Turing | birthPlace | London\na\\|b | c\\\\d | e"


def test_to_linear_refuses_a_field_with_a_line_break() -> None:
    with pytest.raises(ValueError):
        to_linear([Triple("a\nb", "p", "o")])


def test_from_linear_ignores_blank_lines_and_whitespace_around_fields() -> None:
    text = "\n  Alan Turing|birthPlace   |  London \r\n\n   \nLondon | country | UK\n"
    assert from_linear(text) == [
        Triple("Alan Turing", "birthPlace", "London"),
        Triple("London", "country", "UK"),
    ]


def test_from_linear_unescapes_pipes_and_backslashes() -> None:
    assert from_linear("a\\|b | \\\\ | c\\\\\\|") == [Triple("a|b", "\\", "c\\|")]


@pytest.mark.parametrize(
    ("text", "found"), [("a | b", "found 2"), ("a | b | c | d", "found 4"), ("a", "found 1")]
)
def test_from_linear_rejects_a_line_without_three_fields(text: str, found: str) -> None:
    with pytest.raises(LinearFormatError, match=found):
        from_linear(text)


def test_from_linear_rejects_a_dangling_backslash() -> None:
    with pytest.raises(LinearFormatError, match="dangling backslash"):
        from_linear("a | b | c\\")


def test_from_linear_rejects_an_unknown_escape() -> None:
    with pytest.raises(LinearFormatError, match="unknown escape"):
        from_linear("a | b\\n | c")


def test_from_linear_error_names_the_line() -> None:
    with pytest.raises(LinearFormatError) as caught:
        from_linear("a | b | c\n\nd | e")
    assert caught.value.line == 3
    assert str(caught.value).startswith("Line 3:")


def test_from_linear_validates_fields_like_parse_triples() -> None:
    with pytest.raises(TripleValidationError) as caught:
        from_linear("a | b | c\nd |   | f")
    assert list(caught.value.errors) == ["triples[1].predicate"]


def test_from_linear_rejects_text_without_triples() -> None:
    with pytest.raises(TripleValidationError) as caught:
        from_linear(" \n\n")
    assert caught.value.errors == {"triples": ["At least one triple is required."]}


def test_from_linear_applies_the_limits() -> None:
    with pytest.raises(TripleValidationError) as caught:
        from_linear("a | b | c\nd | e | f", TripleLimits(max_triples=1))
    assert list(caught.value.errors) == ["triples"]


def test_from_linear_keeps_unicode_line_separators_inside_fields() -> None:
    assert from_linear("a\u2028b | p | o") == [Triple("a\u2028b", "p", "o")]


# --- normalisation for matching -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("birthPlace", "birth place"),
        ("isPartOf", "is part of"),
        ("élèveDe", "élève de"),
        ("HTMLParser", "htmlparser"),
        ("birth_place", "birth place"),
        ("Alan_Turing", "alan turing"),
        ('"London"', "london"),
        ('""London""', '"london"'),
        ("'London'", "'london'"),
        ('say "hi" now', 'say "hi" now'),
        ("  New   York\t City ", "new york city"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
    ],
)
def test_normalise_text(value: str, expected: str) -> None:
    assert normalise_text(value) == expected


def test_normalise_text_makes_nfc_and_nfd_equal() -> None:
    nfd = unicodedata.normalize("NFD", "Café Zoë")
    assert nfd != "Café Zoë"
    assert normalise_text(nfd) == normalise_text("Café Zoë")


def test_normalise_text_replaces_an_alias_with_its_canonical_value() -> None:
    aliases = {"USA": "United_States", "U.S.": "United_States"}
    assert normalise_text("usa", aliases) == "united states"
    assert normalise_text('"U.S."', aliases) == "united states"


def test_normalise_text_matches_alias_keys_after_normalising_them() -> None:
    assert normalise_text("place of birth", {"placeOfBirth": "birthPlace"}) == "birth place"


def test_normalise_text_only_replaces_whole_values() -> None:
    assert normalise_text("USA Today", {"USA": "United States"}) == "usa today"


def test_normalise_triple_normalises_each_field() -> None:
    triple = Triple('"Alan_Turing"', "birthPlace", "UK")
    assert normalise_triple(triple, {"UK": "United Kingdom"}) == (
        "alan turing",
        "birth place",
        "united kingdom",
    )


def test_same_triples_ignores_order_and_surface_form() -> None:
    a = [Triple("Alan_Turing", "birthPlace", "London"), Triple("London", "country", "UK")]
    b = [Triple("london", "Country", "uk"), Triple("alan turing", "birth_place", '"London"')]
    assert same_triples(a, b)


def test_same_triples_notices_a_different_fact() -> None:
    a = [Triple("Alan Turing", "birthPlace", "London")]
    b = [Triple("Alan Turing", "deathPlace", "London")]
    assert not same_triples(a, b)


def test_same_triples_notices_a_missing_fact() -> None:
    a = [Triple("a", "p", "o"), Triple("b", "p", "o")]
    assert not same_triples(a, a[:1])


def test_same_triples_uses_aliases() -> None:
    a = [Triple("London", "country", "UK")]
    b = [Triple("London", "country", "United Kingdom")]
    assert not same_triples(a, b)
    assert same_triples(a, b, aliases={"UK": "United Kingdom"})


def test_a_lone_surrogate_from_any_source_is_refused_by_field():
    # What a model's JSON could hold as "\ud800": no UTF-8 form, so no response or row could.
    with pytest.raises(TripleValidationError) as refused:
        parse_triples([{"subject": "A\ud800", "predicate": "p", "object": "B"}])
    assert "surrogate" in refused.value.errors["triples[0].subject"][0]
