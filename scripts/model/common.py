"""Shared pieces of the encoder build: cache paths, weights, tokenisation, pooling.

The model build (convert_minilm.py), its check (test_convert.py) and the Rust
parity reference (reference.py) all go through these helpers, so the three agree
on where files live and on how text becomes token ids and vectors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

MODEL_NAME = "all-minilm-l6-v2"

# all-MiniLM-L6-v2 was trained with 256-token inputs (sentence_bert_config.json);
# the Rust embedder truncates to the same default.
MAX_TOKENS = 256


def cache_dir() -> Path:
    """$LOCUS_CACHE, else ~/.cache/locus (the same rule as locus_embed::cache_dir)."""
    env = os.environ.get("LOCUS_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "locus"


def source_dir() -> Path:
    """Where setup.sh unpacks the upstream safetensors weights and tokenizer."""
    return cache_dir() / "src" / MODEL_NAME


def model_dir() -> Path:
    """Where the ONNX models, tokenizer.json and checksums end up."""
    env = os.environ.get("LOCUS_MODEL_DIR")
    if env:
        return Path(env)
    return cache_dir() / "models" / MODEL_NAME


def load_config(src: Path) -> dict:
    with open(src / "config.json", encoding="utf-8") as f:
        return json.load(f)


def load_weights(src: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(src / "model.safetensors"))


def tokenizer(path: Path, max_tokens: int = MAX_TOKENS):
    """The upstream tokenizer.json with truncation to max_tokens and padding to the longest.

    The file ships with fixed padding to 128; Locus pads each batch to its longest
    member instead (so does the Rust embedder).
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(max_length=max_tokens)
    tok.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")
    return tok


def encode(tok, texts: list[str]) -> dict[str, np.ndarray]:
    """Token ids, attention mask and token types as int64 [batch, seq]."""
    encs = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
    }


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the real tokens, then L2 normalisation (sentence-transformers' recipe)."""
    m = mask.astype(np.float32)[:, :, None]
    summed = (hidden * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    return pooled / norms
