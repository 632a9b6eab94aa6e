"""A specialised decomposition encoder: entity spans + span-pair relations on a small BERT.

Why this shape (and not table filling or CasRel):
- Entities are BIO-tagged per token, so several triples, shared subjects and literal objects
  (dates, numbers) are all just spans.
- Relations are classified per ordered pair of *decoded spans*, over the predicates seen in
  training plus "none". Table filling scores every token pair against every predicate
  (n² × R logits, ~1.6M for a 64-token sentence and 370 WebNLG predicates); CasRel tags
  objects per (subject, relation), R passes over the tokens. With spans first, the pair head
  sees a handful of spans, so it costs well under a millisecond after the encoder.
- The first pair layer is linear in [subject start, subject end, object start, object end,
  mean of the tokens between the spans], so it is computed once per token inside the ONNX
  graph (five projections); a pair only adds four rows and one prefix-sum difference and runs
  the small output layer (`pairs.onnx`). The words between the spans are the verb: without
  them, "Chris prefers X" came out as `knows` after the offline bootstrap.
- A count head on [CLS] estimates how many facts the sentence states; with the pairs' "none"
  probabilities it gives the answer's completeness (did we miss a fact, e.g. one whose
  predicate the encoder has never seen?), so the cascade can ask the next stage.

Training labels come from aligning each triple's canonical entities to the sentence
(`training.normaliser.align`); the same alignments teach the normaliser that turns predicted
spans back into canonical forms. Django-free.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from boundary.encoder import ARTIFACT_VERSION, MAX_COUNT, TAG_B, TAG_I, TAG_O
from boundary.triples import Triple
from training.normaliser import align, normaliser_from_alignments
from training.trainers.common import (
    Progress,
    StepLoop,
    bf16_supported,
    start_training,
    torch_update,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel

__all__ = ["EncoderConfig", "EncoderResult", "train_encoder"]

MAX_SPANS = 16  # per sentence in training; more entities than this is not a sentence
PAIR_SLOTS = 5  # projections per token: subject start/end, object start/end, between


@dataclass(frozen=True)
class EncoderConfig:
    epochs: float = 3.0
    max_steps: int = 0  # 0: no cap
    min_steps: int = 0  # train at least this long however small the data (see settings)
    max_seconds: float = 0.0  # 0: no budget; otherwise stop (and keep the model) after this long
    batch_size: int = 32
    learning_rate: float = 1e-4  # the pretrained encoder
    head_learning_rate: float = 1e-3  # the new heads, which start from random weights
    pair_hidden: int = 256
    max_length: int = 128
    warmup_ratio: float = 0.06
    bf16: bool = True
    quantize: bool = True  # int8 dynamic quantisation of the exported encoder
    seed: int = 0

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


@dataclass(frozen=True)
class EncoderResult:
    artifact_dir: Path
    steps: int
    examples: int
    aligned_share: float  # of triples whose subject and object were both found in the text
    predicates: int
    final_loss: float
    seconds: float
    device: str


class TripleEncoder(nn.Module):
    """Encoder + three heads: BIO tags, fact count, and the per-token pair projections."""

    def __init__(self, encoder: PreTrainedModel, predicates: int, pair_hidden: int) -> None:
        super().__init__()
        hidden: int = encoder.config.hidden_size
        self.encoder = encoder
        self.tagger = nn.Linear(hidden, 3)
        self.counter = nn.Linear(hidden, MAX_COUNT + 1)
        # Four span-end slots and one for the words between the two spans (the verb).
        self.span_projection = nn.Linear(hidden, PAIR_SLOTS * pair_hidden)
        self.pair_head = PairHead(pair_hidden, predicates + 1)
        self.pair_hidden = pair_hidden

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        batch, width, _ = states.shape
        projections = self.span_projection(states).view(batch, width, PAIR_SLOTS, self.pair_hidden)
        return self.tagger(states), self.counter(states[:, 0]), projections


class PairHead(nn.Module):
    """gelu(sum of the pair's five projections + bias) → predicate logits (0 = none)."""

    def __init__(self, pair_hidden: int, classes: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(pair_hidden))
        self.out = nn.Linear(pair_hidden, classes)

    def forward(self, pair_input: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.out(nn.functional.gelu(pair_input + self.bias))
        return logits


class _Probabilities(nn.Module):
    """What is exported: probabilities, so that the serving side does no softmax of its own."""

    def __init__(self, model: TripleEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tags, count, projections = self.model(input_ids, attention_mask)
        return tags.softmax(-1), count.softmax(-1), projections


class _PairProbabilities(nn.Module):
    def __init__(self, head: PairHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, pair_input: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(pair_input)
        return logits.softmax(-1)


@dataclass
class _Example:
    ids: list[int]
    tags: list[int]
    spans: list[tuple[int, int]]  # token start and end (inclusive) of each entity mention
    relations: dict[tuple[int, int], list[int]]  # (subject span, object span) → predicate ids
    count: int


def train_encoder(
    base_model: str | Path,
    examples: Sequence[tuple[str, Sequence[Triple]]],
    out_dir: Path,
    config: EncoderConfig = EncoderConfig(),  # noqa: B008 - frozen dataclass, safe as a default
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> EncoderResult:
    """Fine-tune on (text, triples), then write the ONNX artefact to out_dir/"encoder"."""
    from tokenizers import Tokenizer
    from transformers import AutoModel, get_linear_schedule_with_warmup

    started, device = start_training(examples, config.seed)

    base = Path(base_model)
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(config.max_length)

    alignments = [(text, list(triples), align(text, triples)) for text, triples in examples]
    predicates = sorted(
        {
            t.predicate
            for _, triples, spans in alignments
            for t in triples
            if t.subject in spans and t.object in spans
        }
    )
    if not predicates:
        raise ValueError("no triple of the training data could be aligned to its text")
    index = {predicate: number + 1 for number, predicate in enumerate(predicates)}
    normaliser = normaliser_from_alignments(alignments)
    encoded = [
        item
        for text, triples, spans in alignments
        if (item := _encode(tokenizer, text, triples, spans, index))
    ]
    total_triples = sum(len(triples) for _, triples, _ in alignments)
    aligned = sum(
        t.subject in spans and t.object in spans
        for _, triples, spans in alignments
        for t in triples
    )

    encoder = AutoModel.from_pretrained(str(base), dtype=torch.float32)
    model = TripleEncoder(encoder, len(predicates), config.pair_hidden).to(device)
    head_parameters = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    optimiser = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": config.learning_rate},
            {"params": head_parameters, "lr": config.head_learning_rate},
        ],
        weight_decay=0.01,
    )
    loop = StepLoop.planned(
        len(encoded), config, started=started, on_progress=on_progress, should_stop=should_stop
    )
    total_steps = loop.total_steps
    schedule = get_linear_schedule_with_warmup(  # type: ignore[no-untyped-call]  # unannotated
        optimiser, int(total_steps * config.warmup_ratio), total_steps
    )
    autocast = config.bf16 and bf16_supported(device)

    model.train()
    rng = random.Random(config.seed)

    def step(batch: dict[str, torch.Tensor]) -> float:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            loss = _loss(model, {k: v.to(device) for k, v in batch.items()})
        return torch_update(loss, model, optimiser, schedule)

    loop.run(lambda: _batches(encoded, config.batch_size, rng), step)

    artifact = out_dir / "encoder"
    export_encoder(
        model.cpu().eval(),
        base / "tokenizer.json",
        artifact,
        predicates=predicates,
        normaliser=normaliser.as_dict(),
        max_length=config.max_length,
        quantize=config.quantize,
    )
    return EncoderResult(
        artifact_dir=artifact,
        steps=loop.step,
        examples=len(encoded),
        aligned_share=aligned / total_triples if total_triples else 0.0,
        predicates=len(predicates),
        final_loss=loop.final_loss,
        seconds=time.perf_counter() - started,
        device=device,
    )


def export_encoder(
    model: TripleEncoder,
    tokenizer_file: Path,
    artifact: Path,
    *,
    predicates: list[str],
    normaliser: dict[str, Any],
    max_length: int,
    quantize: bool,
) -> None:
    """Write model.onnx (int8 when `quantize`), pairs.onnx, tokenizer.json and encoder.json."""
    if artifact.exists():
        shutil.rmtree(artifact)
    artifact.mkdir(parents=True)
    # Eager attention exports as plain MatMul/Softmax, which int8 quantisation handles better:
    # 3.30 ms instead of 3.65 ms for a 30-token sentence on one core (the SDPA graph's masking
    # ops stay in float). Training keeps SDPA, which is faster there.
    if hasattr(model.encoder, "set_attn_implementation"):
        model.encoder.set_attn_implementation("eager")
    sample = torch.ones((1, 8), dtype=torch.long)
    full_precision = artifact / ("model.fp32.onnx" if quantize else "model.onnx")
    # The TorchScript exporter (no onnxscript needed) warns about tracing and its own
    # deprecation on every export; what the graph computes is checked by the tests instead.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Probabilities(model),
            (sample, sample),
            str(full_precision),
            input_names=["input_ids", "attention_mask"],
            output_names=["tag_probs", "count_probs", "projections"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "tag_probs": {0: "batch", 1: "tokens"},
                "count_probs": {0: "batch"},
                "projections": {0: "batch", 1: "tokens"},
            },
            opset_version=17,
            dynamo=False,
        )
        torch.onnx.export(
            _PairProbabilities(model.pair_head),
            (torch.zeros((2, model.pair_hidden)),),
            str(artifact / "pairs.onnx"),
            input_names=["pair_input"],
            output_names=["relation_probs"],
            dynamic_axes={"pair_input": {0: "pairs"}, "relation_probs": {0: "pairs"}},
            opset_version=17,
            dynamo=False,
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # The quantiser logs every tensor (and advice) through the root logger.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(
                str(full_precision), str(artifact / "model.onnx"), weight_type=QuantType.QInt8
            )
        finally:
            logging.disable(logging.NOTSET)
        full_precision.unlink()
    shutil.copyfile(tokenizer_file, artifact / "tokenizer.json")
    (artifact / "encoder.json").write_text(
        json.dumps(
            {
                "artifact_version": ARTIFACT_VERSION,
                "predicates": predicates,
                "max_length": max_length,
                "quantized": quantize,
                "normaliser": normaliser,
            },
            ensure_ascii=False,
        )
    )


def _encode(
    tokenizer: Tokenizer,
    text: str,
    triples: Sequence[Triple],
    spans: dict[str, tuple[int, int]],
    index: dict[str, int],
) -> _Example | None:
    encoding = tokenizer.encode(text)
    offsets = encoding.offsets
    special = encoding.special_tokens_mask
    mentions: list[tuple[str, tuple[int, int]]] = []
    for entity, (start, end) in spans.items():
        # Every repeat of the aligned surface is the same entity: tagging only the first one
        # would teach the tagger to ignore the others.
        surface = re.escape(text[start:end].lower())
        for match in re.finditer(rf"(?<!\w){surface}(?!\w)", text.lower()):
            span = (match.start(), match.end())
            if not any(span[0] < b and a < span[1] for _, (a, b) in mentions):
                mentions.append((entity, span))
    token_spans: list[tuple[int, int]] = []
    entity_of: list[str] = []
    tags = [TAG_O] * len(encoding.ids)
    for entity, (start, end) in sorted(mentions, key=lambda m: m[1])[:MAX_SPANS]:
        tokens = [
            i
            for i, (a, b) in enumerate(offsets)
            if not special[i] and b > a and a < end and start < b
        ]
        if not tokens:  # truncated away
            continue
        tags[tokens[0]] = TAG_B
        for i in tokens[1:]:
            tags[i] = TAG_I
        token_spans.append((tokens[0], tokens[-1]))
        entity_of.append(entity)
    for i, flag in enumerate(special):
        if flag:
            tags[i] = -100
    relations: dict[tuple[int, int], list[int]] = {}
    for triple in triples:
        predicate = index.get(triple.predicate)
        if predicate is None:
            continue
        for i, subject in enumerate(entity_of):
            for j, obj in enumerate(entity_of):
                if i != j and subject == triple.subject and obj == triple.object:
                    relations.setdefault((i, j), []).append(predicate)
    return _Example(
        ids=list(encoding.ids),
        tags=tags,
        spans=token_spans,
        relations=relations,
        count=min(len(triples), MAX_COUNT),
    )


def _batches(
    encoded: list[_Example], batch_size: int, rng: random.Random
) -> Iterator[dict[str, torch.Tensor]]:
    """Length-grouped, shuffled batches, padded per batch; pairs flattened across the batch."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    pool = batch_size * 32
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(encoded[i].ids))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    for indices in batches:
        items = [encoded[i] for i in indices]
        width = max(len(item.ids) for item in items)
        input_ids = torch.zeros((len(items), width), dtype=torch.long)
        attention = torch.zeros((len(items), width), dtype=torch.long)
        tags = torch.full((len(items), width), -100, dtype=torch.long)
        pair_rows: list[list[int]] = []
        pair_labels: list[list[int]] = []
        for row, item in enumerate(items):
            input_ids[row, : len(item.ids)] = torch.tensor(item.ids)
            attention[row, : len(item.ids)] = 1
            tags[row, : len(item.tags)] = torch.tensor(item.tags)
            for i, (s_start, s_end) in enumerate(item.spans):
                for j, (o_start, o_end) in enumerate(item.spans):
                    if i == j:
                        continue
                    pair_rows.append([row, s_start, s_end, o_start, o_end])
                    pair_labels.append(item.relations.get((i, j), [0]))
        classes_hint = max((max(labels) for labels in pair_labels), default=0) + 1
        targets = torch.zeros((len(pair_labels), classes_hint))
        for row, labels in enumerate(pair_labels):
            targets[row, labels] = 1.0 / len(labels)
        yield {
            "input_ids": input_ids,
            "attention_mask": attention,
            "tags": tags,
            "counts": torch.tensor([item.count for item in items]),
            "pairs": torch.tensor(pair_rows, dtype=torch.long).view(-1, 5),
            "pair_targets": targets,
        }


def _between(context: torch.Tensor, rows: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean of the context slot over the tokens between each pair's two spans (zero when they
    touch), from prefix sums: what `boundary.encoder.between_tokens` computes in numpy."""
    prefix = torch.cat([torch.zeros_like(context[:, :1]), context.cumsum(1)], dim=1)
    low = torch.minimum(pairs[:, 2], pairs[:, 4]) + 1
    high = torch.maximum(pairs[:, 1], pairs[:, 3])
    count = (high - low).clamp(min=0)
    summed = prefix[rows, high.clamp(min=0)] - prefix[rows, low.clamp(max=context.shape[1])]
    return torch.where((count > 0).unsqueeze(-1), summed / count.clamp(min=1).unsqueeze(-1), 0.0)


def _loss(model: TripleEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    tag_logits, count_logits, projections = model(batch["input_ids"], batch["attention_mask"])
    loss = nn.functional.cross_entropy(tag_logits.flatten(0, 1).float(), batch["tags"].flatten())
    loss = loss + 0.5 * nn.functional.cross_entropy(count_logits.float(), batch["counts"])
    pairs = batch["pairs"]
    if len(pairs):
        rows = pairs[:, 0]
        pair_input = (
            projections[rows, pairs[:, 1], 0]
            + projections[rows, pairs[:, 2], 1]
            + projections[rows, pairs[:, 3], 2]
            + projections[rows, pairs[:, 4], 3]
            + _between(projections[:, :, 4], rows, pairs)
        )
        log_probs = model.pair_head(pair_input).float().log_softmax(-1)
        targets = batch["pair_targets"]
        loss = loss - (log_probs[:, : targets.shape[1]] * targets).sum(-1).mean()
    return loss
