"""The exact text a generative student is trained on and prompted with (Django-free).

Training and serving must agree byte for byte, so both import these functions. Prompts are
deliberately short: a fine-tuned model needs no instruction, and every prompt token costs
prefill time on a CPU (~4 ms a token for a 135M model on 2 cores).
"""

from __future__ import annotations

from collections.abc import Sequence

from boundary.directions import DECOMPOSITION
from boundary.triples import Triple, from_linear, to_linear


def decomposition_prompt(text: str) -> str:
    return f"Text: {' '.join(text.split())}\nTriples:\n"


def recomposition_prompt(triples: Sequence[Triple]) -> str:
    return f"Triples:\n{to_linear(triples)}\nText:"


def decomposition_target(triples: Sequence[Triple]) -> str:
    return to_linear(triples)


def recomposition_target(text: str) -> str:
    return " " + " ".join(text.split())


def prompt_for(direction: str, source: str | Sequence[Triple]) -> str:
    if direction == DECOMPOSITION:
        assert isinstance(source, str)
        return decomposition_prompt(source)
    assert not isinstance(source, str)
    return recomposition_prompt(source)


def parse_decomposition(generated: str) -> list[Triple]:
    """Raises LinearFormatError / TripleValidationError when the model wrote nonsense."""
    return from_linear(generated.strip())


def parse_recomposition(generated: str) -> str:
    text = generated.strip()
    if not text:
        raise ValueError("the model generated no text")
    return text
