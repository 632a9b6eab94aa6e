"""Tiny random models for tests: built in well under a second, no hub, no download.

`build_tiny_causal_lm` writes an ordinary Hugging Face Llama folder (safetensors weights plus a
fast byte-level BPE tokenizer) shaped like SmolLM2 in miniature: the same special tokens and ids
(<|endoftext|> 0, <|im_start|> 1 as BOS, <|im_end|> 2 as EOS and padding), tied embeddings,
grouped-query attention. transformers, peft (q_proj/v_proj and the other Llama projections) and
the onnxruntime-genai builder all accept it. The weights are random, so its output is nonsense,
but the same nonsense every time: the build is seeded and leaves the global RNG untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
UNK, BOS, EOS = SPECIAL_TOKENS

# What the tokenizer learns its merges from: the prompt formats and some WebNLG-like text.
CORPUS = (
    "Text: Alan Bean was born in Wheeler, Texas.\nTriples:\n"
    "Alan Bean | birthPlace | Wheeler, Texas",
    "Triples:\nAarhus Airport | cityServed | Aarhus, Denmark\n"
    "Text: Aarhus Airport serves the city of Aarhus, Denmark.",
    "Text: The runway of Abilene Regional Airport is 2776.0 metres long.\nTriples:\n"
    "Abilene Regional Airport | runwayLength | 2776.0",
    "Triples:\nAlan Shepard | nationality | United States\nAlan Shepard | occupation | Test pilot\n"
    "Text: Alan Shepard was an American test pilot.",
    "Text: The leader of Aarhus is Jacob Bundsgaard.\nTriples:\nAarhus | leader | Jacob Bundsgaard",
)


def build_tiny_tokenizer(vocab_size: int = 384):
    """A PreTrainedTokenizerFast: byte-level BPE (any text encodes), no BOS added on encode."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        model_max_length=512,
    )


def build_tiny_causal_lm(path: Path, *, seed: int = 0) -> Path:
    """Write a ~100k-parameter random Llama + tokenizer to `path`; returns `path`.

    hidden 64 (4 heads of 16, 2 KV heads), MLP 128, 2 layers, 512 positions. The dimensions are
    multiples of 32 so the onnxruntime-genai int4 export (block size 32) works too.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        # Not the EOS id: Llama zeroes the embedding row of pad_token_id at init, and with tied
        # embeddings a zero EOS row pins its logit at 0, so the model could never learn to stop.
        pad_token_id=tokenizer.convert_tokens_to_ids(UNK),
        tie_word_embeddings=True,
        # Wider than the default 0.02 so the logits are far apart: greedy choices then do not
        # hinge on float rounding, and two runtimes must pick the same tokens.
        initializer_range=0.2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_gguf(path: Path, *, seed: int = 0) -> Path:
    """Write a tiny random Llama as a GGUF file, laid out like SmolLM2's: Q4_1 matrices, F32
    norms, a GPT-2 style BPE tokenizer, tied embeddings. Returns `path` (a file name)."""
    import gguf
    import numpy as np

    tokenizer = build_tiny_tokenizer()
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda item: item[1])
    tokens = [token for token, _ in vocab]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    special = set(SPECIAL_TOKENS)
    token_types = [
        gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL for token in tokens
    ]
    hidden, ffn, layers, heads, kv_heads = 64, 128, 2, 4, 2
    head_dim = hidden // heads

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_block_count(layers)
    writer.add_context_length(512)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    writer.add_unk_token_id(tokenizer.unk_token_id)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)

    rng = np.random.default_rng(seed)

    def matrix(name: str, rows: int, cols: int) -> None:
        data = rng.normal(0.0, 0.2, size=(rows, cols)).astype(np.float32)
        quantised = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q4_1)
        writer.add_tensor(name, quantised, raw_dtype=gguf.GGMLQuantizationType.Q4_1)

    def norm(name: str) -> None:
        writer.add_tensor(name, np.ones(hidden, dtype=np.float32))

    matrix("token_embd.weight", len(tokens), hidden)
    for i in range(layers):
        norm(f"blk.{i}.attn_norm.weight")
        matrix(f"blk.{i}.attn_q.weight", hidden, hidden)
        matrix(f"blk.{i}.attn_k.weight", kv_heads * head_dim, hidden)
        matrix(f"blk.{i}.attn_v.weight", kv_heads * head_dim, hidden)
        matrix(f"blk.{i}.attn_output.weight", hidden, hidden)
        norm(f"blk.{i}.ffn_norm.weight")
        matrix(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        matrix(f"blk.{i}.ffn_up.weight", ffn, hidden)
        matrix(f"blk.{i}.ffn_down.weight", hidden, ffn)
    norm("output_norm.weight")

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


ENCODER_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_tiny_encoder(
    path: Path, words: list[str] | tuple[str, ...] = (), *, seed: int = 0
) -> Path:
    """Write a tiny random BERT (hidden 32, 2 layers) with an uncased WordPiece tokenizer.json,
    laid out like all-MiniLM-L6-v2's folder. `words` extend the vocabulary; anything else
    becomes [UNK], which still has character offsets, as the encoder's decoding needs."""
    import torch
    from tokenizers import processors
    from transformers import BertConfig, BertModel

    tokenizer, vocab = _wordpiece_tokenizer(ENCODER_SPECIAL, words)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save(str(path / "tokenizer.json"))
    return path


MPNET_SPECIAL = ("<s>", "<pad>", "</s>", "[UNK]", "<mask>")  # ids as in all-mpnet-base-v2


def build_tiny_mpnet(path: Path, words: list[str] | tuple[str, ...] = (), *, seed: int = 0) -> Path:
    """A tiny random MPNet (hidden 32, 2 layers) laid out like all-mpnet-base-v2's folder: the
    same WordPiece tokenizer with <s> … </s> around the text, <pad> = 1 (MPNet's position ids
    count from it) and relative attention buckets instead of BERT's token types."""
    import torch
    from tokenizers import processors
    from transformers import MPNetConfig, MPNetModel

    tokenizer, vocab = _wordpiece_tokenizer(MPNET_SPECIAL, words)
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]), trim_offsets=True, add_prefix_space=False
    )
    config = MPNetConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MPNetModel(config)
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save(str(path / "tokenizer.json"))
    return path


def _wordpiece_tokenizer(special: tuple[str, ...], words: list[str] | tuple[str, ...]):
    """An uncased WordPiece tokenizer over the corpus's words and `words`, `special` first."""
    import re

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    corpus_words = {
        w.lower() for text in (*CORPUS, *words) for w in re.findall(r"\w+|[^\w\s]", text)
    }
    vocab = {token: i for i, token in enumerate((*special, *sorted(corpus_words)))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer, vocab
