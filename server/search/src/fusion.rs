//! The fusion: what the tool calls returned, accumulated per entity as [`Evidence`], turned into
//! the hand-weighted rankings of functions and files, the reasons shown beside each item, and
//! the final [`Localization`] once the re-ranking step has decided the order.

use locus_index::{bm25, EntityId, Index};
use locus_syntax::Kind;
use rustc_hash::FxHashMap;

use crate::localization::{Localization, Ranked, Trace};
use crate::rerank::Reranked;
use crate::tools::{Call, Hit, Semantic};

/// Per-entity evidence accumulated over the search. Each field is the best value any call
/// gave, in 0..=1 before weighting.
#[derive(Clone, Debug, Default)]
pub(crate) struct Evidence {
    pub(crate) lexical: f32,
    pub(crate) semantic: f32,
    pub(crate) symbol: f32,
    pub(crate) frame: f32,
    pub(crate) path: f32,
    pub(crate) grep: f32,
    pub(crate) graph: f32,
    /// One bit per tool that found the entity ([`TOOL_BITS`]).
    pub(crate) tools: u8,
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
/// Share of a file's second and third best entity scores added to its best.
const FILE_SECOND_SHARE: f32 = 0.15;

const TOOL_BITS: [&str; 6] = ["symbol", "lexical", "semantic", "grep", "graph", "outline"];

/// Predicted set: items within this ratio of the best, at most this many (the functions'
/// pair unless the learned model that ranked them records its own: `Scorer::predicted_set`).
const PRED_FUNCTION_RATIO: f32 = 0.8;
const PRED_FUNCTION_MAX: usize = 3;
const PRED_FILE_RATIO: f32 = 0.85;
const PRED_FILE_MAX: usize = 2;

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

/// What a call's hits mean for the entities they name.
pub(crate) struct Finding<'c> {
    pub(crate) call: &'c Call,
    /// Multiplies the tool's hit scores.
    pub(crate) weight: f32,
    /// Reason attached to entities this call finds.
    pub(crate) reason: &'c str,
    /// For outlines: a traceback frame (vs a path named in the issue).
    pub(crate) frame: bool,
}

/// The searched state of one issue on one snapshot: the evidence per entity and the trace. The
/// turns fill it; the re-ranking step and [`Fused::localize`] read it.
pub struct Fused<'a> {
    pub(crate) ix: &'a Index,
    /// The encoder's vectors, when any are ready (never for BM25).
    pub(crate) dense: Option<&'a dyn Semantic>,
    pub(crate) issue: &'a str,
    /// The issue's terms with weights (repeated words count, with diminishing returns).
    pub(crate) query_terms: Vec<(String, f32)>,
    pub(crate) ev: FxHashMap<EntityId, Evidence>,
    pub trace: Trace,
}

impl<'a> Fused<'a> {
    pub(crate) fn new(ix: &'a Index, dense: Option<&'a dyn Semantic>, issue: &'a str, trace: Trace) -> Self {
        Fused { ix, dense, issue, query_terms: query_terms(issue), ev: FxHashMap::default(), trace }
    }

    /// The value a hit leaves as evidence: its score times the call's weight, over the name's
    /// ambiguity for symbol calls ([`symbol_ambiguity`]), in 0..=1.
    pub(crate) fn evidence_value(score: f32, weight: f32, ambiguity: f32) -> f32 {
        (score * weight / ambiguity).clamp(0.0, 1.0)
    }

    /// Folds one call's hits into the evidence.
    pub(crate) fn absorb(&mut self, f: &Finding<'_>, hits: &[Hit]) {
        // A name shared by many entities is weaker evidence for each of them.
        let ambiguity = match f.call {
            Call::Symbol { .. } => symbol_ambiguity(hits.len()),
            _ => 1.0,
        };
        let bit = 1u8 << TOOL_BITS.iter().position(|t| *t == f.call.tool()).unwrap_or(0);
        let keep = |value: &mut f32, reason: &mut String, v: f32| {
            if v > *value {
                *value = v;
                *reason = f.reason.to_string();
            }
        };
        for h in hits {
            let e = self.ev.entry(h.entity).or_default();
            e.tools |= bit;
            let v = Fused::evidence_value(h.score, f.weight, ambiguity);
            match f.call {
                Call::Lexical { .. } => e.lexical = e.lexical.max(v),
                Call::Semantic { .. } => e.semantic = e.semantic.max(v),
                Call::Symbol { .. } => keep(&mut e.symbol, &mut e.symbol_reason, v),
                Call::Grep { .. } => keep(&mut e.grep, &mut e.grep_reason, v),
                Call::Graph { .. } => keep(&mut e.graph, &mut e.graph_reason, v),
                Call::Outline { .. } if f.frame => keep(&mut e.frame, &mut e.frame_reason, v),
                Call::Outline { .. } => keep(&mut e.path, &mut e.path_reason, v),
            }
        }
    }

    pub(crate) fn entity_score(&self, id: EntityId, ev: &Evidence) -> f32 {
        let mut s = ev.score();
        if self.ix.is_test(id) {
            s *= TEST_FACTOR;
        }
        s
    }

    /// Function-level candidates, best first (deterministic ties).
    pub fn ranked_functions(&self) -> Vec<(EntityId, f32)> {
        let mut v: Vec<(EntityId, f32)> = self
            .ev
            .iter()
            .filter(|(&id, _)| self.ix.entity(id).kind.is_item())
            .map(|(&id, ev)| (id, self.entity_score(id, ev)))
            .filter(|r| r.1 > 0.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    pub(crate) fn top_functions(&self, k: usize) -> Vec<EntityId> {
        self.ranked_functions().into_iter().take(k).map(|r| r.0).collect()
    }

    /// Files: the best entity of the file, plus a share of the next two. Each entry is
    /// (file entity, score, the entity that represents it).
    pub fn ranked_files(&self) -> Vec<(EntityId, f32, EntityId)> {
        let mut per_file: FxHashMap<EntityId, Vec<(f32, EntityId)>> = FxHashMap::default();
        for (&id, ev) in &self.ev {
            let s = self.entity_score(id, ev);
            if s > 0.0 {
                per_file.entry(self.ix.file_entity(id)).or_default().push((s, id));
            }
        }
        let mut v: Vec<(EntityId, f32, EntityId)> = per_file
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

    /// The issue's heaviest terms (by weight × idf) that occur in the entity's document.
    fn lexical_terms(&self, id: EntityId) -> String {
        let l = self.ix.loc(id);
        let doc = &self.ix.files[l.file.index()].unit.docs[l.local as usize];
        let mut matched: Vec<(f32, &str)> = self
            .query_terms
            .iter()
            .filter(|(t, _)| doc.contains(t))
            .map(|(t, w)| (w * bm25::idf(self.ix.lexical.n_docs(), self.ix.lexical.df(t)), t.as_str()))
            .collect();
        matched.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        matched.iter().take(4).map(|m| m.1).collect::<Vec<_>>().join(", ")
    }

    fn function_reason(&self, id: EntityId) -> String {
        match self.ev.get(&id) {
            Some(ev) => ev.reason(&self.lexical_terms(id)),
            // Only the learned model puts a candidate no tool returned this high.
            None => match self.lexical_terms(id) {
                t if t.is_empty() => format!("in the leading file `{}`", self.ix.path_of(id)),
                t => format!("in the leading file `{}`; matches the issue's words: {t}", self.ix.path_of(id)),
            },
        }
    }

    fn file_reason(&self, file: EntityId, best: EntityId) -> String {
        if best == file {
            self.ev[&file].reason(&self.lexical_terms(file))
        } else {
            let be = self.ix.entity(best);
            format!("holds `{}`: {}", be.qual, self.ev[&best].reason(&self.lexical_terms(best)))
        }
    }

    fn ranked(&self, id: EntityId, score: f32, reason: String) -> Ranked {
        let e = self.ix.entity(id);
        Ranked {
            id,
            name: self.ix.full_name(id),
            path: self.ix.path_of(id).to_string(),
            kind: e.kind,
            span: e.span,
            score,
            reason,
        }
    }

    /// The answer: the first `max_results` of the final orders with scores relative to the
    /// best and a reason each, the predicted sets, the trace, and the feature rows when
    /// `collect_features`.
    pub fn localize(self, order: Reranked, max_results: usize, collect_features: bool) -> Localization {
        let n = max_results.max(1);
        let top_f = order.functions.first().map(|f| f.1).unwrap_or(1.0).max(1e-6);
        let functions: Vec<Ranked> = order
            .functions
            .iter()
            .take(n)
            .map(|&(id, s)| self.ranked(id, s / top_f, self.function_reason(id)))
            .collect();
        let top_file = order.files.first().map(|f| f.1).unwrap_or(1.0).max(1e-6);
        let files: Vec<Ranked> = order
            .files
            .iter()
            .take(n)
            .map(|&(fid, s, best)| self.ranked(fid, s / top_file, self.file_reason(fid, best)))
            .collect();
        let (ratio, most) = order.predicted_set.unwrap_or((PRED_FUNCTION_RATIO, PRED_FUNCTION_MAX));
        let predicted_functions = cut(&functions, ratio, most);
        let predicted_files = cut(&files, PRED_FILE_RATIO, PRED_FILE_MAX);
        let (features, candidate_features, file_features) = if collect_features {
            let ids: Vec<EntityId> = order.rows.iter().map(|r| r.0).collect();
            (
                order.rows.into_iter().map(|(id, r)| (self.ix.full_name(id), r)).collect(),
                crate::features::candidate_features(&self, &ids),
                order.file_rows.into_iter().map(|(id, r)| (self.ix.path_of(id).to_string(), r)).collect(),
            )
        } else {
            (Vec::new(), Vec::new(), Vec::new())
        };
        let (candidate_functions, candidate_files, pool) = match &order.candidates {
            Some((fns, files)) => (
                fns.iter().map(|&id| self.ix.full_name(id)).collect(),
                files.iter().map(|&id| self.ix.path_of(id).to_string()).collect(),
                fns.iter().chain(files).copied().collect(),
            ),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let mut trace = self.trace;
        trace.ranking = order.ranked_by;
        trace.model_not_trained_on = order.untrained_language;
        trace.language_model = order.language_model;
        Localization {
            files,
            functions,
            predicted_files,
            predicted_functions,
            trace,
            features,
            candidate_features,
            file_features,
            candidate_functions,
            candidate_files,
            pool,
        }
    }
}

/// The issue's terms with weights: repeated words count, with diminishing returns.
fn query_terms(issue: &str) -> Vec<(String, f32)> {
    let mut end = issue.len().min(crate::signals::MAX_ISSUE_BYTES);
    while !issue.is_char_boundary(end) {
        end -= 1;
    }
    let mut counts: FxHashMap<String, u32> = FxHashMap::default();
    locus_index::text::for_each_term(&issue[..end], |t| *counts.entry(t.to_string()).or_insert(0) += 1);
    let mut v: Vec<(String, f32)> = counts.into_iter().map(|(t, c)| (t, 1.0 + (c as f32).ln())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn cut(items: &[Ranked], ratio: f32, max: usize) -> Vec<String> {
    items.iter().take(max).filter(|r| r.score >= ratio).map(|r| r.name.clone()).collect()
}

/// A `Kind` in the function model's `kind` column.
pub(crate) fn kind_code(kind: Kind) -> f32 {
    match kind {
        Kind::Function => 0.0,
        Kind::Method => 1.0,
        Kind::Class => 2.0,
        Kind::Struct | Kind::Enum | Kind::Trait | Kind::Union => 3.0,
        _ => 4.0,
    }
}

/// A name shared by `n` entities is weaker evidence for each of them.
pub(crate) fn symbol_ambiguity(n: usize) -> f32 {
    1.0 + (n.max(1) as f32).ln() * 0.5
}
