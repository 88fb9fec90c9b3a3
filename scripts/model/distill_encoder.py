"""A smaller encoder distilled from Locus's (issue 21 item 2: the whole tree embedded faster), on the CPU.

The student keeps some of the teacher's six layers (every other one by default) and learns to
give the vectors the teacher gives, for the texts Locus embeds: issue reports (queries) and
entity texts (documents). It lives in the teacher's vector space, so the rankers' dense
features keep their meaning; it costs per text what its layers cost.

    # 1. the texts, from `locus corpus pairs` output (never a benchmark repository)
    python distill_encoder.py texts PAIRS.jsonl [PAIRS.jsonl ...] WORK/texts.jsonl
    # 2. the teacher's vectors, with the teacher as Locus runs it (int8 ONNX, 256 tokens)
    python distill_encoder.py teach WORK/texts.jsonl TEACHER_DIR WORK/teacher.npy
    # 3. training, JAX on the CPU, in a venv of its own (session 25 ran jax 0.10.2, optax 0.2.8):
    #    python -m venv JAXVENV && JAXVENV/bin/pip install jax optax numpy safetensors tokenizers onnx onnxruntime==1.31.1
    python distill_encoder.py train WORK BASE_SRC TEACHER_DIR OUT_DIR --layers 0,5 --epochs 2
    # 4. the usual conversion of OUT_DIR (config.json, model.safetensors, tokenizer.json)
    python convert_minilm.py convert OUT_DIR OUT_DIR/model.fp32.onnx
    python convert_minilm.py quantize OUT_DIR/model.fp32.onnx OUT_DIR/model.onnx

BASE_SRC is the base's safetensors folder (`~/.cache/locus/src/all-minilm-l6-v2`): the
teacher froze the embeddings and layers 0-2 in training (models/encoder/record.json), so those
are the base's float32 weights; its layers 3-5 are read back from the teacher's int8 ONNX
(per-channel dequantisation). TEACHER_DIR holds the teacher's `model.onnx` and `tokenizer.json`.

Loss, per batch of 32 texts of similar length: mean (1 - cos(student, teacher)) plus the mean
squared difference of the batch's similarity matrices (the order of documents for a query is
what the search uses). Adam, linear warm-up then linear decay. Deterministic given --seed.
A held-out tenth of the texts (by hash) reports the mean cosine to the teacher before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

BATCH = 32
# Sequence lengths are padded up to a multiple of this, so JAX compiles a few shapes only.
PAD_STEP = 32


def cmd_texts(pairs: list[Path], out: Path) -> None:
    seen: set[str] = set()
    rows = []
    for p in pairs:
        with open(p, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                items = [("query", r["query"])]
                items += [("doc", d["text"]) for d in r.get("positives", []) + r.get("negatives", [])]
                for kind, text in items:
                    if not text.strip() or text in seen:
                        continue
                    seen.add(text)
                    rows.append({"kind": kind, "repo": r["repo"], "text": text})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    kinds = {k: sum(1 for r in rows if r["kind"] == k) for k in ("query", "doc")}
    print(f"wrote {out}: {len(rows)} texts {kinds}")


def read_texts(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def batches_by_length(lengths: list[int], batch: int, rng: random.Random | None) -> list[list[int]]:
    """Indices grouped into batches of similar length (shuffled within and across when rng)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups = [order[i : i + batch] for i in range(0, len(order), batch)]
    if rng is not None:
        rng.shuffle(groups)
    return groups


def cmd_teach(texts_path: Path, teacher: Path, out: Path, threads: int) -> None:
    import onnxruntime as ort

    rows = read_texts(texts_path)
    tok = common.tokenizer(teacher / "tokenizer.json", common.MAX_TOKENS)
    tok.no_padding()
    encs = tok.encode_batch([r["text"] for r in rows])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(teacher / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    vecs = np.zeros((len(rows), 384), dtype=np.float32)
    t0 = time.time()
    groups = batches_by_length([len(e.ids) for e in encs], 8, None)
    for n, g in enumerate(groups):
        feed = pad([encs[i].ids for i in g])
        hidden = sess.run(["last_hidden_state"], feed)[0]
        vecs[g] = common.mean_pool(hidden, feed["attention_mask"])
        if n % 200 == 0:
            print(f"  {n * 8}/{len(rows)} texts, {time.time() - t0:.0f} s", flush=True)
    np.save(out, vecs)
    print(f"wrote {out}: {len(rows)} vectors in {time.time() - t0:.0f} s")


def pad(seqs: list[list[int]], step: int = 1) -> dict[str, np.ndarray]:
    n = max(len(s) for s in seqs)
    n = -(-n // step) * step
    ids = np.zeros((len(seqs), n), dtype=np.int64)
    mask = np.zeros((len(seqs), n), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def teacher_weights(base_src: Path, teacher: Path) -> dict[str, np.ndarray]:
    """The teacher's float weights: the base's, with every matrix the int8 file holds for the
    tuned layers (3-5) dequantised, and every float tensor of the file taken as it is."""
    import onnx
    from onnx import numpy_helper

    w = {k: v.astype(np.float32) for k, v in common.load_weights(base_src).items()}
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(teacher / "model.onnx")).graph.initializer}
    for name, arr in inits.items():
        if name in w and arr.dtype == np.float32:
            w[name] = arr
        if name.endswith(".weight_t_quantized"):
            stem = name[: -len("_t_quantized")]
            layer = int(stem.split(".")[2]) if stem.startswith("encoder.layer.") else -1
            if layer < 3:
                continue  # frozen in training: the base's float32 is exact
            scale = inits[stem + "_t_scale"].astype(np.float32)
            zero = inits[stem + "_t_zero_point"].astype(np.float32)
            wt = (arr.astype(np.float32) - zero[None, :]) * scale[None, :]
            w[stem] = np.ascontiguousarray(wt.T)
    return w


def student_weights(w: dict[str, np.ndarray], layers: list[int]) -> dict[str, np.ndarray]:
    out = {k: v for k, v in w.items() if not k.startswith("encoder.layer.") and not k.startswith("pooler.")}
    for new, old in enumerate(layers):
        src = f"encoder.layer.{old}."
        for k, v in w.items():
            if k.startswith(src):
                out[f"encoder.layer.{new}." + k[len(src) :]] = v
    return out


def make_forward(n_layers: int, heads: int, eps: float, xp=None, erf=None):
    """The student's forward pass, token ids to unit vectors, as the ONNX graph computes it
    (convert_minilm.build_graph): in jax.numpy for training, in numpy for the tests
    (`xp=np`, `erf` any elementwise erf)."""
    if xp is None:
        import jax
        import jax.numpy as xp

        erf = jax.scipy.special.erf

    def softmax(z):
        e = xp.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def ln(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / xp.sqrt(var + eps) * g + b

    def lin(x, p, name):
        return x @ p[name + ".weight"].T + p[name + ".bias"]

    def forward(p, ids, mask):
        b, s = ids.shape
        x = p["embeddings.word_embeddings.weight"][ids] + p["embeddings.position_embeddings.weight"][:s][None]
        x = x + p["embeddings.token_type_embeddings.weight"][0]
        x = ln(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"])
        hidden = x.shape[-1]
        d = hidden // heads
        add = (1.0 - mask.astype(np.float32))[:, None, None, :] * -10000.0
        for i in range(n_layers):
            q = f"encoder.layer.{i}."

            def split(t):
                return t.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

            qh = split(lin(x, p, q + "attention.self.query"))
            kh = split(lin(x, p, q + "attention.self.key"))
            vh = split(lin(x, p, q + "attention.self.value"))
            probs = softmax(qh @ kh.transpose(0, 1, 3, 2) / np.sqrt(d) + add)
            ctx = (probs @ vh).transpose(0, 2, 1, 3).reshape(b, s, hidden)
            x = ln(lin(ctx, p, q + "attention.output.dense") + x, p[q + "attention.output.LayerNorm.weight"], p[q + "attention.output.LayerNorm.bias"])
            h = lin(x, p, q + "intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
            x = ln(lin(h, p, q + "output.dense") + x, p[q + "output.LayerNorm.weight"], p[q + "output.LayerNorm.bias"])
        m = mask.astype(np.float32)[:, :, None]
        pooled = (x * m).sum(1) / xp.clip(m.sum(1), 1e-9, None)
        return pooled / xp.clip(xp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)

    return forward


def held_out(text: str) -> bool:
    return hashlib.sha256(text.encode("utf-8")).digest()[0] < 26  # about a tenth


def cmd_train(args) -> None:
    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_default_matmul_precision", "float32")
    work = Path(args.work)
    rows = read_texts(work / "texts.jsonl")
    target = np.load(work / "teacher.npy")
    if len(rows) != len(target):
        sys.exit(f"{work}/texts.jsonl has {len(rows)} texts and teacher.npy {len(target)} vectors: run `teach` again")
    teacher = Path(args.teacher)
    tok = common.tokenizer(teacher / "tokenizer.json", args.tokens)
    tok.no_padding()
    ids = [e.ids for e in tok.encode_batch([r["text"] for r in rows])]
    test = [i for i, r in enumerate(rows) if held_out(r["text"])]
    train = [i for i, r in enumerate(rows) if not held_out(r["text"])]

    layers = [int(x) for x in args.layers.split(",")]
    cfg = common.load_config(Path(args.base_src))
    w = student_weights(teacher_weights(Path(args.base_src), teacher), layers)
    frozen = {k for k in w if k.startswith("embeddings.word_embeddings")}
    params = {k: jnp.asarray(v) for k, v in w.items() if k not in frozen and not k.startswith("pooler.")}
    fixed = {k: jnp.asarray(v) for k, v in w.items() if k in frozen}
    forward = make_forward(len(layers), cfg["num_attention_heads"], float(cfg["layer_norm_eps"]))

    def loss_fn(p, ids_b, mask_b, t_b):
        s = forward({**p, **fixed}, ids_b, mask_b)
        cos = (s * t_b).sum(-1)
        rel = ((s @ s.T - t_b @ t_b.T) ** 2).mean()
        return (1.0 - cos).mean() + args.rel * rel

    rng = random.Random(args.seed)
    per_epoch = len(train) // BATCH
    total = per_epoch * args.epochs if args.max_steps == 0 else min(args.max_steps, per_epoch * args.epochs)
    warm = max(1, total // 10)
    sched = optax.join_schedules(
        [optax.linear_schedule(0.0, args.lr, warm), optax.linear_schedule(args.lr, 0.0, total - warm)], [warm]
    )
    opt = optax.adamw(sched, weight_decay=0.01)
    state = opt.init(params)

    @jax.jit
    def step(p, st, ids_b, mask_b, t_b):
        loss, grads = jax.value_and_grad(loss_fn)(p, ids_b, mask_b, t_b)
        upd, st = opt.update(grads, st, p)
        return optax.apply_updates(p, upd), st, loss

    @jax.jit
    def embed(p, ids_b, mask_b):
        return forward({**p, **fixed}, ids_b, mask_b)

    def evaluate(p) -> float:
        cos = []
        for g in batches_by_length([len(ids[i]) for i in test], 64, None):
            idx = [test[i] for i in g]
            feed = pad([ids[i] for i in idx], PAD_STEP)
            s = np.asarray(embed(p, feed["input_ids"], feed["attention_mask"]))
            cos.extend((s * target[idx]).sum(-1).tolist())
        return float(np.mean(cos))

    before = evaluate(params)
    print(f"student layers {layers} of the teacher: held-out cos to the teacher {before:.4f} ({len(test)} texts)", flush=True)
    if args.check:
        return
    log = []
    t0 = time.time()
    n = 0
    for epoch in range(args.epochs):
        groups = batches_by_length([len(ids[i]) for i in train], BATCH, rng)
        for g in groups:
            if n >= total:
                break
            if len(g) < BATCH:
                continue
            idx = [train[i] for i in g]
            feed = pad([ids[i] for i in idx], PAD_STEP)
            params, state, loss = step(params, state, feed["input_ids"], feed["attention_mask"], target[idx])
            n += 1
            if n % 20 == 0 or n == 1:
                log.append({"step": n, "loss": round(float(loss), 5), "seconds": round(time.time() - t0, 1)})
                print(f"  step {n}/{total} loss {float(loss):.4f} {time.time() - t0:.0f} s", flush=True)
    after = evaluate(params)
    print(f"held-out cos to the teacher: {before:.4f} -> {after:.4f}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.numpy import save_file

    final = {k: np.asarray(v, dtype=np.float32) for k, v in {**params, **fixed}.items()}
    save_file(final, str(out / "model.safetensors"))
    cfg = dict(cfg, num_hidden_layers=len(layers))
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "tokenizer.json").write_bytes((teacher / "tokenizer.json").read_bytes())
    record = {
        "teacher": str(teacher),
        "layers_kept": layers,
        "texts": len(rows),
        "train_texts": len(train),
        "held_out_texts": len(test),
        "tokens": args.tokens,
        "epochs": args.epochs,
        "steps": n,
        "batch": BATCH,
        "lr": args.lr,
        "rel_weight": args.rel,
        "seed": args.seed,
        "seconds": round(time.time() - t0, 1),
        "held_out_cos_before": round(before, 4),
        "held_out_cos_after": round(after, 4),
        "jax": jax.__version__,
        "optax": optax.__version__,
        "log": log,
    }
    (out / "distill_record.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("texts")
    t.add_argument("paths", nargs="+", type=Path, help="PAIRS.jsonl ... then the output file")
    te = sub.add_parser("teach")
    te.add_argument("texts", type=Path)
    te.add_argument("teacher", type=Path)
    te.add_argument("out", type=Path)
    te.add_argument("--threads", type=int, default=2)
    tr = sub.add_parser("train")
    tr.add_argument("work")
    tr.add_argument("base_src")
    tr.add_argument("teacher")
    tr.add_argument("out")
    tr.add_argument("--layers", default="0,2,4")
    tr.add_argument("--tokens", type=int, default=common.MAX_TOKENS)
    tr.add_argument("--epochs", type=int, default=1)
    tr.add_argument("--max-steps", type=int, default=0)
    tr.add_argument("--lr", type=float, default=1e-4)
    tr.add_argument("--rel", type=float, default=1.0)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--check", action="store_true", help="only the held-out cosine of the initial student")
    args = ap.parse_args()
    if args.cmd == "texts":
        cmd_texts(args.paths[:-1], args.paths[-1])
    elif args.cmd == "teach":
        cmd_teach(args.texts, args.teacher, args.out, args.threads)
    else:
        cmd_train(args)


if __name__ == "__main__":
    main()
