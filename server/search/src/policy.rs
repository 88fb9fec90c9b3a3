//! The turn policy: which calls a turn issues. Turn 1 is wide — every strong signal of the issue
//! becomes a call; later turns expand around the leading candidates, as few or as many as the
//! ranking's confidence calls for, and skip calls predicted to return only seen entities. The
//! thresholds are named below, each with what it decides.

use locus_index::{bm25, text, EntityId};
use locus_syntax::Kind;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::features::CallFeatures;
use crate::fusion::{symbol_ambiguity, Fused};
use crate::localization::Mode;
use crate::search::{issue_head, semantic_query, Search};
use crate::signals::{self, Signal, SignalKind};
use crate::tools::{self, Call, Hit, Relation};

/// How many leading functions the turn loop compares between turns: the search stops when
/// they did not change ([`crate::localization::Stop::Stable`]).
pub(crate) const LEADERS_COMPARED: usize = 5;

/// Turn-1 caps: a long issue cannot make turn 1 unbounded.
const MAX_SYMBOL_CALLS: usize = 24;
const MAX_FILE_CALLS: usize = 8;
const MAX_GREP_CALLS: usize = 4;

// Turn 1: how much a symbol hit is worth, by where the name was found in the issue.
/// A function named by a traceback frame.
const W_FRAME_NAME: f32 = 0.9;
/// A qualified name (`a.b`, `A::b`) inside code (a fenced block or backticks) / in prose.
const W_QUALIFIED_IN_CODE: f32 = 1.0;
const W_QUALIFIED_IN_PROSE: f32 = 0.85;
/// A bare code-shaped identifier inside code / in prose.
const W_IDENTIFIER_IN_CODE: f32 = 0.8;
const W_IDENTIFIER_IN_PROSE: f32 = 0.6;
/// Shortest literal run of an error message or quoted string worth a grep call.
const MIN_GREP_LITERAL: usize = 8;
/// Shortest flag name grepped for (`dry_run`).
const MIN_FLAG_LITERAL: usize = 5;
/// A path from the issue resolves to at most this many files; a bare file name matching more
/// says too little to outline any.
const MAX_FILES_PER_PATH: usize = 3;

// Later turns: breadth follows confidence, `(s1 - s2) / s1` of the two leading scores.
/// A ranking whose leader is ahead of the second by more than this share of its score has
/// found its ground: later turns expand the leader alone, and no re-query is made.
pub(crate) const CONFIDENT: f32 = 0.35;
/// Leading files whose every function the rankers see when the learned policy ends a search
/// unsure ([`CONFIDENT`]). On the policy's training repositories (the first 350 instances of
/// `scripts/policy/training-ids.txt`) a gold function is among the candidates in 92.1 % of
/// instances with the 3 files of [`crate::rerank::POOL_FILES`], 95.3 % with 12, 96.8 % with 20,
/// 97.4 % with 30 and 97.7 % with 50, Acc@k unchanged at every depth: 30 is where it levels off.
pub(crate) const WIDE_POOL_FILES: usize = 30;
/// Above this (and at most [`CONFIDENT`]) the leader is somewhat ahead: two leaders expanded.
const SOMEWHAT_CONFIDENT: f32 = 0.15;
/// Leaders expanded in turn 2 when confident / somewhat / unsure; one fewer each later turn
/// (at least one).
const BREADTH_CONFIDENT: usize = 1;
const BREADTH_SOMEWHAT: usize = 2;
const BREADTH_UNSURE: usize = 4;
/// Leaders whose expansions the learned policy values each turn; with the hand-set policy, the
/// policy's training data (`Options::collect_calls`) records those beyond the turn's breadth as
/// declined, with what they would return.
const WIDEST: usize = 8;
/// The fixed-breadth ablation expands this many leaders every turn.
const FIXED_BREADTH: usize = 5;
/// The fixed-breadth ablation's semantic re-query (the leaders' names) is worth this much.
const FIXED_SEMANTIC_WEIGHT: f32 = 0.5;

/// The re-query with terms learned from the leaders (adaptive, first expansion turn): issued
/// only while no leader stands out (confidence at most [`CONFIDENT`]), from the top
/// [`REQUERY_LEADERS`] functions' documents, the [`REQUERY_TERMS`] heaviest terms not in the
/// issue, at least [`REQUERY_MIN_TERM_LEN`] long and not near-ubiquitous (idf at least
/// [`REQUERY_MIN_IDF`]), each added to the issue's terms at [`REQUERY_WEIGHT`] (the
/// fixed-breadth ablation's re-query uses the same weight for the leaders' names).
const REQUERY_LEADERS: usize = 3;
const REQUERY_TERMS: usize = 8;
const REQUERY_MIN_IDF: f32 = 2.0;
const REQUERY_MIN_TERM_LEN: usize = 3;
pub(crate) const REQUERY_WEIGHT: f32 = 0.5;
/// Term-frequency saturation of a learned term's weight (BM25's k1).
const REQUERY_TF_SATURATION: f32 = 1.2;

/// A call the policy wants to make, with what a hit would mean.
pub(crate) struct Planned {
    pub(crate) call: Call,
    /// Multiplies the tool's hit scores.
    pub(crate) weight: f32,
    /// Reason attached to entities this call finds.
    pub(crate) reason: String,
    /// For frame/path outlines: whether this is a traceback frame (vs a path mention).
    pub(crate) frame: bool,
    /// What the call came from ([`crate::ConsideredCall::source`]).
    pub(crate) source: &'static str,
    /// Graph calls: the expanded candidate's rank (1-based) and score relative to the first.
    pub(crate) leader: Option<(u32, f32)>,
    /// The policy model's inputs, computed when the call is planned ([`Search::featurize`]).
    pub(crate) x: Option<CallFeatures>,
    /// The learned policy's predicted value, when it decided.
    pub(crate) value: Option<f32>,
    /// What the call returns, when its planning already looked it up (a symbol or graph
    /// candidate of the learned policy): its features reuse it.
    pub(crate) predicted: Option<Vec<Hit>>,
}

impl Planned {
    fn plain(call: Call, weight: f32, source: &'static str) -> Planned {
        Planned {
            call,
            weight,
            reason: String::new(),
            frame: false,
            source,
            leader: None,
            x: None,
            value: None,
            predicted: None,
        }
    }

    /// The graph call expanding the candidate ranked `rank` (0-based) with `strength`, its score
    /// relative to the first.
    fn expansion(entity: EntityId, rel: Relation, reason: String, rank: usize, strength: f32) -> Planned {
        Planned {
            call: Call::Graph { entity, relation: rel },
            weight: strength * rel_weight(rel),
            reason,
            frame: false,
            source: "leader",
            leader: Some((rank as u32 + 1, strength)),
            x: None,
            value: None,
            predicted: None,
        }
    }
}

/// How much a graph neighbour of a leader is worth, by relation.
fn rel_weight(rel: Relation) -> f32 {
    match rel {
        Relation::Calls | Relation::CalledBy => 0.6,
        Relation::ContainedBy | Relation::Contains => 0.4,
        Relation::Overrides => 0.35,
        Relation::InheritedBy | Relation::Inherits => 0.4,
        Relation::Imports | Relation::ImportedBy => 0.2,
    }
}

/// The calls the issue's signals ask for, before any policy's cut: names (most specific first),
/// file outlines (frames and paths) and greps (messages, quoted strings, flags).
pub(crate) struct SignalCalls {
    pub(crate) names: Vec<Planned>,
    pub(crate) files: Vec<Planned>,
    pub(crate) patterns: Vec<Planned>,
}

impl Search<'_> {
    /// The issue-wide calls every engine turn 1 starts with: lexical on the issue, and
    /// semantic when the encoder's vectors are there.
    pub(crate) fn issue_calls(&self) -> Vec<Planned> {
        let issue = self.fused.issue;
        if self.opts.mode == Mode::Dense {
            return vec![Planned::plain(Call::Semantic { query: semantic_query(issue) }, 1.0, "issue")];
        }
        let lexical = Call::Lexical { query: issue_head(issue), extra: String::new() };
        let mut plan = vec![Planned::plain(lexical, 1.0, "issue")];
        if self.opts.mode != Mode::Bm25 && self.fused.dense.is_some() {
            plan.push(Planned::plain(Call::Semantic { query: semantic_query(issue) }, 1.0, "issue"));
        }
        plan
    }

    /// Turn 1: every strong signal becomes a call, plus lexical (and semantic) on the issue.
    /// Returns the plan and how many calls were skipped as predicted redundant.
    pub(crate) fn first_turn(&mut self, sigs: &[Signal]) -> (Vec<Planned>, u32) {
        let ix = self.fused.ix;
        let mut skipped = 0;
        let mut plan = self.issue_calls();
        if matches!(self.opts.mode, Mode::Dense | Mode::Bm25) {
            return (plan, skipped);
        }
        let SignalCalls { names, files, patterns } = self.signal_calls(sigs);
        // Symbol lookups are exact and cheap to predict: a name that resolves to nothing, or to
        // exactly the entities of a call already planned at no lower weight, would add nothing
        // (evidence keeps the best value per entity), so it is not issued.
        let mut planned_hits: Vec<(Vec<EntityId>, f32)> = Vec::new();
        let adaptive = self.opts.mode == Mode::Adaptive;
        for (i, p) in names.into_iter().enumerate() {
            if i >= MAX_SYMBOL_CALLS && !(adaptive && self.opts.collect_calls) {
                break;
            }
            let Call::Symbol { name } = &p.call else { continue };
            let hits = if adaptive { tools::symbol(ix, name) } else { Vec::new() };
            if i >= MAX_SYMBOL_CALLS {
                // Recorded for the policy's training data only: the hand-set policy stops here.
                if !hits.is_empty() {
                    self.consider_declined(&p, "over turn 1's cap on names", hits);
                }
                continue;
            }
            if adaptive {
                let probe: Vec<EntityId> = hits.iter().map(|h| h.entity).collect();
                if probe.is_empty() {
                    skipped += 1;
                    continue;
                }
                if planned_hits.iter().any(|(ids, pw)| *ids == probe && *pw >= p.weight) {
                    skipped += 1;
                    self.consider_declined(&p, "same entities as a call planned at no lower weight", hits);
                    continue;
                }
                planned_hits.push((probe, p.weight));
            }
            plan.push(p);
        }
        plan.extend(files.into_iter().take(MAX_FILE_CALLS));
        plan.extend(patterns.into_iter().take(MAX_GREP_CALLS));
        (plan, skipped)
    }

    /// Every call the issue's signals ask for, uncapped and unfiltered.
    pub(crate) fn signal_calls(&self, sigs: &[Signal]) -> SignalCalls {
        let mut names: FxHashMap<String, (f32, String, &'static str)> = FxHashMap::default();
        let mut files: Vec<(EntityId, Option<u32>, bool, String)> = Vec::new();
        let mut patterns: Vec<(String, &'static str)> = Vec::new();
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
                            names.entry(q).or_insert((
                                W_FRAME_NAME,
                                format!("`{func}` appears in the traceback"),
                                "frame",
                            ));
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
                SignalKind::QualifiedName | SignalKind::Identifier => {
                    let qualified = s.kind == SignalKind::QualifiedName;
                    let (w, source, reason) = match (qualified, s.in_code) {
                        (true, true) => (W_QUALIFIED_IN_CODE, "qualified_code", "`{}` is named in the issue"),
                        (true, false) => {
                            (W_QUALIFIED_IN_PROSE, "qualified_prose", "`{}` is named in the issue")
                        }
                        (false, true) => {
                            (W_IDENTIFIER_IN_CODE, "identifier_code", "defines `{}`, named in the issue")
                        }
                        (false, false) => {
                            (W_IDENTIFIER_IN_PROSE, "identifier_prose", "defines `{}`, named in the issue")
                        }
                    };
                    let e = names.entry(s.text.clone()).or_insert((w, reason.replace("{}", &s.text), source));
                    // The strongest reading of a name sets its weight and source.
                    if w > e.0 {
                        e.0 = w;
                        e.2 = source;
                    }
                }
                // rustc's own diagnostics (`error[E0277]: the trait bound …`) are not in the workspace.
                SignalKind::ErrorMessage if s.func.as_deref().is_some_and(|f| f.starts_with("error[E")) => {}
                SignalKind::ErrorMessage | SignalKind::Quoted => {
                    let p = s.text.trim().trim_end_matches(['.', ':']).to_string();
                    // Messages are often formatted: grep the longest literal run.
                    let lit = p
                        .split(['{', '}', '%', '\'', '"'])
                        .max_by_key(|x| x.len())
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    if lit.len() >= MIN_GREP_LITERAL && !patterns.iter().any(|p| p.0 == lit) {
                        patterns.push((lit, "message"));
                    }
                }
                SignalKind::Flag => {
                    // The flag's name as code holds it: its definition and where it is read.
                    if s.text.len() >= MIN_FLAG_LITERAL && !patterns.iter().any(|p| p.0 == s.text) {
                        patterns.push((s.text.clone(), "flag"));
                    }
                }
                SignalKind::Code => {}
            }
        }
        // Most specific names first.
        let mut names: Vec<(String, (f32, String, &'static str))> = names.into_iter().collect();
        names.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then(b.0.len().cmp(&a.0.len())).then(a.0.cmp(&b.0)));
        let names = names
            .into_iter()
            .map(|(name, (weight, reason, source))| Planned {
                reason,
                source,
                ..Planned::plain(Call::Symbol { name }, weight, source)
            })
            .collect();
        files.sort_by_key(|f| (f.0, f.1));
        files.dedup_by_key(|f| (f.0, f.1));
        let files = files
            .into_iter()
            .map(|(file, line, frame, reason)| {
                let source = if frame { "frame" } else { "path" };
                let lines = line.into_iter().collect();
                Planned { reason, frame, ..Planned::plain(Call::Outline { file, lines }, 1.0, source) }
            })
            .collect();
        let patterns = patterns
            .into_iter()
            .map(|(p, source)| {
                let reason = format!("contains the text “{}”", short(&p, 40));
                Planned { reason, ..Planned::plain(Call::Grep { pattern: p }, 1.0, source) }
            })
            .collect();
        SignalCalls { names, files, patterns }
    }

    /// Files (their file entities) matching a path from the issue: exact, or by suffix
    /// (tracebacks carry absolute paths from another machine:
    /// `/usr/lib/python3/site-packages/requests/models.py`).
    fn resolve_path(&self, p: &str) -> Vec<EntityId> {
        let p = p.replace('\\', "/");
        // A dependency's source in Cargo's registry or git checkouts names the crate with its
        // version (`…/registry/src/index.crates.io-…/bevy_ecs-0.12.0/src/world/mod.rs`): in the
        // workspace it is the crate's folder (`crates/bevy_ecs/src/world/mod.rs`).
        let parts: Vec<&str> =
            p.split('/').filter(|s| !s.is_empty() && *s != ".").map(signals::crate_dir_of).collect();
        for start in 0..parts.len() {
            let suffix = parts[start..].join("/");
            let hits = self.fused.ix.symbols.files_ending_with(&suffix);
            if !hits.is_empty() {
                if parts.len() - start == 1 && hits.len() > MAX_FILES_PER_PATH {
                    return Vec::new();
                }
                return hits.into_iter().take(MAX_FILES_PER_PATH).collect();
            }
        }
        Vec::new()
    }

    /// Later turns: expand around the leading candidates; breadth follows confidence. Returns
    /// the plan and how many calls were skipped as predicted redundant.
    pub(crate) fn plan_turn(&mut self, turn: u32) -> (Vec<Planned>, u32) {
        let ix = self.fused.ix;
        let ranked = self.fused.ranked_functions();
        if ranked.is_empty() {
            return (Vec::new(), 0);
        }
        let s1 = ranked[0].1;
        let confidence = confidence(&ranked);
        self.confidence = confidence;
        let breadth = match self.opts.mode {
            Mode::Fixed => FIXED_BREADTH,
            // Wide while unsure, narrow once one candidate stands out; narrower each turn.
            _ => {
                let base = if confidence > CONFIDENT {
                    BREADTH_CONFIDENT
                } else if confidence > SOMEWHAT_CONFIDENT {
                    BREADTH_SOMEWHAT
                } else {
                    BREADTH_UNSURE
                };
                // Turn 2 expands `base` leaders, each later turn one fewer.
                base.saturating_sub(turn as usize - 2).max(1)
            }
        };
        let adaptive = self.opts.mode == Mode::Adaptive;
        let mut plan = Vec::new();
        let mut skipped = 0u32;
        for (rank, &(leader, score)) in ranked.iter().take(breadth).enumerate() {
            if adaptive && !self.expanded.insert(leader) {
                continue;
            }
            let strength = (score / s1).clamp(0.0, 1.0);
            for (rel, reason) in expansions(ix, leader) {
                let p = Planned::expansion(leader, rel, reason, rank, strength);
                if adaptive {
                    if self.issued.contains(&p.call) {
                        skipped += 1;
                        continue;
                    }
                    // Graph calls are cheap to predict exactly: skip those that would return
                    // only entities already seen.
                    let predicted = tools::graph(ix, leader, rel);
                    if predicted.is_empty() {
                        skipped += 1;
                        continue;
                    }
                    if predicted.iter().all(|h| self.seen(h.entity)) {
                        skipped += 1;
                        self.consider_declined(&p, "returns only entities already seen", predicted);
                        continue;
                    }
                }
                plan.push(p);
            }
        }
        if adaptive && self.opts.collect_calls {
            // For the policy's training data: the leaders a wider turn would have expanded.
            for (rank, &(leader, score)) in ranked.iter().enumerate().take(WIDEST).skip(breadth) {
                if self.expanded.contains(&leader) {
                    continue;
                }
                let strength = (score / s1).clamp(0.0, 1.0);
                for (rel, reason) in expansions(ix, leader) {
                    let p = Planned::expansion(leader, rel, reason, rank, strength);
                    if self.issued.contains(&p.call) {
                        continue;
                    }
                    let predicted = tools::graph(ix, leader, rel);
                    if predicted.is_empty() {
                        continue;
                    }
                    self.consider_declined(
                        &p,
                        "beyond the breadth the ranking's confidence allows",
                        predicted,
                    );
                }
            }
        }
        let issue = self.fused.issue;
        if adaptive && turn == 2 && confidence > CONFIDENT && self.opts.collect_calls {
            let extra = self.feedback_terms(&ranked);
            if !extra.is_empty() {
                let p = Planned::plain(
                    Call::Lexical { query: issue_head(issue), extra },
                    REQUERY_WEIGHT,
                    "feedback",
                );
                let hits = self.probe(&p.call);
                self.consider_declined(&p, "a leader stands out", hits);
            }
        }
        if adaptive && turn == 2 && confidence <= CONFIDENT {
            // Not sure yet: ask the lexical index again with the words the leaders are made
            // of (pseudo-relevance feedback), once.
            let extra = self.feedback_terms(&ranked);
            if extra.is_empty() {
                skipped += 1;
            } else {
                let call = Call::Lexical { query: issue_head(issue), extra };
                plan.push(Planned::plain(call, REQUERY_WEIGHT, "feedback"));
            }
        }
        if self.opts.mode == Mode::Fixed {
            // Every tool every turn: re-ask lexical and semantic with the leaders' names added.
            let names: Vec<String> =
                ranked.iter().take(FIXED_BREADTH).map(|r| ix.entity(r.0).name.clone()).collect();
            let q = names.join(" ");
            let extra = text::terms(&q).join(" ");
            let call = Call::Lexical { query: issue_head(issue), extra };
            plan.push(Planned::plain(call, REQUERY_WEIGHT, "feedback"));
            if self.fused.dense.is_some() {
                plan.push(Planned::plain(Call::Semantic { query: q }, FIXED_SEMANTIC_WEIGHT, "feedback"));
            }
        }
        let room = self.opts.max_calls.saturating_sub(self.fused.trace.calls) as usize;
        if plan.len() > room && self.opts.collect_calls {
            for p in plan.drain(room..).collect::<Vec<_>>() {
                let hits = self.probe(&p.call);
                self.consider_declined(&p, "over the call budget", hits);
            }
        }
        plan.truncate(room);
        (plan, skipped)
    }

    /// The learned policy's first candidates: every call the issue's signals ask for (names
    /// that resolve to nothing, or to exactly the entities of a name already listed at no lower
    /// weight, are no candidates).
    pub(crate) fn signal_candidates(&self, sigs: &[Signal]) -> Vec<Planned> {
        let ix = self.fused.ix;
        let SignalCalls { names, files, patterns } = self.signal_calls(sigs);
        let mut out = Vec::new();
        // The symbol evidence each entity would get from the names listed so far (evidence keeps
        // the best value): a name that would raise none of its entities' adds nothing; nor does
        // one resolving to exactly the entities of a name listed at no lower weight.
        let mut best: FxHashMap<EntityId, f32> = FxHashMap::default();
        let mut listed: Vec<(Vec<EntityId>, f32)> = Vec::new();
        // Qualified names listed so far that resolved: their last segment and entities.
        let mut qualified: Vec<(String, Vec<EntityId>)> = Vec::new();
        for p in names {
            let Call::Symbol { name } = &p.call else { continue };
            let hits = tools::symbol(ix, name);
            let ambiguity = symbol_ambiguity(hits.len());
            let value = |h: &tools::Hit| Fused::evidence_value(h.score, p.weight, ambiguity);
            let ids: Vec<EntityId> = hits.iter().map(|h| h.entity).collect();
            // A bare name the issue also writes qualified (`initialized` and
            // `OnceCell::initialized`), when the qualified one resolved to some of its
            // entities, means those: its other entities are other things of the same name.
            let narrowed =
                |(last, of): &(String, Vec<EntityId>)| last == name && of.iter().all(|e| ids.contains(e));
            if !hits.iter().any(|h| value(h) > best.get(&h.entity).copied().unwrap_or(0.0))
                || listed.iter().any(|(l, w)| *l == ids && *w >= p.weight)
                || qualified.iter().any(narrowed)
            {
                continue;
            }
            if let Some(last) = qualified_last(name).filter(|_| !ids.is_empty()) {
                qualified.push((last.to_string(), ids.clone()));
            }
            listed.push((ids, p.weight));
            for h in &hits {
                let b = best.entry(h.entity).or_insert(0.0);
                *b = b.max(value(h));
            }
            out.push(Planned { predicted: Some(hits), ..p });
        }
        // The frames of one file are one outline call: the entities enclosing each line.
        let mut merged: Vec<Planned> = Vec::new();
        for p in files {
            let Call::Outline { file, lines } = &p.call else { continue };
            let same = merged.iter_mut().find(|m| {
                m.frame && p.frame && matches!(&m.call, Call::Outline { file: f, .. } if f == file)
            });
            match same {
                Some(m) => {
                    if let Call::Outline { lines: into, .. } = &mut m.call {
                        into.extend(lines);
                        into.sort_unstable();
                        into.dedup();
                    }
                }
                None => merged.push(p),
            }
        }
        out.extend(merged);
        // A literal whose inner words have a term no document holds is nowhere in the
        // workspace: every byte of a file is in one entity's document.
        out.extend(patterns.into_iter().filter(|p| match &p.call {
            Call::Grep { pattern } => may_occur(ix, pattern),
            _ => true,
        }));
        out
    }

    /// The learned policy's later candidates: every expansion of the [`WIDEST`] leading
    /// candidates not yet expanded (graph calls predicted to return nothing are no candidates).
    /// No re-query: on the policy's training repositories (the first 350 instances of
    /// `scripts/policy/training-ids.txt`) it cost 0.94 calls per instance, returned almost only
    /// entities already seen (g 0.04 on Lite) and moved function Acc@10 by one instance in 343.
    pub(crate) fn expansion_candidates(&mut self) -> Vec<Planned> {
        let ix = self.fused.ix;
        let ranked = self.fused.ranked_functions();
        let Some(&(_, s1)) = ranked.first() else { return Vec::new() };
        self.confidence = confidence(&ranked);
        let mut out = Vec::new();
        for (rank, &(leader, score)) in ranked.iter().take(WIDEST).enumerate() {
            if self.expanded.contains(&leader) {
                continue;
            }
            let strength = (score / s1).clamp(0.0, 1.0);
            for (rel, reason) in expansions(ix, leader) {
                let p = Planned::expansion(leader, rel, reason, rank, strength);
                if self.issued.contains(&p.call) {
                    continue;
                }
                let hits = tools::graph(ix, leader, rel);
                if !hits.is_empty() {
                    out.push(Planned { predicted: Some(hits), ..p });
                }
            }
        }
        out
    }

    /// The policy model's inputs for each call of `plan`, as the search stands now.
    pub(crate) fn featurize(&self, plan: &mut [Planned]) {
        let ranks = self.function_ranks();
        for p in plan.iter_mut().filter(|p| p.x.is_none()) {
            p.x = Some(self.call_features(p, &ranks));
        }
    }

    /// Each ranked function's rank (1-based) in the fusion's current order.
    pub(crate) fn function_ranks(&self) -> FxHashMap<EntityId, u32> {
        self.fused.ranked_functions().iter().enumerate().map(|(i, r)| (r.0, i as u32 + 1)).collect()
    }

    /// The policy model's inputs for `p`, as the search stands now (`ranks`:
    /// [`Search::function_ranks`]).
    pub(crate) fn call_features(&self, p: &Planned, ranks: &FxHashMap<EntityId, u32>) -> CallFeatures {
        let ix = self.fused.ix;
        let mut x = CallFeatures::default();
        let one = |b: bool| if b { 1.0 } else { 0.0 };
        let tool = p.call.tool();
        x.tool_symbol = one(tool == "symbol");
        x.tool_outline = one(tool == "outline");
        x.tool_grep = one(tool == "grep");
        x.tool_graph = one(tool == "graph");
        x.tool_lexical = one(tool == "lexical");
        x.src_frame = one(p.source == "frame");
        x.src_path = one(p.source == "path");
        x.src_qualified = one(p.source.starts_with("qualified"));
        x.src_identifier = one(p.source.starts_with("identifier"));
        x.src_message = one(p.source == "message");
        x.src_flag = one(p.source == "flag");
        x.src_feedback = one(p.source == "feedback");
        x.src_in_code = one(p.source.ends_with("_code"));
        if let Call::Graph { relation, .. } = &p.call {
            x.rel_calls = one(*relation == Relation::Calls);
            x.rel_called_by = one(*relation == Relation::CalledBy);
            x.rel_contained_by = one(*relation == Relation::ContainedBy);
            x.rel_contains = one(*relation == Relation::Contains);
            x.rel_overrides = one(*relation == Relation::Overrides);
            x.rel_inherited_by = one(*relation == Relation::InheritedBy);
        }
        x.weight = p.weight;
        x.turn = self.fused.trace.turns.len() as f32 + 1.0;
        if let Some((rank, strength)) = p.leader {
            x.leader_rank = rank as f32;
            x.leader_strength = strength;
        }
        x.confidence = self.confidence;
        x.calls_before = self.fused.trace.calls as f32;
        x.log_seen = (self.fused.ev.len() as f32).ln_1p();
        x.tool_gain_before = self.gain_before(tool).unwrap_or(-1.0);
        let looked_up = match &p.call {
            _ if p.predicted.is_some() => None,
            Call::Symbol { name } => Some(tools::symbol(ix, name)),
            Call::Outline { file, lines } => Some(tools::outline(ix, *file, lines)),
            Call::Graph { entity, relation } => Some(tools::graph(ix, *entity, *relation)),
            _ => None,
        };
        let predicted = p.predicted.as_ref().or(looked_up.as_ref());
        (x.log_predicted, x.predicted_seen, x.log_predicted_best_rank) = match predicted {
            Some(hits) => {
                let seen = hits.iter().filter(|h| self.seen(h.entity)).count();
                let share = if hits.is_empty() { 0.0 } else { seen as f32 / hits.len() as f32 };
                let best = hits.iter().filter_map(|h| ranks.get(&h.entity)).min();
                ((hits.len() as f32).ln_1p(), share, best.map(|&r| (r as f32).ln_1p()).unwrap_or(-1.0))
            }
            None => (-1.0, -1.0, -1.0),
        };
        let arg = match &p.call {
            Call::Symbol { name } => name.as_str(),
            Call::Grep { pattern } => pattern.as_str(),
            _ => "",
        };
        x.log_arg_chars = (arg.chars().count() as f32).ln_1p();
        x.arg_words = arg.split_whitespace().count() as f32;
        x.arg_is_code = one(arg.contains(['_', '.', '('])
            || arg.contains("::")
            || arg.chars().skip(1).any(|c| c.is_uppercase()));
        x
    }

    /// Terms learned from what was found: the index terms that weigh most in the leading
    /// functions' documents (tf saturation times idf, weighted by the leader's score) and are
    /// not in the issue, space-separated; empty when there are none.
    fn feedback_terms(&self, ranked: &[(EntityId, f32)]) -> String {
        let ix = self.fused.ix;
        let Some(&(_, s1)) = ranked.first() else { return String::new() };
        let in_query: FxHashSet<&str> = self.fused.query_terms.iter().map(|(t, _)| t.as_str()).collect();
        let n_docs = ix.lexical.n_docs();
        let mut weight: FxHashMap<&str, f32> = FxHashMap::default();
        for &(id, score) in ranked.iter().take(REQUERY_LEADERS) {
            let l = ix.loc(id);
            let strength = (score / s1.max(1e-6)).clamp(0.0, 1.0);
            for (t, tf) in ix.files[l.file.index()].unit.docs[l.local as usize].iter() {
                if t.len() < REQUERY_MIN_TERM_LEN || in_query.contains(t) {
                    continue;
                }
                let idf = bm25::idf(n_docs, ix.lexical.df(t));
                if idf < REQUERY_MIN_IDF {
                    continue;
                }
                let tf = tf as f32;
                *weight.entry(t).or_insert(0.0) += strength * tf / (tf + REQUERY_TF_SATURATION) * idf;
            }
        }
        let mut terms: Vec<(&str, f32)> = weight.into_iter().collect();
        terms.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        terms.iter().take(REQUERY_TERMS).map(|t| t.0).collect::<Vec<_>>().join(" ")
    }
}

/// The graph calls that expand `leader`, each with the reason its hits would carry.
fn expansions(ix: &locus_index::Index, leader: EntityId) -> Vec<(Relation, String)> {
    let e = ix.entity(leader);
    let short_name = &e.qual;
    let mut rels = vec![
        (Relation::CalledBy, format!("calls `{short_name}`, a leading candidate")),
        (Relation::Calls, format!("called by `{short_name}`, a leading candidate")),
        (Relation::ContainedBy, format!("contains `{short_name}`, a leading candidate")),
        (Relation::Overrides, format!("same method name as `{short_name}` in another type")),
    ];
    if matches!(e.kind, Kind::Class | Kind::Struct | Kind::Enum | Kind::Trait) {
        rels.push((Relation::Contains, format!("member of `{short_name}`, a leading candidate")));
        rels.push((Relation::InheritedBy, format!("subclass of `{short_name}`, a leading candidate")));
    }
    rels
}

/// Whether `literal` may occur in the workspace's text, by the lexical index alone: false when
/// the terms of its inner words (bounded by non-word characters inside the literal, so whole
/// words in any text that contains it) are held by no one document together, or when a
/// compound word at its edge is part of no indexed word ([`bm25::Bm25::any_term_containing`]:
/// `browse_button` copied from the reporter's own code). Every byte of a
/// file is in one entity's document, so a literal within one entity's own text is never ruled
/// out; one spanning two entities' texts, or in text no document holds (a Rust `impl`
/// header), can be: the prediction the learned policy accepts.
pub(crate) fn may_occur(ix: &locus_index::Index, literal: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let words: Vec<&str> = literal.split(|c: char| !is_word(c)).collect();
    let n = words.len();
    let mut terms: Vec<String> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let whole = (i > 0 || !literal.starts_with(is_word)) && (i + 1 < n || !literal.ends_with(is_word));
        if whole && !w.is_empty() {
            text::for_each_term(w, |t| terms.push(t.to_string()));
        } else if is_compound(w) && !ix.lexical.any_term_containing(&w.trim_matches('_').to_lowercase()) {
            // A compound word at the literal's edge may be part of a longer word in the text;
            // that word is a compound too, and a compound is indexed whole, lower-cased.
            return false;
        }
    }
    if terms.is_empty() {
        return true;
    }
    ix.lexical.some_doc_holds_all(&terms)
}

/// Whether every word of the text containing `w` is split into parts, and so indexed whole
/// ([`text::for_each_term`]): `w` has an inner underscore or a case change that splits it.
/// (A containing word longer than [`text::MAX_TOKEN`] is not indexed: such a literal is
/// predicted absent.)
fn is_compound(w: &str) -> bool {
    let inner = w.trim_matches('_');
    inner.len() <= text::MAX_TOKEN && text::split_identifier(inner).len() > 1
}

/// How far a ranking's leader stands out: `(s1 - s2) / s1` of its two leading scores (0 for an
/// empty ranking or a leader scored 0).
pub(crate) fn confidence(ranked: &[(EntityId, f32)]) -> f32 {
    let s1 = ranked.first().map_or(0.0, |r| r.1);
    let s2 = ranked.get(1).map_or(0.0, |r| r.1);
    if s1 > 0.0 {
        (s1 - s2) / s1
    } else {
        0.0
    }
}

/// The last segment of a qualified name (`a.b.name`, `a::name`); `None` for a bare name.
fn qualified_last(name: &str) -> Option<&str> {
    let sep = if name.contains("::") { "::" } else { "." };
    name.rsplit_once(sep).map(|(_, last)| last).filter(|l| !l.is_empty())
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
