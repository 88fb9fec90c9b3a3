//! The workspace with the real models: a model trained on other features is refused with a
//! message that says what to do, and the workspace then ranks with the fusion.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use locus_index::{FileUnit, Index, Skipped};
use locus_search::{Localization, Options, RankedBy};
use locus_syntax::Lang;

use crate::{LearnedScorer, ModelError, ModelPaths, Workspace};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// A copy of the shipped function model whose `.json` is rewritten by `edit`.
fn model_copy(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let model = dir.join("ranker.onnx");
    std::fs::copy(models_dir().join("ranker.onnx"), &model).unwrap();
    let text = std::fs::read_to_string(models_dir().join("ranker.json")).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut meta);
    std::fs::write(dir.join("ranker.json"), serde_json::to_string(&meta).unwrap()).unwrap();
    model
}

/// Whether the ONNX Runtime and the shipped models load; says what is missing when not (and
/// fails under CI, `crate::testing::missing`).
fn shipped_models_load() -> bool {
    match LearnedScorer::load_from(&models_dir().join("ranker.onnx"), None) {
        Ok(_) => true,
        Err(e) => {
            crate::testing::missing(&format!("the ONNX Runtime and the shipped models ({e})"));
            false
        }
    }
}

fn workspace(lang: Lang) -> Index {
    let (path, text) = match lang {
        Lang::Python => (
            "billing.py",
            "def apply_refund(order, amount):\n    return order.total - amount\n\n\
             def refund_amount(order):\n    return order.total\n",
        ),
        Lang::Rust => (
            "src/billing.rs",
            "pub fn apply_refund(order: &Order, amount: u64) -> u64 {\n    order.total - amount\n}\n\n\
             pub fn refund_amount(order: &Order) -> u64 {\n    order.total\n}\n",
        ),
    };
    let unit = FileUnit::build(path.into(), lang, Arc::from(text));
    Index::from_units(PathBuf::from("/ws"), vec![Arc::new(unit)], Skipped::default())
}

/// The front ends' rule: a model that does not load leaves the fusion to rank.
fn ranked_by(ranker: &Path) -> (RankedBy, Option<ModelError>) {
    let (ranking, _, error) = ranked_in(ranker, Lang::Python);
    (ranking, error)
}

/// Who ranked an issue in a workspace of `lang`, and which language the models skipped.
fn ranked_in(ranker: &Path, lang: Lang) -> (RankedBy, Option<Lang>, Option<ModelError>) {
    let (ranking, skipped, _, error) = ranked_with(ranker, lang);
    (ranking, skipped, error)
}

/// As [`ranked_in`], with the language whose own models ranked (`models/<lang>/`).
fn ranked_with(ranker: &Path, lang: Lang) -> (RankedBy, Option<Lang>, Option<Lang>, Option<ModelError>) {
    let (loc, error) = located(ranker, lang);
    (loc.trace.ranking, loc.trace.model_not_trained_on, loc.trace.language_model, error)
}

/// The issue located in a workspace of `lang` with the models beside `ranker` (the fusion
/// ranks when they do not load), and why they did not.
fn located(ranker: &Path, lang: Lang) -> (Localization, Option<ModelError>) {
    let paths = ModelPaths { ranker: Some(ranker.to_path_buf()), ..ModelPaths::default() };
    let (scorer, error) = match paths.scorer() {
        Ok(s) => (Some(Arc::new(s) as Arc<dyn locus_search::Scorer>), None),
        Err(e) => (None, Some(e)),
    };
    let ws = Workspace { scorer, ..Workspace::new(Arc::new(workspace(lang))) };
    let loc =
        ws.locate("`apply_refund` refunds twice", &Options::default(), &AtomicBool::new(false)).unwrap();
    (loc, error)
}

#[test]
fn a_language_s_own_models_rank_its_candidates_in_the_shared_ones_place() {
    if !shipped_models_load() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shared = model_copy(dir.path(), |meta| {
        meta["training_languages"] = serde_json::json!({"python": 300});
    });
    let rust = dir.path().join("rust");
    std::fs::create_dir(&rust).unwrap();
    model_copy(&rust, |meta| meta["training_languages"] = serde_json::json!({"rust": 100}));

    // Rust: the shared models never saw it, the Rust ones rank, and the trace says which.
    let (ranking, skipped, own, error) = ranked_with(&shared, Lang::Rust);
    assert!(error.is_none(), "{error:?}");
    assert_eq!((ranking, skipped, own), (RankedBy::Functions, None, Some(Lang::Rust)));
    // Python: the shared models, as before.
    let (ranking, skipped, own, _) = ranked_with(&shared, Lang::Python);
    assert_eq!((ranking, skipped, own), (RankedBy::Functions, None, None));

    // The predicted set ends where the model that ranked says (`predicted_set` of its .json).
    for (set, want) in
        [(serde_json::json!({"ratio": 0.0, "max": 2}), 2), (serde_json::json!({"ratio": 1.0, "max": 1}), 1)]
    {
        model_copy(&rust, |meta| {
            meta["training_languages"] = serde_json::json!({"rust": 100});
            meta["predicted_set"] = set.clone();
        });
        let (loc, error) = located(&shared, Lang::Rust);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(loc.predicted_functions.len(), want, "{set}: {:?}", loc.predicted_functions);
    }

    // A `rust/` model that does not record Rust among its training languages is refused.
    model_copy(&rust, |meta| meta["training_languages"] = serde_json::json!({"python": 100}));
    let (ranking, _, own, error) = ranked_with(&shared, Lang::Rust);
    assert_eq!((ranking, own), (RankedBy::Fusion, None));
    let msg = error.expect("refused").to_string();
    assert!(msg.contains("rust") && msg.contains("--language rust"), "{msg}");
}

#[test]
fn a_model_is_never_applied_to_a_language_it_was_not_trained_on() {
    if !shipped_models_load() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let python_only = model_copy(dir.path(), |meta| {
        meta["training_languages"] = serde_json::json!({"python": 300, "rust": 0});
    });
    assert_eq!(ranked_in(&python_only, Lang::Python).0, RankedBy::Functions);
    let (ranking, skipped, error) = ranked_in(&python_only, Lang::Rust);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        (ranking, skipped),
        (RankedBy::Fusion, Some(Lang::Rust)),
        "the fusion ranks Rust, and says why"
    );

    let both = model_copy(dir.path(), |meta| {
        meta["training_languages"] = serde_json::json!({"python": 300, "rust": 100});
    });
    let (ranking, skipped, _) = ranked_in(&both, Lang::Rust);
    assert_eq!((ranking, skipped), (RankedBy::Functions, None));
}

#[test]
fn a_model_trained_on_permuted_features_is_refused_and_the_fusion_ranks() {
    if !shipped_models_load() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The shipped names load, and the model ranks.
    let same = model_copy(dir.path(), |_| {});
    assert_eq!(ranked_by(&same).0, RankedBy::Functions);

    // The same model, its first two names swapped: refused, saying where and what to do.
    let swapped = model_copy(dir.path(), |meta| meta["feature_names"].as_array_mut().unwrap().swap(0, 1));
    let (ranking, error) = ranked_by(&swapped);
    assert_eq!(ranking, RankedBy::Fusion);
    let msg = error.expect("refused").to_string();
    assert!(msg.contains("column 0 is `semantic` in the model and `lexical` in this engine"), "{msg}");
    assert!(msg.contains("git checkout models/") && msg.contains("train_ranker.py"), "{msg}");

    // A model that records no names cannot be checked: refused too.
    let dir = tempfile::tempdir().unwrap();
    let unnamed = model_copy(dir.path(), |_| {});
    std::fs::remove_file(dir.path().join("ranker.json")).unwrap();
    let (ranking, error) = ranked_by(&unnamed);
    assert_eq!(ranking, RankedBy::Fusion);
    assert!(matches!(error, Some(ModelError::FeatureNames { .. })), "{error:?}");
}
