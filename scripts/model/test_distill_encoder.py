"""Checks distill_encoder.py's parts that run without JAX, against the shipped teacher: the
float weights read back from its int8 file, run through the training forward pass (in numpy),
give the vectors ONNX Runtime gives for the teacher; a student keeps the layers it names,
renumbered; length batches cover every text once. Runs in the venv of scripts/setup.sh (CI),
after setup has installed the base's weights and Locus's encoder.

    python test_distill_encoder.py
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import distill_encoder as de  # noqa: E402

TEXTS = [
    "Mod(x**2, x) should be 0 but returns x when x is a symbol with integer=True",
    "sympy/core/mod.py Mod.eval\ndef eval(cls, p, q):\n    from sympy.core.add import Add\n    if q.is_zero:\n        raise ZeroDivisionError('Modulo by zero')",
    "src/runtime/task/mod.rs JoinHandle::abort\npub fn abort(&self) { self.raw.remote_abort(); }",
]


def teacher_dir() -> Path:
    d = common.cache_dir() / "models" / "locus-minilm-l6-loc"
    if not (d / "model.onnx").is_file():
        sys.exit(f"test_distill_encoder: {d}/model.onnx is missing; run: bash scripts/setup.sh")
    return d


def check_forward_matches_teacher() -> None:
    import onnxruntime as ort

    teacher = teacher_dir()
    cfg = common.load_config(common.source_dir())
    w = de.teacher_weights(common.source_dir(), teacher)
    tok = common.tokenizer(teacher / "tokenizer.json")
    feed = common.encode(tok, TEXTS)
    sess = ort.InferenceSession(str(teacher / "model.onnx"), providers=["CPUExecutionProvider"])
    want = common.mean_pool(sess.run(["last_hidden_state"], feed)[0], feed["attention_mask"])
    erf = np.vectorize(math.erf, otypes=[np.float32])
    forward = de.make_forward(cfg["num_hidden_layers"], cfg["num_attention_heads"], float(cfg["layer_norm_eps"]), np, erf)
    got = forward(w, feed["input_ids"], feed["attention_mask"])
    cos = (got * want).sum(-1)
    # int8 weights and activations in the runtime against dequantised float weights here.
    assert cos.min() > 0.98, cos
    # A wrong dequantisation (the scale on the other axis) is far off.
    bad = dict(w)
    for k in [k for k in w if k.startswith("encoder.layer.4.") and k.endswith("dense.weight")]:
        bad[k] = w[k][::-1].copy()
    assert (forward(bad, feed["input_ids"], feed["attention_mask"]) * want).sum(-1).min() < 0.98
    print(f"forward: cos to the int8 teacher {cos.min():.4f}..{cos.max():.4f}")


def check_student_weights() -> None:
    w = {"embeddings.x": np.zeros(1), "pooler.dense.weight": np.zeros(1)}
    for i in range(6):
        w[f"encoder.layer.{i}.attention.self.query.weight"] = np.full(1, i)
        w[f"encoder.layer.{i}.output.dense.bias"] = np.full(1, 10 + i)
    s = de.student_weights(w, [0, 5])
    assert sorted(s) == sorted(
        [
            "embeddings.x",
            "encoder.layer.0.attention.self.query.weight",
            "encoder.layer.0.output.dense.bias",
            "encoder.layer.1.attention.self.query.weight",
            "encoder.layer.1.output.dense.bias",
        ]
    ), sorted(s)
    assert s["encoder.layer.1.attention.self.query.weight"][0] == 5
    assert s["encoder.layer.1.output.dense.bias"][0] == 15


def check_batches() -> None:
    rng = random.Random(7)
    lengths = [rng.randint(3, 256) for _ in range(101)]
    groups = de.batches_by_length(lengths, 32, random.Random(0))
    flat = sorted(i for g in groups for i in g)
    assert flat == list(range(101)), "every text in exactly one batch"
    assert [len(g) for g in de.batches_by_length(lengths, 32, None)] == [32, 32, 32, 5]
    feed = de.pad([[101, 7, 102], [101, 102]], de.PAD_STEP)
    assert feed["input_ids"].shape == (2, de.PAD_STEP)
    assert feed["attention_mask"][1].tolist()[:3] == [1, 1, 0]


def main() -> None:
    check_student_weights()
    check_batches()
    check_forward_matches_teacher()
    print("distill_encoder: ok")


if __name__ == "__main__":
    main()
