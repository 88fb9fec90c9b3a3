"""Checks train_encoder.py's parts that run without PyTorch: the weights cut into pieces small
enough for the device tool's 16 MiB files come back whole (fp16 round trip), and `join` takes
what the pieces lack from the base. Runs in the venv of scripts/setup.sh (CI).

    python test_train_encoder.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import train_encoder as te  # noqa: E402


def main() -> None:
    base = common.load_weights(common.source_dir())
    floats = {k: v for k, v in base.items() if v.dtype.kind == "f"}
    pieces = te.split(floats)
    sizes = [sum(t.nbytes for t in p.values()) for p in pieces]
    assert all(s <= te.PIECE_BYTES for s in sizes), sizes
    assert any("#" in k for p in pieces for k in p), "the word embeddings should be cut in rows"
    back = te.join_pieces(pieces)
    assert set(back) == set(floats), set(floats) ^ set(back)
    for k, v in floats.items():
        assert back[k].shape == v.shape, k
        assert np.array_equal(back[k], v.astype(np.float16).astype(np.float32)), k
    # `join` on disk: two tensors tuned, the rest from the base.
    from safetensors.numpy import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        trained, out = Path(tmp) / "trained", Path(tmp) / "model"
        trained.mkdir()
        tuned = {k: floats[k] + 1 for k in sorted(floats)[:2]}
        for i, p in enumerate(te.split(tuned)):
            save_file(p, str(trained / f"piece-{i:02d}.safetensors"))

        class Args:
            pass

        a = Args()
        a.trained, a.model_dir, a.base = str(trained), str(out), None
        te.join(a)
        merged = load_file(str(out / "model.safetensors"))
        for k, v in base.items():
            want = tuned[k].astype(np.float16).astype(np.float32) if k in tuned else v
            assert np.array_equal(merged[k], want), k
        assert (out / "tokenizer.json").exists() and (out / "config.json").exists()
    print(f"ok: {len(floats)} tensors in {len(pieces)} pieces of at most {max(sizes) / 2**20:.1f} MiB; join takes the rest from the base")


if __name__ == "__main__":
    main()
