#!/usr/bin/env python3
"""Measures Locus over LSP on a workspace: time from `initialize` to the first useful answer and
to full readiness (index + vectors), `locus/locateIssue` latency (p50/p95), the same issue asked
again, the answer to that issue after an edit of a Python file (five lines typed inside a
function body, then five new functions; 0.5 s after each answer, as a person reads it), and the
server's peak memory. With the encoder: whether the first answer had it (`first_answer_vectors`:
the vectors it could use; `first_answer_on_demand`: those its own candidates were given on demand
while the tree's are computed) and the time to the first answer that had it
(`first_semantic_answer_s`).

Usage: scripts/bench_lsp.py LOCUS_BIN WORKSPACE ISSUES.jsonl [N] [--runs K] [--no-ready] [--edit FILE]
ISSUES.jsonl: lines with `problem_statement` (the benchmark data format); the first N are used.
--runs K starts the server K times in a row on the same cache: with an empty $LOCUS_CACHE the
first run is a cold open and the later ones are reopens (the index snapshot and the vectors
cached). --no-ready does not wait for the encoder's vectors (time to first answer, edits and
memory without them). --edit FILE (relative to the workspace) is the file edited; by default the
first Python file with a method. One JSON line per run. BENCH_STDERR=FILE appends the server's
log there (with LOCUS_LOG=debug: what each edit cost the index, `index patched` / `index ids moved`).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
import queue


class Client:
    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.environ["BENCH_STDERR"], "a") if os.environ.get("BENCH_STDERR") else subprocess.DEVNULL)
        self.q = queue.Queue()
        self.next_id = 0
        self.ended = set()  # progress tokens that reported `end`
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        f = self.p.stdout
        while True:
            headers = {}
            while True:
                line = f.readline()
                if not line:
                    return
                line = line.decode().strip()
                if not line:
                    break
                k, v = line.split(":", 1)
                headers[k.lower()] = v.strip()
            body = f.read(int(headers["content-length"]))
            self.q.put(json.loads(body))

    def send(self, msg):
        data = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.p.stdin.flush()

    def request(self, method, params, on_message=None):
        self.next_id += 1
        rid = self.next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            m = self.q.get(timeout=600)
            if m.get("id") == rid and "method" not in m:
                return m
            self.handle(m, on_message)

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def handle(self, m, on_message=None):
        if "method" in m and "id" in m:  # a server request: accept
            self.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
        if m.get("method") == "$/progress" and m["params"]["value"].get("kind") == "end":
            self.ended.add(m["params"]["token"])
        if on_message:
            on_message(m)

    def drain(self, until, timeout):
        end = time.time() + timeout
        while time.time() < end:
            try:
                m = self.q.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                break
            self.handle(m)
            if until(m):
                return True
        return False


def peak_rss_kb(pid, field="VmHWM"):
    """The process's peak (VmHWM) or current (VmRSS) resident memory in KB."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None


def mb(kb):
    return round(kb / 1024) if kb else None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("workspace")
    ap.add_argument("issues")
    ap.add_argument("n", nargs="?", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--no-ready", action="store_true")
    ap.add_argument("--edit", help="the Python file (relative to the workspace) to edit; default: the first with a method")
    a = ap.parse_args()
    ws = os.path.realpath(a.workspace)
    issues = [json.loads(l)["problem_statement"] for l in open(a.issues)][:a.n]
    for run in range(1, a.runs + 1):
        out = bench_once(a.binary, ws, issues, not a.no_ready, a.edit)
        out["run"] = run
        print(json.dumps(out), flush=True)


def bench_once(binary, ws, issues, wait_ready, edit=None):
    c = Client([binary, "lsp"])
    t0 = time.time()
    root = "file://" + ws
    c.request("initialize", {"processId": os.getpid(), "rootUri": root,
                             "workspaceFolders": [{"uri": root, "name": "ws"}],
                             "capabilities": {"window": {"workDoneProgress": True}}})
    c.notify("initialized", {})
    # First useful answer: poll until a search returns items.
    first = None
    while first is None:
        r = c.request("locus/locateIssue", {"text": issues[0]})
        if r.get("result", {}).get("items"):
            first = time.time() - t0
            first_stats = r["result"].get("stats", {})
        else:
            time.sleep(0.05)
    hwm_first = peak_rss_kb(c.p.pid)
    # The first answer the encoder took part in (on demand or with the tree's vectors).
    semantic = first if first_stats.get("semanticReady") else None
    while semantic is None and wait_ready and time.time() - t0 < 3600:
        time.sleep(0.5)
        r = c.request("locus/locateIssue", {"text": issues[0]})
        if r.get("result", {}).get("stats", {}).get("semanticReady"):
            semantic = time.time() - t0
    def ended(_m):
        return {"locus/indexing", "locus/vectors"} <= c.ended
    ready = None
    if wait_ready and (ended(None) or c.drain(ended, 3600)):
        ready = time.time() - t0
    lat = []
    for text in issues:
        t = time.time()
        r = c.request("locus/locateIssue", {"text": text})
        lat.append((time.time() - t) * 1000)
        assert "result" in r, r
    hwm_issues = peak_rss_kb(c.p.pid)
    # Edits: open a Python file and change it; time the next answer. Two kinds: a line typed
    # inside a function body (the file keeps its names: the index is patched), and a new
    # function (names change: the indexes are assembled again).
    py = os.path.join(ws, edit) if edit else None
    for dp, _, fs in ([] if py else sorted(os.walk(ws))):
        for f in sorted(fs):
            if f.endswith(".py"):
                cand = os.path.join(dp, f)
                lines = open(cand, encoding="utf-8", errors="replace").read().split("\n")
                if any(l.startswith("        return ") for l in lines):
                    py = cand
                    break
        if py:
            break
    # The reference for the edits: the same issue again with nothing changed.
    same = []
    for _ in range(5):
        t = time.time()
        c.request("locus/locateIssue", {"text": issues[0]})
        same.append((time.time() - t) * 1000)
    edit_ms = {"body": [], "new_def": []}
    if py:
        uri = "file://" + py
        text = open(py, encoding="utf-8", errors="replace").read()
        body_line = next(i for i, l in enumerate(text.split("\n")) if l.startswith("        return "))
        c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
        version = 1
        for kind in ("body", "new_def"):
            for v in range(5):
                version += 1
                if kind == "body":
                    at, new = body_line, f"        locus_bench_value_{version} = {version}\n"
                else:
                    at, new = 0, f"def locus_bench_edit_{version}(): pass\n"
                c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                         "contentChanges": [{"range": {"start": {"line": at, "character": 0}, "end": {"line": at, "character": 0}},
                                             "text": new}]})
                t = time.time()
                # The same issue again, as a user does after changing the code.
                c.request("locus/locateIssue", {"text": issues[0]})
                edit_ms[kind].append((time.time() - t) * 1000)
                # A person reads the answer before the next edit: background work (the
                # edited entities' vectors) finishes meanwhile, as it would.
                time.sleep(0.5)
    rss = peak_rss_kb(c.p.pid)
    rss_end = peak_rss_kb(c.p.pid, "VmRSS")
    c.request("shutdown", None)
    c.notify("exit", None)
    c.p.wait(timeout=30)
    return {
        "workspace": ws, "n": len(lat),
        "first_answer_s": round(first, 2), "ready_s": round(ready, 1) if ready else None,
        "first_answer_vectors": first_stats.get("semanticReady"),
        "first_answer_on_demand": first_stats.get("onDemand"),
        "first_semantic_answer_s": round(semantic, 2) if semantic is not None else None,
        "locate_p50_ms": round(pct(lat, 50), 1), "locate_p95_ms": round(pct(lat, 95), 1),
        "same_issue_again_p50_ms": round(pct(same, 50), 1),
        "edited": os.path.relpath(py, ws) if py else None,
        "edit_body_then_locate_p50_ms": round(pct(edit_ms["body"], 50), 1) if edit_ms["body"] else None,
        "edit_new_def_then_locate_p50_ms": round(pct(edit_ms["new_def"], 50), 1) if edit_ms["new_def"] else None,
        "edit_ms": {k: [round(x) for x in v] for k, v in edit_ms.items()},
        "peak_rss_mb": mb(rss),
        # Where the peak was reached: by the first answer, by the last issue, after the edits
        # (the peak), and what is resident at the end.
        "peak_rss_mb_by_phase": {"first_answer": mb(hwm_first), "issues": mb(hwm_issues),
                                 "edits": mb(rss), "resident_at_end": mb(rss_end)},
    }


if __name__ == "__main__":
    main()
