"""Writes reference.json: python-onnxruntime embeddings that the Rust parity test must reproduce.

    python reference.py [--models DIR]

Each sentence is embedded ALONE (a batch of one, no padding) with the int8 model
(model.onnx), then mean-pooled over the attention mask and L2-normalised: exactly
what locus-embed does by default. (Dynamic int8 quantisation scales activations per
call, so in a larger batch a vector moves with its neighbours.) The token ids are
written as well, so a tokenizer mismatch shows up as such rather than as a cosine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# Code and prose, short and long: what Locus embeds (entity documents) and what it
# embeds them against (issue text).
SENTENCES = [
    "Calling register_hook twice with the same name silently drops the first hook.",
    "def register_hook(self, name, fn):\n    self._hooks.setdefault(name, []).append(fn)",
    "thread 'main' panicked at src/parser.rs:42:9: called `Option::unwrap()` on a `None` value",
    "pub fn parse_config(path: &Path) -> Result<Config, ConfigError> { let text = fs::read_to_string(path)?; toml::from_str(&text).map_err(ConfigError::Toml) }",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=common.model_dir(), help="model.onnx and tokenizer.json")
    ap.add_argument("--out", type=Path, default=None, help="default: MODELS/reference.json")
    args = ap.parse_args()

    import onnxruntime as ort

    model = args.models / "model.onnx"
    tok = common.tokenizer(args.models / "tokenizer.json")
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    ids, vectors = [], []
    for text in SENTENCES:
        feeds = common.encode(tok, [text])
        hidden = sess.run(["last_hidden_state"], feeds)[0]
        vectors.append(common.mean_pool(hidden, feeds["attention_mask"])[0])
        ids.append([int(t) for t in feeds["input_ids"][0]])

    out = {
        "model": "model.onnx",
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "onnxruntime": ort.__version__,
        "max_tokens": common.MAX_TOKENS,
        "note": "each text alone, mean pooling over attention_mask, L2-normalised; written by scripts/model/reference.py",
        "items": [
            {
                "text": text,
                "input_ids": ids[i],
                "embedding": [round(float(x), 7) for x in vectors[i]],
            }
            for i, text in enumerate(SENTENCES)
        ],
    }
    path = args.out or args.models / "reference.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path} ({len(SENTENCES)} sentences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
