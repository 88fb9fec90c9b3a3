//! Engine tests on small in-memory workspaces: the trace's accounting, cancellation, and the
//! candidates a learned scorer sees.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use locus_index::{EntityId, FileUnit, Index, Skipped};

use crate::features::{CallFeatures, CandidateFeatures, FileFeatures, FunctionFeatures};
use crate::localization::{Localization, Mode, Options, Policy, Stop};
use crate::rerank::{Scorer, KEEP_TOP};
use crate::search::locate;
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
    run_with(ix, None, opts)
}

fn run_with(ix: &Index, scorer: Option<&dyn Scorer>, opts: &Options) -> Localization {
    locate(ix, None, scorer, ISSUE, opts, &AtomicBool::new(false)).expect("not cancelled")
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
    assert!(locate(&ix, None, None, ISSUE, &Options::default(), &cancel).is_err());
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
    let of = |n: &str| with.features.iter().find(|f| f.0 == n).unwrap().1.lexical;
    assert!(of("billing.py:apply_refund") > 0.0 && of("other.py:refund_amount") > 0.0);
    assert_eq!(of("billing.py:helper_7"), 0.0);
}

/// An encoder stand-in: entity `id` has cosine `1 / (1 + id)` with any query; the nearest
/// are the two first entities.
struct FakeEncoder(usize);

impl Semantic for FakeEncoder {
    fn nearest(&self, _query: &str, k: usize) -> Vec<(EntityId, f32)> {
        (0..self.0.min(k).min(2) as u32).map(|id| (EntityId(id), 1.0 / (1.0 + id as f32))).collect()
    }
    fn similarity(&self, _query: &str, ids: &[EntityId]) -> Vec<f32> {
        ids.iter().map(|&id| 1.0 / (1.0 + id.0 as f32)).collect()
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
    let with = locate(&ix, Some(&enc), None, ISSUE, &opts, &cancel).unwrap();
    assert_eq!(CandidateFeatures::NAMES, ["semantic_all"]);
    assert_eq!(with.candidate_features.len(), with.features.len());
    // Every pooled function has its cosine over the best pooled one's, in (0, 1], one at 1.
    let vals: Vec<f32> = with.candidate_features.iter().map(|c| c.semantic_all).collect();
    assert!(vals.iter().all(|&v| v > 0.0 && v <= 1.0), "{vals:?}");
    assert!(vals.contains(&1.0), "{vals:?}");
    // Without an encoder the column is 0, and the model's own inputs are the same rows.
    let without = run(&ix, &opts);
    assert!(without.candidate_features.iter().all(|c| c.semantic_all == 0.0));
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
struct ByFeature(fn(&FunctionFeatures) -> f32);

impl Scorer for ByFeature {
    fn score(&self, rows: &[FunctionFeatures]) -> Vec<f32> {
        rows.iter().map(self.0).collect()
    }
}

fn log_lines(r: &FunctionFeatures) -> f32 {
    r.log_lines
}

#[test]
fn a_scorer_ranks_the_whole_pool() {
    let ix = workspace();
    // Longest first: the scorer's order, not the fusion's, and candidates no tool returned
    // (the helpers) can rise above those that were.
    let opts = Options { max_results: 100, ..Options::default() };
    let scorer = ByFeature(log_lines);
    let loc = run_with(&ix, Some(&scorer), &opts);
    let scores: Vec<f32> = loc.functions.iter().map(|r| r.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(scores.iter().all(|&s| s > 0.0), "{scores:?}");
    assert_eq!(loc.functions.len(), 32);
    assert_eq!(names(&loc)[0], "other.py:refund_amount");
    let mode = Options { mode: Mode::Bm25, ..opts };
    assert!(!run_with(&ix, Some(&scorer), &mode).functions.is_empty());
}

/// Scores functions by one feature and files by one file feature.
struct WithFiles(fn(&FunctionFeatures) -> f32, fn(&FileFeatures) -> f32);

impl Scorer for WithFiles {
    fn score(&self, rows: &[FunctionFeatures]) -> Vec<f32> {
        rows.iter().map(self.0).collect()
    }

    fn score_files(&self, rows: &[FileFeatures]) -> Option<Vec<f32>> {
        Some(rows.iter().map(self.1).collect())
    }
}

fn file_names(loc: &Localization) -> Vec<&str> {
    loc.files.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn file_rows_summarise_the_files_function_candidates() {
    let ix = workspace();
    let opts = Options { collect_features: true, ..Options::default() };
    let loc = run_with(&ix, Some(&ByFeature(log_lines)), &opts);
    let paths: Vec<&str> = loc.file_features.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(paths, file_names(&loc), "the pool is the fusion's file ranking, in order");
    for (path, row) in &loc.file_features {
        let members: Vec<f32> = loc
            .features
            .iter()
            .filter(|f| f.0.split(':').next() == Some(path.as_str()))
            .map(|f| f.1.log_lines)
            .collect();
        assert_eq!(row.log_fn_count, (1.0 + members.len() as f32).ln(), "{path}");
        let best = members.iter().copied().fold(0.0, f32::max);
        assert_eq!(row.fn_best, best, "{path}: the function model's best score in the file");
    }
    assert_eq!(loc.file_features[0].1.file_score, 1.0);
    assert_eq!(loc.file_features[0].1.log_file_rank, 0.0);
}

#[test]
fn a_file_scorer_reorders_the_files() {
    let ix = workspace();
    let fusion = run(&ix, &Options::default());
    assert_eq!(file_names(&fusion), ["billing.py", "other.py"]);
    // Worst fusion rank first: the file model's order replaces the fusion's.
    let loc = run_with(&ix, Some(&WithFiles(log_lines, |r| r.log_file_rank)), &Options::default());
    assert_eq!(file_names(&loc), ["other.py", "billing.py"]);
    let scores: Vec<f32> = loc.files.iter().map(|r| r.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores.iter().all(|&s| s > 0.0), "{scores:?}");
    // A scorer without a file model leaves the fusion's file order.
    let loc = run_with(&ix, Some(&ByFeature(log_lines)), &Options::default());
    assert_eq!(file_names(&loc), ["billing.py", "other.py"]);
}

#[test]
fn an_unsure_search_requeries_with_words_learned_from_its_leaders() {
    let ix = workspace();
    // No name in the issue: the two refund functions tie on its words, so turn 2 is unsure.
    let issue = "A refund gives back the wrong amount.";
    let loc = locate(&ix, None, None, issue, &Options::default(), &AtomicBool::new(false)).unwrap();
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
struct WithTail(fn(&FunctionFeatures) -> f32);

impl Scorer for WithTail {
    fn score(&self, rows: &[FunctionFeatures]) -> Vec<f32> {
        rows.iter().map(self.0).collect()
    }

    fn has_tail(&self) -> bool {
        true
    }

    fn score_tail(&self, _rows: &[FunctionFeatures], candidate: &[CandidateFeatures]) -> Option<Vec<f32>> {
        Some(candidate.iter().map(|c| 1.0 - c.semantic_all).collect())
    }
}

#[test]
fn a_tail_model_orders_what_follows_the_function_models_first_candidates() {
    let ix = workspace();
    let opts = Options { max_results: 100, collect_features: true, ..Options::default() };
    let (plain, tailed) = (ByFeature(log_lines), WithTail(log_lines));
    let enc = FakeEncoder(ix.n_entities());
    let cancel = AtomicBool::new(false);
    let before = locate(&ix, Some(&enc), Some(&plain), ISSUE, &opts, &cancel).unwrap();
    let loc = locate(&ix, Some(&enc), Some(&tailed), ISSUE, &opts, &cancel).unwrap();
    // The first KEEP_TOP are the function model's, in its order.
    assert_eq!(names(&loc)[..KEEP_TOP], names(&before)[..KEEP_TOP]);
    assert_eq!(loc.functions.len(), before.functions.len());
    // After them the tail model's order (lowest cosine first, as WithTail scores), below them.
    let cos: Vec<f32> = loc.candidate_features[KEEP_TOP..].iter().map(|c| c.semantic_all).collect();
    assert!(cos.windows(2).all(|w| w[0] <= w[1]), "{cos:?}");
    assert_ne!(names(&loc)[KEEP_TOP..], names(&before)[KEEP_TOP..]);
    let scores: Vec<f32> = loc.functions.iter().map(|r| r.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // Without the encoder's vectors the tail model is not asked.
    assert_eq!(names(&run_with(&ix, Some(&tailed), &opts)), names(&run_with(&ix, Some(&plain), &opts)));
}

/// `models/features.json`, which the training scripts read, is the engine's own schema byte for
/// byte; `UPDATE_SCHEMA=1 cargo test -p locus-search schema` rewrites it after a change here.
#[test]
fn the_committed_schema_is_the_engines() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(crate::features::SCHEMA_PATH);
    let want = crate::features::schema_json();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} differs from the engine's feature schema; run `UPDATE_SCHEMA=1 cargo test -p locus-search schema` \
         and retrain the models (scripts/model/)",
        path.display()
    );
}

/// A row's columns are its fields in declaration order, named as declared: the struct is the
/// contract, and a model's input is exactly `to_row`.
#[test]
fn feature_rows_are_their_fields_in_name_order() {
    let mut cols = [0.0; FunctionFeatures::WIDTH];
    for (i, c) in cols.iter_mut().enumerate() {
        *c = i as f32;
    }
    let row = FunctionFeatures::from_row(cols);
    assert_eq!(row.to_row(), cols);
    assert_eq!((row.lexical, row.log_lines, row.file_lexical), (0.0, 10.0, 15.0));
    assert_eq!(FunctionFeatures::NAMES[10], "log_lines");
    let json = serde_json::to_value(row).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    let mut names = FunctionFeatures::NAMES.to_vec();
    names.sort_unstable();
    assert_eq!(keys, names, "serde keys (sorted) are the names");
    for (i, n) in FunctionFeatures::NAMES.iter().enumerate() {
        assert_eq!(json[n], i as f64, "{n} is column {i}");
    }
    let tail = crate::features::tail_row(&row, &CandidateFeatures { semantic_all: 7.0 });
    assert_eq!(tail[..FunctionFeatures::WIDTH], cols);
    assert_eq!(tail[FunctionFeatures::WIDTH], 7.0);
    assert_eq!(crate::features::tail_names().len(), crate::features::TAIL_WIDTH);
    assert_eq!(FileFeatures::NAMES.len(), FileFeatures::WIDTH);
}

#[test]
fn call_traces_record_every_issued_call_and_the_declined_ones_without_changing_the_search() {
    let ix = workspace();
    // Two names for the same function: the second symbol call is declined as a duplicate.
    let issue = "`apply_refund` gives back the wrong amount; see `billing.apply_refund` and `apply_refund`.";
    let opts = Options { max_results: 100, ..Options::default() };
    let cancel = AtomicBool::new(false);
    let plain = locate(&ix, None, None, issue, &opts, &cancel).unwrap();
    let with =
        locate(&ix, None, None, issue, &Options { collect_calls: true, ..opts.clone() }, &cancel).unwrap();
    assert_eq!(names(&plain), names(&with));
    assert_eq!(plain.trace.calls, with.trace.calls);
    assert!(plain.trace.considered.is_empty());
    let issued: Vec<_> = with.trace.considered.iter().filter(|c| c.issued).collect();
    assert_eq!(issued.len() as u32, with.trace.calls);
    // An issued call's new entities are those its g_i counted.
    let traced: Vec<u32> = with.trace.turns.iter().flat_map(|t| t.calls.iter().map(|c| c.new)).collect();
    assert_eq!(issued.iter().map(|c| c.new.len() as u32).collect::<Vec<_>>(), traced);
    for c in &with.trace.considered {
        assert!(c.new.iter().all(|e| c.returned.contains(e)), "{c:?}");
        assert!(c.issued == c.declined.is_none(), "{c:?}");
        assert!(c.turn >= 1 && c.turn as usize <= with.trace.turns.len(), "{c:?}");
    }
    let declined: Vec<_> = with.trace.considered.iter().filter(|c| !c.issued).collect();
    assert!(!declined.is_empty(), "{:?}", with.trace.considered);
    // What a declined call would have returned is recorded, and nothing new by its turn's end.
    assert!(declined.iter().all(|c| !c.returned.is_empty()));
    let dup = declined.iter().find(|c| c.tool == "symbol").expect("the duplicate name is declined");
    assert!(dup.new.is_empty(), "{dup:?}");
}

/// Ranks by the fusion's score and values calls with `value`, against `threshold`.
struct Valuing {
    value: fn(&CallFeatures) -> f32,
    threshold: f32,
}

impl Scorer for Valuing {
    fn score(&self, rows: &[FunctionFeatures]) -> Vec<f32> {
        rows.iter().map(|r| r.heuristic).collect()
    }

    fn call_values(&self, rows: &[CallFeatures]) -> Option<Vec<f32>> {
        Some(rows.iter().map(self.value).collect())
    }

    fn call_threshold(&self) -> Option<f32> {
        Some(self.threshold)
    }
}

fn symbols_only(x: &CallFeatures) -> f32 {
    if x.tool_symbol == 1.0 {
        0.9
    } else {
        0.1
    }
}

#[test]
fn the_learned_policy_issues_the_calls_valued_above_its_threshold_and_stops_when_none_is() {
    let ix = workspace();
    let scorer = Valuing { value: symbols_only, threshold: 0.5 };
    let opts =
        Options { policy: Policy::Learned, collect_calls: true, max_results: 100, ..Options::default() };
    let loc = run_with(&ix, Some(&scorer), &opts);
    let t = &loc.trace;
    assert_eq!((t.policy, t.call_threshold), ("learned", Some(0.5)));
    assert_eq!(names(&loc)[0], "billing.py:apply_refund");
    // Turn 1 looks up the name the issue gives; turn 2 asks the whole issue; the expansions are
    // not worth it.
    let tools: Vec<Vec<&str>> =
        t.turns.iter().map(|turn| turn.calls.iter().map(|c| c.tool).collect()).collect();
    assert_eq!(tools, vec![vec!["symbol"], vec!["lexical"]]);
    assert_eq!(t.stop, Stop::LowValue);
    let decided: Vec<_> = t.considered.iter().filter(|c| c.source != "issue").collect();
    assert!(decided.iter().all(|c| c.value.is_some()), "{decided:?}");
    for c in &decided {
        assert_eq!(c.issued, c.value.unwrap() >= 0.5, "{c:?}");
        if !c.issued {
            assert_eq!(c.declined, Some("valued below the policy's threshold"), "{c:?}");
        }
    }
    let graph = decided.iter().filter(|c| c.tool == "graph").count();
    assert!(graph > 0 && decided.iter().all(|c| c.tool != "graph" || !c.issued), "{decided:?}");
    // The symbol call's features say what it would return: one entity, not seen nor ranked yet;
    // the expansions', what the search had found by then.
    let sym = decided.iter().find(|c| c.tool == "symbol").unwrap();
    assert_eq!((sym.x.tool_symbol, sym.x.log_predicted, sym.x.turn), (1.0, 2f32.ln(), 1.0));
    assert_eq!((sym.x.predicted_seen, sym.x.log_predicted_best_rank), (0.0, -1.0), "{:?}", sym.x);
    let expansion = decided.iter().find(|c| c.tool == "graph").unwrap();
    assert_eq!((expansion.x.turn, expansion.x.leader_rank), (3.0, 1.0), "{:?}", expansion.x);
    assert!(expansion.x.log_seen > 0.0, "{:?}", expansion.x);

    // A lower threshold issues the expansions too; exploring issues every candidate.
    let low = Valuing { value: symbols_only, threshold: 0.05 };
    let wide = run_with(&ix, Some(&low), &opts);
    assert!(wide.trace.calls > t.calls);
    let explore = run_with(&ix, None, &Options { policy: Policy::Explore, ..opts.clone() });
    assert_eq!(explore.trace.policy, "explore");
    assert!(explore.trace.considered.iter().all(|c| c.issued || c.declined == Some("over the call budget")));
}

#[test]
fn the_learned_policy_without_a_model_is_the_hand_set_one_and_says_so() {
    let ix = workspace();
    let hand = run_with(&ix, Some(&ByFeature(log_lines)), &Options::default());
    let asked = Options { policy: Policy::Learned, ..Options::default() };
    let fallback = run_with(&ix, Some(&ByFeature(log_lines)), &asked);
    assert_eq!((hand.trace.policy, fallback.trace.policy), ("hand", "hand (no policy model)"));
    assert_eq!(names(&hand), names(&fallback));
    assert_eq!(hand.trace.calls, fallback.trace.calls);
}

#[test]
fn a_literal_with_a_word_no_document_holds_is_nowhere_in_the_workspace() {
    let ix = workspace();
    use crate::policy::may_occur;
    assert!(may_occur(&ix, "return order.total - amount"));
    // Partial words at the ends say nothing: "turn" may be the end of "return".
    assert!(may_occur(&ix, "turn order.tot"));
    assert!(!may_occur(&ix, "the refund was declined by the gateway"));
    // A compound word at an edge must be inside some indexed word: "elper_3" is in
    // "helper_31"; "refund_gateway" (a name from the reporter's own code) is in none.
    assert!(may_occur(&ix, "elper_3"));
    assert!(may_occur(&ix, "x = helper_3"));
    assert!(!may_occur(&ix, "refund_gateway"));
    assert!(!may_occur(&ix, "RefundGateway(order)"));
    // Every literal the index rules out, grep finds nowhere.
    for lit in [
        "refund was declined",
        "order.total - amount",
        "x + 29",
        "helper_31(x)",
        "elper_3",
        "refund_gateway",
        "RefundGateway(order)",
    ] {
        if !may_occur(&ix, lit) {
            assert!(crate::tools::grep(&ix, lit).is_empty(), "{lit}");
        }
    }
}

#[test]
fn an_outline_of_several_lines_is_the_union_of_each_lines_outline() {
    let ix = workspace();
    let file = ix.symbols.files_ending_with("billing.py")[0];
    let one = |l: u32| crate::tools::outline(&ix, file, &[l]);
    let both = crate::tools::outline(&ix, file, &[1, 4]);
    let mut expected: Vec<EntityId> = one(1).iter().chain(&one(4)).map(|h| h.entity).collect();
    expected.sort();
    expected.dedup();
    let mut got: Vec<EntityId> = both.iter().map(|h| h.entity).collect();
    got.sort();
    assert_eq!(got, expected);
    // Each line's enclosing function first, the file after.
    assert_eq!(both.iter().filter(|h| h.score == 1.0).count(), 2);
}

#[test]
fn the_learned_policy_takes_a_bare_name_as_the_qualified_one_and_outlines_named_files_with_the_broad_query() {
    let shop = "class Order:\n    def total(self):\n        return sum(self.items)\n\n\
                class Invoice:\n    def total(self):\n        return self.amount\n";
    let ix =
        index_of(&[("shop.py", shop.to_string()), ("cart.py", "def add(item):\n    pass\n".to_string())]);
    let issue = "`Order.total` fails on an empty order: `total` should be 0. The code is in shop.py.";
    let everything = Valuing { value: |_| 0.9, threshold: 0.5 };
    let opts =
        Options { policy: Policy::Learned, collect_calls: true, max_results: 100, ..Options::default() };
    let loc = locate(&ix, None, Some(&everything), issue, &opts, &AtomicBool::new(false)).unwrap();
    let t = &loc.trace;
    let calls: Vec<Vec<&str>> =
        t.turns.iter().map(|turn| turn.calls.iter().map(|c| c.call.as_str()).collect()).collect();
    // `total` is taken as the `Order.total` the issue also writes: `Invoice.total` is another.
    assert!(t.considered.iter().any(|c| c.call == "symbol(Order.total)"), "{calls:?}");
    assert!(!t.considered.iter().any(|c| c.call == "symbol(total)"), "{calls:?}");
    // The file named by path is outlined in the broad turn, after the names were looked up.
    assert!(calls[0].contains(&"symbol(Order.total)"), "{calls:?}");
    assert!(calls[0].iter().all(|c| c.starts_with("symbol(")), "{calls:?}");
    assert!(calls[1].contains(&"outline(shop.py)"), "{calls:?}");
    assert!(calls[1].iter().any(|c| c.starts_with("lexical(")), "{calls:?}");
}

#[test]
fn an_unsure_learned_search_widens_the_pool_and_says_why() {
    let ix = workspace();
    let everything = Valuing { value: |_| 0.9, threshold: 0.5 };
    let opts = Options { policy: Policy::Learned, ..Options::default() };
    // Two functions share the issue's words and no name picks one: the search ends unsure.
    let issue = "the refund amount of an order is wrong";
    let loc = locate(&ix, None, Some(&everything), issue, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!(loc.trace.pool_files, crate::policy::WIDE_POOL_FILES);
    let why = loc.trace.pool_widened.as_deref().expect("widened");
    assert!(why.contains("no leading function stands out"), "{why}");
    // Not while vectors are made on demand (the engine turns it off).
    let kept = Options { widen_pool: false, ..opts.clone() };
    let narrow = locate(&ix, None, Some(&everything), issue, &kept, &AtomicBool::new(false)).unwrap();
    assert_eq!((narrow.trace.pool_files, narrow.trace.pool_widened), (crate::rerank::POOL_FILES, None));
    // A search led by one function it was told the name of keeps the default pool, as does the
    // hand-set policy.
    let sure = run_with(&ix, Some(&everything), &opts);
    assert_eq!((sure.trace.pool_files, sure.trace.pool_widened.is_none()), (crate::rerank::POOL_FILES, true));
    let hand =
        locate(&ix, None, Some(&everything), issue, &Options::default(), &AtomicBool::new(false)).unwrap();
    assert_eq!(hand.trace.pool_files, crate::rerank::POOL_FILES);
}

#[test]
fn grep_hits_are_the_innermost_entities_of_their_lines_at_most_twenty_a_file() {
    let mut many = String::new();
    for i in 0..30 {
        many.push_str(&format!("def f{i}():\n    return 'needle needle'\n\n"));
    }
    let ix = index_of(&[
        ("a.py", "x = 'needle'\n\nclass C:\n    def m(self):\n        return 'needleneedle'\n".into()),
        ("b.py", many),
    ]);
    let names: Vec<String> =
        crate::tools::grep(&ix, "needle").iter().map(|h| ix.full_name(h.entity)).collect();
    // a.py: the file (module level) and C.m (twice on one line: one hit after dedup); b.py: the
    // first 20 hits, two a line, so f0 .. f9.
    let mut want = vec!["a.py".to_string(), "a.py:C.m".to_string()];
    want.extend((0..10).map(|i| format!("b.py:f{i}")));
    assert_eq!(names, want);
    assert!(crate::tools::grep(&ix, "nee").is_empty(), "patterns under 4 bytes find nothing");
    // A text in MAX_HITS places or more points nowhere: no hits, not the first files'.
    let files: Vec<(String, String)> = (0..crate::tools::MAX_HITS / 20 + 1)
        .map(|i| (format!("m{i:02}.py"), "def g():\n    return 'needle'\n".repeat(20)))
        .chain([("z.py".to_string(), "def rare():\n    return 'thread'\n".to_string())])
        .collect();
    let ix = index_of(&files.iter().map(|(p, t)| (p.as_str(), t.clone())).collect::<Vec<_>>());
    assert!(crate::tools::grep(&ix, "needle").is_empty());
    assert_eq!(crate::tools::grep(&ix, "thread").len(), 1);
}
