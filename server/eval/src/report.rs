//! The output contract of an evaluation run: one [`InstanceRow`] per instance
//! (`per_instance.jsonl`), their aggregate [`Summary`] (`summary.json`) and a markdown table.
//!
//! Fractions are stored as 0..1 and times in milliseconds; only the markdown printer turns them
//! into percentages. A metric with nothing behind it is `null`, never 0, and every family
//! carries its own n.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::data::Gold;
use crate::metrics::{score_instance, Answer};

/// One instance of a run: what the engine answered, what it cost, the gold and the scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceRow {
    /// The engine that produced the row; resuming reuses only rows of the same engine.
    pub engine: String,
    pub instance_id: String,
    pub repo: String,
    #[serde(default)]
    pub base_commit: String,
    /// Best first; paths relative to the tree root.
    #[serde(default)]
    pub ranked_files: Vec<String>,
    /// Best first; qualified like the gold (`path/a.py:Class.method`, `path/a.rs:Type::method`).
    #[serde(default)]
    pub ranked_functions: Vec<String>,
    /// The engine's score of each ranked function relative to the best, when it has scores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranked_function_scores: Vec<f32>,
    /// The engine's committed answer as a set (scored by set F1).
    #[serde(default)]
    pub predicted_files: Vec<String>,
    #[serde(default)]
    pub predicted_functions: Vec<String>,
    /// The pools the learned models see (files; functions), when the engine reports them: what
    /// candidate recall is measured on. Empty for engines without pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_functions: Vec<String>,
    /// Why the instance was not run (`no mirror for owner/name`, ...). Skipped rows are left out
    /// of every metric.
    #[serde(default)]
    pub skipped: Option<String>,
    /// The engine failed on this instance. The row is still scored, as an empty prediction.
    #[serde(default)]
    pub error: Option<String>,
    /// Query time reported by the engine, or the measured wall time of the call when it
    /// reports none.
    #[serde(default)]
    pub ms: f64,
    /// Measured wall time of the whole call, indexing included.
    #[serde(default)]
    pub wall_ms: f64,
    /// Time the engine spent indexing the tree for this instance.
    #[serde(default)]
    pub index_ms: f64,
    #[serde(default)]
    pub turns: u32,
    #[serde(default)]
    pub calls: u32,
    /// Mean gain `g_i` of the engine's tool calls (EVAL.md, cost).
    #[serde(default)]
    pub efficiency: f64,
    /// Tool calls with `g_i = 0`.
    #[serde(default)]
    pub redundant_calls: u32,
    #[serde(default)]
    pub peak_rss_kb: Option<u64>,
    /// Vectors the search made on demand for its candidates (its time is in `ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vectors_on_demand: Option<usize>,
    /// Files of the tree the mirror could not provide (see `materialize`).
    #[serde(default)]
    pub missing_blobs: usize,
    #[serde(default)]
    pub gold_files: Vec<String>,
    #[serde(default)]
    pub gold_functions: Vec<String>,
    #[serde(default)]
    pub gold_added_functions: Vec<String>,
    #[serde(default)]
    pub function_gold_reliable: bool,
    /// Per-instance scores keyed like the summary (`file_acc@1`, ...); a metric the instance is
    /// not scored on is absent.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

impl InstanceRow {
    /// Copies the gold in and recomputes the scores from the row's predictions. A skipped row
    /// gets the gold but no scores.
    pub fn score(&mut self, gold: Option<&Gold>) {
        let empty = Gold::default();
        let gold = gold.unwrap_or(&empty);
        self.gold_files = gold.files.clone();
        self.gold_functions = gold.functions.clone();
        self.gold_added_functions = gold.added_functions.clone();
        self.function_gold_reliable = gold.function_gold_reliable;
        self.metrics = if self.skipped.is_some() {
            BTreeMap::new()
        } else {
            score_instance(
                Answer {
                    ranked_files: &self.ranked_files,
                    predicted_files: &self.predicted_files,
                    ranked_functions: &self.ranked_functions,
                    predicted_functions: &self.predicted_functions,
                    candidate_files: &self.candidate_files,
                    candidate_functions: &self.candidate_functions,
                },
                gold,
            )
        };
    }
}

/// Instances that were not run, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub count: usize,
    /// Reason → number of instances.
    pub reasons: BTreeMap<String, usize>,
}

/// Aggregate metrics. Quality metrics are macro-averages over the instances scored on their
/// family (`n_file`, `n_function`, `n_function_with_added`); `None` when that n is 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(rename = "file_acc@1")]
    pub file_acc_1: Option<f64>,
    #[serde(rename = "file_acc@3")]
    pub file_acc_3: Option<f64>,
    #[serde(rename = "file_acc@5")]
    pub file_acc_5: Option<f64>,
    #[serde(rename = "file_recall@1")]
    pub file_recall_1: Option<f64>,
    #[serde(rename = "file_recall@5")]
    pub file_recall_5: Option<f64>,
    pub file_f1: Option<f64>,
    pub file_mrr: Option<f64>,

    #[serde(rename = "function_acc@5")]
    pub function_acc_5: Option<f64>,
    #[serde(rename = "function_acc@10")]
    pub function_acc_10: Option<f64>,
    #[serde(rename = "function_recall@1")]
    pub function_recall_1: Option<f64>,
    #[serde(rename = "function_recall@5")]
    pub function_recall_5: Option<f64>,
    pub function_f1: Option<f64>,
    pub function_mrr: Option<f64>,

    #[serde(rename = "function_acc@5_with_added")]
    pub function_acc_5_with_added: Option<f64>,
    #[serde(rename = "function_acc@10_with_added")]
    pub function_acc_10_with_added: Option<f64>,
    #[serde(rename = "function_recall@1_with_added")]
    pub function_recall_1_with_added: Option<f64>,
    #[serde(rename = "function_recall@5_with_added")]
    pub function_recall_5_with_added: Option<f64>,
    pub function_f1_with_added: Option<f64>,
    pub function_mrr_with_added: Option<f64>,

    /// Share of instances with a gold file in the file pool the learned file model sees; over
    /// the instances whose engine reports its pools (`n_file_pool`).
    pub file_pool_recall: Option<f64>,
    /// Share of instances with a gold function in the function pool the learned function model
    /// sees (`n_function_pool`).
    pub function_pool_recall: Option<f64>,
    #[serde(default)]
    pub n_file_pool: usize,
    #[serde(default)]
    pub n_function_pool: usize,

    /// Median of `ms` over the instances run (nearest rank).
    pub p50_ms: Option<f64>,
    /// 95th percentile of `ms` over the instances run (nearest rank).
    pub p95_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub mean_wall_ms: Option<f64>,
    pub mean_index_ms: Option<f64>,
    pub mean_turns: Option<f64>,
    pub mean_calls: Option<f64>,
    /// Mean per-instance tool efficiency over the instances that made at least one call.
    pub mean_efficiency: Option<f64>,
    /// Σ redundant calls / Σ calls over the instances run.
    pub redundant_call_rate: Option<f64>,
    pub max_peak_rss_kb: Option<u64>,
    /// Mean vectors made on demand per instance, over the instances that made them that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_vectors_on_demand: Option<f64>,

    pub n_file: usize,
    pub n_function: usize,
    pub n_function_with_added: usize,
}

/// What `summary.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub engine: String,
    /// Which instances: dataset name plus any filter (`swebench_lite`, `rust_tokio[limit=5]`).
    pub subset: String,
    /// Instances run (skipped ones excluded); engine errors count here, scored as empty.
    pub n: usize,
    pub skipped: Skipped,
    /// Instances on which the engine returned an error.
    pub errors: usize,
    /// Malformed input lines (instances and gold files) that were left out.
    #[serde(default)]
    pub bad_input_lines: usize,
    pub metrics: Metrics,
}

/// Aggregates rows into a summary. Skipped rows only count in `skipped`.
pub fn summarize(engine: &str, subset: &str, rows: &[InstanceRow]) -> Summary {
    let mut skipped = Skipped::default();
    let mut run: Vec<&InstanceRow> = Vec::new();
    for row in rows {
        match &row.skipped {
            Some(reason) => {
                skipped.count += 1;
                *skipped.reasons.entry(reason.clone()).or_default() += 1;
            }
            None => run.push(row),
        }
    }
    let mean_key = |key: &str| mean(run.iter().filter_map(|r| r.metrics.get(key).copied()));
    let count_key = |key: &str| run.iter().filter(|r| r.metrics.contains_key(key)).count();

    let mut ms: Vec<f64> = run.iter().map(|r| r.ms).collect();
    ms.sort_by(f64::total_cmp);
    let total_calls: u64 = run.iter().map(|r| u64::from(r.calls)).sum();
    let total_redundant: u64 = run.iter().map(|r| u64::from(r.redundant_calls)).sum();

    let metrics = Metrics {
        file_acc_1: mean_key("file_acc@1"),
        file_acc_3: mean_key("file_acc@3"),
        file_acc_5: mean_key("file_acc@5"),
        file_recall_1: mean_key("file_recall@1"),
        file_recall_5: mean_key("file_recall@5"),
        file_f1: mean_key("file_f1"),
        file_mrr: mean_key("file_mrr"),
        function_acc_5: mean_key("function_acc@5"),
        function_acc_10: mean_key("function_acc@10"),
        function_recall_1: mean_key("function_recall@1"),
        function_recall_5: mean_key("function_recall@5"),
        function_f1: mean_key("function_f1"),
        function_mrr: mean_key("function_mrr"),
        function_acc_5_with_added: mean_key("function_acc@5_with_added"),
        function_acc_10_with_added: mean_key("function_acc@10_with_added"),
        function_recall_1_with_added: mean_key("function_recall@1_with_added"),
        function_recall_5_with_added: mean_key("function_recall@5_with_added"),
        function_f1_with_added: mean_key("function_f1_with_added"),
        function_mrr_with_added: mean_key("function_mrr_with_added"),
        file_pool_recall: mean_key("file_pool_recall"),
        function_pool_recall: mean_key("function_pool_recall"),
        n_file_pool: count_key("file_pool_recall"),
        n_function_pool: count_key("function_pool_recall"),
        p50_ms: percentile(&ms, 0.50),
        p95_ms: percentile(&ms, 0.95),
        mean_ms: mean(ms.iter().copied()),
        mean_wall_ms: mean(run.iter().map(|r| r.wall_ms)),
        mean_index_ms: mean(run.iter().map(|r| r.index_ms)),
        mean_turns: mean(run.iter().map(|r| f64::from(r.turns))),
        mean_calls: mean(run.iter().map(|r| f64::from(r.calls))),
        mean_efficiency: mean(run.iter().filter(|r| r.calls > 0).map(|r| r.efficiency)),
        redundant_call_rate: (total_calls > 0).then(|| total_redundant as f64 / total_calls as f64),
        max_peak_rss_kb: run.iter().filter_map(|r| r.peak_rss_kb).max(),
        mean_vectors_on_demand: mean(run.iter().filter_map(|r| r.vectors_on_demand).map(|n| n as f64)),
        n_file: count_key("file_acc@1"),
        n_function: count_key("function_acc@5"),
        n_function_with_added: count_key("function_acc@5_with_added"),
    };
    Summary {
        engine: engine.to_owned(),
        subset: subset.to_owned(),
        n: run.len(),
        skipped,
        errors: run.iter().filter(|r| r.error.is_some()).count(),
        bad_input_lines: 0,
        metrics,
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p` of the data at
/// or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A markdown table with one row per summary (engine × subset): quality in percent with one
/// decimal, each family's n beside it, times in milliseconds.
pub fn markdown_table(summaries: &[Summary]) -> String {
    const HEADER: &[&str] = &[
        "engine",
        "subset",
        "n",
        "skipped",
        "file n",
        "file Acc@1",
        "Acc@3",
        "Acc@5",
        "R@1",
        "R@5",
        "F1",
        "MRR",
        "fn n",
        "fn Acc@5",
        "Acc@10",
        "R@1",
        "R@5",
        "F1",
        "MRR",
        "fn+added n",
        "Acc@5",
        "Acc@10",
        "file pool R",
        "fn pool R",
        "p50 ms",
        "p95 ms",
        "index ms",
        "turns",
        "calls",
    ];
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let align: Vec<&str> =
        HEADER.iter().enumerate().map(|(i, _)| if i < 2 { "---" } else { "---:" }).collect();
    let _ = writeln!(out, "| {} |", align.join(" | "));
    for s in summaries {
        let m = &s.metrics;
        let cells = [
            s.engine.clone(),
            s.subset.clone(),
            s.n.to_string(),
            s.skipped.count.to_string(),
            m.n_file.to_string(),
            pct(m.file_acc_1),
            pct(m.file_acc_3),
            pct(m.file_acc_5),
            pct(m.file_recall_1),
            pct(m.file_recall_5),
            pct(m.file_f1),
            pct(m.file_mrr),
            m.n_function.to_string(),
            pct(m.function_acc_5),
            pct(m.function_acc_10),
            pct(m.function_recall_1),
            pct(m.function_recall_5),
            pct(m.function_f1),
            pct(m.function_mrr),
            m.n_function_with_added.to_string(),
            pct(m.function_acc_5_with_added),
            pct(m.function_acc_10_with_added),
            pct(m.file_pool_recall),
            pct(m.function_pool_recall),
            num(m.p50_ms),
            num(m.p95_ms),
            num(m.mean_index_ms),
            num(m.mean_turns),
            num(m.mean_calls),
        ];
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{:.1}", v * 100.0))
}

fn num(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn row(id: &str, ranked_files: &[&str], gold_files: &[&str], ms: f64) -> InstanceRow {
        let mut row = InstanceRow {
            engine: "e".into(),
            instance_id: id.into(),
            repo: "o/r".into(),
            ranked_files: v(ranked_files),
            predicted_files: v(&ranked_files[..ranked_files.len().min(1)]),
            ms,
            ..InstanceRow::default()
        };
        let gold = Gold { instance_id: id.into(), files: v(gold_files), ..Gold::default() };
        row.score(Some(&gold));
        row
    }

    #[test]
    fn summary_by_hand() {
        let mut skipped = row("s", &[], &["a.py"], 0.0);
        skipped.skipped = Some("no mirror for o/x".into());
        skipped.score(None);
        let mut failed = row("f", &[], &["a.py"], 3.0);
        failed.error = Some("boom".into());
        let mut with_calls = row("c", &["x.py", "a.py"], &["a.py"], 2.0);
        with_calls.calls = 4;
        with_calls.redundant_calls = 1;
        with_calls.efficiency = 0.5;
        let rows = vec![
            row("a", &["a.py", "b.py"], &["a.py"], 1.0),
            with_calls,
            failed,
            row("e", &["a.py"], &[], 10.0), // empty gold: run, but not scored
            skipped,
        ];
        let s = summarize("e", "t", &rows);
        assert_eq!((s.n, s.errors, s.skipped.count), (4, 1, 1));
        assert_eq!(s.skipped.reasons["no mirror for o/x"], 1);
        let m = &s.metrics;
        assert_eq!(m.n_file, 3);
        assert_eq!(m.n_function, 0);
        // Acc@1: a hits, c misses (x first), f empty → 1/3.
        assert_eq!(m.file_acc_1, Some(1.0 / 3.0));
        // Acc@3: a, c hit → 2/3.
        assert_eq!(m.file_acc_3, Some(2.0 / 3.0));
        // MRR: 1, 1/2, 0 → 1/2.
        assert_eq!(m.file_mrr, Some(0.5));
        // F1 (predicted = top-1): 1, 0, 0.
        assert_eq!(m.file_f1, Some(1.0 / 3.0));
        assert_eq!(m.function_acc_10, None);
        // ms over the four run rows [1, 2, 3, 10]: p50 = 2, p95 = 10.
        assert_eq!((m.p50_ms, m.p95_ms), (Some(2.0), Some(10.0)));
        assert_eq!(m.mean_calls, Some(1.0));
        assert_eq!(m.mean_efficiency, Some(0.5));
        assert_eq!(m.redundant_call_rate, Some(0.25));
        assert_eq!(m.max_peak_rss_kb, None);
    }

    #[test]
    fn summary_json_uses_contract_keys() {
        let s = summarize("e", "t", &[row("a", &["a.py"], &["a.py"], 1.0)]);
        let json = serde_json::to_value(&s).unwrap();
        for key in [
            "file_acc@1",
            "file_acc@3",
            "file_acc@5",
            "function_acc@5",
            "function_acc@10",
            "file_recall@1",
            "file_recall@5",
            "function_recall@1",
            "function_recall@5",
            "file_f1",
            "function_f1",
            "file_mrr",
            "function_mrr",
            "p50_ms",
            "p95_ms",
            "function_acc@10_with_added",
            "mean_index_ms",
            "mean_turns",
            "mean_calls",
            "mean_efficiency",
            "redundant_call_rate",
            "n_file",
            "n_function",
        ] {
            assert!(json["metrics"].get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["metrics"]["file_acc@1"], 1.0);
        assert!(json["metrics"]["function_acc@5"].is_null());
        assert_eq!(json["n"], 1);
        assert_eq!(json["skipped"]["count"], 0);
        let back: Summary = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn percentile_nearest_rank() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&xs, 0.5), Some(2.0));
        assert_eq!(percentile(&xs, 0.95), Some(4.0));
        assert_eq!(percentile(&[7.0], 0.5), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn markdown_table_rows() {
        let s = summarize(
            "bm25",
            "swebench_lite",
            &[
                row("a", &["a.py"], &["a.py"], 1.0),
                row("b", &["x.py", "a.py", "y.py"], &["a.py"], 3.0),
                row("c", &["x.py"], &["a.py"], 5.0),
            ],
        );
        let table = markdown_table(&[s]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("| engine | subset | n |"));
        assert_eq!(
            lines[2],
            "| bm25 | swebench_lite | 3 | 0 | 3 | 33.3 | 66.7 | 66.7 | 33.3 | 66.7 | 33.3 \
             | 50.0 | 0 | – | – | – | – | – | – | 0 | – | – | – | – | 3.0 | 5.0 | 0.0 | 0.0 | 0.0 |"
        );
    }

    #[test]
    fn row_round_trips_and_tolerates_missing_fields() {
        // 0.030898000000000002 printed shortest and parsed back without `float_roundtrip` came
        // back one ulp off, and a resumed run's summary differed from the original.
        let r = row("a", &["a.py"], &["a.py"], 0.030898000000000002);
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<InstanceRow>(&line).unwrap(), r);
        let minimal: InstanceRow =
            serde_json::from_str(r#"{"engine":"e","instance_id":"a","repo":"o/r"}"#).unwrap();
        assert!(minimal.ranked_files.is_empty() && minimal.skipped.is_none());
    }
}
