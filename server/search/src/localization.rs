//! What a search is asked (the mode and budgets) and what it answers: the ranked files and
//! functions with reasons, the predicted sets, the trace of turns and calls, and — for training
//! the models — the candidates' feature rows. Plain data: the front ends convert it.

use locus_index::EntityId;
use locus_syntax::Kind;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::features::{CallFeatures, CandidateFeatures, FileFeatures, FunctionFeatures};
use crate::rerank::POOL_FILES;

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
    /// The encoder alone: nearest entities to the embedding.
    Dense,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "bm25" => Ok(Mode::Bm25),
            "single" | "single-pass" => Ok(Mode::SinglePass),
            "adaptive" | "locus" => Ok(Mode::Adaptive),
            "fixed" => Ok(Mode::Fixed),
            "dense" => Ok(Mode::Dense),
            _ => Err(format!("unknown engine `{s}`; use adaptive, single, fixed, bm25 or dense")),
        }
    }
}

impl Mode {
    /// Whether the learned models re-rank this mode's candidates by default (the baselines —
    /// BM25 and the encoder alone — are measured as they are).
    pub fn learned_by_default(self) -> bool {
        matches!(self, Mode::Adaptive | Mode::SinglePass | Mode::Fixed)
    }
}

/// How a search runs: its mode, its budgets and what it returns.
#[derive(Clone, Debug)]
pub struct Options {
    pub mode: Mode,
    pub max_turns: u32,
    pub max_calls: u32,
    /// Wall-clock budget for the whole search; the current turn finishes, no new one starts.
    pub budget_ms: u64,
    /// Ranked items returned per granularity.
    pub max_results: usize,
    /// Record candidate features in the result (for training the localization models).
    pub collect_features: bool,
    /// Record the candidate pools the learned models see ([`Localization::candidate_functions`],
    /// [`Localization::candidate_files`]): what `locus eval` measures candidate recall on.
    pub collect_candidates: bool,
    /// How many leading files contribute all their functions to the learned scorer's pool
    /// ([`POOL_FILES`] by default). Deeper pools are for feature dumps: the training scripts
    /// can then simulate any shallower pool from one run.
    pub pool_files: usize,
    /// Record every call the policy considered, issued or not, with what it returned or would
    /// have returned ([`Trace::considered`]): the search policy's training data.
    pub collect_calls: bool,
    /// Who decides which calls a turn issues ([`Policy`]).
    pub policy: Policy,
    /// The learned policy's value threshold instead of the one its model was trained with.
    pub call_threshold: Option<f32>,
    /// Whether the learned policy may widen the rankers' candidate pool when its search ends
    /// unsure ([`Trace::pool_widened`]). Off while the encoder's vectors are made on demand
    /// unless [`Options::widen_on_demand`]: every candidate would need one, up to ten times as
    /// many. Off for the rankers' training data (`locus eval --features`): rankers trained on
    /// the widened pools of the learned policy on Lite-available and tokio ranked worse out of
    /// fold (function Acc@10 53.1 → 43.8, the far files' functions outnumbering the rest), while
    /// rankers trained on the standard pool rank the widened one as well as the standard one.
    pub widen_pool: bool,
    /// Widen the pool also while the encoder's vectors are made on demand, embedding every
    /// widened candidate first (`locus eval --widen-on-demand`). Off by default: on
    /// Lite-available it lifted function candidate recall 82.3 → 88.5 % at locate p50 0.2 → 9.4 s
    /// (`docs/benchmarks.md`, session 24).
    pub widen_on_demand: bool,
}

/// Who decides which calls a search issues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Policy {
    /// The hand-set thresholds of `policy.rs`.
    #[default]
    #[serde(rename = "hand")]
    Hand,
    /// The policy model (`models/policy.onnx`): turn 1 asks the whole issue, later turns issue
    /// the candidate calls whose predicted value clears the model's threshold; the hand-set
    /// policy when no model is loaded (the trace says so).
    #[serde(rename = "learned")]
    Learned,
    /// The learned policy's turns with every candidate call issued: its training data.
    #[serde(rename = "explore")]
    Explore,
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "hand" => Ok(Policy::Hand),
            "learned" => Ok(Policy::Learned),
            "explore" => Ok(Policy::Explore),
            _ => Err(format!("unknown policy `{s}` (hand, learned, explore)")),
        }
    }
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Hand => "hand",
            Policy::Learned => "learned",
            Policy::Explore => "explore",
        }
    }
}

/// The search's wall-clock budget by default (the editor's "about a second").
pub const DEFAULT_BUDGET_MS: u64 = 1500;

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Adaptive,
            max_turns: 4,
            max_calls: 64,
            budget_ms: DEFAULT_BUDGET_MS,
            max_results: 20,
            collect_features: false,
            collect_candidates: false,
            pool_files: POOL_FILES,
            collect_calls: false,
            policy: Policy::Hand,
            call_threshold: None,
            widen_pool: true,
            widen_on_demand: false,
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
    /// The entity (for a file, its file entity); serialised as the bare number.
    pub id: EntityId,
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
    /// The learned policy's predicted value of the call, when it chose it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
}

/// A call the learned policy valued and did not issue.
#[derive(Clone, Debug, Serialize)]
pub struct DeclinedCall {
    /// The turn it was considered for (one past the last turn when the search stopped there).
    pub turn: u32,
    pub call: String,
    pub value: Option<f32>,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct TurnTrace {
    pub calls: Vec<CallTrace>,
    /// Calls the policy considered and did not issue: predicted to bring nothing new (hand-set),
    /// valued below the threshold or over the budget (learned).
    pub skipped: u32,
    pub ms: f64,
}

/// One call the policy considered in a turn, issued or not, with its features and what it
/// returned (or, not issued, would have returned): the search policy's training data
/// (`Options::collect_calls`; `locus eval --call-traces`).
#[derive(Clone, Debug, Serialize)]
pub struct ConsideredCall {
    pub turn: u32,
    pub call: String,
    pub tool: &'static str,
    /// The relation of a graph call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<&'static str>,
    /// What the call came from: the signal (`frame`, `path`, `qualified_code`,
    /// `qualified_prose`, `identifier_code`, `identifier_prose`, `message`, `flag`), the
    /// whole `issue`, a `leader` (graph expansion) or `feedback` (the re-query).
    pub source: &'static str,
    pub issued: bool,
    /// Why the hand-set policy did not issue it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declined: Option<&'static str>,
    /// The weight its hits would carry.
    pub weight: f32,
    /// Graph calls: the expanded candidate's rank (1-based) and score relative to the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_rank: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_strength: Option<f32>,
    /// `(s1 - s2) / s1` of the function ranking when the turn was planned (0 in turn 1).
    pub confidence: f32,
    /// Calls issued before this turn, and how many the budget still allowed.
    pub calls_before: u32,
    pub budget_left: u32,
    /// Mean `g_i` of this tool's calls issued in earlier turns (`None`: none yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_gain_before: Option<f32>,
    /// The entities it returned (not issued: would have returned).
    pub returned: Vec<EntityId>,
    /// Those not seen before it: issued, in the turn's fold order (its `g_i`'s numerator);
    /// not issued, not seen by the end of its turn.
    pub new: Vec<EntityId>,
    /// The learned policy's predicted value (the policy model's output), when it decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
    /// The policy model's inputs for this call.
    pub x: CallFeatures,
}

/// Why the search stopped issuing turns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Stop {
    /// The mode runs one turn (BM25, dense, single pass).
    #[default]
    #[serde(rename = "single turn")]
    SingleTurn,
    #[serde(rename = "turn limit")]
    TurnLimit,
    #[serde(rename = "time budget")]
    TimeBudget,
    #[serde(rename = "call budget")]
    CallBudget,
    /// Every call the policy considered was predicted to bring nothing new.
    #[serde(rename = "nothing new to ask")]
    NothingNew,
    /// No candidate to expand.
    #[serde(rename = "no leads to expand")]
    NoLeads,
    /// The leading functions did not change over a turn.
    #[serde(rename = "leading set stable")]
    Stable,
    /// The learned policy valued no candidate call above its threshold.
    #[serde(rename = "no call worth making")]
    LowValue,
}

impl Stop {
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::SingleTurn => "single turn",
            Stop::TurnLimit => "turn limit",
            Stop::TimeBudget => "time budget",
            Stop::CallBudget => "call budget",
            Stop::NothingNew => "nothing new to ask",
            Stop::NoLeads => "no leads to expand",
            Stop::Stable => "leading set stable",
            Stop::LowValue => "no call worth making",
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who ordered the final lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum RankedBy {
    /// The hand-weighted fusion of the tools' evidence (no model, or the model could not run).
    #[default]
    #[serde(rename = "fusion")]
    Fusion,
    #[serde(rename = "model: functions")]
    Functions,
    #[serde(rename = "model: functions and files")]
    FunctionsAndFiles,
    #[serde(rename = "model: functions with tail")]
    FunctionsWithTail,
    #[serde(rename = "model: functions with tail, and files")]
    FunctionsWithTailAndFiles,
}

impl RankedBy {
    pub fn new(functions: bool, tail: bool, files: bool) -> RankedBy {
        match (functions, tail, files) {
            (false, _, _) => RankedBy::Fusion,
            (true, false, false) => RankedBy::Functions,
            (true, false, true) => RankedBy::FunctionsAndFiles,
            (true, true, false) => RankedBy::FunctionsWithTail,
            (true, true, true) => RankedBy::FunctionsWithTailAndFiles,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RankedBy::Fusion => "fusion",
            RankedBy::Functions => "model: functions",
            RankedBy::FunctionsAndFiles => "model: functions and files",
            RankedBy::FunctionsWithTail => "model: functions with tail",
            RankedBy::FunctionsWithTailAndFiles => "model: functions with tail, and files",
        }
    }
}

impl std::fmt::Display for RankedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    pub stop: Stop,
    /// Who chose the calls: `hand`, `learned`, `explore`, or `hand (no policy model)` when the
    /// learned policy was asked for and no model is loaded.
    pub policy: &'static str,
    /// The learned policy's value threshold, when it decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_threshold: Option<f32>,
    /// Who ordered the final lists.
    pub ranking: RankedBy,
    /// The candidates' language when the learned models were not trained on it: they did not
    /// rank, the fusion did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_not_trained_on: Option<locus_syntax::Lang>,
    /// The candidates' language when models trained for it alone ranked them (`models/rust/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_model: Option<locus_syntax::Lang>,
    /// Leading files whose every function the learned scorer saw ([`Options::pool_files`], or
    /// more when the policy widened the pool).
    pub pool_files: usize,
    /// Why the learned policy widened the candidate pool, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_widened: Option<String>,
    /// The calls the learned policy valued and did not issue, best value first within a turn.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub declined: Vec<DeclinedCall>,
    /// Every call considered, turn by turn, when `Options::collect_calls` is set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub considered: Vec<ConsideredCall>,
    /// Vectors made for this search's candidates because the workspace's were not all ready
    /// (set by the engine; `None`: the search used the vectors it found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<OnDemand>,
}

/// The vectors a search had made for its candidates: how many (embedded, or read from the
/// vector cache) and the milliseconds it took, before and during the search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct OnDemand {
    pub vectors: usize,
    pub ms: f64,
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
    pub features: Vec<(String, FunctionFeatures)>,
    /// The [`CandidateFeatures`] of the same candidates, row by row, when
    /// `Options::collect_features` is set.
    pub candidate_features: Vec<CandidateFeatures>,
    /// Features of the file candidates the learned file model scores (the fusion's top
    /// [`crate::rerank::FILE_POOL`] files and the files of the model's leading functions), by
    /// path, when `Options::collect_features` is set.
    pub file_features: Vec<(String, FileFeatures)>,
    /// The functions the learned function model scores (with or without a model: the fusion's
    /// top [`crate::rerank::RERANK_DEPTH`] and the leading files' other functions), full names,
    /// when `Options::collect_candidates` is set. A gold function outside it can only be found
    /// in the fusion's tail.
    pub candidate_functions: Vec<String>,
    /// The files the learned file model scores, when `Options::collect_candidates` is set.
    pub candidate_files: Vec<String>,
    /// The entities of [`Localization::candidate_functions`] and then of
    /// [`Localization::candidate_files`] (when `Options::collect_candidates` is set): what the
    /// engine embeds on demand before a search with partly embedded vectors.
    #[serde(skip)]
    pub pool: Vec<EntityId>,
}
