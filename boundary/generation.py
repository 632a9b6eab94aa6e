"""Generative students: greedy decoding with per-token log-probabilities (Django-free).

Two runtimes serve the same merged model: transformers (the reference; also what training uses)
and onnxruntime-genai (an int4 or int8 export, about ten times faster on a CPU). Both decode
greedily from the raw logits, stop at the tokenizer's end-of-sequence token or at
`max_new_tokens`, and report the log-probability of every generated token, from which the
student's confidence is computed.

Prompts are encoded without special tokens, exactly as the trainer encodes them
(training/trainers/generative.py).

Artifact layout of a generative version: `<artifact_path>/merged` (a plain HF folder) and, for
the "onnx" backend, `<artifact_path>/ort-genai` (built at training time by
training/exporters.py). Which runtime serves a version is decided in boundary/loaders.py.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from boundary import prompts
from boundary.runtime import Generation, Generator, existing_dir, greedy_decode
from boundary.students import BackendUnavailable, StudentAnswer
from boundary.triples import Triple

__all__ = [
    "GenerativeStudent",
    "Generation",
    "Generator",
    "IncompleteGeneration",
    "OrtGenAIGenerator",
    "TransformersGenerator",
    "confidence_from_logprobs",
]


class IncompleteGeneration(ValueError):
    """The model was still writing at max_new_tokens; its output may be cut mid-triple."""


def confidence_from_logprobs(logprobs: Sequence[float]) -> float:
    """exp(mean log-probability): the per-token geometric mean probability, in [0, 1].

    Raw, not calibrated: the version's threshold is chosen on the eval split against this value.
    """
    if not logprobs:
        return 0.0
    return min(1.0, max(0.0, math.exp(math.fsum(logprobs) / len(logprobs))))


class TransformersGenerator:
    """The reference backend: a merged HF folder, float32 on the CPU, greedy with a KV cache."""

    def __init__(self, model_dir: str | Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.model_dir = existing_dir(model_dir)
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self._model = AutoModelForCausalLM.from_pretrained(
            str(self.model_dir), dtype=torch.float32, local_files_only=True
        )
        self._model.train(False)  # what eval() does; transformers' eval() is unannotated
        self.eos_token_ids = _eos_ids(self._tokenizer.eos_token_id, self._model.generation_config)
        # transformers 5.24 renamed forward's `past_key_values` to `cache` (the old name warns).
        parameters = inspect.signature(self._model.forward).parameters
        self._cache_name = "cache" if "cache" in parameters else "past_key_values"

    def generate(self, prompt: str, max_new_tokens: int) -> Generation:
        torch = self._torch
        ids = self._tokenizer(prompt, add_special_tokens=False)["input_ids"]
        cache: Any = None

        def feed(new_ids: Sequence[int]) -> np.ndarray:
            nonlocal cache
            if cache is None:
                # logits_to_keep=1: the prompt's other positions need no vocabulary projection.
                out = self._model(
                    input_ids=torch.tensor([list(new_ids)]), use_cache=True, logits_to_keep=1
                )
                cache = getattr(out, self._cache_name)  # filled in place by each later call
            else:
                out = self._model(
                    input_ids=torch.tensor([list(new_ids)]),
                    use_cache=True,
                    **{self._cache_name: cache},
                )
            logits: np.ndarray = out.logits[0, -1].numpy()
            return logits

        with torch.inference_mode():
            tokens, logprobs, complete = greedy_decode(
                feed, ids, eos_token_ids=self.eos_token_ids, max_new_tokens=max_new_tokens
            )
        text = self._tokenizer.decode(tokens, skip_special_tokens=False)
        assert isinstance(text, str)  # one flat list of ids decodes to one string
        return Generation(text=text, token_logprobs=logprobs, complete=complete)


class OrtGenAIGenerator:
    """The fast backend: a folder built by training/exporters.py (model, genai_config, tokenizer).

    Text is encoded and decoded with the folder's tokenizer.json through the `tokenizers`
    library, the same code transformers runs, so token ids match training exactly. (og.Tokenizer
    0.18 silently drops everything after an invalid UTF-8 byte when decoding.)
    """

    def __init__(self, model_dir: str | Path, *, num_threads: int | None = None) -> None:
        import onnxruntime_genai as og
        from tokenizers import Tokenizer

        self._og = og
        self.model_dir = existing_dir(model_dir)
        # Left unset, onnxruntime-genai ran like one thread on a 2-core machine: 25 tokens took
        # ~300 ms, against ~190 ms with the thread count given. Set here, not in the export,
        # because the export may be served on another machine.
        self.num_threads = num_threads or _cpu_count()
        config = og.Config(str(self.model_dir))
        session = {"intra_op_num_threads": self.num_threads}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": session}}}))
        self._model = og.Model(config)
        self._tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        settings = json.loads((self.model_dir / "genai_config.json").read_text())["model"]
        self.context_length = int(settings["context_length"])
        eos = settings["eos_token_id"]
        self.eos_token_ids = frozenset(int(t) for t in (eos if isinstance(eos, list) else [eos]))

    def generate(self, prompt: str, max_new_tokens: int) -> Generation:
        og = self._og
        ids = self._tokenizer.encode(prompt, add_special_tokens=False).ids
        max_new_tokens = min(max_new_tokens, self.context_length - len(ids))
        if max_new_tokens <= 0:
            raise ValueError(f"the prompt fills the {self.context_length}-token context")
        params = og.GeneratorParams(self._model)
        params.set_search_options(do_sample=False, max_length=len(ids) + max_new_tokens)
        generator = og.Generator(self._model, params)

        def feed(new_ids: Sequence[int]) -> np.ndarray:
            generator.append_tokens(np.asarray(new_ids, dtype=np.int32))
            logits: np.ndarray = generator.get_logits().reshape(-1)  # the last position's
            return logits

        tokens, logprobs, complete = greedy_decode(
            feed, ids, eos_token_ids=self.eos_token_ids, max_new_tokens=max_new_tokens
        )
        text = self._tokenizer.decode(tokens, skip_special_tokens=False)
        return Generation(text=text, token_logprobs=logprobs, complete=complete)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects taskset / container CPU pinning
    except AttributeError:  # macOS has no sched_getaffinity
        return os.cpu_count() or 1


def _eos_ids(tokenizer_eos: int | None, generation_config: Any) -> frozenset[int]:
    configured = getattr(generation_config, "eos_token_id", None)
    if configured is None:
        configured = []
    elif isinstance(configured, int):
        configured = [configured]
    ids = {int(t) for t in configured}
    if tokenizer_eos is not None:
        ids.add(int(tokenizer_eos))
    if not ids:
        raise BackendUnavailable("the model names no end-of-sequence token")
    return frozenset(ids)


class GenerativeStudent:
    """A StudentBackend over any Generator; unparseable or cut-off output raises."""

    def __init__(self, generator: Generator, *, max_new_tokens: int = 192) -> None:
        self.generator = generator
        self.max_new_tokens = max_new_tokens

    def decompose(self, text: str) -> StudentAnswer:
        generation = self._generate(prompts.decomposition_prompt(text))
        triples = prompts.parse_decomposition(generation.text)
        return StudentAnswer(triples, confidence_from_logprobs(generation.token_logprobs))

    def recompose(self, triples: Sequence[Triple]) -> StudentAnswer:
        generation = self._generate(prompts.recomposition_prompt(triples))
        text = prompts.parse_recomposition(generation.text)
        return StudentAnswer(text, confidence_from_logprobs(generation.token_logprobs))

    def _generate(self, prompt: str) -> Generation:
        generation = self.generator.generate(prompt, self.max_new_tokens)
        if not generation.complete:
            raise IncompleteGeneration(
                f"no end of sequence within {self.max_new_tokens} tokens: {generation.text!r}"
            )
        return generation
