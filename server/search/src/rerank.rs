//! The learned re-ranking step: takes the fusion's rankings as data, pools the candidates a
//! learned [`Scorer`] sees, computes their feature rows ([`crate::features`]), and puts the
//! functions, then the files, in the models' order. Without a scorer the fusion's order stands.

use locus_index::EntityId;
use locus_syntax::Lang;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::features::{self, CallFeatures, CandidateFeatures, FileFeatures, FunctionFeatures};
use crate::fusion::Fused;
use crate::localization::RankedBy;

/// A learned scorer of candidates (the localization models), supplied by the caller.
pub trait Scorer: Sync + Send {
    /// One score per function row; higher is more likely to need the fix.
    fn score(&self, rows: &[FunctionFeatures]) -> Vec<f32>;

    /// One score per file row, or `None` when the scorer ranks functions only (the file
    /// ranking then stays the fusion's).
    fn score_files(&self, _rows: &[FileFeatures]) -> Option<Vec<f32>> {
        None
    }

    /// Whether [`Scorer::score_tail`] has a model (the candidate inputs are computed only then).
    fn has_tail(&self) -> bool {
        false
    }

    /// One score per function row from the row and its [`CandidateFeatures`], ordering the
    /// candidates after the first [`KEEP_TOP`] of [`Scorer::score`]; `None` when the scorer has
    /// no such model (the order then stays `score`'s). Asked only when the encoder's vectors
    /// are there.
    fn score_tail(&self, _rows: &[FunctionFeatures], _candidate: &[CandidateFeatures]) -> Option<Vec<f32>> {
        None
    }

    /// The search policy's value of each candidate call (`models/policy.onnx`), or `None` when
    /// the scorer has no policy model (the hand-set policy then decides).
    fn call_values(&self, _rows: &[CallFeatures]) -> Option<Vec<f32>> {
        None
    }

    /// The value a call must reach to be issued, as the policy model was trained to use it.
    fn call_threshold(&self) -> Option<f32> {
        None
    }

    /// Whether the scorer was trained on issues of `language`. A scorer is never applied to a
    /// language it was not trained on: the fusion's order stands, and the trace says why.
    fn covers(&self, _language: Lang) -> bool {
        true
    }

    /// Where the predicted function set of this scorer's ranking ends (ratio to the best
    /// score, most items), when it was calibrated for its scores; `None`: the fusion's cut-off.
    fn predicted_set(&self) -> Option<(f32, usize)> {
        None
    }

    /// A scorer trained for `language` alone, which ranks that language's candidates in this
    /// one's place; `None` when there is none.
    fn for_language(&self, _language: Lang) -> Option<&dyn Scorer> {
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
/// The tail model's scores are scaled to start this far below the last candidate kept.
const TAIL_BELOW: f32 = 0.99;

/// The final orders and what the models saw.
pub struct Reranked {
    /// Functions, best first, with scores.
    pub functions: Vec<(EntityId, f32)>,
    /// Files (file entity, score, the entity that represents it), best first.
    pub files: Vec<(EntityId, f32, EntityId)>,
    /// The function candidates' rows, in the final order, when features or a model were wanted.
    pub rows: Vec<(EntityId, FunctionFeatures)>,
    /// The file candidates' rows, in the fusion's order, when features or a file model were wanted.
    pub file_rows: Vec<(EntityId, FileFeatures)>,
    pub ranked_by: RankedBy,
    /// The candidates' language, when the scorer was not trained on it (and so did not rank).
    pub untrained_language: Option<Lang>,
    /// The candidates' language, when a scorer trained for it alone ranked them.
    pub language_model: Option<Lang>,
    /// Where the predicted function set ends, when the scorer that ranked the functions
    /// records it ([`Scorer::predicted_set`]).
    pub predicted_set: Option<(f32, usize)>,
    /// The function and file pools the models see (whether or not a model ranked), when asked.
    pub candidates: Option<(Vec<EntityId>, Vec<EntityId>)>,
}

/// Puts the fused candidates in the scorer's order (functions, then files), or leaves the
/// fusion's order without one; computes the candidates' rows when `collect_features`.
pub fn rerank(
    fused: &Fused<'_>,
    scorer: Option<&dyn Scorer>,
    collect_features: bool,
    collect_candidates: bool,
    pool_files: usize,
) -> Reranked {
    let fusion_files = fused.ranked_files();
    let language = scorer.and_then(|_| pool_language(fused, &fusion_files));
    let specific = scorer.zip(language).and_then(|(s, l)| s.for_language(l));
    let scorer = specific.or(scorer);
    let untrained_language = scorer.zip(language).and_then(|(s, l)| (!s.covers(l)).then_some(l));
    let scorer = scorer.filter(|_| untrained_language.is_none());
    let language_model = specific.and(language);
    let fns = final_functions(fused, scorer, collect_features, pool_files, &fusion_files);
    let (files, file_rows, files_learned) = final_files(fused, scorer, collect_features, &fusion_files, &fns);
    let candidates = collect_candidates.then(|| {
        let (pool, _) = candidate_pool(fused, &fused.ranked_functions(), &fusion_files, pool_files);
        let file_ids = file_pool(fused, &fusion_files, &fns.ranked).into_iter().map(|i| fusion_files[i].0);
        (pool.into_iter().map(|p| p.0).collect(), file_ids.collect())
    });
    let predicted_set = scorer.filter(|_| !fns.learned.is_empty()).and_then(|s| s.predicted_set());
    Reranked {
        candidates,
        predicted_set,
        ranked_by: RankedBy::new(!fns.learned.is_empty(), fns.tail, files_learned),
        functions: fns.ranked,
        files,
        rows: fns.rows,
        file_rows,
        untrained_language,
        language_model,
    }
}

/// The language of the candidates: that of most of the fusion's leading [`FILE_POOL`] files
/// (ties go to the leading file's), `None` without files.
fn pool_language(fused: &Fused<'_>, files: &[(EntityId, f32, EntityId)]) -> Option<Lang> {
    let langs: Vec<Lang> = files.iter().take(FILE_POOL).map(|f| fused.ix.file_of(f.0).unit.lang).collect();
    let first = *langs.first()?;
    let count = |l: Lang| langs.iter().filter(|&&x| x == l).count();
    let other = if first == Lang::Python { Lang::Rust } else { Lang::Python };
    Some(if count(other) > count(first) { other } else { first })
}

/// What [`final_functions`] decided.
struct FinalFunctions {
    ranked: Vec<(EntityId, f32)>,
    rows: Vec<(EntityId, FunctionFeatures)>,
    /// The function model's score per candidate it saw (empty without a model).
    learned: FxHashMap<EntityId, f32>,
    /// Whether the tail model ordered the candidates after the first [`KEEP_TOP`].
    tail: bool,
}

/// The final function ranking: the fusion's, re-scored by the learned model if present; the
/// candidates' feature rows (in the final order) when features or a model are wanted; and the
/// model's own score of each candidate it saw.
fn final_functions(
    fused: &Fused<'_>,
    scorer: Option<&dyn Scorer>,
    collect_features: bool,
    pool_files: usize,
    files: &[(EntityId, f32, EntityId)],
) -> FinalFunctions {
    let funcs = fused.ranked_functions();
    if !collect_features && scorer.is_none() {
        return FinalFunctions {
            ranked: funcs,
            rows: Vec::new(),
            learned: FxHashMap::default(),
            tail: false,
        };
    }
    let (pool, tail) = candidate_pool(fused, &funcs, files, pool_files);
    let rows = features::function_features(fused, &pool, files);
    let learned = scorer.map(|s| s.score(&rows)).filter(|l| l.len() == pool.len());
    let (Some(scorer), Some(learned)) = (scorer, learned) else {
        let rows = pool.iter().map(|p| p.0).zip(rows).collect();
        return FinalFunctions { ranked: funcs, rows, learned: FxHashMap::default(), tail: false };
    };
    let by_id = pool.iter().map(|p| p.0).zip(learned.iter().copied()).collect();
    let ids: Vec<EntityId> = pool.iter().map(|p| p.0).collect();
    let tail_scores = match fused.dense {
        Some(_) if scorer.has_tail() => scorer
            .score_tail(&rows, &features::candidate_features(fused, &ids))
            .filter(|t| t.len() == pool.len()),
        _ => None,
    };
    let mut head: Vec<(EntityId, f32, FunctionFeatures)> =
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
        let floor = order.last().map(|&i| head[i].1).unwrap_or(1.0) * TAIL_BELOW;
        let top = rest.first().map(|&i| t[i]).unwrap_or(1.0).max(1e-6);
        for &i in &rest {
            head[i].1 = floor * (t[i] / top).max(0.0);
        }
        order.extend(rest);
    }
    let head: Vec<(EntityId, f32, FunctionFeatures)> = order.into_iter().map(|i| head[i]).collect();
    let ranked = rescored(head.iter().map(|h| (h.0, h.1)).collect(), tail);
    let rows = head.into_iter().map(|h| (h.0, h.2)).collect();
    FinalFunctions { ranked, rows, learned: by_id, tail: tailed }
}

/// The candidates the learned scorer sees: the fusion's top [`RERANK_DEPTH`], then the other
/// functions of the `pool_files` leading files (fused score 0, file by file in source order),
/// at most [`POOL_MAX`] in all (scaled with a deeper pool); and the rest of the fusion's ranking.
#[allow(clippy::type_complexity)]
fn candidate_pool(
    fused: &Fused<'_>,
    funcs: &[(EntityId, f32)],
    files: &[(EntityId, f32, EntityId)],
    pool_files: usize,
) -> (Vec<(EntityId, f32)>, Vec<(EntityId, f32)>) {
    let ix = fused.ix;
    let depth = funcs.len().min(RERANK_DEPTH);
    let mut pool: Vec<(EntityId, f32)> = funcs[..depth].to_vec();
    let mut in_pool: FxHashSet<EntityId> = pool.iter().map(|f| f.0).collect();
    let pool_max = (POOL_MAX * pool_files / POOL_FILES).max(POOL_MAX);
    'files: for &(fid, _, _) in files.iter().take(pool_files) {
        let fi = ix.loc(fid).file;
        for id in ix.entities_of_file(fi) {
            if pool.len() >= pool_max {
                break 'files;
            }
            if ix.entity(id).kind.is_item() && in_pool.insert(id) {
                pool.push((id, 0.0));
            }
        }
    }
    let tail = funcs[depth..].iter().copied().filter(|f| !in_pool.contains(&f.0)).collect();
    (pool, tail)
}

/// The files the learned file model scores, as indices into the fusion's file ranking: its
/// first [`FILE_POOL`], then the files of the function model's leading functions.
fn file_pool(
    fused: &Fused<'_>,
    files: &[(EntityId, f32, EntityId)],
    ranked_functions: &[(EntityId, f32)],
) -> Vec<usize> {
    let mut pool: Vec<usize> = (0..files.len().min(FILE_POOL)).collect();
    let index: FxHashMap<EntityId, usize> = files.iter().enumerate().map(|(i, f)| (f.0, i)).collect();
    for &(id, _) in ranked_functions.iter().take(FILE_POOL_FUNCTIONS) {
        if let Some(&i) = index.get(&fused.ix.file_entity(id)) {
            if !pool.contains(&i) {
                pool.push(i);
            }
        }
    }
    pool
}

/// The final file ranking: the fusion's, with its pool re-scored by the learned file model
/// when there is one; the pool's feature rows when features are wanted; and whether the file
/// model ranked.
#[allow(clippy::type_complexity)]
fn final_files(
    fused: &Fused<'_>,
    scorer: Option<&dyn Scorer>,
    collect_features: bool,
    files: &[(EntityId, f32, EntityId)],
    fns: &FinalFunctions,
) -> (Vec<(EntityId, f32, EntityId)>, Vec<(EntityId, FileFeatures)>, bool) {
    let want = collect_features || (scorer.is_some() && !fns.learned.is_empty());
    if !want || files.is_empty() {
        return (files.to_vec(), Vec::new(), false);
    }
    let pool = file_pool(fused, files, &fns.ranked);
    let rows = features::file_features(fused, files, &pool, &fns.rows, &fns.learned);
    let learned = match scorer {
        Some(s) if !fns.learned.is_empty() => s.score_files(&rows).filter(|l| l.len() == pool.len()),
        _ => None,
    };
    let rows_out = pool.iter().map(|&i| files[i].0).zip(rows).collect();
    let Some(learned) = learned else { return (files.to_vec(), rows_out, false) };
    // A file's representative entity: its best function by the model, else the fusion's.
    let mut best_fn: FxHashMap<EntityId, (f32, EntityId)> = FxHashMap::default();
    for (&id, &l) in &fns.learned {
        let e = best_fn.entry(fused.ix.file_entity(id)).or_insert((l, id));
        if l > e.0 || (l == e.0 && id < e.1) {
            *e = (l, id);
        }
    }
    let in_pool: FxHashSet<usize> = pool.iter().copied().collect();
    let mut head: Vec<(EntityId, f32)> = pool.iter().zip(learned).map(|(&i, s)| (files[i].0, s)).collect();
    // Stable: ties keep the pool's (the fusion's) order, as in train_file_ranker.py.
    head.sort_by(|a, b| b.1.total_cmp(&a.1));
    let tail: Vec<(EntityId, f32)> =
        files.iter().enumerate().filter(|(i, _)| !in_pool.contains(i)).map(|(_, f)| (f.0, f.1)).collect();
    let fusion_best: FxHashMap<EntityId, EntityId> = files.iter().map(|f| (f.0, f.2)).collect();
    let ranked = rescored(head, tail)
        .into_iter()
        .map(|(fid, s)| {
            let best = match best_fn.get(&fid) {
                Some(&(_, id)) if fused.ev.contains_key(&id) => id,
                _ => fusion_best[&fid],
            };
            (fid, s, best)
        })
        .collect();
    (ranked, rows_out, true)
}

/// A ranking (functions or files) in a learned model's order: `head` (scored by the model,
/// best first) then `tail` (the rest of the fusion's ranking, kept below). Learned scores may be
/// negative (log-odds): they are shifted so the list stays positive.
fn rescored(head: Vec<(EntityId, f32)>, tail: Vec<(EntityId, f32)>) -> Vec<(EntityId, f32)> {
    let min = head.iter().map(|h| h.1).fold(f32::INFINITY, f32::min);
    let shift = if min <= 0.0 { -min + 1e-3 } else { 0.0 };
    let tail_scale = head.last().map(|h| h.1 + shift).unwrap_or(1.0);
    head.into_iter()
        .map(|(id, s)| (id, s + shift))
        .chain(tail.into_iter().map(|(id, s)| (id, s.min(tail_scale * TAIL_BELOW))))
        .collect()
}
