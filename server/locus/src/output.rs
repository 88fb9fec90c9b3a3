//! Plain-text and JSON renderings of index statistics and localizations for the terminal.

use locus_search::{Localization, Ranked};
use serde_json::{json, Value};

pub fn ranked_json(r: &Ranked, with_range: bool) -> Value {
    let mut v = json!({
        "name": r.name,
        "path": r.path,
        "kind": r.kind,
        "score": round3(r.score),
        "reason": r.reason,
    });
    if with_range {
        v["range"] = json!({
            "start": {"line": r.span.start.line, "character": r.span.start.col},
            "end": {"line": r.span.end.line, "character": r.span.end.col},
        });
    }
    v
}

pub fn localization_json(loc: &Localization, top: usize, granularity: Option<&str>, index: Value) -> Value {
    let files: Vec<Value> = if granularity != Some("function") {
        loc.files.iter().take(top).map(|r| ranked_json(r, false)).collect()
    } else {
        Vec::new()
    };
    let functions: Vec<Value> = if granularity != Some("file") {
        loc.functions.iter().take(top).map(|r| ranked_json(r, true)).collect()
    } else {
        Vec::new()
    };
    let t = &loc.trace;
    json!({
        "files": files,
        "functions": functions,
        "predicted": {"files": loc.predicted_files, "functions": loc.predicted_functions},
        "stats": {
            "ms": round3(t.ms as f32),
            "turns": t.turns.len(),
            "calls": t.calls,
            "efficiency": round3(t.efficiency),
            "redundant_calls": t.redundant_calls,
            "skipped_calls": t.skipped_calls,
            "signals": t.signals,
            "stop": t.stop,
            "ranking": t.ranking,
            "semantic_ready": t.semantic_ready,
            "index": index,
        },
        "trace": t,
    })
}

pub fn round3(x: f32) -> f64 {
    ((x as f64) * 1000.0).round() / 1000.0
}

pub fn print_human(loc: &Localization, top: usize, granularity: Option<&str>) {
    if granularity != Some("function") {
        println!("Files:");
        for (i, r) in loc.files.iter().take(top).enumerate() {
            println!("{:>3}. [{:.2}] {}  — {}", i + 1, r.score, r.path, r.reason);
        }
    }
    if granularity != Some("file") {
        println!("Functions:");
        for (i, r) in loc.functions.iter().take(top).enumerate() {
            println!(
                "{:>3}. [{:.2}] {}:{}  {}  — {}",
                i + 1,
                r.score,
                r.path,
                r.span.start.line + 1,
                r.name.split_once(':').map(|x| x.1).unwrap_or(&r.name),
                r.reason
            );
        }
    }
    let t = &loc.trace;
    println!(
        "{} turns, {} calls ({} redundant, {} skipped as predicted redundant), efficiency {:.2}, {:.0} ms",
        t.turns.len(),
        t.calls,
        t.redundant_calls,
        t.skipped_calls,
        t.efficiency,
        t.ms
    );
}

pub fn print_explain(loc: &Localization) {
    let t = &loc.trace;
    println!(
        "Search trace: {} signals in the issue; stopped: {}; ranked by {}",
        t.signals, t.stop, t.ranking
    );
    for (i, turn) in t.turns.iter().enumerate() {
        println!(
            "turn {} — {} calls in parallel, {} skipped as redundant, {:.1} ms",
            i + 1,
            turn.calls.len(),
            turn.skipped,
            turn.ms
        );
        for c in &turn.calls {
            println!(
                "    {:<60} returned {:>3}, new {:>3}, g={:.2}, {:.2} ms",
                c.call, c.returned, c.new, c.efficiency, c.ms
            );
        }
    }
    let mut tools: Vec<_> = t.ms_by_tool.iter().collect();
    tools.sort_by(|a, b| a.0.cmp(b.0));
    let per_tool: Vec<String> = tools.iter().map(|(k, v)| format!("{k} {v:.1} ms")).collect();
    println!("time per tool: {}", per_tool.join(", "));
}
