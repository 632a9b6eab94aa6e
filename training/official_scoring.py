"""The WebNLG 2020 text-to-RDF scorer, reproduced number for number (Django-free).

`training.scoring.score_decomposition` is the project's corrected scorer and stays the default.
Published text-to-RDF figures (WebNLG+ 2020) come from the challenge's own script
(WebNLG/challenge-2020, evaluation/automatic-evaluation/text-to-triples/Evaluation_script.py,
run with nervaluate 0.1.7 and nltk 3.4.5), so a figure meant to sit next to them needs that
script's arithmetic, quirks included. This module re-implements the script's behaviour (its code
is not copied; the project must not ship it):

- Normalisation works on the whole "s | p | o" string: a space at each ASCII lower-to-upper
  change, lowercase, "_" -> space, whitespace runs -> one space, then a trailing " (...)" is
  dropped from the object.
- Tokens are nltk 3.4.5's `word_tokenize`: Punkt sentence splitting (English model) and the
  Treebank rules on each sentence. So a quoted literal becomes `` utaa '', and a period that
  Punkt takes for a sentence end is split off.
- Punctuation: reference tokens made only of ASCII punctuation are dropped, candidate tokens only
  when they are one such character (so `` and '' stay and cost Exact credit); the swap retries
  drop every token that merely contains ASCII punctuation ("2702.0" too).
- Matching is the script's recursive longest-n-gram search, including its stale n-gram lists
  and match numbers that restart after each recursion (which merges spans), and it fails where
  the script crashed.
- Candidate spans repeat next to an unmatched reference word; the subject/object retry rescores
  the predicate from the object lists and lays spans on overlapping offsets.
- Spans are counted as nervaluate 0.1.7 did: an overlap ignores each span's last word, so a
  one-word span never partially overlaps.
- Pairing keeps the first best permutation in itertools order (the script tried them all; a
  pruned search finds the same one, settling float-level ties alike up to 8 triples a side), the
  shorter side padded with empty triples; P/R/F1 are exact means (statistics.mean) over the
  chosen pairs. An entry empty on both sides adds no pair (the script crashed on it), and a
  field containing " | " is refused (the script split it into more fields).
- "full_triple" is the script's "Full triple scores": macro P/R/F1 over distinct lowercased
  triple strings (sklearn's MultiLabelBinarizer), not the corrected scorer's micro set F1.
"""

from __future__ import annotations

import re
import statistics
import string
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from boundary.triples import Triple, TripleLimits, TripleValidationError, parse_triples
from training.scoring import PRF, SCHEMES, check_paired

__all__ = ["SCORER", "read_webnlg_xml", "score_decomposition_official"]

SCORER = "webnlg-2020-official"


# --- the report -----------------------------------------------------------------------------


def score_decomposition_official(
    predictions: Sequence[Sequence[Triple]], references: Sequence[Sequence[Triple]]
) -> dict[str, Any]:
    """Score prediction i against reference i exactly as the 2020 script would."""
    check_paired(predictions, references)
    chosen: list[_PairScore] = []
    for predicted, reference in zip(predictions, references, strict=True):
        chosen += _score_entry(
            tuple(_script_form(t) for t in predicted), tuple(_script_form(t) for t in reference)
        )
    report: dict[str, Any] = {"entries": len(references), "pairs": len(chosen)}
    for k, scheme in enumerate(SCHEMES):
        report[scheme] = _mean_prf([pair.schemes[k] for pair in chosen]).as_dict()
    report["full_triple"] = _full_triple_scores(predictions, references).as_dict()
    report["scorer"] = SCORER
    return report


def _mean_prf(scores: list[PRF]) -> PRF:
    if not scores:
        return PRF(0.0, 0.0, 0.0)
    return PRF(
        float(statistics.mean(s.precision for s in scores)),
        float(statistics.mean(s.recall for s in scores)),
        float(statistics.mean(s.f1 for s in scores)),
    )


# --- reading the official XML files -----------------------------------------------------------

# Scoring takes whatever a system emitted; only the format is checked.
SCORING_LIMITS = TripleLimits(max_triples=10_000, max_field_chars=10_000)


def read_webnlg_xml(path: Path) -> list[tuple[str, list[Triple]]]:
    """(id, triples) per <entry> of a WebNLG benchmark file, in file order.

    Reads references (modifiedtripleset/mtriple, as the script does) and candidates
    (generatedtripleset/gtriple). The id is "category/eid" (the entry's position when those
    attributes are missing), so a references file and a candidates file join like JSONL ones.
    """
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"{path}: not well-formed XML ({error}).") from error
    entries = []
    for position, entry in enumerate(root.iter("entry"), start=1):
        category, eid = entry.get("category"), entry.get("eid")
        entry_id = f"{category}/{eid}" if category and eid else str(position)
        where = f"{path}, entry {entry_id}"
        texts = ["".join(element.itertext()) for element in _triple_elements(entry)]
        entries.append((entry_id, _parse_xml_triples(texts, where)))
    if not entries:
        raise ValueError(f"{path}: no <entry> elements.")
    return entries


def _triple_elements(entry: ElementTree.Element) -> Iterator[ElementTree.Element]:
    generated = entry.find("generatedtripleset")
    if generated is not None:
        return generated.iter("gtriple")
    modified = entry.find("modifiedtripleset")
    return modified.iter("mtriple") if modified is not None else iter(())


def _parse_xml_triples(texts: list[str], where: str) -> list[Triple]:
    rows = []
    for index, text in enumerate(texts):
        fields = text.split(" | ")
        if len(fields) != 3:
            raise ValueError(f"{where}: triple {index} does not split into 3 fields on ' | '.")
        rows.append(fields)
    if not rows:
        return []
    try:
        return parse_triples(rows, SCORING_LIMITS)
    except TripleValidationError as error:
        raise ValueError(f"{where}: {error}") from error


# --- normalisation --------------------------------------------------------------------------

_Form = tuple[str, str, str]
_PADDING: _Form = ("", "", "")  # the empty triple that pads the shorter side of an entry

_ASCII_CAMEL = re.compile(r"([a-z])([A-Z])")
_WHITESPACE = re.compile(r"\s+")
_TRAILING_PARENS = re.compile(r"^(.*?)\s\(.*\)$")


@lru_cache(maxsize=1 << 16)
def _script_form(triple: Triple) -> _Form:
    """The triple as the script sees it: normalised as one string, then split on ' | '."""
    text = " | ".join(triple.as_list())
    text = _WHITESPACE.sub(" ", _ASCII_CAMEL.sub(r"\1 \2", text).lower().replace("_", " "))
    fields = text.split(" | ")
    if len(fields) != 3:
        # The script crashed on such a triple (or silently scored other fields).
        raise ValueError(f"{triple}: a field containing ' | ' cannot be scored by the 2020 script.")
    if trailing := _TRAILING_PARENS.match(fields[2]):
        fields[2] = trailing.group(1)
    return fields[0], fields[1], fields[2]


# --- nltk 3.4.5 word_tokenize, for lowercased text --------------------------------------------


def _words_in(text: str) -> list[str]:
    return text.split()


# Parameters of nltk's English Punkt model (Kiss & Strunk, as NLTK distributes it) that can
# matter once text is lowercased: abbreviation types, collocations, and the four types whose
# orthographic context lets a lowercase word start a sentence (every other lowercase word after
# an initial or a number means "no break"). Sentence starters and the rest of the orthographic
# table only act on words with an uppercase first letter, which lowercased text lacks.
_PUNKT_ABBREVIATIONS = frozenset(
    _words_in(
        """a.a a.c a.d a.g a.h a.m a.m.e a.s a.t adm ala ariz aug ave b.f b.v bros c c.i.t c.o.m.b
        c.v calif chg cie co col colo conn corp cos ct d d.c d.h d.w dec dr e e.f e.h e.l e.m f
        f.g f.j feb fla fri ft g g.d g.f g.k ga gen h h.c h.f h.m i.m.s ill inc j.b j.c j.j j.k
        j.p j.r jan jr k kan ky l l.a l.f l.p lt ltd m m.b.a m.d.c m.j maj messrs mg mich minn mr
        mrs ms n n.c n.d n.h n.j n.m n.v n.y nev nov oct ok okla ore p p.a.m p.m pa ph.d prof r
        r.a r.h r.i r.j r.k r.t rep reps s s.a s.a.y s.c s.g s.p.a s.s sen sep sept sr st sw t t.j
        tenn tues u.k u.n u.s u.s.a u.s.s.r v va vs vt w w.c w.r w.va w.w wash wed wis yr"""
    )
) | {". . "}
_PUNKT_COLLOCATIONS = frozenset(
    [
        ("##number##", word)
        for word in _words_in(
            "abreast aes business cbot colgate commodities cooper corrections credit dividend "
            "financing genentech henley insider international leisure letters notable pay-fone "
            "pegasus pepper review rj wedgestone who zimmer"
        )
    ]
    + [("b", w) for w in ("edelman", "levine", "smith", "stewart", "wigton")]
    + [("i", "magnin"), ("i", "toussie"), ("j", "aron"), ("j", "fialka"), ("j", "walter")]
    + [("o", "ludcke")]
)
_PUNKT_LOWERCASE_STARTERS = frozenset({"administrators", "b-week", "r-revised", "z-holiday"})

_PUNKT_NON_WORD = r"(?:[?!)\";}\]\*:@\'\({\[])"
_PUNKT_MULTI_CHAR = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"
_PUNKT_WORD = re.compile(
    _PUNKT_MULTI_CHAR
    + r"|(?=[^\(\"\`{\[:;&\#\*@\)}\]\-,])\S+?(?=\s|$|"
    + _PUNKT_NON_WORD
    + "|"
    + _PUNKT_MULTI_CHAR
    + r"|,(?=$|\s|"
    + _PUNKT_NON_WORD
    + "|"
    + _PUNKT_MULTI_CHAR
    + r"))|\S"
)
_PUNKT_PERIOD_CONTEXT = re.compile(
    r"\S*[.?!](?=(?P<after_tok>" + _PUNKT_NON_WORD + r"|\s+(?P<next_tok>\S+)))"
)
_PUNKT_REALIGN = re.compile(r"[\"')\]}]+?(?:\s+|(?=--)|$)", re.MULTILINE)
_PUNKT_NUMBER = re.compile(r"^-?[\.,]?\d[\d,\.-]*\.?$")
_PUNKT_ELLIPSIS = re.compile(r"\.\.+$")
_PUNKT_INITIAL = re.compile(r"[^\W\d]\.$")


class _PunktToken:
    """One word of a candidate sentence-break context, with Punkt's annotations."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.type = _PUNKT_NUMBER.sub("##number##", text.lower())
        self.sentbreak = False
        self.abbr = False
        self.ellipsis = False

    @property
    def type_no_period(self) -> str:
        return self.type[:-1] if len(self.type) > 1 and self.type[-1] == "." else self.type

    @property
    def type_no_sentperiod(self) -> str:
        return self.type_no_period if self.sentbreak else self.type


def _punkt_sentences(text: str) -> list[str]:
    """Punkt's sentences_from_text (with boundary realignment) for lowercased text."""
    slices = []
    last = 0
    for match in _PUNKT_PERIOD_CONTEXT.finditer(text):
        if _contains_sentence_break(match.group() + match.group("after_tok")):
            slices.append((last, match.end()))
            last = match.start("next_tok") if match.group("next_tok") else match.end()
    slices.append((last, len(text.rstrip())))

    sentences = []
    realign = 0
    for index, (start, stop) in enumerate(slices):
        start += realign
        if index + 1 == len(slices):
            if text[start:stop]:
                sentences.append(text[start:stop])
            continue
        next_start, next_stop = slices[index + 1]
        moved = _PUNKT_REALIGN.match(text[next_start:next_stop])
        if moved:
            sentences.append(text[start : next_start + len(moved.group(0).rstrip())])
            realign = moved.end()
        else:
            realign = 0
            if text[start:stop]:
                sentences.append(text[start:stop])
    return sentences


def _contains_sentence_break(context: str) -> bool:
    """Whether Punkt marks a break on any word of the context but its last."""
    tokens = [_PunktToken(word) for word in _PUNKT_WORD.findall(context)]
    for token in tokens:
        _punkt_first_pass(token)
    for first, second in zip(tokens, tokens[1:], strict=False):
        _punkt_second_pass(first, second)
        if first.sentbreak:
            return True
    return False


def _punkt_first_pass(token: _PunktToken) -> None:
    text = token.text
    if text in (".", "?", "!"):
        token.sentbreak = True
    elif _PUNKT_ELLIPSIS.match(text):
        token.ellipsis = True
    elif text.endswith(".") and not text.endswith(".."):
        stem = text[:-1].lower()
        if stem in _PUNKT_ABBREVIATIONS or stem.split("-")[-1] in _PUNKT_ABBREVIATIONS:
            token.abbr = True
        else:
            token.sentbreak = True


def _punkt_second_pass(token: _PunktToken, following: _PunktToken) -> None:
    if not token.text.endswith("."):
        return
    kind = token.type_no_period
    initial = bool(_PUNKT_INITIAL.match(token.text))
    if (kind, following.type_no_sentperiod) in _PUNKT_COLLOCATIONS:
        token.sentbreak, token.abbr = False, True
        return
    # Abbreviations stay abbreviations: in lowercased text no next word looks like a sentence
    # start (the orthographic heuristic needs an uppercase first letter for that).
    if not (initial or kind == "##number##"):
        return
    starts = _punkt_ortho_heuristic(following)
    if starts is False or (starts is None and initial and following.text[0].isupper()):
        token.sentbreak, token.abbr = False, True


def _punkt_ortho_heuristic(token: _PunktToken) -> bool | None:
    """False: the word does not start a sentence; None: unknown (never True when lowercased)."""
    if token.text in (";", ":", ",", ".", "!", "?"):
        return False
    if token.text[0].islower() and token.type_no_sentperiod not in _PUNKT_LOWERCASE_STARTERS:
        return False
    return None


# Treebank rules as nltk 3.4.5's word_tokenize runs them (its additions included).
_TREEBANK_RULES = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        # starting quotes
        ("([«“‘„]|[`]+)", r" \1 "),
        (r'^"', "``"),
        ("(``)", r" \1 "),
        (r"""([ (\[{<])("|'{2})""", r"\1 `` "),
        (r"(?i)(')(?!re|ve|ll|m|t|s|d)(\w)\b", r"\1 \2"),
        # punctuation
        (r"""([^.])(\.)([\])}>"'»”’ ]*)\s*$""", r"\1 \2 \3 "),
        (r"([:,])([^\d])", r" \1 \2"),
        (r"([:,])$", r" \1 "),
        (r"\.\.\.", " ... "),
        (r"[;@#$%&]", r" \g<0> "),
        (r"""([^.])(\.)([\])}>"']*)\s*$""", r"\1 \2\3 "),
        (r"[?!]", r" \g<0> "),
        (r"([^'])' ", r"\1 ' "),
        # brackets and dashes
        (r"[\]\[(){}<>]", r" \g<0> "),
        ("--", " -- "),
    )
)
_TREEBANK_ENDINGS = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        ("([»”’])", r" \1 "),
        ('"', " '' "),
        (r"(\S)('')", r"\1 \2 "),
        (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),
        (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
        # contractions (Robert MacIntyre's list)
        (r"(?i)\b(can)(not)\b", r" \1 \2 "),
        (r"(?i)\b(d)('ye)\b", r" \1 \2 "),
        (r"(?i)\b(gim)(me)\b", r" \1 \2 "),
        (r"(?i)\b(gon)(na)\b", r" \1 \2 "),
        (r"(?i)\b(got)(ta)\b", r" \1 \2 "),
        (r"(?i)\b(lem)(me)\b", r" \1 \2 "),
        (r"(?i)\b(mor)('n)\b", r" \1 \2 "),
        (r"(?i)\b(wan)(na)\s", r" \1 \2 "),
        (r"(?i) ('t)(is)\b", r" \1 \2 "),
        (r"(?i) ('t)(was)\b", r" \1 \2 "),
    )
)


def _treebank(sentence: str) -> list[str]:
    for pattern, replacement in _TREEBANK_RULES:
        sentence = pattern.sub(replacement, sentence)
    sentence = f" {sentence} "
    for pattern, replacement in _TREEBANK_ENDINGS:
        sentence = pattern.sub(replacement, sentence)
    return sentence.split()


@lru_cache(maxsize=1 << 16)
def _nltk_words(text: str) -> tuple[str, ...]:
    """nltk 3.4.5's word_tokenize(text) for lowercased text: Punkt, then Treebank."""
    return tuple(word for sentence in _punkt_sentences(text) for word in _treebank(sentence))


_ASCII_PUNCTUATION = frozenset(string.punctuation)


def _reference_words(text: str) -> list[str]:
    """Drops tokens made only of ASCII punctuation."""
    return [w.lower() for w in _nltk_words(text) if not set(w) <= _ASCII_PUNCTUATION]


def _candidate_words(text: str) -> list[str]:
    """Drops only one-character ASCII punctuation tokens, so `` and '' survive."""
    return [w.lower() for w in _nltk_words(text) if not (len(w) == 1 and w in _ASCII_PUNCTUATION)]


def _swap_words(text: str) -> list[str]:
    """The swap retries drop every token containing ASCII punctuation, "2702.0" included."""
    return [w.lower() for w in _nltk_words(text) if _ASCII_PUNCTUATION.isdisjoint(w)]


# --- matching words and laying out spans ------------------------------------------------------


class _Hit(NamedTuple):
    """A matched word: its match number and reference position (None: linked to the match)."""

    side: str  # "ref" or "cand": the script's markers of the two sides never compare equal
    number: int
    at: int | None


class _Miss(NamedTuple):
    """An unmatched candidate word, numbered by the block of unmatched words it belongs to."""

    block: int


_Word = str | _Hit


def _match(ref: list[_Word], cand: list[_Word], number: int, size: int) -> None:
    """The script's recursive longest-n-gram search, marking matches in place.

    Each level scans a snapshot of the candidate's n-grams while deeper levels change the lists,
    and match numbers are passed down by value, so a level may reuse a number a deeper level
    already gave out. Both are kept: they decide which spans merge.
    """
    while size > 0:
        grams = [cand[i : i + size] for i in range(len(cand) - size + 1)]
        for gram in grams:
            at = _find(ref, gram)
            if at is None:
                continue
            for k in range(size):
                ref[at + k] = _Hit("ref", number, at + k)
            where = _find(cand, gram)
            if where is None:
                raise ValueError(
                    "The 2020 script crashes on this pair (a stale n-gram matched the reference "
                    f"but is gone from the candidate): {gram!r}."
                )
            for k in range(size):
                cand[where + k] = _Hit("cand", number, at + k)
            number += 1
            _match(ref, cand, number, size)
        size -= 1


def _find(words: list[_Word], gram: list[_Word]) -> int | None:
    size = len(gram)
    for start in range(len(words) - size + 1):
        if words[start : start + size] == gram:
            return start
    return None


_Span = tuple[int, int, str]  # first offset, last offset (inclusive), label


class _Layout(NamedTuple):
    found: bool
    ref_spans: list[_Span]
    cand_spans: list[_Span]
    width: int  # offsets this element takes; the next element starts after them


def _layout(
    ref: list[_Word], cand: list[_Word], ref_label: str, cand_label: str, base: int
) -> _Layout:
    """The script's spans for one element; links unmatched edge words into `cand` in place."""
    first = next((i for i, w in enumerate(cand) if _is_cand_hit(w)), None)
    if first is None:
        if not ref:
            return _Layout(False, [], [(base, base + len(cand) - 1, cand_label)], len(cand))
        ref_span = (base, base + len(ref) - 1, ref_label)
        if not cand:
            return _Layout(False, [ref_span], [], 1)  # the script counted its span list here
        cand_span = (base + len(ref), base + len(ref) + len(cand) - 1, cand_label)
        return _Layout(False, [ref_span], [cand_span], len(ref) + len(cand))

    first_hit = cand[first]
    assert isinstance(first_hit, _Hit)
    link_before = first_hit.at == 0
    link_after = _last_link(ref, cand)
    before: list[_Word] = []
    after: list[_Word] = []
    unmatched: list[_Miss] = []
    block = 1
    for i, word in enumerate(cand):
        if _is_cand_hit(word):
            block += 1
        elif link_before and i < first:
            cand[i] = _Hit("cand", first_hit.number, None)
            before.append(cand[i])
        elif link_after is not None and i > link_after[0]:
            cand[i] = _Hit("cand", link_after[1], None)
            after.append(cand[i])
        else:
            unmatched.append(_Miss(block))
    row: list[_Word | _Miss] = [*before, *ref, *after, *unmatched]
    ref_span = (base + len(before), base + len(before) + len(ref) - 1, ref_label)
    return _Layout(True, [ref_span], _candidate_spans(row, cand_label, base), len(row))


def _is_cand_hit(word: _Word) -> bool:
    return isinstance(word, _Hit) and word.side == "cand"


def _last_link(ref: list[_Word], cand: list[_Word]) -> tuple[int, int] | None:
    """(index, number) of the last candidate match if trailing words link to it, else None.

    They do when the reference's last word is matched, the candidate's last word is not, and the
    candidate's last match is that reference word.
    """
    last_ref, last_cand = ref[-1], cand[-1]
    if not isinstance(last_ref, _Hit) or _is_cand_hit(last_cand):
        return None
    hits = [w for w in cand if _is_cand_hit(w)]
    last_hit = hits[-1]
    assert isinstance(last_hit, _Hit)
    if (last_hit.number, last_hit.at) != (last_ref.number, last_ref.at):
        return None
    return cand.index(last_hit), last_hit.number


def _candidate_spans(row: list[_Word | _Miss], label: str, base: int) -> list[_Span]:
    """Spans over runs of one match (or one unmatched block) in the combined row.

    An unmatched reference word closes the current run without starting another, so the run is
    emitted again (longer) at the next unmatched word and again when the next run starts: the
    script's duplicate spans.
    """
    spans: list[_Span] = []
    current: tuple[str, int] | None = None
    begin = 0
    collecting = False
    for i, item in enumerate(row):
        key = _run_key(item)
        if key is None:
            if collecting:
                spans.append((base + begin, base + i - 1, label))
            continue
        collecting = True
        if key != current:
            if current is not None:
                spans.append((base + begin, base + i - 1, label))
            current, begin = key, i
        if i == len(row) - 1:
            spans.append((base + begin, base + i, label))
    return spans


def _run_key(item: _Word | _Miss) -> tuple[str, int] | None:
    if isinstance(item, _Miss):
        return ("miss", item.block)
    if isinstance(item, _Hit):
        return ("hit", item.number)
    return None  # an unmatched reference word


# --- one (candidate, reference) pair ----------------------------------------------------------

_LABELS = ("SUB", "PRED", "OBJ")


def _element(ref_text: str, cand_text: str, *, swapped: bool) -> tuple[list[_Word], list[_Word]]:
    if swapped:
        ref: list[_Word] = list(_swap_words(ref_text))
        cand: list[_Word] = list(_swap_words(cand_text))
    else:
        ref, cand = list(_reference_words(ref_text)), list(_candidate_words(cand_text))
    _match(ref, cand, 1, len(cand))
    return ref, cand


def _pair_spans(ref: _Form, cand: _Form) -> tuple[list[_Span], list[_Span]]:
    """Reference and candidate spans of a triple pair, swap retries included."""
    layouts: list[_Layout] = []
    for k, label in enumerate(_LABELS):
        base = sum(layout.width for layout in layouts)
        layouts.append(_layout(*_element(ref[k], cand[k], swapped=False), label, label, base))
    subject, predicate, obj = layouts

    if not subject.found and not obj.found:
        first = _layout(*_element(ref[0], cand[2], swapped=True), "SUB", "OBJ", 0)
        ref_words, cand_words = _element(ref[2], cand[0], swapped=True)
        base = first.width + predicate.width
        second = _layout(ref_words, cand_words, "OBJ", "SUB", base)
        if first.found or second.found:
            # The script rescores the predicate from the object lists it just used.
            subject, obj = first, second
            predicate = _layout(ref_words, cand_words, "PRED", "PRED", subject.width)
            return _collect(subject, predicate, obj)

    if not subject.found and not predicate.found:
        first = _layout(*_element(ref[0], cand[1], swapped=True), "SUB", "PRED", 0)
        second = _layout(*_element(ref[1], cand[0], swapped=True), "PRED", "SUB", first.width)
        if first.found or second.found:
            return _collect(first, second, obj)

    if not predicate.found and not obj.found:
        base = subject.width
        first = _layout(*_element(ref[1], cand[2], swapped=True), "PRED", "OBJ", base)
        base += first.width
        second = _layout(*_element(ref[2], cand[1], swapped=True), "OBJ", "PRED", base)
        if first.found or second.found:
            return _collect(subject, first, second)
    return _collect(subject, predicate, obj)


def _collect(*layouts: _Layout) -> tuple[list[_Span], list[_Span]]:
    refs = [span for layout in layouts for span in layout.ref_spans]
    cands = [span for layout in layouts for span in layout.cand_spans]
    return refs, cands


# nervaluate 0.1.7's outcomes per scheme, in SCHEMES order (strict, exact, partial, ent_type):
# correct, incorrect, partial, missed, spurious.
_C, _I, _P, _M, _S = range(5)
_EQUAL = (_C, _C, _C, _C)
_SAME_BOUNDS = (_I, _C, _C, _I)  # same offsets, other label
_OVERLAP_SAME_LABEL = (_I, _I, _P, _C)
_OVERLAP_OTHER_LABEL = (_I, _I, _P, _I)
_SPURIOUS = (_S, _S, _S, _S)
_MISSED = (_M, _M, _M, _M)


def _nervaluate(true: list[_Span], pred: list[_Span]) -> list[list[int]]:
    """nervaluate 0.1.7's counts per scheme for one document.

    Its overlap test compares range(start, end), which leaves out each span's last word.
    """
    counts = [[0] * 5 for _ in SCHEMES]
    overlapped: list[_Span] = []

    def add(outcome: tuple[int, ...]) -> None:
        for k, kind in enumerate(outcome):
            counts[k][kind] += 1

    for p in pred:
        if p in true:
            overlapped.append(p)
            add(_EQUAL)
            continue
        for t in true:
            if t[:2] == p[:2] and t[2] != p[2]:
                overlapped.append(t)
                add(_SAME_BOUNDS)
                break
            if max(t[0], p[0]) < min(t[1], p[1]):
                overlapped.append(t)
                add(_OVERLAP_SAME_LABEL if t[2] == p[2] else _OVERLAP_OTHER_LABEL)
                break
        else:
            add(_SPURIOUS)
    for t in true:
        if t not in overlapped:
            add(_MISSED)
    return counts


def _semeval_prf(counts: list[int]) -> PRF:
    """nervaluate's precision, recall and F1 (with its float arithmetic)."""
    correct, incorrect, partial, missed, spurious = counts
    actual = correct + incorrect + partial + spurious
    possible = correct + incorrect + partial + missed
    credit = correct + 0.5 * partial
    precision = credit / actual if actual > 0 else 0
    recall = credit / possible if possible > 0 else 0
    f1 = 2 * (precision * recall) / (precision + recall) if (precision + recall) > 0 else 0
    return PRF(precision, recall, f1)


class _PairScore(NamedTuple):
    schemes: tuple[PRF, ...]  # in SCHEMES order
    weight: float  # the mean of the four F1s, which the pairing maximises


@lru_cache(maxsize=1 << 16)
def _score_pair(cand: _Form, ref: _Form) -> _PairScore:
    true, pred = _pair_spans(ref, cand)
    schemes = tuple(_semeval_prf(c) for c in _nervaluate(true, pred))
    return _PairScore(schemes, statistics.mean(s.f1 for s in schemes))


# --- one entry ----------------------------------------------------------------------------------


def _score_entry(cands: tuple[_Form, ...], refs: tuple[_Form, ...]) -> list[_PairScore]:
    """Pad the shorter side with empty triples and keep the script's chosen pairing."""
    size = max(len(cands), len(refs))
    cands += (_PADDING,) * (size - len(cands))
    refs += (_PADDING,) * (size - len(refs))
    table = [[_score_pair(c, r) for r in refs] for c in cands]
    order = _first_best_permutation(
        [[cell.weight for cell in row] for row in table],
        padding_rows={i for i, c in enumerate(cands) if c == _PADDING},
        padding_columns={j for j, r in enumerate(refs) if r == _PADDING},
    )
    return [table[i][j] for i, j in enumerate(order)]


_TIE_MARGIN = 1e-9
# Up to this many triples a side, float-level ties are settled exactly as the script did (at
# most 8! permutations to look through). Past it the script ran for hours, and the first
# permutation within the margin of the optimum is taken instead.
_EXACT_TIES_UP_TO = 8


def _first_best_permutation(
    weights: list[list[float]], padding_rows: set[int], padding_columns: set[int]
) -> list[int]:
    """The first permutation, in itertools order, whose float sum (row by row) is the largest.

    That is the one the script keeps: it tries every permutation and replaces its choice only on
    a strictly larger sum. `_FirstBest` finds it without trying them all.
    """
    return _FirstBest(weights, padding_rows, padding_columns).run()


class _FirstBest:
    """A depth-first search over permutations in itertools (lexicographic) order.

    A branch is cut when even its best completion (the Hungarian optimum of what is left) falls
    short of the overall optimum by a margin, so every permutation that could carry the largest
    float sum is still visited and float ties are settled as the script settled them (past
    `_EXACT_TIES_UP_TO`, the first permutation that reaches the optimum ends the search). Padding
    columns are interchangeable (only the lowest unused one is tried), and trailing padding rows
    take the remaining columns in order: both add exactly 0.
    """

    def __init__(
        self, weights: list[list[float]], padding_rows: set[int], padding_columns: set[int]
    ) -> None:
        self.size = len(weights)
        self.weights = weights
        self.matrix = np.array(weights, dtype=float).reshape(self.size, self.size)
        self.padding_tail = self.size
        while self.padding_tail > 0 and self.padding_tail - 1 in padding_rows:
            self.padding_tail -= 1
        self.padding_columns = padding_columns
        self.used = [False] * self.size
        self.order: list[int] = []
        self.best: list[int] | None = None
        self.best_total = 0.0
        self.optima: dict[tuple[bool, ...], float] = {}  # by the set of used columns
        self.first_is_enough = self.size > _EXACT_TIES_UP_TO

    def run(self) -> list[int]:
        self.floor = self._optimum(0) - _TIE_MARGIN
        self._visit(0, 0)
        return self.best or []

    def _visit(self, row: int, total: float) -> None:
        if row >= self.padding_tail:
            if self.best is None or total > self.best_total:
                self.best = self.order + [j for j in range(self.size) if not self.used[j]]
                self.best_total = total
            return
        tried_padding = False
        for column in range(self.size):
            if self.first_is_enough and self.best is not None:
                return
            if self.used[column] or (tried_padding and column in self.padding_columns):
                continue
            tried_padding = tried_padding or column in self.padding_columns
            reached = total + self.weights[row][column]
            self.used[column] = True
            if reached + self._optimum(row + 1) >= self.floor:
                self.order.append(column)
                self._visit(row + 1, reached)
                self.order.pop()
            self.used[column] = False

    def _optimum(self, row: int) -> float:
        """The largest sum the rows from `row` on can still reach with the unused columns."""
        if row >= self.padding_tail:
            return 0.0
        key = tuple(self.used)
        if key not in self.optima:
            free = [j for j in range(self.size) if not self.used[j]]
            rest = self.matrix[row:][:, free]
            rows, columns = linear_sum_assignment(rest, maximize=True)
            self.optima[key] = float(rest[rows, columns].sum())
        return self.optima[key]


# --- the script's "Full triple scores" --------------------------------------------------------


def _full_triple_scores(
    predictions: Sequence[Sequence[Triple]], references: Sequence[Sequence[Triple]]
) -> PRF:
    """Macro P/R/F1 over distinct lowercased triple strings, one binary label per entry."""
    predicted = [{_raw(t) for t in entry} for entry in predictions]
    expected = [{_raw(t) for t in entry} for entry in references]
    classes = set().union(*predicted, *expected)
    if not classes:
        return PRF(0.0, 0.0, 0.0)
    sums = [0.0, 0.0, 0.0]
    for label in classes:
        hits = sum(label in p and label in e for p, e in zip(predicted, expected, strict=True))
        guesses = sum(label in p for p in predicted)
        truths = sum(label in e for e in expected)
        precision = hits / guesses if guesses else 0.0
        recall = hits / truths if truths else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        sums = [sums[0] + precision, sums[1] + recall, sums[2] + f1]
    return PRF(*(total / len(classes) for total in sums))


def _raw(triple: Triple) -> str:
    return " | ".join(triple.as_list()).lower()
