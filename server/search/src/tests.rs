//! Engine tests on small in-memory workspaces: the trace's accounting, cancellation, and the
//! candidates a learned scorer sees.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use locus_index::{FileUnit, Index, Skipped};

use crate::engine::{
    locate, Localization, Mode, Options, Scorer, CANDIDATE_FEATURE_NAMES, FEATURE_NAMES, FILE_FEATURE_NAMES,
    KEEP_TOP, N_CANDIDATE_FEATURES, N_FEATURES, N_FILE_FEATURES,
};
use crate::tools::Semantic;

fn index_of(files: &[(&str, String)]) -> Index {
    let units = files
        .iter()
        .map(|(p, t)| {
            let lang = locus_syntax::Lang::of_path(p).unwrap();
            Arc::new(FileUnit::build(p.to_string(), lang, Arc::from(t.as_str())))
        })
        .collect();
    Index::from_units(PathBuf::from("/ws"), units, Skipped::default())
}

/// `billing.py` holds the named function and 30 others with nothing in common with the issue;
/// `other.py` shares the issue's words.
fn workspace() -> Index {
    let mut billing = String::from("def apply_refund(order, amount):\n    return order.total - amount\n\n");
    for i in 0..30 {
        billing.push_str(&format!("def helper_{i}(x):\n    return x + {i}\n\n"));
    }
    let other =
        "def refund_amount(order):\n    \"\"\"The refund amount of an order.\"\"\"\n    return order.total\n";
    index_of(&[("billing.py", billing), ("other.py", other.to_string())])
}

const ISSUE: &str = "`apply_refund` gives back the wrong amount when an order is refunded twice.";

fn run(ix: &Index, opts: &Options) -> Localization {
    locate(ix, None, ISSUE, opts, &AtomicBool::new(false)).expect("not cancelled")
}

fn names(loc: &Localization) -> Vec<&str> {
    loc.functions.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn trace_accounts_for_every_call() {
    let ix = workspace();
    let loc = run(&ix, &Options::default());
    assert_eq!(names(&loc)[0], "billing.py:apply_refund");
    let t = &loc.trace;
    let calls: Vec<_> = t.turns.iter().flat_map(|turn| &turn.calls).collect();
    assert_eq!(t.calls as usize, calls.len());
    assert_eq!(t.redundant_calls as usize, calls.iter().filter(|c| c.efficiency == 0.0).count());
    for c in &calls {
        assert!(c.new <= c.returned, "{c:?}");
        let g = if c.returned == 0 { 0.0 } else { c.new as f32 / c.returned as f32 };
        assert_eq!(c.efficiency, g, "{c:?}");
    }
    let mean = calls.iter().map(|c| c.efficiency).sum::<f32>() / calls.len() as f32;
    assert!((t.efficiency - mean).abs() < 1e-6);
}

#[test]
fn a_cancelled_search_stops() {
    let ix = workspace();
    let cancel = AtomicBool::new(true);
    assert!(locate(&ix, None, ISSUE, &Options::default(), &cancel).is_err());
}

#[test]
fn features_cover_the_leading_files_without_changing_the_fusion_ranking() {
    let ix = workspace();
    let plain = run(&ix, &Options { max_results: 100, ..Options::default() });
    let with = run(&ix, &Options { max_results: 100, collect_features: true, ..Options::default() });
    assert_eq!(names(&plain), names(&with));
    assert!(plain.features.is_empty());
    // Every function of the leading file is a candidate, found by a tool or not.
    let feats: Vec<&str> = with.features.iter().map(|f| f.0.as_str()).collect();
    for i in 0..30 {
        let name = format!("billing.py:helper_{i}");
        assert!(feats.contains(&name.as_str()), "{name} missing from {feats:?}");
    }
    // `lexical` is the whole issue's BM25 relative to the best, for every candidate.
    let lex = FEATURE_NAMES.iter().position(|n| *n == "lexical").unwrap();
    let of = |n: &str| with.features.iter().find(|f| f.0 == n).unwrap().1[lex];
    assert!(of("billing.py:apply_refund") > 0.0 && of("other.py:refund_amount") > 0.0);
    assert_eq!(of("billing.py:helper_7"), 0.0);
}

/// An encoder stand-in: entity `id` has cosine `1 / (1 + id)` with any query; the nearest
/// are the two first entities.
struct FakeEncoder(usize);

impl Semantic for FakeEncoder {
    fn nearest(&self, _query: &str, k: usize) -> Vec<(u32, f32)> {
        (0..self.0.min(k).min(2) as u32).map(|id| (id, 1.0 / (1.0 + id as f32))).collect()
    }
    fn similarity(&self, _query: &str, ids: &[u32]) -> Vec<f32> {
        ids.iter().map(|&id| 1.0 / (1.0 + id as f32)).collect()
    }
    fn ready(&self) -> usize {
        self.0
    }
}

#[test]
fn candidate_inputs_cover_every_candidate_and_leave_the_model_inputs_alone() {
    let ix = workspace();
    let opts = Options { max_results: 100, collect_features: true, ..Options::default() };
    let cancel = AtomicBool::new(false);
    let enc = FakeEncoder(ix.n_entities());
    let with = locate(&ix, Some(&enc), ISSUE, &opts, &cancel).unwrap();
    assert_eq!(CANDIDATE_FEATURE_NAMES, ["semantic_all"]);
    assert_eq!(with.candidate_features.len(), with.features.len());
    // Every pooled function has its cosine over the best pooled one's, in (0, 1], one at 1.
    let vals: Vec<f32> = with.candidate_features.iter().map(|c| c[0]).collect();
    assert!(vals.iter().all(|&v| v > 0.0 && v <= 1.0), "{vals:?}");
    assert!(vals.contains(&1.0), "{vals:?}");
    // Without an encoder the column is 0, and the model's own inputs are the same rows.
    let without = run(&ix, &opts);
    assert!(without.candidate_features.iter().all(|c| c[0] == 0.0));
    assert_eq!(without.candidate_features.len(), without.features.len());
    assert!(run(&ix, &Options { max_results: 100, ..Options::default() }).candidate_features.is_empty());
}

#[test]
fn the_pool_depth_sets_which_files_give_every_function() {
    let ix = workspace();
    let names_of = |pool_files: usize| -> Vec<String> {
        let opts = Options { max_results: 100, collect_features: true, pool_files, ..Options::default() };
        run(&ix, &opts).features.into_iter().map(|f| f.0).collect()
    };
    // No pooled file: only what the tools returned, none of the helpers.
    let none = names_of(0);
    assert!(none.contains(&"billing.py:apply_refund".to_string()), "{none:?}");
    assert!(!none.contains(&"billing.py:helper_7".to_string()), "{none:?}");
    // The leading file pooled: every helper is a candidate.
    assert!(names_of(1).contains(&"billing.py:helper_7".to_string()));
}

/// Scores candidates by one feature, to see the scorer's order take over.
struct ByFeature(usize, f32);

impl Scorer for ByFeature {
    fn score(&self, rows: &[[f32; N_FEATURES]]) -> Vec<f32> {
        rows.iter().map(|r| self.1 * r[self.0]).collect()
    }
}

#[test]
fn a_scorer_ranks_the_whole_pool() {
    let ix = workspace();
    // Longest first: the scorer's order, not the fusion's, and candidates no tool returned
    // (the helpers) can rise above those that were.
    let lines = FEATURE_NAMES.iter().position(|n| *n == "log_lines").unwrap();
    let opts =
        Options { max_results: 100, scorer: Some(Arc::new(ByFeature(lines, 1.0))), ..Options::default() };
    let loc = run(&ix, &opts);
    let scores: Vec<f32> = loc.functions.iter().map(|r| r.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(scores.iter().all(|&s| s > 0.0), "{scores:?}");
    assert_eq!(loc.functions.len(), 32);
    assert_eq!(names(&loc)[0], "other.py:refund_amount");
    let mode = Options { mode: Mode::Bm25, ..opts };
    assert!(!run(&ix, &mode).functions.is_empty());
}

/// Scores functions by one feature and files by one file feature.
struct WithFiles(usize, usize, f32);

impl Scorer for WithFiles {
    fn score(&self, rows: &[[f32; N_FEATURES]]) -> Vec<f32> {
        rows.iter().map(|r| r[self.0]).collect()
    }

    fn score_files(&self, rows: &[[f32; N_FILE_FEATURES]]) -> Option<Vec<f32>> {
        Some(rows.iter().map(|r| self.2 * r[self.1]).collect())
    }
}

fn file_names(loc: &Localization) -> Vec<&str> {
    loc.files.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn file_rows_summarise_the_files_function_candidates() {
    let ix = workspace();
    let lines = FEATURE_NAMES.iter().position(|n| *n == "log_lines").unwrap();
    let scorer = Arc::new(ByFeature(lines, 1.0));
    let opts = Options { collect_features: true, scorer: Some(scorer), ..Options::default() };
    let loc = run(&ix, &opts);
    let paths: Vec<&str> = loc.file_features.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(paths, file_names(&loc), "the pool is the fusion's file ranking, in order");
    let col = |n: &str| FILE_FEATURE_NAMES.iter().position(|f| *f == n).unwrap();
    for (path, row) in &loc.file_features {
        let members: Vec<f32> = loc
            .features
            .iter()
            .filter(|f| f.0.split(':').next() == Some(path.as_str()))
            .map(|f| f.1[lines])
            .collect();
        assert_eq!(row[col("log_fn_count")], (1.0 + members.len() as f32).ln(), "{path}");
        let best = members.iter().copied().fold(0.0, f32::max);
        assert_eq!(row[col("fn_best")], best, "{path}: the function model's best score in the file");
    }
    assert_eq!(loc.file_features[0].1[col("file_score")], 1.0);
    assert_eq!(loc.file_features[0].1[col("log_file_rank")], 0.0);
}

#[test]
fn a_file_scorer_reorders_the_files() {
    let ix = workspace();
    let lines = FEATURE_NAMES.iter().position(|n| *n == "log_lines").unwrap();
    let rank = FILE_FEATURE_NAMES.iter().position(|n| *n == "log_file_rank").unwrap();
    let fusion = run(&ix, &Options::default());
    assert_eq!(file_names(&fusion), ["billing.py", "other.py"]);
    // Worst fusion rank first: the file model's order replaces the fusion's.
    let opts = Options { scorer: Some(Arc::new(WithFiles(lines, rank, 1.0))), ..Options::default() };
    let loc = run(&ix, &opts);
    assert_eq!(file_names(&loc), ["other.py", "billing.py"]);
    let scores: Vec<f32> = loc.files.iter().map(|r| r.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores.iter().all(|&s| s > 0.0), "{scores:?}");
    // A scorer without a file model leaves the fusion's file order.
    let opts = Options { scorer: Some(Arc::new(ByFeature(lines, 1.0))), ..Options::default() };
    assert_eq!(file_names(&run(&ix, &opts)), ["billing.py", "other.py"]);
}

#[test]
fn an_unsure_search_requeries_with_words_learned_from_its_leaders() {
    let ix = workspace();
    // No name in the issue: the two refund functions tie on its words, so turn 2 is unsure.
    let issue = "A refund gives back the wrong amount.";
    let loc = locate(&ix, None, issue, &Options::default(), &AtomicBool::new(false)).unwrap();
    let turn2 = &loc.trace.turns[1].calls;
    let requery: Vec<&str> = turn2.iter().filter(|c| c.tool == "lexical").map(|c| c.call.as_str()).collect();
    assert_eq!(requery.len(), 1, "{turn2:?}");
    let learned = requery[0].split(" + ").nth(1).unwrap().trim_end_matches(')');
    let issue_terms = locus_index::text::terms(issue);
    for t in learned.split(' ') {
        assert!(!issue_terms.iter().any(|q| q == t), "`{t}` is already in the issue");
    }
    // `total` is in both leaders' bodies (`order.total`) and not in the issue.
    assert!(learned.split(' ').any(|t| t == "total"), "{learned}");
    // A search that found its target at once does not re-query.
    let sure = run(&ix, &Options::default());
    let lexical_calls =
        sure.trace.turns.iter().flat_map(|t| &t.calls).filter(|c| c.tool == "lexical").count();
    assert_eq!(lexical_calls, 1, "{:?}", sure.trace.turns);
}

/// Scores functions by one feature, and the tail by the negated `semantic_all`.
struct WithTail(usize);

impl Scorer for WithTail {
    fn score(&self, rows: &[[f32; N_FEATURES]]) -> Vec<f32> {
        rows.iter().map(|r| r[self.0]).collect()
    }

    fn has_tail(&self) -> bool {
        true
    }

    fn score_tail(
        &self,
        _rows: &[[f32; N_FEATURES]],
        candidate: &[[f32; N_CANDIDATE_FEATURES]],
    ) -> Option<Vec<f32>> {
        Some(candidate.iter().map(|c| 1.0 - c[0]).collect())
    }
}

#[test]
fn a_tail_model_orders_what_follows_the_function_models_first_candidates() {
    let ix = workspace();
    let lines = FEATURE_NAMES.iter().position(|n| *n == "log_lines").unwrap();
    let with = |scorer: Arc<dyn Scorer>| Options {
        max_results: 100,
        collect_features: true,
        scorer: Some(scorer),
        ..Options::default()
    };
    let (plain, tailed) = (with(Arc::new(ByFeature(lines, 1.0))), with(Arc::new(WithTail(lines))));
    let enc = FakeEncoder(ix.n_entities());
    let cancel = AtomicBool::new(false);
    let before = locate(&ix, Some(&enc), ISSUE, &plain, &cancel).unwrap();
    let loc = locate(&ix, Some(&enc), ISSUE, &tailed, &cancel).unwrap();
    // The first KEEP_TOP are the function model's, in its order.
    assert_eq!(names(&loc)[..KEEP_TOP], names(&before)[..KEEP_TOP]);
    assert_eq!(loc.functions.len(), before.functions.len());
    // After them the tail model's order (lowest cosine first, as WithTail scores), below them.
    let cos: Vec<f32> = loc.candidate_features[KEEP_TOP..].iter().map(|c| c[0]).collect();
    assert!(cos.windows(2).all(|w| w[0] <= w[1]), "{cos:?}");
    assert_ne!(names(&loc)[KEEP_TOP..], names(&before)[KEEP_TOP..]);
    let scores: Vec<f32> = loc.functions.iter().map(|r| r.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // Without the encoder's vectors the tail model is not asked.
    assert_eq!(names(&run(&ix, &tailed)), names(&run(&ix, &plain)));
}
