//! The localization metrics of EVAL.md, per instance: strict Acc@k, Recall@k, set F1 and MRR.
//!
//! Every function takes a ranking (best first) or a predicted set and the gold, and returns
//! `None` when the gold is empty: such an instance is skipped for that metric, not scored 0.
//! Rankings are deduplicated keeping the first occurrence before scoring, so an engine cannot
//! fill its top-k with copies of one hit; gold lists are treated as sets.

use std::collections::{BTreeMap, HashSet};

use crate::data::Gold;

/// File-level strict accuracy cut-offs (EVAL.md).
pub const FILE_ACC_KS: [usize; 3] = [1, 3, 5];
/// Function-level strict accuracy cut-offs (EVAL.md).
pub const FUNCTION_ACC_KS: [usize; 2] = [5, 10];
/// Recall cut-offs, both levels (EVAL.md).
pub const RECALL_KS: [usize; 2] = [1, 5];

/// The three gold families scored per instance. Their key prefixes/suffixes make the metric
/// names (`file_acc@1`, `function_recall@5_with_added`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Gold = `files`; scored on every instance with non-empty file gold.
    File,
    /// Gold = `functions`; scored only where `function_gold_reliable`.
    Function,
    /// Gold = `functions ∪ added_functions`; scored only where `function_gold_reliable`.
    FunctionWithAdded,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::File, Family::Function, Family::FunctionWithAdded];

    pub fn acc_ks(self) -> &'static [usize] {
        match self {
            Family::File => &FILE_ACC_KS,
            Family::Function | Family::FunctionWithAdded => &FUNCTION_ACC_KS,
        }
    }

    /// The metric name for `measure` (`acc@5`, `recall@1`, `f1`, `mrr`) in this family.
    pub fn key(self, measure: &str) -> String {
        match self {
            Family::File => format!("file_{measure}"),
            Family::Function => format!("function_{measure}"),
            Family::FunctionWithAdded => format!("function_{measure}_with_added"),
        }
    }

    /// The gold of this family for one instance, or `None` when the instance is not scored on
    /// it (unreliable function gold, or empty gold).
    pub fn gold(self, gold: &Gold) -> Option<Vec<String>> {
        let items: Vec<String> = match self {
            Family::File => gold.files.clone(),
            Family::Function if gold.function_gold_reliable => gold.functions.clone(),
            Family::FunctionWithAdded if gold.function_gold_reliable => {
                gold.functions.iter().chain(&gold.added_functions).cloned().collect()
            }
            Family::Function | Family::FunctionWithAdded => return None,
        };
        (!items.is_empty()).then_some(items)
    }
}

/// The ranking without repeats, first occurrence kept.
pub fn dedupe(ranking: &[String]) -> Vec<&str> {
    let mut seen = HashSet::new();
    ranking.iter().map(String::as_str).filter(|item| seen.insert(*item)).collect()
}

fn gold_set(gold: &[String]) -> Option<HashSet<&str>> {
    let set: HashSet<&str> = gold.iter().map(String::as_str).collect();
    (!set.is_empty()).then_some(set)
}

/// `|top-k ∩ gold|` over the deduplicated ranking.
fn hits_at(ranking: &[String], gold: &HashSet<&str>, k: usize) -> usize {
    dedupe(ranking).into_iter().take(k).filter(|item| gold.contains(item)).count()
}

/// Strict Acc@k: 1 when the top-k holds `min(|gold|, k)` gold items, else 0.
pub fn strict_acc_at(ranking: &[String], gold: &[String], k: usize) -> Option<f64> {
    let gold = gold_set(gold)?;
    let success = hits_at(ranking, &gold, k) == gold.len().min(k);
    Some(if success { 1.0 } else { 0.0 })
}

/// Recall@k: `|top-k ∩ gold| / |gold|`.
pub fn recall_at(ranking: &[String], gold: &[String], k: usize) -> Option<f64> {
    let gold = gold_set(gold)?;
    Some(hits_at(ranking, &gold, k) as f64 / gold.len() as f64)
}

/// Set F1 of the predicted set against the gold: `2PR / (P + R)`, 0 when nothing matches
/// (including an empty prediction).
pub fn set_f1(predicted: &[String], gold: &[String]) -> Option<f64> {
    let gold = gold_set(gold)?;
    let predicted = dedupe(predicted);
    let hits = predicted.iter().filter(|p| gold.contains(*p)).count();
    if hits == 0 {
        return Some(0.0);
    }
    let precision = hits as f64 / predicted.len() as f64;
    let recall = hits as f64 / gold.len() as f64;
    Some(2.0 * precision * recall / (precision + recall))
}

/// Reciprocal rank of the first gold item in the deduplicated ranking, 0 when none appears.
pub fn reciprocal_rank(ranking: &[String], gold: &[String]) -> Option<f64> {
    let gold = gold_set(gold)?;
    let rank = dedupe(ranking).into_iter().position(|item| gold.contains(item));
    Some(rank.map_or(0.0, |r| 1.0 / (r + 1) as f64))
}

/// Every metric of one family for one instance, keyed by metric name; empty when the instance
/// is not scored on this family.
pub fn score_family(
    family: Family,
    ranking: &[String],
    predicted: &[String],
    gold: &Gold,
) -> BTreeMap<String, f64> {
    let mut scores = BTreeMap::new();
    let Some(gold) = family.gold(gold) else {
        return scores;
    };
    let mut put = |measure: String, value: Option<f64>| {
        if let Some(value) = value {
            scores.insert(family.key(&measure), value);
        }
    };
    for &k in family.acc_ks() {
        put(format!("acc@{k}"), strict_acc_at(ranking, &gold, k));
    }
    for k in RECALL_KS {
        put(format!("recall@{k}"), recall_at(ranking, &gold, k));
    }
    put("f1".to_owned(), set_f1(predicted, &gold));
    put("mrr".to_owned(), reciprocal_rank(ranking, &gold));
    scores
}

/// What an engine answered for one instance, as far as scoring is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub ranked_files: &'a [String],
    pub predicted_files: &'a [String],
    pub ranked_functions: &'a [String],
    pub predicted_functions: &'a [String],
    /// The candidate pools the engine's rankers saw (empty: not reported).
    pub candidate_files: &'a [String],
    pub candidate_functions: &'a [String],
}

/// All three families for one instance, keyed by metric name (`file_acc@1`, ...). Metrics of a
/// family the instance is not scored on are absent.
pub fn score_instance(answer: Answer<'_>, gold: &Gold) -> BTreeMap<String, f64> {
    let mut scores = score_family(Family::File, answer.ranked_files, answer.predicted_files, gold);
    for family in [Family::Function, Family::FunctionWithAdded] {
        scores.extend(score_family(family, answer.ranked_functions, answer.predicted_functions, gold));
    }
    for (family, pool) in
        [(Family::File, answer.candidate_files), (Family::Function, answer.candidate_functions)]
    {
        if let Some(hit) = pool_hit(pool, family.gold(gold).as_deref()) {
            scores.insert(family.key("pool_recall"), hit);
        }
    }
    scores
}

/// 1 when a gold item is in the candidate pool, 0 when none is; `None` when the engine reported
/// no pool or the instance is not scored on the family.
pub fn pool_hit(pool: &[String], gold: Option<&[String]>) -> Option<f64> {
    let gold = gold_set(gold?)?;
    if pool.is_empty() {
        return None;
    }
    Some(if pool.iter().any(|c| gold.contains(c.as_str())) { 1.0 } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn strict_acc_needs_min_gold_k_hits() {
        let gold = v(&["a", "b"]);
        // One gold in top-1 satisfies min(2, 1) = 1.
        assert_eq!(strict_acc_at(&v(&["a", "x", "b"]), &gold, 1), Some(1.0));
        assert_eq!(strict_acc_at(&v(&["x", "a", "b"]), &gold, 1), Some(0.0));
        // Top-3 must hold both.
        assert_eq!(strict_acc_at(&v(&["a", "x", "b"]), &gold, 3), Some(1.0));
        assert_eq!(strict_acc_at(&v(&["a", "x", "y", "b"]), &gold, 3), Some(0.0));
        // A ranking shorter than k is fine when it holds the gold.
        assert_eq!(strict_acc_at(&v(&["b", "a"]), &gold, 5), Some(1.0));
    }

    #[test]
    fn strict_acc_when_gold_exceeds_k() {
        let gold = v(&["a", "b", "c", "d", "e", "f"]);
        // |gold| = 6 > k = 5: five gold items in the top-5 suffice.
        assert_eq!(strict_acc_at(&v(&["a", "b", "c", "d", "e"]), &gold, 5), Some(1.0));
        assert_eq!(strict_acc_at(&v(&["a", "b", "c", "d", "x", "f"]), &gold, 5), Some(0.0));
        assert_eq!(recall_at(&v(&["a", "b", "c", "d", "e"]), &gold, 5), Some(5.0 / 6.0));
    }

    #[test]
    fn duplicates_in_ranking_are_dropped_before_cutting() {
        let gold = v(&["a", "b"]);
        // Deduped: [a, b, x] — b reaches the top-2 only because the second `a` is dropped.
        let ranking = v(&["a", "a", "b", "x"]);
        assert_eq!(strict_acc_at(&ranking, &gold, 2), Some(1.0));
        assert_eq!(recall_at(&ranking, &gold, 1), Some(0.5));
        // Repeating a hit cannot count twice.
        assert_eq!(recall_at(&v(&["a", "a"]), &gold, 5), Some(0.5));
        assert_eq!(reciprocal_rank(&v(&["x", "x", "x", "b"]), &gold), Some(0.5));
        assert_eq!(dedupe(&v(&["c", "a", "c", "b", "a"])), ["c", "a", "b"]);
    }

    #[test]
    fn empty_prediction_scores_zero() {
        let gold = v(&["a"]);
        assert_eq!(strict_acc_at(&[], &gold, 1), Some(0.0));
        assert_eq!(recall_at(&[], &gold, 5), Some(0.0));
        assert_eq!(set_f1(&[], &gold), Some(0.0));
        assert_eq!(reciprocal_rank(&[], &gold), Some(0.0));
    }

    #[test]
    fn empty_gold_skips_the_instance() {
        let ranking = v(&["a"]);
        assert_eq!(strict_acc_at(&ranking, &[], 1), None);
        assert_eq!(recall_at(&ranking, &[], 1), None);
        assert_eq!(set_f1(&ranking, &[]), None);
        assert_eq!(reciprocal_rank(&ranking, &[]), None);
    }

    #[test]
    fn set_f1_by_hand() {
        // pred {a, b, x, y}, gold {a, b, c}: P = 2/4, R = 2/3, F1 = 2·(1/2)(2/3)/(1/2 + 2/3) = 4/7.
        let f1 = set_f1(&v(&["a", "b", "x", "y"]), &v(&["a", "b", "c"])).unwrap();
        assert!((f1 - 4.0 / 7.0).abs() < 1e-12, "{f1}");
        // Duplicates in the prediction do not inflate |pred|: {a, x} vs {a}: P = 1/2, R = 1.
        let f1 = set_f1(&v(&["a", "x", "a"]), &v(&["a"])).unwrap();
        assert!((f1 - 2.0 / 3.0).abs() < 1e-12, "{f1}");
        assert_eq!(set_f1(&v(&["a"]), &v(&["a"])), Some(1.0));
        assert_eq!(set_f1(&v(&["x"]), &v(&["a"])), Some(0.0));
    }

    #[test]
    fn mrr_uses_first_gold_item() {
        let gold = v(&["b", "c"]);
        assert_eq!(reciprocal_rank(&v(&["x", "y", "c", "b"]), &gold), Some(1.0 / 3.0));
        assert_eq!(reciprocal_rank(&v(&["b"]), &gold), Some(1.0));
        assert_eq!(reciprocal_rank(&v(&["x", "y"]), &gold), Some(0.0));
    }

    fn gold(files: &[&str], functions: &[&str], added: &[&str], reliable: bool) -> Gold {
        Gold {
            instance_id: "i".into(),
            files: v(files),
            functions: v(functions),
            added_functions: v(added),
            all_files: v(files),
            function_gold_reliable: reliable,
        }
    }

    #[test]
    fn instance_scores_by_family() {
        let files = v(&["a.py", "b.py"]);
        let functions = v(&["a.py:f", "a.py:new"]);
        let answer = Answer {
            ranked_files: &files,
            predicted_files: &files[..1],
            ranked_functions: &functions,
            predicted_functions: &functions,
            candidate_files: &[],
            candidate_functions: &[],
        };
        let g = gold(&["a.py"], &["a.py:f", "a.py:g"], &["a.py:new"], true);
        let scores = score_instance(answer, &g);
        let expected: BTreeMap<String, f64> = [
            ("file_acc@1", 1.0),
            ("file_acc@3", 1.0),
            ("file_acc@5", 1.0),
            ("file_recall@1", 1.0),
            ("file_recall@5", 1.0),
            ("file_f1", 1.0),
            ("file_mrr", 1.0),
            // gold {f, g}: top-5 [f, new] holds one of two.
            ("function_acc@5", 0.0),
            ("function_acc@10", 0.0),
            ("function_recall@1", 0.5),
            ("function_recall@5", 0.5),
            ("function_f1", 0.5),
            ("function_mrr", 1.0),
            // gold {f, g, new}: two of three; P = 2/2, R = 2/3, F1 = 0.8.
            ("function_acc@5_with_added", 0.0),
            ("function_acc@10_with_added", 0.0),
            ("function_recall@1_with_added", 1.0 / 3.0),
            ("function_recall@5_with_added", 2.0 / 3.0),
            ("function_f1_with_added", 0.8),
            ("function_mrr_with_added", 1.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(scores.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
        for (k, want) in &expected {
            assert!((scores[k] - want).abs() < 1e-12, "{k}: {} != {want}", scores[k]);
        }
    }

    #[test]
    fn pool_recall_asks_for_one_gold_item_in_the_pool() {
        let (files, functions) = (v(&["b.py"]), v(&["b.py:h"]));
        let g = gold(&["a.py", "b.py"], &["a.py:f"], &[], true);
        let hit_files_only = Answer {
            ranked_files: &files,
            predicted_files: &[],
            ranked_functions: &functions,
            predicted_functions: &[],
            candidate_files: &v(&["c.py", "b.py"]),
            candidate_functions: &v(&["b.py:h", "c.py:k"]),
        };
        let s = score_instance(hit_files_only, &g);
        assert_eq!((s["file_pool_recall"], s["function_pool_recall"]), (1.0, 0.0));
        // No pool reported (an engine without one): no pool metric at all.
        let none = Answer { candidate_files: &[], candidate_functions: &[], ..hit_files_only };
        let s = score_instance(none, &g);
        assert!(!s.contains_key("file_pool_recall") && !s.contains_key("function_pool_recall"));
        // Unreliable function gold: the function pool is not scored either.
        let s = score_instance(hit_files_only, &gold(&["b.py"], &["a.py:f"], &[], false));
        assert!(s.contains_key("file_pool_recall") && !s.contains_key("function_pool_recall"));
    }

    #[test]
    fn unreliable_or_empty_function_gold_is_not_scored() {
        let files = v(&["a.py"]);
        let answer = Answer {
            ranked_files: &files,
            predicted_files: &files,
            ranked_functions: &[],
            predicted_functions: &[],
            candidate_files: &[],
            candidate_functions: &[],
        };
        let unreliable = score_instance(answer, &gold(&["a.py"], &["a.py:f"], &[], false));
        assert!(unreliable.keys().all(|k| k.starts_with("file_")));

        // Only an added function: not scored on edited functions, scored with added.
        let added_only = score_instance(answer, &gold(&["a.py"], &[], &["a.py:new"], true));
        assert!(!added_only.contains_key("function_acc@5"));
        assert_eq!(added_only.get("function_acc@5_with_added"), Some(&0.0));

        let no_files = score_instance(answer, &gold(&[], &[], &[], true));
        assert!(no_files.is_empty());
    }
}
