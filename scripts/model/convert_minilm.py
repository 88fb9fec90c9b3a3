"""Writes all-MiniLM-L6-v2 as an ONNX graph from its safetensors weights, and int8-quantises it.

No PyTorch: the BERT encoder is spelled out node by node with onnx.helper.

    python convert_minilm.py convert SRC_DIR OUT.fp32.onnx   # fp32 graph from SRC_DIR/model.safetensors
    python convert_minilm.py quantize IN.fp32.onnx OUT.onnx  # dynamic int8 weights

Graph contract (what locus-embed relies on):
  inputs  input_ids, attention_mask, token_type_ids: int64 [batch, seq] (both axes dynamic)
  output  last_hidden_state: float32 [batch, seq, 384]
Pooling (mean over the attention mask, L2 normalisation) is left to the caller.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# LayerNormalization is an ONNX operator from opset 17 on; ONNX Runtime 1.31 and
# its quantiser both handle 17 well.
OPSET = 17
# IR version 8 is what opset 17 was released with; pinning it keeps the file
# loadable by any ONNX Runtime that knows opset 17, whatever `onnx` wrote by default.
IR_VERSION = 8
# Added to the attention scores of padding positions. Large enough that exp()
# underflows to exactly 0 in float32, small enough to stay finite when added to
# any real score (HF BERT uses the same constant in its older releases).
MASK_NEG = -10000.0


class GraphBuilder:
    """Collects nodes and initialisers; names are unique by construction."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out + "_node", **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        """x @ W^T + b, with W as stored by PyTorch ([out, in])."""
        wt = self.const(name + ".weight_t", np.ascontiguousarray(w.T).astype(np.float32))
        bias = self.const(name + ".bias", b.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, wt], name + "_mm"), bias], name)

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, eps: float, name: str) -> str:
        scale = self.const(name + ".weight", w.astype(np.float32))
        bias = self.const(name + ".bias", b.astype(np.float32))
        return self.op("LayerNormalization", [x, scale, bias], name, axis=-1, epsilon=eps)


def build_graph(weights: dict[str, np.ndarray], cfg: dict) -> onnx.ModelProto:
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    head_dim = hidden // heads
    eps = float(cfg["layer_norm_eps"])
    assert cfg.get("hidden_act") == "gelu", "only the erf GELU of BERT is implemented"
    assert cfg.get("position_embedding_type", "absolute") == "absolute"
    assert hidden % heads == 0

    g = GraphBuilder()
    W = weights

    # Embeddings: word + absolute position + token type, then LayerNorm.
    word_tab = g.const("embeddings.word_embeddings.weight", W["embeddings.word_embeddings.weight"])
    pos_tab = g.const("embeddings.position_embeddings.weight", W["embeddings.position_embeddings.weight"])
    type_tab = g.const("embeddings.token_type_embeddings.weight", W["embeddings.token_type_embeddings.weight"])
    zero = g.const("const.zero_i64", np.array(0, dtype=np.int64))
    one = g.const("const.one_i64", np.array(1, dtype=np.int64))
    seq_index = g.const("const.seq_axis", np.array([1], dtype=np.int64))

    words = g.op("Gather", [word_tab, "input_ids"], "word_emb", axis=0)
    shape = g.op("Shape", ["input_ids"], "ids_shape")
    seq_len_1d = g.op("Gather", [shape, seq_index], "seq_len_1d", axis=0)
    seq_len = g.op("Squeeze", [seq_len_1d], "seq_len")
    positions = g.op("Range", [zero, seq_len, one], "position_ids")
    pos = g.op("Gather", [pos_tab, positions], "pos_emb", axis=0)  # [seq, hidden], broadcast over batch
    types = g.op("Gather", [type_tab, "token_type_ids"], "type_emb", axis=0)
    emb = g.op("Add", [g.op("Add", [words, pos], "emb_wp"), types], "emb_sum")
    x = g.layer_norm(emb, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps, "embeddings.LayerNorm")

    # Additive attention mask [batch, 1, 1, seq]: 0 for tokens, MASK_NEG for padding.
    mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    one_f = g.const("const.one_f", np.array(1.0, dtype=np.float32))
    neg = g.const("const.mask_neg", np.array(MASK_NEG, dtype=np.float32))
    inv = g.op("Sub", [one_f, mask_f], "mask_inv")
    add_mask_2d = g.op("Mul", [inv, neg], "mask_add2d")
    unsq_axes = g.const("const.unsq_axes", np.array([1, 2], dtype=np.int64))
    add_mask = g.op("Unsqueeze", [add_mask_2d, unsq_axes], "mask_add")

    split_shape = g.const("const.split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = g.const("const.merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const("const.attn_scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    sqrt2 = g.const("const.sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = g.const("const.half", np.array(0.5, dtype=np.float32))

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = g.linear(x, W[p + "attention.self.query.weight"], W[p + "attention.self.query.bias"], p + "attention.self.query")
        k = g.linear(x, W[p + "attention.self.key.weight"], W[p + "attention.self.key.bias"], p + "attention.self.key")
        v = g.linear(x, W[p + "attention.self.value.weight"], W[p + "attention.self.value.bias"], p + "attention.self.value")
        # [b, s, h*d] -> [b, h, s, d]; keys as [b, h, d, s] so scores are one MatMul.
        qh = g.op("Transpose", [g.op("Reshape", [q, split_shape], f"l{i}_q4")], f"l{i}_qh", perm=[0, 2, 1, 3])
        kh = g.op("Transpose", [g.op("Reshape", [k, split_shape], f"l{i}_k4")], f"l{i}_kt", perm=[0, 2, 3, 1])
        vh = g.op("Transpose", [g.op("Reshape", [v, split_shape], f"l{i}_v4")], f"l{i}_vh", perm=[0, 2, 1, 3])
        scores = g.op("Mul", [g.op("MatMul", [qh, kh], f"l{i}_qk"), scale], f"l{i}_scaled")
        probs = g.op("Softmax", [g.op("Add", [scores, add_mask], f"l{i}_masked")], f"l{i}_probs", axis=-1)
        ctx = g.op("MatMul", [probs, vh], f"l{i}_ctx")
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], f"l{i}_ctx_t", perm=[0, 2, 1, 3]), merge_shape], f"l{i}_ctx_m")
        attn = g.linear(ctx, W[p + "attention.output.dense.weight"], W[p + "attention.output.dense.bias"], p + "attention.output.dense")
        x = g.layer_norm(
            g.op("Add", [attn, x], f"l{i}_res1"),
            W[p + "attention.output.LayerNorm.weight"],
            W[p + "attention.output.LayerNorm.bias"],
            eps,
            p + "attention.output.LayerNorm",
        )
        # Feed-forward with the exact GELU: 0.5 * h * (1 + erf(h / sqrt 2)).
        h = g.linear(x, W[p + "intermediate.dense.weight"], W[p + "intermediate.dense.bias"], p + "intermediate.dense")
        erf = g.op("Erf", [g.op("Div", [h, sqrt2], f"l{i}_gelu_div")], f"l{i}_gelu_erf")
        # The half factor comes last: Div, Erf, Add, Mul, Mul is the pattern ORT fuses into one Gelu.
        gelu = g.op("Mul", [h, g.op("Add", [erf, one_f], f"l{i}_gelu_1p")], f"l{i}_gelu_m")
        gelu = g.op("Mul", [gelu, half], f"l{i}_gelu")
        out = g.linear(gelu, W[p + "output.dense.weight"], W[p + "output.dense.bias"], p + "output.dense")
        x = g.layer_norm(
            g.op("Add", [out, x], f"l{i}_res2"),
            W[p + "output.LayerNorm.weight"],
            W[p + "output.LayerNorm.bias"],
            eps,
            p + "output.LayerNorm",
        )

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state_node"))

    def ids_input(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])

    graph = helper.make_graph(
        g.nodes,
        "all_minilm_l6_v2",
        [ids_input("input_ids"), ids_input("attention_mask"), ids_input("token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="locus/scripts/model/convert_minilm.py",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def convert(src: Path, out: Path) -> None:
    cfg = common.load_config(src)
    weights = common.load_weights(src)
    model = build_graph(weights, cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def quantize(fp32: Path, out: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantiser logs a generic advice to run its pre-processing first; that
    # pre-processing was tried and changes neither accuracy nor speed here.
    logging.getLogger().setLevel(logging.ERROR)
    tmp = out.with_name(out.name + ".tmp")
    # per_channel: one scale per output column of each weight matrix. With a single
    # scale per matrix the pooled vectors of short inputs drift to cosine ~0.90 of
    # fp32; per channel keeps them at >= 0.98 for the same 23 MB (docs/embed-notes.md).
    quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="safetensors -> fp32 ONNX")
    c.add_argument("src", type=Path, help="folder with model.safetensors and config.json")
    c.add_argument("out", type=Path, help="fp32 ONNX file to write")
    q = sub.add_parser("quantize", help="fp32 ONNX -> int8 ONNX (dynamic, QInt8 weights)")
    q.add_argument("fp32", type=Path)
    q.add_argument("out", type=Path)
    args = ap.parse_args()
    if args.cmd == "convert":
        convert(args.src, args.out)
    else:
        quantize(args.fp32, args.out)


if __name__ == "__main__":
    main()
