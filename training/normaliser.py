"""Training-time entity work: aligning canonical entities to text and learning the normaliser.

The encoder is taught spans, so each triple's canonical entities (`Aarhus_Airport`,
`"1932-03-15"`) are first aligned to a span of their sentence; the same alignments, as
(surface, canonical, predicate, role) observations, teach the `Normaliser` that serving
applies to turn predicted spans back into canonical forms (boundary/entities.py). Only
training needs this half, so it lives here, out of the request path. Django-free.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from boundary.entities import (
    FORMATS,
    MONTHS,
    NUMBER_WORDS,
    Normaliser,
    apply_format,
    entity_key,
    fold,
    lexicon_key,
    parse_date,
    parse_number,
)
from boundary.triples import Triple

__all__ = [
    "acronyms",
    "align",
    "display_form",
    "find_span",
    "learn_normaliser",
    "normaliser_from_alignments",
    "plural",
    "surface_candidates",
]

_WORD = re.compile(r"\w+", re.UNICODE)


def display_form(canonical: str) -> str:
    """How a canonical entity most likely reads in a sentence: no quotes, tags or underscores."""
    value = canonical.strip()
    value = re.sub(r"\^\^.*$|@[a-z]{2}(-[A-Za-z]+)?$", "", value)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return " ".join(value.replace("_", " ").split())


def surface_candidates(canonical: str) -> list[str]:
    """Ways a canonical entity may be written in a sentence, most specific first."""
    shown = display_form(canonical)
    candidates = [shown]
    parsed_date = parse_date(shown)
    if parsed_date is not None:
        month = MONTHS[parsed_date.month - 1].capitalize()
        day, year = parsed_date.day, parsed_date.year
        candidates += [
            f"{month} {day}, {year}",
            f"{month} {day} {year}",
            f"{day} {month} {year}",
            f"{day} {month}, {year}",
            f"{month} {day}{_ordinal(day)}, {year}",
            f"{day}{_ordinal(day)} {month} {year}",
            f"{day}{_ordinal(day)} of {month} {year}",
        ]
    number = parse_number(shown)
    if number is not None:
        if number == int(number):
            candidates += [str(int(number)), f"{int(number):,}"]
            candidates += [w for w, n in NUMBER_WORDS.items() if n == number and " " not in w]
        candidates += [repr(number), f"{number:,}"]
    without_brackets = re.sub(r"\s*\([^)]*\)\s*", " ", shown).strip()
    if without_brackets and without_brackets != shown:
        candidates.append(without_brackets)
    if "," in shown:
        candidates.append(shown.split(",")[0].strip())
    if number is None and parsed_date is None:
        candidates += [plural(c) for c in list(candidates)]
    seen: set[str] = set()
    unique: list[str] = []
    for candidate in candidates:
        if candidate and candidate.lower() not in seen:
            seen.add(candidate.lower())
            unique.append(candidate)
    return unique


def plural(word_or_phrase: str) -> str:
    """The regular English plural of the last word ("Noodle" → "Noodles", "Berry" → "Berries")."""
    if re.search(r"[^aeiou]y$", word_or_phrase, re.I):
        return word_or_phrase[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh|o)$", word_or_phrase, re.I):
        return word_or_phrase + "es"
    return word_or_phrase + "s"


def acronyms(shown: str) -> list[str]:
    """ "United Kingdom" → "UK", "U.K.": how a name of capitalised words is often shortened."""
    words = [w for w in shown.split() if w[0].isalpha()]
    if len(words) < 2 or not all(w[0].isupper() for w in words):
        return []
    letters = [w[0] for w in words]
    return ["".join(letters), "".join(f"{letter}." for letter in letters)]


def find_span(
    text: str, canonical: str, taken: Sequence[tuple[int, int]] = ()
) -> tuple[int, int] | None:
    """Character span of `canonical` in `text`: an exact match of a surface candidate at word
    boundaries (ignoring case and accents; an acronym only in capitals), else the best fuzzy
    window of words (token F1 ≥ 0.6)."""
    folded = fold(text)
    searches = [(folded, fold(candidate)) for candidate in surface_candidates(canonical)]
    searches += [(text, acronym) for acronym in acronyms(display_form(canonical))]
    for haystack, candidate in searches:
        pattern = re.compile(rf"(?<!\w){re.escape(candidate)}(?!\w)")
        for match in pattern.finditer(haystack):
            span = (match.start(), match.end())
            if not _overlaps(span, taken):
                return span
    return _fuzzy_span(text, display_form(canonical), taken)


def _fuzzy_span(text: str, shown: str, taken: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    wanted = [fold(w) for w in _WORD.findall(shown)]
    if not wanted:
        return None
    words = list(_WORD.finditer(text))
    wanted_counts = Counter(wanted)
    best: tuple[float, tuple[int, int]] | None = None
    for start in range(len(words)):
        for end in range(start, min(len(words), start + len(wanted) + 1)):
            window = Counter(fold(w[0]) for w in words[start : end + 1])
            common = sum((window & wanted_counts).values())
            if not common:
                continue
            precision, recall = common / sum(window.values()), common / len(wanted)
            f1 = 2 * precision * recall / (precision + recall)
            span = (words[start].start(), words[end].end())
            if f1 >= 0.6 and not _overlaps(span, taken) and (best is None or f1 > best[0]):
                best = (f1, span)
    return best[1] if best else None


def align(text: str, triples: Sequence[Triple]) -> dict[str, tuple[int, int]]:
    """Canonical entity → character span, for the entities of `triples` found in `text`.

    Longer entities are placed first so that "Aarhus Airport" is not split by "Aarhus".
    An entity found nowhere is left out: its triples cannot be taught to a span model.
    """
    entities = {t.subject for t in triples} | {t.object for t in triples}
    spans: dict[str, tuple[int, int]] = {}
    for entity in sorted(entities, key=lambda e: -len(display_form(e))):
        span = find_span(text, entity, list(spans.values()))
        if span is not None:
            spans[entity] = span
    return spans


Alignment = tuple[str, Sequence[Triple], dict[str, tuple[int, int]]]  # text, triples, spans


def normaliser_from_alignments(alignments: Iterable[Alignment]) -> Normaliser:
    """The normaliser aligned sentences teach: each aligned entity is an observation of how its
    slot writes it, and every entity (aligned or not) enters the known-entity table."""
    observations: list[tuple[str, str, str, str]] = []
    entities: list[str] = []
    for text, triples, spans in alignments:
        for triple in triples:
            for entity, role in ((triple.subject, "subject"), (triple.object, "object")):
                entities.append(entity)
                if entity in spans:
                    start, end = spans[entity]
                    observations.append((text[start:end], entity, triple.predicate, role))
    return learn_normaliser(observations, entities=entities)


def learn_normaliser(
    observations: Iterable[tuple[str, str, str, str]],
    *,
    entities: Iterable[str] = (),
    min_lexicon_count: int = 2,
    min_lexicon_share: float = 0.6,
) -> Normaliser:
    """From (surface, canonical, predicate, role) observations, learn the lexicon and formats.

    A surface enters the lexicon only when it was seen often enough and mostly meant one
    canonical form that no format rule would produce anyway (no point storing "Aarhus" →
    "Aarhus"). Formats are ranked per predicate and role by how often they reproduced the
    canonical form when they applied (case aside: the known-entity table restores it); the
    first one that applies to a new surface is used.
    Every canonical entity seen (observed, or named in `entities`: those no span was found for
    count too) is remembered by its folded form, so a span spelled without its accents still
    comes out as the entity the data knows.
    """
    by_slot: dict[tuple[str, str], Counter[str]] = {}  # (slot, surface key) → canonical forms
    slot_tallies: dict[str, dict[str, list[int]]] = {}  # slot → format → [right, applied]
    role_tallies: dict[str, dict[str, list[int]]] = {}
    known: dict[str, Counter[str]] = {}
    rows = list(observations)
    for canonical in [*entities, *(row[1] for row in rows)]:
        known.setdefault(entity_key(canonical), Counter())[canonical] += 1
    for surface, canonical, predicate, role in rows:
        by_slot.setdefault((f"{predicate}|{role}", lexicon_key(surface)), Counter())[canonical] += 1
        for name in FORMATS:
            value = apply_format(name, surface)
            if value is None:
                continue
            for tallies in (
                slot_tallies.setdefault(f"{predicate}|{role}", {}),
                role_tallies.setdefault(role, {}),
            ):
                tally = tallies.setdefault(name, [0, 0])
                tally[0] += _loosely(value) == _loosely(canonical)
                tally[1] += 1
    normaliser = Normaliser(
        formats={slot: _ranked(tallies) for slot, tallies in slot_tallies.items()},
        default_formats={role: _ranked(tallies) for role, tallies in role_tallies.items()},
        entities={key: counts.most_common(1)[0][0] for key, counts in known.items()},
    )
    by_surface: dict[str, Counter[str]] = {}
    for (_, key), meanings in by_slot.items():
        by_surface.setdefault(key, Counter()).update(meanings)
    trusted = _trusted(by_surface, min_lexicon_count, min_lexicon_share)
    trusted_in_slot = _trusted(by_slot, min_lexicon_count, min_lexicon_share)
    # Keep only entries some observed surface needs: the rules (or the global entry) get the
    # others right anyway, and the artefact stays small.
    for surface, canonical, predicate, role in rows:
        key = lexicon_key(surface)
        if trusted.get(key) == canonical and normaliser.canonical(surface, predicate, role) != (
            canonical
        ):
            normaliser.lexicon[key] = canonical
    for surface, canonical, predicate, role in rows:
        key, slot = lexicon_key(surface), f"{predicate}|{role}"
        if trusted_in_slot.get((slot, key)) == canonical and (
            normaliser.canonical(surface, predicate, role) != canonical
        ):
            normaliser.slot_lexicon.setdefault(slot, {})[key] = canonical
    return normaliser


def _trusted(counts: dict[Any, Counter[str]], min_count: int, min_share: float) -> dict[Any, str]:
    """The canonical form each key mostly meant, where it was seen often enough to trust."""
    trusted = {}
    for key, meanings in counts.items():
        canonical, count = meanings.most_common(1)[0]
        if count >= min_count and count / sum(meanings.values()) >= min_share:
            trusted[key] = canonical
    return trusted


def _loosely(value: str) -> str:
    """A format is right if it only misses the case of a letter (`_` and quotes still count)."""
    return value.casefold()


def _ranked(tallies: dict[str, list[int]]) -> list[str]:
    """Formats by how often they were right when they applied (smoothed), never-right ones out.

    Precision, not raw counts: "as written" applies to every surface, so it would always win on
    counts even for a predicate whose numbers are stored as decimals.
    """
    scored = [
        ((right + 1) / (applied + 2), right, name)
        for name, (right, applied) in tallies.items()
        if right
    ]
    return [name for *_, name in sorted(scored, key=lambda item: (-item[0], -item[1], item[2]))]


def _ordinal(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _overlaps(span: tuple[int, int], taken: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)
