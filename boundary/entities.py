"""Entity strings between the text and the graph: alignment for training, normalisation for serving.

An encoder can only point at words in the sentence, while the graph stores canonical forms
(WebNLG writes `Aarhus_Airport`, `"1932-03-15"`, `25.0`). Training aligns each canonical
entity to a span of its sentence; serving turns a predicted span back into the canonical form.
Both directions are learned from the training pairs, never hard-coded per dataset:

- a *lexicon* of surface → canonical forms seen often enough to be trusted;
- per predicate and role, which *format* turned the surface into the canonical form
  (as written, spaces → `_`, ISO date, decimal, integer; each optionally in quotes).

Django-free: the trainer and the ONNX student both import it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from boundary.triples import Triple

MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH = {name: number for number, name in enumerate(MONTHS, start=1)} | {
    name[:3]: number for number, name in enumerate(MONTHS, start=1)
}
_MONTH_RE = "|".join(sorted(_MONTH, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"),  # ISO
    re.compile(rf"^(?P<m>{_MONTH_RE})\.?\s+{_DAY},?\s+(\d{{4}})$", re.I),  # March 15th, 1932
    re.compile(rf"^{_DAY}\s+(?:of\s+)?(?P<m>{_MONTH_RE})\.?,?\s+(\d{{4}})$", re.I),  # 15 March 1932
)
_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
_WORD = re.compile(r"\w+", re.UNICODE)


def display_form(canonical: str) -> str:
    """How a canonical entity most likely reads in a sentence: no quotes, tags or underscores."""
    value = canonical.strip()
    value = re.sub(r"\^\^.*$|@[a-z]{2}(-[A-Za-z]+)?$", "", value)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return " ".join(value.replace("_", " ").split())


def parse_date(text: str) -> date | None:
    value = text.strip()
    for number, pattern in enumerate(_DATE_PATTERNS):
        match = pattern.match(value)
        if not match:
            continue
        try:
            if number == 0:
                return date(int(match[1]), int(match[2]), int(match[3]))
            month = _MONTH[match["m"].lower()]
            day = int(match[2]) if number == 1 else int(match[1])
            return date(int(match[3]), month, day)
        except ValueError:
            return None
    return None


def parse_number(text: str) -> float | None:
    value = text.strip()
    if not _NUMBER.match(value):
        return None
    return float(value.replace(",", ""))


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
    return [c for c in candidates if c and not (c.lower() in seen or seen.add(c.lower()))]


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


# --- Formats: how a surface becomes a canonical form -------------------------------------------


def _as_written(surface: str) -> str | None:
    return surface


def _underscored(surface: str) -> str | None:
    return "_".join(surface.split())


def _iso_date(surface: str) -> str | None:
    parsed = parse_date(surface)
    return parsed.isoformat() if parsed else None


def _decimal(surface: str) -> str | None:
    number = parse_number(surface)
    return repr(number) if number is not None else None


def _integer(surface: str) -> str | None:
    number = parse_number(surface)
    return str(int(number)) if number is not None and number == int(number) else None


_BASE_FORMATS = {
    "as_written": _as_written,
    "underscored": _underscored,
    "iso_date": _iso_date,
    "decimal": _decimal,
    "integer": _integer,
}
FORMATS = tuple(_BASE_FORMATS) + tuple(f"quoted_{name}" for name in _BASE_FORMATS)


def apply_format(name: str, surface: str) -> str | None:
    """The canonical form `name` makes of `surface`, or None when it does not apply."""
    quoted = name.startswith("quoted_")
    value = _BASE_FORMATS[name.removeprefix("quoted_")](surface.strip())
    if value is None or not value:
        return None
    return f'"{value}"' if quoted else value


@dataclass
class Normaliser:
    """Learned surface → canonical rules; serialisable to JSON with the model artefact."""

    lexicon: dict[str, str] = field(default_factory=dict)
    formats: dict[str, list[str]] = field(default_factory=dict)  # "pred|role" → ranked formats
    default_formats: dict[str, list[str]] = field(default_factory=dict)  # role → ranked formats

    def canonical(self, surface: str, predicate: str, role: str) -> str:
        known = self.lexicon.get(_lexicon_key(surface))
        if known is not None:
            return known
        ranked = self.formats.get(f"{predicate}|{role}") or self.default_formats.get(role, [])
        for name in [*ranked, "as_written"]:
            value = apply_format(name, surface)
            if value is not None:
                return value
        return surface

    def as_dict(self) -> dict[str, Any]:
        return {
            "lexicon": self.lexicon,
            "formats": self.formats,
            "default_formats": self.default_formats,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normaliser:
        return cls(
            lexicon=dict(data.get("lexicon", {})),
            formats={k: list(v) for k, v in data.get("formats", {}).items()},
            default_formats={k: list(v) for k, v in data.get("default_formats", {}).items()},
        )


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
        by_surface.setdefault(_lexicon_key(surface), Counter())[canonical] += 1
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
        key = _lexicon_key(surface)
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


def _lexicon_key(surface: str) -> str:
    return " ".join(surface.lower().split())


def _ordinal(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _overlaps(span: tuple[int, int], taken: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)
