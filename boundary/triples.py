"""The one triple type, and the only way outside data becomes one.

API bodies, WebNLG JSONL rows and model output all pass through `parse_triples` or `from_linear`,
so the rest of the product can trust a `Triple` without checking it again. No Django here: training
and inference import this module too.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_LIMITS",
    "FIELDS",
    "LinearFormatError",
    "Triple",
    "TripleLimits",
    "TripleValidationError",
    "from_linear",
    "normalise_text",
    "normalise_triple",
    "parse_triples",
    "same_triples",
    "to_linear",
    "triples_to_json",
]

FIELDS = ("subject", "predicate", "object")

# Short on purpose: generative models pay for every token of the linear form.
_SEPARATOR = " | "
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A lone UTF-16 surrogate is a valid JSON escape ("\ud800") but no character: it has no UTF-8
# form, so neither a response nor PostgreSQL can hold it (from a client or from a model).
_SURROGATE = re.compile("[\ud800-\udfff]")
_MISSING = object()


class TripleValidationError(ValueError):
    """Every problem found in untrusted triples, keyed by path, so callers can show them all."""

    errors: dict[str, list[str]]

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        # errors is the only arg, so the exception survives pickling (e.g. in a task queue).
        super().__init__(dict(errors))
        self.errors = {path: list(messages) for path, messages in errors.items()}

    def __str__(self) -> str:
        return "; ".join(
            f"{path}: {message}" for path, messages in self.errors.items() for message in messages
        )


class LinearFormatError(ValueError):
    """Linear text that cannot even be split into triples; `line` is 1-based."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(line, problem)
        self.line = line
        self.problem = problem

    def __str__(self) -> str:
        return f"Line {self.line}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Triple:
    """One (subject, predicate, object) fact; build it via parse_triples to get a valid one."""

    subject: str
    predicate: str
    object: str

    def as_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "predicate": self.predicate, "object": self.object}

    def as_list(self) -> list[str]:
        return [self.subject, self.predicate, self.object]


@dataclass(frozen=True)
class TripleLimits:
    """Bounds that keep one request (and one model prompt) a sane size."""

    max_triples: int = 64
    max_field_chars: int = 500

    def __post_init__(self) -> None:
        if self.max_triples < 1 or self.max_field_chars < 1:
            raise ValueError("TripleLimits values must be at least 1.")


# A module constant rather than a call in each signature (ruff B008).
DEFAULT_LIMITS = TripleLimits()
# For reading what was stored, however long: validation happened on the way in.
STORED_LIMITS = TripleLimits(max_triples=10_000, max_field_chars=100_000)


def parse_triples(
    data: object, limits: TripleLimits = DEFAULT_LIMITS, *, path: str = "triples"
) -> list[Triple]:
    """Turn untrusted JSON-like data into triples, or raise with every problem found.

    Items are {"subject", "predicate", "object"} objects or [subject, predicate, object] lists
    (the WebNLG JSONL form). Field errors use "<path>[i].<field>" for both forms.
    """
    if not isinstance(data, list):
        raise TripleValidationError({path: [f"Expected a list of triples, got {_kind(data)}."]})
    if not data:
        raise TripleValidationError({path: ["At least one triple is required."]})

    errors: dict[str, list[str]] = {}
    if len(data) > limits.max_triples:
        errors[path] = [f"At most {limits.max_triples} triples are allowed; got {len(data)}."]
    triples = []
    for index, item in enumerate(data):
        triple = _parse_item(item, f"{path}[{index}]", limits, errors)
        if triple is not None:
            triples.append(triple)
    if errors:
        raise TripleValidationError(errors)
    return triples


def triples_to_json(triples: Iterable[Triple]) -> list[dict[str, str]]:
    return [triple.as_dict() for triple in triples]


def to_linear(triples: Sequence[Triple]) -> str:
    """The compact "subject | predicate | object" lines that models are trained to emit."""
    return "\n".join(_SEPARATOR.join(map(_escape, triple.as_list())) for triple in triples)


def from_linear(text: str, limits: TripleLimits = DEFAULT_LIMITS) -> list[Triple]:
    """Parse `to_linear` output (or a model's attempt at it) and validate like parse_triples.

    Validation paths count non-blank lines from 0: "triples[2].object" is the third triple.
    """
    rows = []
    # Split on "\n" only: str.splitlines would also break on U+2028 and friends, which are valid
    # inside a field and which to_linear does not escape.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        fields = _split_line(line, number)
        if len(fields) != 3:
            raise LinearFormatError(
                number, f"expected 3 fields separated by '|', found {len(fields)}."
            )
        rows.append(fields)
    return parse_triples(rows, limits)


def normalise_text(value: str, aliases: Mapping[str, str] | None = None) -> str:
    """A matching key for `value` (never store it): case, spacing and naming style ignored."""
    return _normalise(value, _alias_table(aliases))


def normalise_triple(
    triple: Triple, aliases: Mapping[str, str] | None = None
) -> tuple[str, str, str]:
    return _normalised(triple, _alias_table(aliases))


def same_triples(
    a: Iterable[Triple], b: Iterable[Triple], aliases: Mapping[str, str] | None = None
) -> bool:
    """Whether a and b state the same facts, ignoring order, duplicates and surface form."""
    table = _alias_table(aliases)
    return {_normalised(t, table) for t in a} == {_normalised(t, table) for t in b}


class _InvalidField(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(messages)
        self.messages = messages


def _parse_item(
    item: object, item_path: str, limits: TripleLimits, errors: dict[str, list[str]]
) -> Triple | None:
    if isinstance(item, Mapping):
        unexpected = sorted(repr(key) for key in item if key not in FIELDS)
        if unexpected:
            errors.setdefault(item_path, []).append(
                f"Unexpected field(s): {', '.join(unexpected)}."
            )
        raw = [item.get(name, _MISSING) for name in FIELDS]
    elif isinstance(item, list | tuple):
        if len(item) != 3:
            errors.setdefault(item_path, []).append(
                f"A triple list needs exactly 3 items (subject, predicate, object); "
                f"got {len(item)}."
            )
            return None
        raw = list(item)
    else:
        errors.setdefault(item_path, []).append(
            "Expected an object with subject, predicate and object, "
            f"or a [subject, predicate, object] list; got {_kind(item)}."
        )
        return None

    values = []
    for name, value in zip(FIELDS, raw, strict=True):
        try:
            values.append(_clean_field(value, limits))
        except _InvalidField as invalid:
            errors.setdefault(f"{item_path}.{name}", []).extend(invalid.messages)
    if len(values) != 3 or item_path in errors:
        return None
    return Triple(*values)


def _clean_field(value: object, limits: TripleLimits) -> str:
    if value is _MISSING:
        raise _InvalidField(["This field is required."])
    if not isinstance(value, str):
        raise _InvalidField([f"Must be a string, got {_kind(value)}."])
    cleaned = unicodedata.normalize("NFC", value).strip()
    if not cleaned:
        raise _InvalidField(["Must not be empty or only whitespace."])
    problems = []
    if len(cleaned) > limits.max_field_chars:
        problems.append(f"Must be at most {limits.max_field_chars} characters; got {len(cleaned)}.")
    if control := _CONTROL.search(cleaned):
        problems.append(
            "Must not contain control characters such as newlines or tabs; "
            f"found U+{ord(control.group()):04X}."
        )
    if surrogate := _SURROGATE.search(cleaned):
        problems.append(
            f"Must not contain a lone surrogate (U+{ord(surrogate.group()):04X}): "
            "it is not a character."
        )
    if problems:
        raise _InvalidField(problems)
    return cleaned


def _kind(value: object) -> str:
    """A JSON-ish type name, since API callers never see Python's."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _escape(field: str) -> str:
    if "\n" in field or "\r" in field:
        # Would silently split the line; valid triples never contain one.
        raise ValueError(f"Cannot write a field containing a line break: {field!r}")
    return field.replace("\\", "\\\\").replace("|", "\\|")


def _split_line(line: str, number: int) -> list[str]:
    fields: list[str] = []
    current: list[str] = []
    chars = iter(line)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise LinearFormatError(number, "dangling backslash at end of line.")
            if escaped not in ("\\", "|"):
                sequence = "\\" + escaped
                raise LinearFormatError(
                    number, f"unknown escape {sequence!r}; only '\\\\' and '\\|' are allowed."
                )
            current.append(escaped)
        elif char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _alias_table(aliases: Mapping[str, str] | None) -> dict[str, str]:
    """Aliases normalised once; if two keys normalise alike, the later one wins."""
    if not aliases:
        return {}
    return {_normalise(key, {}): _normalise(value, {}) for key, value in aliases.items()}


def _normalise(value: str, table: Mapping[str, str]) -> str:
    text = _matching_key(value)
    return table.get(text, text)


@functools.lru_cache(maxsize=8192)
def _matching_key(value: str) -> str:
    """Cached: the cascade and the scorers compare every triple with every other, so the same
    few strings are normalised again and again (a pure function of its argument)."""
    text = unicodedata.normalize("NFC", value).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    text = _split_camel_case(text.replace("_", " "))
    # NFC again because casefold can decompose (e.g. U+01F0 -> "j" + U+030C).
    return " ".join(unicodedata.normalize("NFC", text.casefold()).split())


def _split_camel_case(text: str) -> str:
    """'birthPlace' -> 'birth Place'; Unicode-aware, unlike an [a-z][A-Z] regex."""
    out: list[str] = []
    previous = ""
    for char in text:
        if previous.islower() and char.isupper():
            out.append(" ")
        out.append(char)
        previous = char
    return "".join(out)


def _normalised(triple: Triple, table: Mapping[str, str]) -> tuple[str, str, str]:
    return (
        _normalise(triple.subject, table),
        _normalise(triple.predicate, table),
        _normalise(triple.object, table),
    )
