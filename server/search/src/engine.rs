//! The adaptive multi-turn search (FuseSearch's idea, in-process): each turn issues a batch of
//! tool calls that run in parallel on the immutable index, fuses their hits into per-entity
//! evidence, and records each call's tool efficiency `g_i = |E_i \ H| / |E_i|`. Turn 1 is wide
//! (every strong signal of the issue becomes a call); later turns expand around the leading
//! candidates, as few or as many as the ranking's confidence calls for, skip calls predicted to
//! return only seen entities, and stop when the leading set is stable or the budget is spent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use locus_index::{text, Index};
use locus_syntax::Kind;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::signals::{self, Signal, SignalKind};
use crate::tools::{self, Call, Hit, Relation, Semantic};

/// Which search to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The papers' baseline: BM25 with the whole issue as query, no signals, no graph.
    Bm25,
    /// Turn 1 only: signals, symbols, lexical (and semantic when vectors exist), fused.
    SinglePass,
    /// Multi-turn, breadth decided per turn, redundant calls skipped.
    Adaptive,
    /// Multi-turn ablation: every tool on the top candidates every turn, nothing skipped.
    Fixed,
    /// The encoder alone: nearest entities to the issue's embedding.
    Dense,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "bm25" => Some(Mode::Bm25),
            "single" | "single-pass" => Some(Mode::SinglePass),
            "adaptive" | "locus" => Some(Mode::Adaptive),
            "fixed" => Some(Mode::Fixed),
            "dense" => Some(Mode::Dense),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Options {
    pub mode: Mode,
    pub max_turns: u32,
    pub max_calls: u32,
    /// Wall-clock budget for the whole search; the current turn finishes, no new one starts.
    pub budget_ms: u64,
    /// Ranked items returned per granularity.
    pub max_results: usize,
    /// Record candidate features in the result (for training the localization model).
    pub collect_features: bool,
    /// The learned localization model; `None` ranks by the hand-weighted fusion.
    pub scorer: Option<std::sync::Arc<dyn Scorer>>,
    /// How many leading files contribute all their functions to the learned scorer's pool
    /// ([`POOL_FILES`] by default). Deeper pools are for feature dumps: the training scripts
    /// can then simulate any shallower pool from one run.
    pub pool_files: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Adaptive,
            max_turns: 4,
            max_calls: 64,
            budget_ms: 1500,
            max_results: 20,
            collect_features: false,
            scorer: None,
            pool_files: POOL_FILES,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the search was cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// One ranked place.
#[derive(Clone, Debug, Serialize)]
pub struct Ranked {
    pub id: u32,
    /// `path:Qual.name` for functions, the path for files.
    pub name: String,
    pub path: String,
    pub kind: Kind,
    pub span: locus_syntax::Span,
    /// 0..=1, relative to the best item of the same list.
    pub score: f32,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CallTrace {
    pub call: String,
    pub tool: &'static str,
    pub returned: u32,
    pub new: u32,
    /// `g_i`: the share of returned entities not seen before (1 when nothing is returned is
    /// not defined; such calls count as redundant with g = 0).
    pub efficiency: f32,
    pub ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TurnTrace {
    pub calls: Vec<CallTrace>,
    /// Calls the policy considered and did not issue because they were predicted to bring
    /// nothing new.
    pub skipped: u32,
    pub ms: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Trace {
    pub signals: usize,
    pub turns: Vec<TurnTrace>,
    pub calls: u32,
    pub redundant_calls: u32,
    pub skipped_calls: u32,
    /// Mean `g_i` over calls.
    pub efficiency: f32,
    pub ms: f64,
    pub ms_by_tool: FxHashMap<&'static str, f64>,
    pub semantic_ready: usize,
    pub stop: String,
    /// Who ordered the final lists: `fusion`, `model: functions`, or `model: functions and files`.
    pub ranking: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Localization {
    pub files: Vec<Ranked>,
    pub functions: Vec<Ranked>,
    /// The predicted set (adaptive cut-off), full names.
    pub predicted_files: Vec<String>,
    pub predicted_functions: Vec<String>,
    pub trace: Trace,
    /// Features of the candidates the learned model scores (the fusion's top 100 and the
    /// leading files' other functions; in the final order when a model ranked them), when
    /// `Options::collect_features` is set: the model's training data.
    pub features: Vec<(String, [f32; N_FEATURES])>,
    /// The [`CANDIDATE_FEATURE_NAMES`] of the same candidates, row by row, when
    /// `Options::collect_features` is set.
    pub candidate_features: Vec<[f32; N_CANDIDATE_FEATURES]>,
    /// Features of the file candidates the learned file model scores (the fusion's top
    /// [`FILE_POOL`] files and the files of the model's leading functions), by path, when
    /// `Options::collect_features` is set.
    pub file_features: Vec<(String, [f32; N_FILE_FEATURES])>,
}

/// Number of features per function-level candidate.
pub const N_FEATURES: usize = 16;

/// Feature names, in order (documentation and the training script).
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "lexical",
    "semantic",
    "symbol",
    "frame",
    "path",
    "grep",
    "graph",
    "n_tools",
    "is_test",
    "kind",
    "log_lines",
    "heuristic",
    "log_rank",
    "log_file_rank",
    "file_path",
    "file_lexical",
];

/// Number of candidate inputs: evidence beside [`FEATURE_NAMES`] that the function and file
/// models do not read; the tail model ([`Scorer::score_tail`]) does, and `locus eval
/// --features` dumps it for experiments.
pub const N_CANDIDATE_FEATURES: usize = 1;

/// Candidate input names, in order. `semantic_all`: the encoder's cosine of the function
/// with the issue (the semantic tool's query), over the best pooled function's, clamped at 0,
/// for every pooled function (`semantic` is the tool's own score, 0 outside its top hits).
/// docs/ranker-notes.md has what it measured as a model input.
pub const CANDIDATE_FEATURE_NAMES: [&str; N_CANDIDATE_FEATURES] = ["semantic_all"];

/// Number of features per file candidate (the learned file model's input).
pub const N_FILE_FEATURES: usize = 12;

/// File feature names, in order. The first six describe the file in the fusion; the
/// `fn_*` ones summarise the file's function candidates (the rows of [`FEATURE_NAMES`]
/// whose path is the file's), `fn_best` and `fn_second` from the function model's scores
/// (0 without one).
pub const FILE_FEATURE_NAMES: [&str; N_FILE_FEATURES] = [
    "file_score",
    "log_file_rank",
    "file_path",
    "file_lexical",
    "file_semantic",
    "is_test",
    "fn_lexical_max",
    "fn_semantic_max",
    "fn_symbol_max",
    "fn_best",
    "fn_second",
    "log_fn_count",
];

/// A learned scorer of candidates (the localization model), supplied by the caller.
pub trait Scorer: Sync + Send {
    /// One score per feature row; higher is more likely to need the fix.
    fn score(&self, rows: &[[f32; N_FEATURES]]) -> Vec<f32>;

    /// One score per file row, or `None` when the scorer ranks functions only (the file
    /// ranking then stays the fusion's).
    fn score_files(&self, _rows: &[[f32; N_FILE_FEATURES]]) -> Option<Vec<f32>> {
        None
    }

    /// Whether [`Scorer::score_tail`] has a model (the engine computes the candidate inputs
    /// only then).
    fn has_tail(&self) -> bool {
        false
    }

    /// One score per function row from the row and its [`CANDIDATE_FEATURE_NAMES`], ordering
    /// the candidates after the first [`KEEP_TOP`] of [`Scorer::score`]; `None` when the
    /// scorer has no such model (the order then stays `score`'s). Asked only when the
    /// encoder's vectors are there.
    fn score_tail(
        &self,
        _rows: &[[f32; N_FEATURES]],
        _candidate: &[[f32; N_CANDIDATE_FEATURES]],
    ) -> Option<Vec<f32>> {
        None
    }
}

/// The function model's leading candidates the tail model leaves in place (docs/ranker-notes.md,
/// session 5: the tail model alone lifts Acc@10 but ranks the first gold function later).
pub const KEEP_TOP: usize = 3;

/// Candidates re-scored by a learned scorer; the rest keep their order below them.
const RERANK_DEPTH: usize = 100;
/// The learned scorer also sees every function of the leading files: the fusion ranks files
/// better than the functions inside them (a fix's file is often first while its function,
/// with no evidence of its own, is below the top 100).
pub const POOL_FILES: usize = 3;
/// At most this many candidates in all for the default [`POOL_FILES`], the fusion's top
/// [`RERANK_DEPTH`] included; a deeper pool holds proportionally more.
const POOL_MAX: usize = 400;
/// Files the learned file model re-scores: the fusion's leading files (the rest keep their
/// order below them), plus the files of the function model's [`FILE_POOL_FUNCTIONS`]
/// leading functions.
pub const FILE_POOL: usize = 20;
const FILE_POOL_FUNCTIONS: usize = 10;

/// Per-entity evidence accumulated over the search. Each field is the best value any call
/// gave, in 0..=1 before weighting.
#[derive(Clone, Debug, Default)]
struct Evidence {
    lexical: f32,
    semantic: f32,
    symbol: f32,
    frame: f32,
    path: f32,
    grep: f32,
    graph: f32,
    tools: u8,
    symbol_reason: String,
    frame_reason: String,
    path_reason: String,
    grep_reason: String,
    graph_reason: String,
}

// Weights of the fused score. Hand-set from the structure of the evidence (a traceback frame or
// an exact qualified name is near-certain; lexical similarity is graded; a graph neighbour of a
// strong candidate is a weak prior) and checked on the development repositories only (see
// docs/benchmarks.md for the split).
const W_LEXICAL: f32 = 1.0;
const W_SEMANTIC: f32 = 0.7;
const W_SYMBOL: f32 = 1.3;
const W_FRAME: f32 = 1.6;
const W_PATH: f32 = 0.9;
const W_GREP: f32 = 0.8;
const W_GRAPH: f32 = 0.5;
/// Bonus per additional tool that found the entity.
const W_AGREE: f32 = 0.15;
/// Tests are rarely where the fix goes (the evaluation's gold excludes them).
const TEST_FACTOR: f32 = 0.35;

const TOOL_BITS: [&str; 6] = ["symbol", "lexical", "semantic", "grep", "graph", "outline"];

impl Evidence {
    fn score(&self) -> f32 {
        let agree = (self.tools.count_ones() as f32 - 1.0).max(0.0);
        W_LEXICAL * self.lexical
            + W_SEMANTIC * self.semantic
            + W_SYMBOL * self.symbol
            + W_FRAME * self.frame
            + W_PATH * self.path
            + W_GREP * self.grep
            + W_GRAPH * self.graph
            + W_AGREE * agree
    }

    fn reason(&self, lexical_terms: &str) -> String {
        let parts = [
            (W_FRAME * self.frame, &self.frame_reason),
            (W_SYMBOL * self.symbol, &self.symbol_reason),
            (W_PATH * self.path, &self.path_reason),
            (W_GREP * self.grep, &self.grep_reason),
            (W_GRAPH * self.graph, &self.graph_reason),
        ];
        let mut best: Option<(f32, String)> = None;
        for (w, r) in parts {
            if w > 0.0 && !r.is_empty() && best.as_ref().is_none_or(|b| w > b.0) {
                best = Some((w, r.clone()));
            }
        }
        let lex = W_LEXICAL * self.lexical;
        let sem = W_SEMANTIC * self.semantic;
        match best {
            Some((w, r)) if w >= lex.max(sem) => r,
            _ if lex >= sem && !lexical_terms.is_empty() => {
                format!("matches the issue's words: {lexical_terms}")
            }
            _ if sem > 0.0 => "similar in meaning to the issue (encoder)".to_string(),
            Some((_, r)) => r,
            None => "matches the issue's words".to_string(),
        }
    }
}

/// A call the policy wants to make, with what a hit would mean.
struct Planned {
    call: Call,
    /// Multiplies the tool's hit scores.
    weight: f32,
    /// Reason attached to entities this call finds.
    reason: String,
    /// For frame/path outlines: whether this is a traceback frame (vs a path mention).
    frame: bool,
}

struct Search<'a> {
    ix: &'a Index,
    dense: Option<&'a dyn Semantic>,
    opts: &'a Options,
    cancel: &'a AtomicBool,
    issue: &'a str,
    query_terms: Vec<(String, f32)>,
    ev: FxHashMap<u32, Evidence>,
    seen: FxHashSet<u32>,
    issued: FxHashSet<Call>,
    expanded: FxHashSet<u32>,
    trace: Trace,
    g_sum: f32,
}

/// Runs a localization of `issue` on `ix`.
pub fn locate(
    ix: &Index,
    dense: Option<&dyn Semantic>,
    issue: &str,
    opts: &Options,
    cancel: &AtomicBool,
) -> Result<Localization, Cancelled> {
    let t0 = Instant::now();
    let sigs =
        if matches!(opts.mode, Mode::Bm25 | Mode::Dense) { Vec::new() } else { signals::extract(issue) };
    let mut s = Search {
        ix,
        dense: if opts.mode == Mode::Bm25 { None } else { dense.filter(|d| d.ready() > 0) },
        opts,
        cancel,
        issue,
        query_terms: query_terms(issue),
        ev: FxHashMap::default(),
        seen: FxHashSet::default(),
        issued: FxHashSet::default(),
        expanded: FxHashSet::default(),
        trace: Trace {
            signals: sigs.len(),
            semantic_ready: dense.map(|d| d.ready()).unwrap_or(0),
            ..Trace::default()
        },
        g_sum: 0.0,
    };
    let mut skipped_first = 0;
    let first = s.first_turn(issue, &sigs, &mut skipped_first);
    s.run_turn(first)?;
    if let Some(t) = s.trace.turns.last_mut() {
        t.skipped = skipped_first;
    }
    s.trace.skipped_calls += skipped_first;
    let mut prev_top = s.top_functions(5);
    let mut stop = "single turn".to_string();
    if matches!(opts.mode, Mode::Adaptive | Mode::Fixed) {
        stop = "turn limit".to_string();
        for turn in 2..=opts.max_turns {
            if t0.elapsed().as_millis() as u64 >= opts.budget_ms {
                stop = "time budget".into();
                break;
            }
            if s.trace.calls >= opts.max_calls {
                stop = "call budget".into();
                break;
            }
            let (batch, skipped) = s.plan_turn(turn);
            if batch.is_empty() {
                stop = if skipped > 0 { "nothing new to ask".into() } else { "no leads to expand".into() };
                s.trace.skipped_calls += skipped;
                break;
            }
            s.run_turn(batch)?;
            if let Some(last) = s.trace.turns.last_mut() {
                last.skipped = skipped;
            }
            s.trace.skipped_calls += skipped;
            let top = s.top_functions(5);
            if opts.mode == Mode::Adaptive && top == prev_top {
                stop = "leading set stable".into();
                break;
            }
            prev_top = top;
        }
    }
    s.trace.stop = stop;
    s.trace.efficiency = if s.trace.calls == 0 { 0.0 } else { s.g_sum / s.trace.calls as f32 };
    s.trace.ms = t0.elapsed().as_secs_f64() * 1000.0;
    Ok(s.finish())
}

/// The start of the issue, as shown in traces.
fn issue_head(issue: &str) -> String {
    issue.chars().take(200).collect()
}

/// The semantic tool's query for the whole issue (the encoder reads its first 256 tokens).
fn semantic_query(issue: &str) -> String {
    issue.chars().take(2000).collect()
}

/// The issue's terms with weights: repeated words count, with diminishing returns.
fn query_terms(issue: &str) -> Vec<(String, f32)> {
    let mut end = issue.len().min(signals::MAX_ISSUE_BYTES);
    while !issue.is_char_boundary(end) {
        end -= 1;
    }
    let mut counts: FxHashMap<String, u32> = FxHashMap::default();
    text::for_each_term(&issue[..end], |t| *counts.entry(t.to_string()).or_insert(0) += 1);
    let mut v: Vec<(String, f32)> = counts.into_iter().map(|(t, c)| (t, 1.0 + (c as f32).ln())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl Search<'_> {
    fn check_cancel(&self) -> Result<(), Cancelled> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Turn 1: every strong signal becomes a call, plus lexical (and semantic) on the issue.
    fn first_turn(&self, issue: &str, sigs: &[Signal], skipped: &mut u32) -> Vec<Planned> {
        if self.opts.mode == Mode::Dense {
            return vec![Planned {
                call: Call::Semantic { query: semantic_query(issue) },
                weight: 1.0,
                reason: String::new(),
                frame: false,
            }];
        }
        let mut plan = vec![Planned {
            call: Call::Lexical { query: issue_head(issue), extra: String::new() },
            weight: 1.0,
            reason: String::new(),
            frame: false,
        }];
        if self.opts.mode == Mode::Bm25 {
            return plan;
        }
        if self.dense.is_some() {
            plan.push(Planned {
                call: Call::Semantic { query: semantic_query(issue) },
                weight: 1.0,
                reason: String::new(),
                frame: false,
            });
        }
        let mut names: FxHashMap<String, (f32, String)> = FxHashMap::default();
        let mut files: Vec<(u32, Option<u32>, bool, String)> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        for s in sigs {
            match s.kind {
                SignalKind::Frame | SignalKind::Panic => {
                    if let Some(p) = &s.path {
                        for f in self.resolve_path(p) {
                            let what = match (&s.func, s.line) {
                                (Some(func), Some(l)) => format!("in the traceback: `{func}` at line {l}"),
                                (_, Some(l)) => format!("in the traceback at line {l}"),
                                _ => "in the traceback".to_string(),
                            };
                            files.push((f, s.line.map(|l| l.saturating_sub(1)), true, what));
                        }
                    }
                    if let Some(func) = &s.func {
                        if !signals::is_noise(func) && func != "<module>" {
                            let q = if s.text.contains("::") { s.text.clone() } else { func.clone() };
                            names.entry(q).or_insert((0.9, format!("`{func}` appears in the traceback")));
                        }
                    }
                }
                SignalKind::Path => {
                    if let Some(p) = &s.path {
                        for f in self.resolve_path(p) {
                            files.push((f, None, false, format!("in `{p}`, named in the issue")));
                        }
                    }
                }
                SignalKind::QualifiedName => {
                    let w = if s.in_code { 1.0 } else { 0.85 };
                    let e = names
                        .entry(s.text.clone())
                        .or_insert((w, format!("`{}` is named in the issue", s.text)));
                    e.0 = e.0.max(w);
                }
                SignalKind::Identifier => {
                    let w = if s.in_code { 0.8 } else { 0.6 };
                    let e = names
                        .entry(s.text.clone())
                        .or_insert((w, format!("defines `{}`, named in the issue", s.text)));
                    e.0 = e.0.max(w);
                }
                SignalKind::ErrorMessage | SignalKind::Quoted => {
                    let p = s.text.trim().trim_end_matches(['.', ':']).to_string();
                    // Messages are often formatted: grep the longest literal run.
                    let lit = p
                        .split(['{', '}', '%', '\'', '"'])
                        .max_by_key(|x| x.len())
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    if lit.len() >= 8 && !patterns.contains(&lit) {
                        patterns.push(lit);
                    }
                }
                SignalKind::Code => {}
            }
        }
        // Most specific names first; a cap keeps turn 1 bounded on long issues.
        let mut names: Vec<(String, (f32, String))> = names.into_iter().collect();
        names.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(b.0.len().cmp(&a.0.len())).then(a.0.cmp(&b.0)));
        // Symbol lookups are exact and cheap to predict: a name that resolves to nothing, or to
        // exactly the entities of a call already planned at no lower weight, would add nothing
        // (evidence keeps the best value per entity), so it is not issued.
        let mut planned_hits: Vec<(Vec<u32>, f32)> = Vec::new();
        for (name, (w, reason)) in names.into_iter().take(MAX_SYMBOL_CALLS) {
            if self.opts.mode == Mode::Adaptive {
                let probe: Vec<u32> = tools::symbol(self.ix, &name).iter().map(|h| h.entity).collect();
                if probe.is_empty() || planned_hits.iter().any(|(ids, pw)| *ids == probe && *pw >= w) {
                    *skipped += 1;
                    continue;
                }
                planned_hits.push((probe, w));
            }
            plan.push(Planned { call: Call::Symbol { name }, weight: w, reason, frame: false });
        }
        files.sort_by_key(|f| (f.0, f.1));
        files.dedup_by_key(|f| (f.0, f.1));
        for (file, line, frame, reason) in files.into_iter().take(MAX_FILE_CALLS) {
            plan.push(Planned { call: Call::Outline { file, line }, weight: 1.0, reason, frame });
        }
        for p in patterns.into_iter().take(MAX_GREP_CALLS) {
            let reason = format!("contains the text “{}”", short(&p, 40));
            plan.push(Planned { call: Call::Grep { pattern: p }, weight: 1.0, reason, frame: false });
        }
        plan
    }

    /// Files matching a path from the issue: exact, or by suffix (tracebacks carry absolute
    /// paths from another machine: `/usr/lib/python3/site-packages/requests/models.py`).
    fn resolve_path(&self, p: &str) -> Vec<u32> {
        let p = p.replace('\\', "/");
        let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        for start in 0..parts.len() {
            let suffix = parts[start..].join("/");
            let hits = self.ix.symbols.files_ending_with(&suffix);
            if !hits.is_empty() {
                // A bare file name matching many files says little.
                if parts.len() - start == 1 && hits.len() > 3 {
                    return Vec::new();
                }
                return hits.into_iter().take(3).collect();
            }
        }
        Vec::new()
    }

    /// Later turns: expand around the leading candidates; breadth follows confidence.
    fn plan_turn(&mut self, turn: u32) -> (Vec<Planned>, u32) {
        let ranked = self.ranked_functions();
        if ranked.is_empty() {
            return (Vec::new(), 0);
        }
        let s1 = ranked[0].1;
        let s2 = ranked.get(1).map(|r| r.1).unwrap_or(0.0);
        let confidence = if s1 > 0.0 { (s1 - s2) / s1 } else { 0.0 };
        let breadth = match self.opts.mode {
            Mode::Fixed => 5,
            // Wide while unsure, narrow once one candidate stands out; narrower each turn.
            _ => {
                let base: usize = if confidence > CONFIDENT {
                    1
                } else if confidence > 0.15 {
                    2
                } else {
                    4
                };
                (base + 2).saturating_sub(turn as usize).max(1)
            }
        };
        let mut plan = Vec::new();
        let mut skipped = 0u32;
        for &(leader, score) in ranked.iter().take(breadth) {
            if self.opts.mode == Mode::Adaptive && !self.expanded.insert(leader) {
                continue;
            }
            let strength = (score / s1).clamp(0.0, 1.0);
            let short_name = self.ix.entity(leader).qual.clone();
            let mut rels = vec![
                (Relation::CalledBy, format!("called by `{short_name}`, a leading candidate")),
                (Relation::Calls, format!("calls `{short_name}`, a leading candidate")),
                (Relation::ContainedBy, format!("contains `{short_name}`, a leading candidate")),
                (Relation::Overrides, format!("same method name as `{short_name}` in another type")),
            ];
            let e = self.ix.entity(leader);
            if matches!(e.kind, Kind::Class | Kind::Struct | Kind::Enum | Kind::Trait) {
                rels.push((Relation::Contains, format!("member of `{short_name}`, a leading candidate")));
                rels.push((
                    Relation::InheritedBy,
                    format!("subclass of `{short_name}`, a leading candidate"),
                ));
            }
            for (rel, reason) in rels {
                let call = Call::Graph { entity: leader, relation: rel };
                if self.opts.mode == Mode::Adaptive {
                    if self.issued.contains(&call) {
                        skipped += 1;
                        continue;
                    }
                    // Graph calls are cheap to predict exactly: skip those that would return
                    // only entities already seen.
                    let predicted = tools::graph(self.ix, leader, rel);
                    if predicted.is_empty() || predicted.iter().all(|h| self.seen.contains(&h.entity)) {
                        skipped += 1;
                        continue;
                    }
                }
                // The called-by/calls reasons read from the neighbour's side.
                let reason = match rel {
                    Relation::CalledBy => reason.replace("called by", "calls"),
                    Relation::Calls => reason.replace("calls", "called by"),
                    _ => reason,
                };
                plan.push(Planned { call, weight: strength * rel_weight(rel), reason, frame: false });
            }
        }
        if self.opts.mode == Mode::Adaptive && turn == 2 && confidence <= CONFIDENT {
            // Not sure yet: ask the lexical index again with the words the leaders are made
            // of (pseudo-relevance feedback), once.
            let extra = self.feedback_terms(&ranked);
            if extra.is_empty() {
                skipped += 1;
            } else {
                plan.push(Planned {
                    call: Call::Lexical { query: issue_head(self.issue), extra },
                    weight: REQUERY_WEIGHT,
                    reason: String::new(),
                    frame: false,
                });
            }
        }
        if self.opts.mode == Mode::Fixed {
            // Every tool every turn: re-ask lexical and semantic with the leaders' names added.
            let names: Vec<String> =
                ranked.iter().take(5).map(|r| self.ix.entity(r.0).name.clone()).collect();
            let q = names.join(" ");
            plan.push(Planned {
                call: Call::Lexical { query: issue_head(self.issue), extra: text::terms(&q).join(" ") },
                weight: REQUERY_WEIGHT,
                reason: String::new(),
                frame: false,
            });
            if self.dense.is_some() {
                plan.push(Planned {
                    call: Call::Semantic { query: q },
                    weight: 0.5,
                    reason: String::new(),
                    frame: false,
                });
            }
        }
        let room = self.opts.max_calls.saturating_sub(self.trace.calls) as usize;
        plan.truncate(room);
        (plan, skipped)
    }

    /// Terms learned from what was found: the index terms that weigh most in the leading
    /// functions' documents (tf saturation times idf, weighted by the leader's score) and are
    /// not in the issue, space-separated; empty when there are none.
    fn feedback_terms(&self, ranked: &[(u32, f32)]) -> String {
        let Some(&(_, s1)) = ranked.first() else { return String::new() };
        let in_query: FxHashSet<&str> = self.query_terms.iter().map(|(t, _)| t.as_str()).collect();
        let n_docs = self.ix.lexical.n_docs();
        let mut weight: FxHashMap<&str, f32> = FxHashMap::default();
        for &(id, score) in ranked.iter().take(REQUERY_LEADERS) {
            let l = self.ix.loc(id);
            let strength = (score / s1.max(1e-6)).clamp(0.0, 1.0);
            for (t, tf) in &self.ix.files[l.file as usize].unit.docs[l.local as usize] {
                if t.len() < 3 || in_query.contains(t.as_str()) {
                    continue;
                }
                let idf = locus_index::bm25::idf(n_docs, self.ix.lexical.df(t));
                if idf < REQUERY_MIN_IDF {
                    continue;
                }
                let tf = *tf as f32;
                *weight.entry(t.as_str()).or_insert(0.0) += strength * tf / (tf + 1.2) * idf;
            }
        }
        let mut terms: Vec<(&str, f32)> = weight.into_iter().collect();
        terms.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        terms.iter().take(REQUERY_TERMS).map(|t| t.0).collect::<Vec<_>>().join(" ")
    }

    fn run_turn(&mut self, plan: Vec<Planned>) -> Result<(), Cancelled> {
        self.check_cancel()?;
        let t = Instant::now();
        let ix = self.ix;
        let dense = self.dense;
        let cancel = self.cancel;
        let query_terms = &self.query_terms;
        let results: Vec<(Vec<Hit>, f64)> = plan
            .par_iter()
            .map(|p| {
                if cancel.load(Ordering::Relaxed) {
                    return (Vec::new(), 0.0);
                }
                let t = Instant::now();
                let hits = match &p.call {
                    Call::Symbol { name } => tools::symbol(ix, name),
                    Call::Lexical { extra, .. } if extra.is_empty() => {
                        tools::lexical(ix, query_terms, |_| true)
                    }
                    Call::Lexical { extra, .. } => {
                        // `extra` holds index terms (already split and stemmed), added at
                        // half weight.
                        let mut q = query_terms.clone();
                        q.extend(
                            extra
                                .split(' ')
                                .filter(|t| !t.is_empty())
                                .map(|t| (t.to_string(), REQUERY_WEIGHT)),
                        );
                        tools::lexical(ix, &q, |_| true)
                    }
                    Call::Semantic { query } => dense.map(|d| tools::semantic(d, query)).unwrap_or_default(),
                    Call::Grep { pattern } => tools::grep(ix, pattern),
                    Call::Graph { entity, relation } => tools::graph(ix, *entity, *relation),
                    Call::Outline { file, line } => tools::outline(ix, *file, *line),
                };
                (hits, t.elapsed().as_secs_f64() * 1000.0)
            })
            .collect();
        self.check_cancel()?;
        let mut calls = Vec::with_capacity(plan.len());
        for (p, (hits, ms)) in plan.into_iter().zip(results) {
            let new = hits.iter().filter(|h| !self.seen.contains(&h.entity)).count() as u32;
            let returned = hits.len() as u32;
            let g = if returned == 0 { 0.0 } else { new as f32 / returned as f32 };
            if g == 0.0 {
                self.trace.redundant_calls += 1;
            }
            self.g_sum += g;
            self.trace.calls += 1;
            *self.trace.ms_by_tool.entry(p.call.tool()).or_insert(0.0) += ms;
            calls.push(CallTrace {
                call: p.call.describe(self.ix),
                tool: p.call.tool(),
                returned,
                new,
                efficiency: g,
                ms,
            });
            self.absorb(&p, &hits);
            self.issued.insert(p.call);
        }
        self.trace.turns.push(TurnTrace { calls, skipped: 0, ms: t.elapsed().as_secs_f64() * 1000.0 });
        Ok(())
    }

    fn absorb(&mut self, p: &Planned, hits: &[Hit]) {
        // A name shared by many entities is weaker evidence for each of them.
        let ambiguity = match &p.call {
            Call::Symbol { .. } => 1.0 + (hits.len().max(1) as f32).ln() * 0.5,
            _ => 1.0,
        };
        let bit = 1u8 << TOOL_BITS.iter().position(|t| *t == p.call.tool()).unwrap_or(0);
        for h in hits {
            self.seen.insert(h.entity);
            let e = self.ev.entry(h.entity).or_default();
            e.tools |= bit;
            let v = (h.score * p.weight / ambiguity).clamp(0.0, 1.0);
            match &p.call {
                Call::Lexical { .. } => e.lexical = e.lexical.max(v),
                Call::Semantic { .. } => e.semantic = e.semantic.max(v),
                Call::Symbol { .. } => {
                    if v > e.symbol {
                        e.symbol = v;
                        e.symbol_reason = p.reason.clone();
                    }
                }
                Call::Grep { .. } => {
                    if v > e.grep {
                        e.grep = v;
                        e.grep_reason = p.reason.clone();
                    }
                }
                Call::Graph { .. } => {
                    if v > e.graph {
                        e.graph = v;
                        e.graph_reason = p.reason.clone();
                    }
                }
                Call::Outline { .. } => {
                    if p.frame {
                        if v > e.frame {
                            e.frame = v;
                            e.frame_reason = p.reason.clone();
                        }
                    } else if v > e.path {
                        e.path = v;
                        e.path_reason = p.reason.clone();
                    }
                }
            }
        }
    }

    fn entity_score(&self, id: u32, ev: &Evidence) -> f32 {
        let mut s = ev.score();
        if self.ix.is_test(id) {
            s *= TEST_FACTOR;
        }
        s
    }

    /// Function-level candidates, best first (deterministic ties).
    fn ranked_functions(&self) -> Vec<(u32, f32)> {
        let mut v: Vec<(u32, f32)> = self
            .ev
            .iter()
            .filter(|(&id, _)| self.ix.entity(id).kind.is_function_level())
            .map(|(&id, ev)| (id, self.entity_score(id, ev)))
            .filter(|r| r.1 > 0.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    fn top_functions(&self, k: usize) -> Vec<u32> {
        self.ranked_functions().into_iter().take(k).map(|r| r.0).collect()
    }

    /// Files: the best entity of the file, plus a share of the next two.
    fn ranked_files(&self) -> Vec<(u32, f32, u32)> {
        let mut per_file: FxHashMap<u32, Vec<(f32, u32)>> = FxHashMap::default();
        for (&id, ev) in &self.ev {
            let s = self.entity_score(id, ev);
            if s > 0.0 {
                per_file.entry(self.ix.file_id(id)).or_default().push((s, id));
            }
        }
        let mut v: Vec<(u32, f32, u32)> = per_file
            .into_iter()
            .map(|(f, mut ss)| {
                ss.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                let score = ss[0].0 + FILE_SECOND_SHARE * ss.iter().skip(1).take(2).map(|x| x.0).sum::<f32>();
                (f, score, ss[0].1)
            })
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    fn lexical_terms(&self, id: u32) -> String {
        let l = self.ix.loc(id);
        let doc = &self.ix.files[l.file as usize].unit.docs[l.local as usize];
        let mut matched: Vec<(f32, &str)> = self
            .query_terms
            .iter()
            .filter(|(t, _)| doc.binary_search_by(|(d, _)| d.as_str().cmp(t)).is_ok())
            .map(|(t, w)| {
                (w * locus_index::bm25::idf(self.ix.lexical.n_docs(), self.ix.lexical.df(t)), t.as_str())
            })
            .collect();
        matched.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        matched.iter().take(4).map(|m| m.1).collect::<Vec<_>>().join(", ")
    }

    /// One feature row per candidate. `lexical` is the whole issue's BM25 score of the entity
    /// relative to the best entity's, also for candidates the lexical tool did not return (its
    /// top [`tools::MAX_HITS`] only), so every row measures the same thing.
    fn features(&self, ranked: &[(u32, f32)], files: &[(u32, f32, u32)]) -> Vec<[f32; N_FEATURES]> {
        let file_rank: FxHashMap<u32, usize> = files.iter().enumerate().map(|(i, f)| (f.0, i)).collect();
        let pool: FxHashSet<u32> = ranked.iter().map(|r| r.0).collect();
        let (found, top) =
            self.ix.lexical.search_with_top(&self.query_terms, pool.len(), |d| pool.contains(&d));
        let lexical: FxHashMap<u32, f32> = found.into_iter().map(|(id, s)| (id, s / top.max(1e-6))).collect();
        let none = Evidence::default();
        ranked
            .iter()
            .enumerate()
            .map(|(rank, &(id, score))| {
                let ev = self.ev.get(&id).unwrap_or(&none);
                let e = self.ix.entity(id);
                let fid = self.ix.file_id(id);
                let fev = self.ev.get(&fid);
                let kind = match e.kind {
                    Kind::Function => 0.0,
                    Kind::Method => 1.0,
                    Kind::Class => 2.0,
                    Kind::Struct | Kind::Enum | Kind::Trait | Kind::Union => 3.0,
                    _ => 4.0,
                };
                let lines = (e.span.end.line - e.span.start.line + 1) as f32;
                let fr = file_rank.get(&fid).copied().unwrap_or(files.len()) as f32;
                [
                    ev.lexical.max(lexical.get(&id).copied().unwrap_or(0.0)),
                    ev.semantic,
                    ev.symbol,
                    ev.frame,
                    ev.path,
                    ev.grep,
                    ev.graph,
                    ev.tools.count_ones() as f32,
                    if self.ix.is_test(id) { 1.0 } else { 0.0 },
                    kind,
                    lines.ln(),
                    score,
                    (1.0 + rank as f32).ln(),
                    (1.0 + fr).ln(),
                    fev.map(|f| f.path.max(f.frame)).unwrap_or(0.0),
                    fev.map(|f| f.lexical).unwrap_or(0.0),
                ]
            })
            .collect()
    }

    /// The [`CANDIDATE_FEATURE_NAMES`] of the pooled functions `ids`, in order.
    fn candidate_features(&self, ids: &[u32]) -> Vec<[f32; N_CANDIDATE_FEATURES]> {
        let cosine = match self.dense {
            Some(d) => d.similarity(&semantic_query(self.issue), ids),
            None => vec![0.0; ids.len()],
        };
        let best = cosine.iter().copied().fold(0.0, f32::max).max(1e-6);
        cosine.into_iter().map(|c| [(c / best).max(0.0)]).collect()
    }

    /// The final function ranking: the fusion's, re-scored by the learned model if present;
    /// the candidates' feature rows (in the final order) when features or a model are wanted;
    /// and the model's own score of each candidate it saw.
    fn final_functions(&self, files: &[(u32, f32, u32)]) -> FinalFunctions {
        let funcs = self.ranked_functions();
        let want_features = self.opts.collect_features || self.opts.scorer.is_some();
        if !want_features {
            return FinalFunctions {
                ranked: funcs,
                rows: Vec::new(),
                learned: FxHashMap::default(),
                tail: false,
            };
        }
        let (pool, tail) = self.candidate_pool(&funcs, files);
        let rows = self.features(&pool, files);
        let learned = self.opts.scorer.as_ref().map(|s| s.score(&rows)).filter(|l| l.len() == pool.len());
        let Some(learned) = learned else {
            let rows = pool.iter().map(|p| p.0).zip(rows).collect();
            return FinalFunctions { ranked: funcs, rows, learned: FxHashMap::default(), tail: false };
        };
        let by_id = pool.iter().map(|p| p.0).zip(learned.iter().copied()).collect();
        let ids: Vec<u32> = pool.iter().map(|p| p.0).collect();
        let tail_scores = match (self.dense, &self.opts.scorer) {
            (Some(_), Some(s)) if s.has_tail() => {
                s.score_tail(&rows, &self.candidate_features(&ids)).filter(|t| t.len() == pool.len())
            }
            _ => None,
        };
        let mut head: Vec<(u32, f32, [f32; N_FEATURES])> =
            pool.iter().zip(learned).zip(rows).map(|((p, s), r)| (p.0, s, r)).collect();
        // Stable: equal scores (rows with equal features, common among the pooled functions
        // no tool returned) keep the pool's order, the fusion's, as in train_ranker.py.
        let mut order: Vec<usize> = (0..head.len()).collect();
        order.sort_by(|&a, &b| head[b].1.total_cmp(&head[a].1));
        let tailed = tail_scores.is_some();
        if let Some(t) = tail_scores {
            // The model's first KEEP_TOP stay; the rest follow in the tail model's order (ties
            // in pool order, as in train_tail_ranker.py), their scores the tail model's scaled
            // to start just below the last one kept.
            let keep = order.len().min(KEEP_TOP);
            let mut rest = order.split_off(keep);
            rest.sort_by(|&a, &b| t[b].total_cmp(&t[a]).then(a.cmp(&b)));
            let floor = order.last().map(|&i| head[i].1).unwrap_or(1.0) * 0.99;
            let top = rest.first().map(|&i| t[i]).unwrap_or(1.0).max(1e-6);
            for &i in &rest {
                head[i].1 = floor * (t[i] / top).max(0.0);
            }
            order.extend(rest);
        }
        let head: Vec<(u32, f32, [f32; N_FEATURES])> = order.into_iter().map(|i| head[i]).collect();
        let ranked = rescored(head.iter().map(|h| (h.0, h.1)).collect(), tail);
        let rows = head.into_iter().map(|h| (h.0, h.2)).collect();
        FinalFunctions { ranked, rows, learned: by_id, tail: tailed }
    }

    /// The files the learned file model scores, as indices into the fusion's file ranking:
    /// its first [`FILE_POOL`], then the files of the function model's leading functions.
    fn file_pool(&self, files: &[(u32, f32, u32)], ranked_functions: &[(u32, f32)]) -> Vec<usize> {
        let mut pool: Vec<usize> = (0..files.len().min(FILE_POOL)).collect();
        let index: FxHashMap<u32, usize> = files.iter().enumerate().map(|(i, f)| (f.0, i)).collect();
        for &(id, _) in ranked_functions.iter().take(FILE_POOL_FUNCTIONS) {
            if let Some(&i) = index.get(&self.ix.file_id(id)) {
                if !pool.contains(&i) {
                    pool.push(i);
                }
            }
        }
        pool
    }

    /// One feature row per pooled file ([`FILE_FEATURE_NAMES`]). `file_lexical` is the whole
    /// issue's BM25 score of the file's own document relative to the best entity's, as the
    /// function rows' `lexical`; the `fn_*` values summarise `rows`, the function candidates.
    fn file_features(
        &self,
        files: &[(u32, f32, u32)],
        pool: &[usize],
        rows: &[(u32, [f32; N_FEATURES])],
        learned: &FxHashMap<u32, f32>,
    ) -> Vec<[f32; N_FILE_FEATURES]> {
        let ids: FxHashSet<u32> = pool.iter().map(|&i| files[i].0).collect();
        let (found, top) =
            self.ix.lexical.search_with_top(&self.query_terms, ids.len(), |d| ids.contains(&d));
        let lexical: FxHashMap<u32, f32> = found.into_iter().map(|(id, s)| (id, s / top.max(1e-6))).collect();
        // Per file: max lexical, semantic, symbol (function row columns 0, 1, 2 of
        // FEATURE_NAMES); best and second learned score; count.
        let mut agg: FxHashMap<u32, [f32; 6]> = FxHashMap::default();
        for (id, r) in rows {
            let a = agg.entry(self.ix.file_id(*id)).or_insert([0.0; 6]);
            a[0] = a[0].max(r[0]);
            a[1] = a[1].max(r[1]);
            a[2] = a[2].max(r[2]);
            let l = learned.get(id).copied().unwrap_or(0.0);
            if l > a[3] {
                a[4] = a[3];
                a[3] = l;
            } else if l > a[4] {
                a[4] = l;
            }
            a[5] += 1.0;
        }
        let top_file = files.first().map(|f| f.1).unwrap_or(1.0).max(1e-6);
        let none = Evidence::default();
        pool.iter()
            .map(|&i| {
                let (fid, score, _) = files[i];
                let ev = self.ev.get(&fid).unwrap_or(&none);
                let a = agg.get(&fid).copied().unwrap_or([0.0; 6]);
                [
                    score / top_file,
                    (1.0 + i as f32).ln(),
                    ev.path.max(ev.frame),
                    ev.lexical.max(lexical.get(&fid).copied().unwrap_or(0.0)),
                    ev.semantic,
                    if self.ix.is_test(fid) { 1.0 } else { 0.0 },
                    a[0],
                    a[1],
                    a[2],
                    a[3],
                    a[4],
                    (1.0 + a[5]).ln(),
                ]
            })
            .collect()
    }

    /// The final file ranking: the fusion's, with its pool re-scored by the learned file model
    /// when there is one; the pool's feature rows when features are wanted; and whether the
    /// file model ranked.
    #[allow(clippy::type_complexity)]
    fn final_files(
        &self,
        files: &[(u32, f32, u32)],
        fns: &FinalFunctions,
    ) -> (Vec<(u32, f32, u32)>, Vec<(u32, [f32; N_FILE_FEATURES])>, bool) {
        let want = self.opts.collect_features || (self.opts.scorer.is_some() && !fns.learned.is_empty());
        if !want || files.is_empty() {
            return (files.to_vec(), Vec::new(), false);
        }
        let pool = self.file_pool(files, &fns.ranked);
        let rows = self.file_features(files, &pool, &fns.rows, &fns.learned);
        let learned = match &self.opts.scorer {
            Some(s) if !fns.learned.is_empty() => s.score_files(&rows).filter(|l| l.len() == pool.len()),
            _ => None,
        };
        let rows_out = pool.iter().map(|&i| files[i].0).zip(rows).collect();
        let Some(learned) = learned else { return (files.to_vec(), rows_out, false) };
        // A file's representative entity: its best function by the model, else the fusion's.
        let mut best_fn: FxHashMap<u32, (f32, u32)> = FxHashMap::default();
        for (&id, &l) in &fns.learned {
            let e = best_fn.entry(self.ix.file_id(id)).or_insert((l, id));
            if l > e.0 || (l == e.0 && id < e.1) {
                *e = (l, id);
            }
        }
        let in_pool: FxHashSet<usize> = pool.iter().copied().collect();
        let mut head: Vec<(u32, f32)> = pool.iter().zip(learned).map(|(&i, s)| (files[i].0, s)).collect();
        // Stable: ties keep the pool's (the fusion's) order, as in train_file_ranker.py.
        head.sort_by(|a, b| b.1.total_cmp(&a.1));
        let tail: Vec<(u32, f32)> =
            files.iter().enumerate().filter(|(i, _)| !in_pool.contains(i)).map(|(_, f)| (f.0, f.1)).collect();
        let fusion_best: FxHashMap<u32, u32> = files.iter().map(|f| (f.0, f.2)).collect();
        let ranked = rescored(head, tail)
            .into_iter()
            .map(|(fid, s)| {
                let best = match best_fn.get(&fid) {
                    Some(&(_, id)) if self.ev.contains_key(&id) => id,
                    _ => fusion_best[&fid],
                };
                (fid, s, best)
            })
            .collect();
        (ranked, rows_out, true)
    }

    /// The candidates the learned scorer sees: the fusion's top [`RERANK_DEPTH`], then the
    /// other functions of the `Options::pool_files` leading files (fused score 0, file by file
    /// in source order), at most [`POOL_MAX`] in all (scaled with a deeper pool); and the rest of
    /// the fusion's ranking.
    #[allow(clippy::type_complexity)]
    fn candidate_pool(
        &self,
        funcs: &[(u32, f32)],
        files: &[(u32, f32, u32)],
    ) -> (Vec<(u32, f32)>, Vec<(u32, f32)>) {
        let depth = funcs.len().min(RERANK_DEPTH);
        let mut pool: Vec<(u32, f32)> = funcs[..depth].to_vec();
        let mut in_pool: FxHashSet<u32> = pool.iter().map(|f| f.0).collect();
        let pool_files = self.opts.pool_files;
        let pool_max = (POOL_MAX * pool_files / POOL_FILES).max(POOL_MAX);
        'files: for &(fid, _, _) in files.iter().take(pool_files) {
            let fi = self.ix.loc(fid).file as usize;
            for id in self.ix.entities_of_file(fi) {
                if pool.len() >= pool_max {
                    break 'files;
                }
                if self.ix.entity(id).kind.is_function_level() && in_pool.insert(id) {
                    pool.push((id, 0.0));
                }
            }
        }
        let tail = funcs[depth..].iter().copied().filter(|f| !in_pool.contains(&f.0)).collect();
        (pool, tail)
    }

    fn finish(self) -> Localization {
        let n = self.opts.max_results.max(1);
        let fusion_files = self.ranked_files();
        let fns = self.final_functions(&fusion_files);
        let (files_r, file_rows, files_learned) = self.final_files(&fusion_files, &fns);
        let ranking = match (fns.learned.is_empty(), fns.tail, files_learned) {
            (true, _, _) => "fusion",
            (false, false, false) => "model: functions",
            (false, false, true) => "model: functions and files",
            (false, true, false) => "model: functions with tail",
            (false, true, true) => "model: functions with tail, and files",
        };
        let FinalFunctions { ranked: funcs, rows, .. } = fns;
        let top_f = funcs.first().map(|f| f.1).unwrap_or(1.0).max(1e-6);
        let functions: Vec<Ranked> = funcs
            .iter()
            .take(n)
            .map(|&(id, s)| {
                let e = self.ix.entity(id);
                Ranked {
                    id,
                    name: self.ix.full_name(id),
                    path: self.ix.path_of(id).to_string(),
                    kind: e.kind,
                    span: e.span,
                    score: s / top_f,
                    reason: match self.ev.get(&id) {
                        Some(ev) => ev.reason(&self.lexical_terms(id)),
                        // Only the learned model puts a candidate no tool returned this high.
                        None => match self.lexical_terms(id) {
                            t if t.is_empty() => format!("in the leading file `{}`", self.ix.path_of(id)),
                            t => format!(
                                "in the leading file `{}`; matches the issue's words: {t}",
                                self.ix.path_of(id)
                            ),
                        },
                    },
                }
            })
            .collect();
        let top_file = files_r.first().map(|f| f.1).unwrap_or(1.0).max(1e-6);
        let files: Vec<Ranked> = files_r
            .iter()
            .take(n)
            .map(|&(fid, s, best)| {
                let e = self.ix.entity(fid);
                let reason = if best == fid {
                    self.ev[&fid].reason(&self.lexical_terms(fid))
                } else {
                    let be = self.ix.entity(best);
                    format!("holds `{}`: {}", be.qual, self.ev[&best].reason(&self.lexical_terms(best)))
                };
                Ranked {
                    id: fid,
                    name: self.ix.full_name(fid),
                    path: self.ix.path_of(fid).to_string(),
                    kind: e.kind,
                    span: e.span,
                    score: s / top_file,
                    reason,
                }
            })
            .collect();
        let predicted_functions = cut(&functions, PRED_FUNCTION_RATIO, PRED_FUNCTION_MAX);
        let predicted_files = cut(&files, PRED_FILE_RATIO, PRED_FILE_MAX);
        let (features, candidate_features, file_features) = if self.opts.collect_features {
            let ids: Vec<u32> = rows.iter().map(|r| r.0).collect();
            (
                rows.into_iter().map(|(id, r)| (self.ix.full_name(id), r)).collect(),
                self.candidate_features(&ids),
                file_rows.into_iter().map(|(id, r)| (self.ix.path_of(id).to_string(), r)).collect(),
            )
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        let mut trace = self.trace;
        trace.ranking = ranking;
        Localization {
            files,
            functions,
            predicted_files,
            predicted_functions,
            trace,
            features,
            candidate_features,
            file_features,
        }
    }
}

/// A ranking (functions or files) in a learned model's order: `head` (scored by the model,
/// best first) then `tail` (the rest of the fusion's ranking, kept below). Learned scores may be
/// negative (log-odds): they are shifted so the list stays positive.
fn rescored(head: Vec<(u32, f32)>, tail: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
    let min = head.iter().map(|h| h.1).fold(f32::INFINITY, f32::min);
    let shift = if min <= 0.0 { -min + 1e-3 } else { 0.0 };
    let tail_scale = head.last().map(|h| h.1 + shift).unwrap_or(1.0);
    head.into_iter()
        .map(|(id, s)| (id, s + shift))
        .chain(tail.into_iter().map(|(id, s)| (id, s.min(tail_scale * 0.99))))
        .collect()
}

/// What [`Search::final_functions`] decided.
struct FinalFunctions {
    ranked: Vec<(u32, f32)>,
    rows: Vec<(u32, [f32; N_FEATURES])>,
    /// The function model's score per candidate it saw (empty without a model).
    learned: FxHashMap<u32, f32>,
    /// Whether the tail model ordered the candidates after the first [`KEEP_TOP`].
    tail: bool,
}

/// A ranking whose leader is ahead of the second by more than this share of its score has
/// found its ground: later turns expand the leader alone, and no re-query is made.
const CONFIDENT: f32 = 0.35;

/// The re-query with terms learned from the leaders (adaptive, first expansion turn): issued
/// only while no leader stands out (confidence at most [`CONFIDENT`]), from the top [`REQUERY_LEADERS`] functions' documents, the [`REQUERY_TERMS`] heaviest terms
/// not in the issue and not near-ubiquitous (idf at least [`REQUERY_MIN_IDF`]), each added to
/// the issue's terms at [`REQUERY_WEIGHT`] (the fixed-breadth ablation's re-query uses the same
/// weight for the leaders' names).
const REQUERY_LEADERS: usize = 3;
const REQUERY_TERMS: usize = 8;
const REQUERY_MIN_IDF: f32 = 2.0;
const REQUERY_WEIGHT: f32 = 0.5;

/// Share of a file's second and third best entity scores added to its best.
const FILE_SECOND_SHARE: f32 = 0.15;
const MAX_SYMBOL_CALLS: usize = 24;
const MAX_FILE_CALLS: usize = 8;
const MAX_GREP_CALLS: usize = 4;
/// Predicted set: items within this ratio of the best, at most this many.
const PRED_FUNCTION_RATIO: f32 = 0.8;
const PRED_FUNCTION_MAX: usize = 3;
const PRED_FILE_RATIO: f32 = 0.85;
const PRED_FILE_MAX: usize = 2;

fn cut(items: &[Ranked], ratio: f32, max: usize) -> Vec<String> {
    items.iter().take(max).filter(|r| r.score >= ratio).map(|r| r.name.clone()).collect()
}

fn rel_weight(rel: Relation) -> f32 {
    match rel {
        Relation::Calls | Relation::CalledBy => 0.6,
        Relation::ContainedBy | Relation::Contains => 0.4,
        Relation::Overrides => 0.35,
        Relation::InheritedBy | Relation::Inherits => 0.4,
        Relation::Imports | Relation::ImportedBy => 0.2,
    }
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
