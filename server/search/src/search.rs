//! The adaptive multi-turn search (FuseSearch's idea, in-process): each turn issues a batch of
//! tool calls that run in parallel on the immutable index, folds their hits into the fusion's
//! evidence, and records each call's tool efficiency `g_i = |E_i \ H| / |E_i|`. What to call
//! and when to stop is the policy's ([`crate::policy`]); this file runs the turns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use locus_index::{EntityId, Index};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::features::CallFeatures;
use crate::fusion::{Finding, Fused};
use crate::localization::{
    CallTrace, Cancelled, ConsideredCall, DeclinedCall, Localization, Mode, Options, Policy, Stop, Trace,
    TurnTrace,
};
use crate::policy::{self, Planned, CONFIDENT, LEADERS_COMPARED, WIDE_POOL_FILES};
use crate::rerank::{self, Scorer};
use crate::signals::{self, Signal};
use crate::tools::{self, Call, Hit, Semantic};

/// Runs a localization of `issue` on `ix`: the turns, then the learned re-ranking step (with
/// `scorer`, when there is one), then the answer.
pub fn locate(
    ix: &Index,
    dense: Option<&dyn Semantic>,
    scorer: Option<&dyn Scorer>,
    issue: &str,
    opts: &Options,
    cancel: &AtomicBool,
) -> Result<Localization, Cancelled> {
    // The engine reads the issue without its environment dump; the baselines read it as written.
    let issue = if matches!(opts.mode, Mode::Bm25 | Mode::Dense) {
        issue.into()
    } else {
        crate::issue::essential(issue)
    };
    let fused = search(ix, dense, scorer, &issue, opts, cancel)?;
    let pool_files = fused.trace.pool_files;
    let order = rerank::rerank(&fused, scorer, opts.collect_features, opts.collect_candidates, pool_files);
    Ok(fused.localize(order, opts.max_results, opts.collect_features))
}

/// The turns of a search, up to the fused evidence (no re-ranking step; `scorer`'s policy
/// model, when it has one and `opts.policy` asks for it, chooses the calls).
pub fn search<'a>(
    ix: &'a Index,
    dense: Option<&'a dyn Semantic>,
    scorer: Option<&'a dyn Scorer>,
    issue: &'a str,
    opts: &'a Options,
    cancel: &'a AtomicBool,
) -> Result<Fused<'a>, Cancelled> {
    let t0 = Instant::now();
    let sigs =
        if matches!(opts.mode, Mode::Bm25 | Mode::Dense) { Vec::new() } else { signals::extract(issue) };
    let trace = Trace {
        signals: sigs.len(),
        semantic_ready: dense.map(|d| d.ready()).unwrap_or(0),
        ..Trace::default()
    };
    let usable = if opts.mode == Mode::Bm25 { None } else { dense.filter(|d| d.ready() > 0) };
    let mut s = Search {
        fused: Fused::new(ix, usable, issue, trace),
        opts,
        cancel,
        issued: FxHashSet::default(),
        expanded: FxHashSet::default(),
        g_sum: 0.0,
        confidence: 0.0,
        gain_by_tool: FxHashMap::default(),
        declined: Vec::new(),
    };
    let decider = match opts.policy {
        _ if opts.mode != Mode::Adaptive => Decider::Hand,
        Policy::Hand => Decider::Hand,
        Policy::Explore => Decider::Explore,
        Policy::Learned => match scorer.and_then(|sc| sc.call_threshold().map(|t| (sc, t))) {
            Some((sc, t)) => Decider::Model(sc, opts.call_threshold.unwrap_or(t)),
            None => Decider::Missing,
        },
    };
    s.fused.trace.policy = decider.name();
    let stop = match decider {
        Decider::Hand | Decider::Missing => s.hand_turns(&sigs, t0)?,
        Decider::Explore | Decider::Model(..) => {
            if let Decider::Model(_, t) = decider {
                s.fused.trace.call_threshold = Some(t);
            }
            s.learned_turns(&sigs, &decider, t0)?
        }
    };
    let widened = match decider {
        Decider::Model(..) if opts.widen_pool => s.widen_pool(),
        _ => None,
    };
    let calls = s.fused.trace.calls;
    let trace = &mut s.fused.trace;
    trace.pool_files = opts.pool_files;
    if let Some((files, why)) = widened.filter(|w| w.0 > opts.pool_files) {
        trace.pool_files = files;
        trace.pool_widened = Some(why);
    }
    trace.stop = stop;
    trace.efficiency = if calls == 0 { 0.0 } else { s.g_sum / calls as f32 };
    trace.ms = t0.elapsed().as_secs_f64() * 1000.0;
    Ok(s.fused)
}

/// Who chooses the calls of a search.
enum Decider<'a> {
    Hand,
    /// The learned policy was asked for and no policy model is loaded: the hand-set one decides.
    Missing,
    Explore,
    /// The policy model and the value a call must reach.
    Model(&'a dyn Scorer, f32),
}

impl Decider<'_> {
    fn name(&self) -> &'static str {
        match self {
            Decider::Hand => "hand",
            Decider::Missing => "hand (no policy model)",
            Decider::Explore => "explore",
            Decider::Model(..) => "learned",
        }
    }
}

impl Search<'_> {
    /// The hand-set policy's turns (and the baselines' single turn); returns why they stopped.
    fn hand_turns(&mut self, sigs: &[Signal], t0: Instant) -> Result<Stop, Cancelled> {
        let opts = self.opts;
        let (mut first, skipped_first) = self.first_turn(sigs);
        if opts.collect_calls {
            self.featurize(&mut first);
        }
        self.run_turn(first, skipped_first)?;
        let mut prev_top = self.fused.top_functions(LEADERS_COMPARED);
        if !matches!(opts.mode, Mode::Adaptive | Mode::Fixed) {
            return Ok(Stop::SingleTurn);
        }
        for turn in 2..=opts.max_turns {
            if t0.elapsed().as_millis() as u64 >= opts.budget_ms {
                return Ok(Stop::TimeBudget);
            }
            if self.fused.trace.calls >= opts.max_calls {
                return Ok(Stop::CallBudget);
            }
            let (mut batch, skipped) = self.plan_turn(turn);
            if batch.is_empty() {
                self.fused.trace.skipped_calls += skipped;
                return Ok(if skipped > 0 { Stop::NothingNew } else { Stop::NoLeads });
            }
            if opts.collect_calls {
                self.featurize(&mut batch);
            }
            self.run_turn(batch, skipped)?;
            let top = self.fused.top_functions(LEADERS_COMPARED);
            if opts.mode == Mode::Adaptive && top == prev_top {
                return Ok(Stop::Stable);
            }
            prev_top = top;
        }
        Ok(Stop::TurnLimit)
    }

    /// The learned policy's turns. First the exact lookups the issue's signals ask for (names,
    /// frames, literal text), then the broad queries on the whole issue (lexical, and
    /// semantic when the vectors are there) with the outlines of the files it names by path,
    /// then expansions of the leading candidates: each turn values its candidate calls (the
    /// broad queries excepted) and issues, best first, those whose value clears the threshold
    /// (all of them when exploring), within the call budget. Stops
    /// when no call is worth making, or, after an expansion turn, when the leading functions
    /// did not change. One turn more than the hand-set policy's limit: the signals' lookups and
    /// the broad queries are two turns.
    fn learned_turns(
        &mut self,
        sigs: &[Signal],
        decider: &Decider<'_>,
        t0: Instant,
    ) -> Result<Stop, Cancelled> {
        let opts = self.opts;
        // Outlines of whole files the issue names by path are valued after the narrow lookups
        // ran: a file whose named entities were found already adds less.
        let (paths, signals): (Vec<Planned>, Vec<Planned>) = self
            .signal_candidates(sigs)
            .into_iter()
            .partition(|p| matches!(p.call, Call::Outline { .. }) && !p.frame);
        if !signals.is_empty() {
            let (batch, skipped) = self.choose(signals, decider);
            if batch.is_empty() {
                self.fused.trace.skipped_calls += skipped;
            } else {
                self.run_turn(batch, skipped)?;
            }
        }
        let (mut broad, skipped) =
            if paths.is_empty() { (Vec::new(), 0) } else { self.choose(paths, decider) };
        broad.extend(self.issue_calls());
        self.run_turn(broad, skipped)?;
        let mut prev_top = self.fused.top_functions(LEADERS_COMPARED);
        while self.fused.trace.turns.len() <= opts.max_turns as usize {
            if t0.elapsed().as_millis() as u64 >= opts.budget_ms {
                return Ok(Stop::TimeBudget);
            }
            if self.fused.trace.calls >= opts.max_calls {
                return Ok(Stop::CallBudget);
            }
            let cands = self.expansion_candidates();
            if cands.is_empty() {
                return Ok(Stop::NoLeads);
            }
            let (batch, skipped) = self.choose(cands, decider);
            if batch.is_empty() {
                self.fused.trace.skipped_calls += skipped;
                self.flush_declined();
                return Ok(Stop::LowValue);
            }
            for p in &batch {
                if let Call::Graph { entity, .. } = p.call {
                    self.expanded.insert(entity);
                }
            }
            self.run_turn(batch, skipped)?;
            let top = self.fused.top_functions(LEADERS_COMPARED);
            if top == prev_top {
                return Ok(Stop::Stable);
            }
            prev_top = top;
        }
        Ok(Stop::TurnLimit)
    }

    /// How deep the learned policy takes the rankers' candidate pool, and why, when the search
    /// ends unsure: no leading function stands out (the expansions' [`CONFIDENT`]), so the
    /// fix's file may well rank below the [`rerank::POOL_FILES`] leading ones; then every
    /// function of the [`WIDE_POOL_FILES`] leading files is a candidate.
    fn widen_pool(&self) -> Option<(usize, String)> {
        let ranked = self.fused.ranked_functions();
        if ranked.is_empty() {
            return None;
        }
        let confidence = policy::confidence(&ranked);
        (confidence <= CONFIDENT).then(|| {
            (
                WIDE_POOL_FILES,
                format!(
                    "every function of the {WIDE_POOL_FILES} leading files ranked: no leading function stands out (confidence {confidence:.2}, at most {CONFIDENT})"
                ),
            )
        })
    }

    /// The calls of `cands` the learned policy issues, best value first, and how many it
    /// declined (recorded in the trace with their values and reasons).
    fn choose(&mut self, mut cands: Vec<Planned>, decider: &Decider<'_>) -> (Vec<Planned>, u32) {
        self.featurize(&mut cands);
        let values: Vec<f32> = match decider {
            Decider::Model(sc, _) => {
                let rows: Vec<CallFeatures> = cands.iter().map(|p| p.x.unwrap_or_default()).collect();
                // A model that fails to run values every call alike: all are issued.
                sc.call_values(&rows)
                    .filter(|v| v.len() == rows.len())
                    .unwrap_or_else(|| vec![1.0; rows.len()])
            }
            _ => vec![1.0; cands.len()],
        };
        let (threshold, model) = match decider {
            Decider::Model(_, t) => (*t, true),
            _ => (f32::NEG_INFINITY, false),
        };
        let mut order: Vec<(Planned, f32)> = cands.into_iter().zip(values).collect();
        // Best value first; the candidates' own order breaks ties (stable sort).
        order.sort_by(|a, b| b.1.total_cmp(&a.1));
        let room = self.opts.max_calls.saturating_sub(self.fused.trace.calls) as usize;
        let mut batch = Vec::new();
        let mut skipped = 0u32;
        for (mut p, v) in order {
            if model {
                p.value = Some(v);
            }
            let reason = if v < threshold {
                "valued below the policy's threshold"
            } else if batch.len() >= room {
                "over the call budget"
            } else {
                batch.push(p);
                continue;
            };
            skipped += 1;
            if model {
                let turn = self.fused.trace.turns.len() as u32 + 1;
                let call = p.call.describe(self.fused.ix);
                self.fused.trace.declined.push(DeclinedCall { turn, call, value: p.value, reason });
            }
            self.consider_declined_probed(&p, reason);
        }
        (batch, skipped)
    }
}

/// A search in progress: the fused evidence so far, and what the policy needs to remember.
pub(crate) struct Search<'a> {
    pub(crate) fused: Fused<'a>,
    pub(crate) opts: &'a Options,
    cancel: &'a AtomicBool,
    /// Calls already made (a call is never issued twice).
    pub(crate) issued: FxHashSet<Call>,
    /// Leaders already expanded with graph calls.
    pub(crate) expanded: FxHashSet<EntityId>,
    /// Sum of the calls' `g_i`.
    g_sum: f32,
    /// `(s1 - s2) / s1` of the ranking the current turn was planned from (0 in turn 1).
    pub(crate) confidence: f32,
    /// Per tool, the sum of `g_i` and the number of calls issued in earlier turns.
    gain_by_tool: FxHashMap<&'static str, (f32, u32)>,
    /// Calls considered and not issued in the turn being planned, with their hits, when
    /// `Options::collect_calls`.
    declined: Vec<ConsideredCall>,
}

impl Search<'_> {
    fn check_cancel(&self) -> Result<(), Cancelled> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Whether an entity was returned by an earlier call (the `H` of `g_i`: every hit leaves
    /// evidence, so the entities seen are the evidence's keys).
    pub(crate) fn seen(&self, id: EntityId) -> bool {
        self.fused.ev.contains_key(&id)
    }

    /// A considered call as training data, before its outcome is known.
    fn considered(&self, p: &Planned, issued: bool, declined: Option<&'static str>) -> ConsideredCall {
        let tool = p.call.tool();
        ConsideredCall {
            turn: self.fused.trace.turns.len() as u32 + 1,
            call: p.call.describe(self.fused.ix),
            tool,
            relation: match &p.call {
                Call::Graph { relation, .. } => Some(relation.as_str()),
                _ => None,
            },
            source: p.source,
            issued,
            declined,
            weight: p.weight,
            leader_rank: p.leader.map(|l| l.0),
            leader_strength: p.leader.map(|l| l.1),
            confidence: self.confidence,
            calls_before: self.fused.trace.calls,
            budget_left: self.opts.max_calls.saturating_sub(self.fused.trace.calls),
            tool_gain_before: self.gain_before(tool),
            returned: Vec::new(),
            new: Vec::new(),
            value: p.value,
            x: p.x.unwrap_or_else(|| self.call_features(p, &self.function_ranks())),
        }
    }

    /// Records a call the policy did not issue, with the hits it would have returned (its
    /// new entities are those still unseen at the end of the turn), when `Options::collect_calls`.
    pub(crate) fn consider_declined(&mut self, p: &Planned, why: &'static str, hits: Vec<Hit>) {
        if !self.opts.collect_calls {
            return;
        }
        let mut c = self.considered(p, false, Some(why));
        c.returned = hits.iter().map(|h| h.entity).collect();
        self.declined.push(c);
    }

    /// As [`Search::consider_declined`], probing what the call would have returned.
    fn consider_declined_probed(&mut self, p: &Planned, why: &'static str) {
        if self.opts.collect_calls {
            let hits = self.probe(&p.call);
            self.consider_declined(p, why, hits);
        }
    }

    /// Moves the calls declined in a turn that was not run into the trace (their new entities:
    /// those not seen when the search stopped).
    fn flush_declined(&mut self) {
        for mut c in std::mem::take(&mut self.declined) {
            c.new = c.returned.iter().copied().filter(|&e| !self.seen(e)).collect();
            self.fused.trace.considered.push(c);
        }
    }

    /// Mean `g_i` of `tool`'s calls issued in earlier turns.
    pub(crate) fn gain_before(&self, tool: &str) -> Option<f32> {
        self.gain_by_tool.get(tool).map(|&(g, n)| g / n as f32)
    }

    /// What `call` returns, without folding it in.
    pub(crate) fn probe(&self, call: &Call) -> Vec<Hit> {
        run_call(self.fused.ix, self.fused.dense, &self.fused.query_terms, call)
    }

    /// Runs `plan`'s calls in parallel, then folds their hits in, call by call in plan order,
    /// accounting each call's efficiency against what the calls before it had seen.
    fn run_turn(&mut self, plan: Vec<Planned>, skipped: u32) -> Result<(), Cancelled> {
        self.check_cancel()?;
        let t = Instant::now();
        let ix = self.fused.ix;
        let dense = self.fused.dense;
        let cancel = self.cancel;
        let query_terms = &self.fused.query_terms;
        let results: Vec<(Vec<Hit>, f64)> = plan
            .par_iter()
            .map(|p| {
                if cancel.load(Ordering::Relaxed) {
                    return (Vec::new(), 0.0);
                }
                let t = Instant::now();
                let hits = run_call(ix, dense, query_terms, &p.call);
                (hits, t.elapsed().as_secs_f64() * 1000.0)
            })
            .collect();
        self.check_cancel()?;
        let mut calls = Vec::with_capacity(plan.len());
        let mut considered = Vec::new();
        let mut turn_gain: Vec<(&'static str, f32)> = Vec::with_capacity(plan.len());
        for (p, (hits, ms)) in plan.into_iter().zip(results) {
            if self.opts.collect_calls {
                let mut c = self.considered(&p, true, None);
                c.returned = hits.iter().map(|h| h.entity).collect();
                c.new = hits.iter().map(|h| h.entity).filter(|&e| !self.seen(e)).collect();
                considered.push(c);
            }
            let new = hits.iter().filter(|h| !self.seen(h.entity)).count() as u32;
            let returned = hits.len() as u32;
            let g = if returned == 0 { 0.0 } else { new as f32 / returned as f32 };
            let trace = &mut self.fused.trace;
            if g == 0.0 {
                trace.redundant_calls += 1;
            }
            self.g_sum += g;
            turn_gain.push((p.call.tool(), g));
            trace.calls += 1;
            *trace.ms_by_tool.entry(p.call.tool()).or_insert(0.0) += ms;
            calls.push(CallTrace {
                call: p.call.describe(ix),
                tool: p.call.tool(),
                returned,
                new,
                efficiency: g,
                ms,
                value: p.value,
            });
            let finding = Finding { call: &p.call, weight: p.weight, reason: &p.reason, frame: p.frame };
            self.fused.absorb(&finding, &hits);
            self.issued.insert(p.call);
        }
        for (tool, g) in turn_gain {
            let e = self.gain_by_tool.entry(tool).or_insert((0.0, 0));
            e.0 += g;
            e.1 += 1;
        }
        for mut c in std::mem::take(&mut self.declined) {
            c.new = c.returned.iter().copied().filter(|&e| !self.seen(e)).collect();
            considered.push(c);
        }
        let trace = &mut self.fused.trace;
        trace.considered.extend(considered);
        trace.turns.push(TurnTrace { calls, skipped, ms: t.elapsed().as_secs_f64() * 1000.0 });
        trace.skipped_calls += skipped;
        Ok(())
    }
}

/// Runs one call on the index.
fn run_call(
    ix: &Index,
    dense: Option<&dyn Semantic>,
    query_terms: &[(String, f32)],
    call: &Call,
) -> Vec<Hit> {
    match call {
        Call::Symbol { name } => tools::symbol(ix, name),
        Call::Lexical { extra, .. } if extra.is_empty() => tools::lexical(ix, query_terms, |_| true),
        Call::Lexical { extra, .. } => {
            // `extra` holds index terms (already split and stemmed), added at the re-query's
            // weight.
            let mut q = query_terms.to_vec();
            q.extend(
                extra
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(|t| (t.to_string(), crate::policy::REQUERY_WEIGHT)),
            );
            tools::lexical(ix, &q, |_| true)
        }
        Call::Semantic { query } => dense.map(|d| tools::semantic(d, query)).unwrap_or_default(),
        Call::Grep { pattern } => tools::grep(ix, pattern),
        Call::Graph { entity, relation } => tools::graph(ix, *entity, *relation),
        Call::Outline { file, lines } => tools::outline(ix, *file, lines),
    }
}

/// The start of the issue, as shown in traces.
pub(crate) fn issue_head(issue: &str) -> String {
    issue.chars().take(200).collect()
}

/// The semantic tool's query for the whole issue (the encoder reads its first 256 tokens).
pub(crate) fn semantic_query(issue: &str) -> String {
    issue.chars().take(2000).collect()
}
