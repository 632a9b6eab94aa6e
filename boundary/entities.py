"""Entity strings from the text to the graph: the learned normaliser that serving applies.

An encoder can only point at words in the sentence, while the graph stores canonical forms
(WebNLG writes `Aarhus_Airport`, `"1932-03-15"`, `25.0`). Serving turns a predicted span back
into the canonical form with a `Normaliser` learned from the training pairs, never hard-coded
per dataset:

- a *lexicon* of surface → canonical forms seen often enough to be trusted;
- per predicate and role, which *format* turned the surface into the canonical form
  (as written, spaces → `_`, ISO date, decimal, integer; each optionally in quotes).

Aligning entities to text and learning the normaliser happen at training time only, in
training/normaliser.py. Django-free: the ONNX student and the cascade import it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = [
    "FORMATS",
    "MONTHS",
    "NUMBER_WORDS",
    "Normaliser",
    "apply_format",
    "fold",
    "lexicon_key",
    "parse_date",
    "parse_number",
]

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


_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_WORDS = {word: value for value, word in enumerate(_UNITS)} | {
    f"{tens}{joint}{unit}" if unit else tens: 10 * (index + 2) + value
    for index, tens in enumerate(_TENS)
    for value, unit in enumerate(["", *_UNITS[1:10]])
    for joint in ("-", " ")
}


def parse_number(text: str) -> float | None:
    """Digits ("1,200", "25.5") or an English number word below a hundred ("seven",
    "twenty-one"): people write small counts in words."""
    value = text.strip()
    if _NUMBER.match(value):
        return float(value.replace(",", ""))
    word = NUMBER_WORDS.get(" ".join(value.lower().split()))
    return float(word) if word is not None else None


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


_PLURAL_ENDINGS = (("ies", "y"), ("oes", "o"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"))


def singular(surface: str) -> str | None:
    """The last word made singular by the regular English rules, or None if it is not plural.

    Only a rule the normaliser *learned* to trust for a slot applies it (`noodles` → `Noodle`
    where a slot's canonical forms are singular); irregular words are the lexicon's job.
    """
    head, _, last = surface.rpartition(" ")
    lowered = last.lower()
    if len(lowered) < 4 or not lowered.endswith("s") or lowered.endswith(("ss", "us", "is")):
        return None
    for ending, replacement in _PLURAL_ENDINGS:
        if lowered.endswith(ending):
            last = last[: -len(ending)] + replacement
            break
    else:
        last = last[:-1]
    return f"{head} {last}" if head else last


def _singular_underscored(surface: str) -> str | None:
    made = singular(surface)
    return "_".join(made.split()) if made else None


_BASE_FORMATS = {
    "as_written": _as_written,
    "underscored": _underscored,
    "iso_date": _iso_date,
    "decimal": _decimal,
    "integer": _integer,
    "singular_underscored": _singular_underscored,
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
    # Where one surface means different entities in different slots ("noodles": an ingredient
    # `Noodle`, or the start of a main-ingredient list), the slot's own reading comes first.
    slot_lexicon: dict[str, dict[str, str]] = field(default_factory=dict)
    formats: dict[str, list[str]] = field(default_factory=dict)  # "pred|role" → ranked formats
    default_formats: dict[str, list[str]] = field(default_factory=dict)  # role → ranked formats
    # Every canonical entity the training data named, by the folded form it reads as: a
    # formatted span that folds to one of them *is* that entity ("Arros negre" → "Arròs_negre").
    entities: dict[str, str] = field(default_factory=dict)

    def canonical(self, surface: str, predicate: str, role: str) -> str:
        key = lexicon_key(surface)
        known = self.slot_lexicon.get(f"{predicate}|{role}", {}).get(key) or self.lexicon.get(key)
        if known is not None:
            return known
        ranked = self.formats.get(f"{predicate}|{role}") or self.default_formats.get(role, [])
        for name in [*ranked, "as_written"]:
            value = apply_format(name, surface)
            if value is not None:
                return self._known_entity(value)
        return surface

    def _known_entity(self, value: str) -> str:
        """The training data's spelling of `value` (accents, case, `_`), quoted as the slot's
        format quotes: "Arros negre" → "Arròs_negre", "noodle" → "Noodle"."""
        known = self.entities.get(entity_key(value))
        if known is None:
            return value
        bare = _unquoted(known)
        return f'"{bare}"' if _unquoted(value) != value else bare

    def as_dict(self) -> dict[str, Any]:
        return {
            "lexicon": self.lexicon,
            "slot_lexicon": self.slot_lexicon,
            "formats": self.formats,
            "default_formats": self.default_formats,
            "entities": self.entities,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normaliser:
        return cls(
            # Re-keyed: artefacts written before keys folded accents still look up right.
            lexicon={lexicon_key(k): v for k, v in data.get("lexicon", {}).items()},
            slot_lexicon={
                slot: dict(entries) for slot, entries in data.get("slot_lexicon", {}).items()
            },
            formats={k: list(v) for k, v in data.get("formats", {}).items()},
            default_formats={k: list(v) for k, v in data.get("default_formats", {}).items()},
            entities=dict(data.get("entities", {})),
        )


def fold(text: str) -> str:
    """Lower case without accents, one character for one (so offsets into `text` still hold).

    "Susana Díaz" and "Susana Diaz" fold alike: people type names without their accents.
    """
    folded = []
    for char in text:
        lowered = char.lower()
        bare = "".join(
            c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c)
        )
        folded.append(bare if len(bare) == 1 and len(lowered) == 1 else char)
    return "".join(folded)


def lexicon_key(surface: str) -> str:
    """How the lexicon looks surfaces up (and how training stores them): case, accents and
    spacing fold."""
    return " ".join(fold(surface).split())


def entity_key(canonical: str) -> str:
    """How a canonical entity reads once quotes, underscores, case and accents are set aside."""
    return lexicon_key(_unquoted(canonical.strip()).replace("_", " "))


def _unquoted(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
