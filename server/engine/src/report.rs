//! The one serialised shape of an answer, shared by `locus locate --json` and the language server
//! (names as `docs/protocol.md` gives them): a located item and the search's stats.

use locus_search::{Localization, Ranked, RankedBy, Stop};
use locus_syntax::Kind;
use serde::{Deserialize, Serialize};

use crate::Workspace;

/// Which list an answer shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    File,
    #[default]
    Function,
}

impl std::str::FromStr for Granularity {
    type Err = String;

    fn from_str(s: &str) -> Result<Granularity, String> {
        match s {
            "file" => Ok(Granularity::File),
            "function" => Ok(Granularity::Function),
            _ => Err(format!("unknown granularity `{s}`; use file or function")),
        }
    }
}

/// One ranked place as clients see it: where it is (`L`: an LSP `Location` in the server, a
/// path and range on the command line), plus its score, names, kind and reason.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocatedItem<L> {
    #[serde(flatten)]
    pub location: L,
    /// 0..=1, relative to the best item of the list, to three decimals.
    pub score: f64,
    /// The name without its path (`Class.method`; the path for a file).
    pub name: String,
    /// `path:Class.method` (the evaluation's naming; the path for a file).
    pub qualified_name: String,
    pub kind: Kind,
    pub reason: String,
}

impl<L> LocatedItem<L> {
    pub fn new(r: &Ranked, location: L) -> LocatedItem<L> {
        LocatedItem {
            location,
            score: round(r.score as f64, 1000.0),
            name: short_name(&r.name).to_string(),
            qualified_name: r.name.clone(),
            kind: r.kind,
            reason: r.reason.clone(),
        }
    }
}

/// `Class.method` of `path:Class.method`; a file's path as it is.
pub fn short_name(full: &str) -> &str {
    full.split_once(':').map(|x| x.1).filter(|s| !s.is_empty()).unwrap_or(full)
}

/// What a search did and on what.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Search time in milliseconds, to a tenth.
    pub ms: f64,
    pub turns: usize,
    pub calls: u32,
    /// Mean tool efficiency `g_i` over the calls, to three decimals.
    pub efficiency: f64,
    pub redundant_calls: u32,
    pub skipped_calls: u32,
    pub signals: usize,
    pub stop: Stop,
    /// Whether the index was complete when the search read it.
    pub index_ready: bool,
    /// Files read but not yet in the index the search read (test code a cold build's second
    /// stage was still parsing); absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_pending: Option<usize>,
    /// Whether learned models were loaded (`ranking` says whether they ordered this answer).
    pub learned_ranking: bool,
    pub ranking: RankedBy,
    /// The candidates' language when the loaded models were not trained on it (the fusion ranked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_not_trained_on: Option<locus_syntax::Lang>,
    /// The candidates' language when models trained for it alone ranked them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_model: Option<locus_syntax::Lang>,
    pub files: usize,
    pub entities: usize,
    pub granularity: Granularity,
    /// Entities with a vector when the search ran, and how many should have one.
    pub semantic_ready: usize,
    pub vectors_wanted: usize,
    /// Vectors this search made for its candidates because the snapshot's were not all
    /// ready, and the milliseconds that took (absent when it made none that way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<locus_search::OnDemand>,
    /// Who chose the calls (`hand`, `learned`, `hand (no policy model)`).
    pub policy: &'static str,
    /// Per turn, the calls issued: what was asked, the learned policy's predicted value, and
    /// what it brought.
    pub turn_calls: Vec<Vec<ChosenCall>>,
    /// Per turn, how many calls the learned policy valued and declined (one more entry when it
    /// stopped because none was worth making).
    pub declined_calls: Vec<u32>,
    /// Leading files whose every function the learned models ranked.
    pub pool_files: usize,
    /// Why the learned policy widened that pool, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_widened: Option<String>,
}

/// One issued call, as the stats show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChosenCall {
    pub call: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
    pub returned: u32,
    pub new: u32,
}

impl Stats {
    pub fn new(ws: &Workspace, loc: &Localization, granularity: Granularity, index_ready: bool) -> Stats {
        let t = &loc.trace;
        Stats {
            ms: round(t.ms, 10.0),
            turns: t.turns.len(),
            calls: t.calls,
            efficiency: round(t.efficiency as f64, 1000.0),
            redundant_calls: t.redundant_calls,
            skipped_calls: t.skipped_calls,
            signals: t.signals,
            stop: t.stop,
            index_ready,
            files_pending: None,
            learned_ranking: ws.scorer.is_some(),
            ranking: t.ranking,
            model_not_trained_on: t.model_not_trained_on,
            language_model: t.language_model,
            files: ws.index.files.len(),
            entities: ws.index.n_entities(),
            granularity,
            semantic_ready: t.semantic_ready,
            vectors_wanted: ws.vectors.as_ref().map(|d| d.wanted).unwrap_or(0),
            on_demand: t.on_demand,
            policy: t.policy,
            turn_calls: t
                .turns
                .iter()
                .map(|turn| {
                    turn.calls
                        .iter()
                        .map(|c| ChosenCall {
                            call: c.call.clone(),
                            value: c.value,
                            returned: c.returned,
                            new: c.new,
                        })
                        .collect()
                })
                .collect(),
            declined_calls: {
                let stopped_at = t.declined.iter().map(|d| d.turn as usize).max().unwrap_or(0);
                let mut per_turn = vec![0u32; t.turns.len().max(stopped_at)];
                for d in &t.declined {
                    per_turn[d.turn as usize - 1] += 1;
                }
                per_turn
            },
            pool_files: t.pool_files,
            pool_widened: t.pool_widened.clone(),
        }
    }
}

fn round(x: f64, per_unit: f64) -> f64 {
    (x * per_unit).round() / per_unit
}
