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

from boundary.entities import (
    FORMATS,
    MONTHS,
    Normaliser,
    apply_format,
    lexicon_key,
    parse_date,
    parse_number,
)
from boundary.triples import Triple

__all__ = ["align", "display_form", "find_span", "learn_normaliser", "surface_candidates"]

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
        candidates += [repr(number), f"{number:,}"]
    without_brackets = re.sub(r"\s*\([^)]*\)\s*", " ", shown).strip()
    if without_brackets and without_brackets != shown:
        candidates.append(without_brackets)
    if "," in shown:
        candidates.append(shown.split(",")[0].strip())
    seen: set[str] = set()
    unique: list[str] = []
    for candidate in candidates:
        if candidate and candidate.lower() not in seen:
            seen.add(candidate.lower())
            unique.append(candidate)
    return unique


def find_span(
    text: str, canonical: str, taken: Sequence[tuple[int, int]] = ()
) -> tuple[int, int] | None:
    """Character span of `canonical` in `text`: an exact (case-insensitive) match of a surface
    candidate at word boundaries, else the best fuzzy window of words (token F1 ≥ 0.6)."""
    lowered = text.lower()
    for candidate in surface_candidates(canonical):
        pattern = re.compile(rf"(?<!\w){re.escape(candidate.lower())}(?!\w)")
        for match in pattern.finditer(lowered):
            span = (match.start(), match.end())
            if not _overlaps(span, taken):
                return span
    return _fuzzy_span(text, display_form(canonical), taken)


def _fuzzy_span(text: str, shown: str, taken: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    wanted = [w.lower() for w in _WORD.findall(shown)]
    if not wanted:
        return None
    words = list(_WORD.finditer(text))
    wanted_counts = Counter(wanted)
    best: tuple[float, tuple[int, int]] | None = None
    for start in range(len(words)):
        for end in range(start, min(len(words), start + len(wanted) + 1)):
            window = Counter(w[0].lower() for w in words[start : end + 1])
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


def learn_normaliser(
    observations: Iterable[tuple[str, str, str, str]],
    *,
    min_lexicon_count: int = 2,
    min_lexicon_share: float = 0.6,
) -> Normaliser:
    """From (surface, canonical, predicate, role) observations, learn the lexicon and formats.

    A surface enters the lexicon only when it was seen often enough and mostly meant one
    canonical form that no format rule would produce anyway (no point storing "Aarhus" →
    "Aarhus"). Formats are ranked per predicate and role by how often they reproduced the
    canonical form when they applied; the first one that applies to a new surface is used.
    """
    by_surface: dict[str, Counter[str]] = {}
    slot_tallies: dict[str, dict[str, list[int]]] = {}  # slot → format → [right, applied]
    role_tallies: dict[str, dict[str, list[int]]] = {}
    rows = list(observations)
    for surface, canonical, predicate, role in rows:
        by_surface.setdefault(lexicon_key(surface), Counter())[canonical] += 1
        for name in FORMATS:
            value = apply_format(name, surface)
            if value is None:
                continue
            for tallies in (
                slot_tallies.setdefault(f"{predicate}|{role}", {}),
                role_tallies.setdefault(role, {}),
            ):
                tally = tallies.setdefault(name, [0, 0])
                tally[0] += value == canonical
                tally[1] += 1
    normaliser = Normaliser(
        formats={slot: _ranked(tallies) for slot, tallies in slot_tallies.items()},
        default_formats={role: _ranked(tallies) for role, tallies in role_tallies.items()},
    )
    for key, counts in by_surface.items():
        canonical, count = counts.most_common(1)[0]
        total = sum(counts.values())
        if count < min_lexicon_count or count / total < min_lexicon_share:
            continue
        normaliser.lexicon[key] = canonical
    # Drop entries the rules reproduce anyway: they only make the artefact bigger.
    for surface, canonical, predicate, role in rows:
        key = lexicon_key(surface)
        if normaliser.lexicon.get(key) == canonical:
            normaliser.lexicon.pop(key)
            if normaliser.canonical(surface, predicate, role) != canonical:
                normaliser.lexicon[key] = canonical
    return normaliser


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
