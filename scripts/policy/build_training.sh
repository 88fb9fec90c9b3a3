#!/usr/bin/env bash
# Rebuilds the search policy's training data and model (models/policy.onnx) from public mirrors:
# the corpus of the six training repositories pinned in corpus-manifest.json, the 1,023
# instances of training-ids.txt, their explore traces, and the model.
#
#   bash scripts/policy/build_training.sh MIRRORS WORKDIR [OUT]
#
# MIRRORS holds `<owner>+<name>/` bare mirrors of repos.txt (`fetch github:OWNER/NAME`); WORKDIR
# (outside the checkout) receives the corpus, the trees and the traces; OUT defaults to models/.
# Needs target/release/locus and the training venv (scripts/model/requirements.txt).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mirrors="$1"
work="$2"
out="${3:-$root/models}"
locus="$root/target/release/locus"
py="${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python"

"$locus" corpus build --mirrors "$mirrors" --out "$work/corpus" --repos-file "$here/repos.txt" \
  --max-commits 3000 --skip-failed --pins "$here/corpus-manifest.json"
python3 - "$work/corpus" "$here/training-ids.txt" "$work" <<'PY'
import json, sys
corpus, ids_file, work = sys.argv[1:]
ids = [l.strip() for l in open(ids_file) if l.strip() and not l.startswith("#")]
want = set(ids)
for name, out in (("corpus.jsonl", "train.jsonl"), ("corpus.gold.jsonl", "train.gold.jsonl")):
    lines = [l for l in open(f"{corpus}/{name}") if json.loads(l)["instance_id"] in want]
    open(f"{work}/{out}", "w").writelines(lines)
print(f"{len(lines)} of {len(ids)} training instances found in the corpus")
PY
"$locus" eval --instances "$work/train.jsonl" --gold "$work/train.gold.jsonl" --mirrors "$mirrors" \
  --cache "$work/cache" --engine adaptive --jobs 2 --policy explore --out "$work/run" \
  --call-traces "$work/traces.jsonl"
"$py" "$here/train_policy.py" --traces "$work/traces.jsonl" --gold "$work/train.gold.jsonl" --out "$out" \
  --threshold 0.1 --threshold-rule "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["threshold_rule"])' "$root/models/policy.json")"
