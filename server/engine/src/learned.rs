//! The learned localization models as the search's [`Scorer`]: functions (`models/ranker.onnx`)
//! and, when their files are beside it, files (`ranker.files.onnx`, re-scoring the fusion's
//! leading files from their own evidence and the function model's scores) and the tail
//! (`ranker.tail.onnx`, ordering the functions after the function model's first few with the
//! encoder's similarity of every candidate), and the search policy (`policy.onnx` beside them,
//! valuing the calls a search considers, with the threshold its `.json` records). Models trained
//! on one language alone (`models/rust/`) rank that language's candidates in the shared ones'
//! place. A model is loaded only if the feature names its
//! `.json` records are the engine's own ([`locus_search::features`]), in the same order.

use std::path::{Path, PathBuf};

use locus_embed::{EmbedError, Ranker};
use locus_search::features::{tail_names, tail_row, TAIL_WIDTH};
use locus_search::{CallFeatures, CandidateFeatures, FileFeatures, FunctionFeatures, Scorer};
use locus_syntax::Lang;

/// Why a learned model could not be used (the fusion then ranks).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Load(#[from] EmbedError),
    #[error(
        "the search policy's model {} records no `threshold` in its .json, so no call could be \
         judged worth making; restore it with `git checkout models/`, or retrain it \
         (scripts/policy/train_policy.py)",
        .0.display()
    )]
    NoThreshold(PathBuf),
    #[error(
        "the {lang} models in {} are not recorded as trained on {lang} issues (`training_languages` \
         of ranker.json), so they would rank a language they never saw; retrain them with \
         scripts/model/train_ranker.py --language {lang} (and train_file_ranker.py, \
         train_tail_ranker.py), or remove that folder to rank {lang} with the shared models",
        .path.display(),
        lang = .language.as_str()
    )]
    LanguageModel { path: PathBuf, language: Lang },
    #[error("{}", feature_names_message(path, expected, found))]
    FeatureNames { path: PathBuf, expected: Vec<String>, found: Vec<String> },
}

fn feature_names_message(path: &Path, expected: &[String], found: &[String]) -> String {
    let what = if found.is_empty() {
        "records no feature names (its .json is missing or has no `feature_names`)".to_string()
    } else {
        match expected.iter().zip(found).position(|(e, f)| e != f) {
            Some(i) => format!(
                "was trained on other features: column {i} is `{}` in the model and `{}` in this engine",
                found[i], expected[i]
            ),
            None => {
                format!("was trained on {} features; this engine computes {}", found.len(), expected.len())
            }
        }
    };
    format!(
        "the localization model {} {what}; its scores would be of other columns. Restore the shipped \
         models with `git checkout models/`, or retrain it (scripts/model/train_ranker.py, \
         train_file_ranker.py, train_tail_ranker.py) from a `locus eval --features` dump of this engine",
        path.display()
    )
}

/// The three localization models, checked against the engine's feature contract.
pub struct LearnedScorer {
    pub functions: Ranker,
    pub files: Option<Ranker>,
    pub tail: Option<Ranker>,
    /// The search policy's model (`policy.onnx` beside the function model) and the value a
    /// call must reach, from its `.json`.
    pub policy: Option<(Ranker, f32)>,
    /// Models trained on one language's issues alone (`<lang>/ranker.onnx` and the file and
    /// tail models beside it, in the function model's folder: [`Ranker::language_path`]); they
    /// rank that language's candidates in these models' place. Never a policy of their own.
    pub languages: Vec<(Lang, LearnedScorer)>,
}

impl LearnedScorer {
    /// Loads the models shipped with Locus (or `$LOCUS_RANKER` and the models beside it); the
    /// error says what to do.
    pub fn load(runtime_path: Option<&Path>) -> Result<LearnedScorer, ModelError> {
        LearnedScorer::load_from(&Ranker::default_path(), runtime_path)
    }

    /// The function model at `path` and the file and tail models beside it
    /// ([`Ranker::files_path`], [`Ranker::tail_path`]) when their files exist. A model that
    /// exists but does not load, or was trained on other features, is an error, not a silent
    /// fall-back.
    pub fn load_from(path: &Path, runtime_path: Option<&Path>) -> Result<LearnedScorer, ModelError> {
        let mut scorer = LearnedScorer::load_one(path, runtime_path)?;
        for language in [Lang::Python, Lang::Rust] {
            let p = Ranker::language_path(path, language.as_str());
            if !p.exists() {
                continue;
            }
            let mut models = LearnedScorer::load_one(&p, runtime_path)?;
            let recorded =
                |m: &Ranker| m.languages().is_some_and(|l| l.iter().any(|x| x == language.as_str()));
            if !models.rankers().all(recorded) {
                return Err(ModelError::LanguageModel { path: p, language });
            }
            models.policy = None;
            scorer.languages.push((language, models));
        }
        Ok(scorer)
    }

    /// The models of one folder: the function model at `path` and the others beside it.
    fn load_one(path: &Path, runtime_path: Option<&Path>) -> Result<LearnedScorer, ModelError> {
        let functions = checked(path, runtime_path, FunctionFeatures::NAMES)?;
        let beside = |p: PathBuf, names: &[&str]| -> Result<Option<Ranker>, ModelError> {
            if p.exists() {
                checked(&p, runtime_path, names).map(Some)
            } else {
                Ok(None)
            }
        };
        let files = beside(Ranker::files_path(path), FileFeatures::NAMES)?;
        let tail = beside(Ranker::tail_path(path), &tail_names())?;
        let policy = match beside(Ranker::policy_path(path), CallFeatures::NAMES)? {
            Some(model) => match model.threshold() {
                Some(t) => Some((model, t)),
                None => return Err(ModelError::NoThreshold(model.model_path().to_path_buf())),
            },
            None => None,
        };
        Ok(LearnedScorer { functions, files, tail, policy, languages: Vec::new() })
    }

    /// The ranking models of this folder: functions, then files and tail where present.
    pub fn rankers(&self) -> impl Iterator<Item = &Ranker> {
        std::iter::once(&self.functions).chain(self.files.as_ref()).chain(self.tail.as_ref())
    }

    /// Where the function model was loaded from.
    pub fn path(&self) -> &Path {
        self.functions.model_path()
    }
}

/// A model whose recorded feature names are exactly `names`.
fn checked(path: &Path, runtime_path: Option<&Path>, names: &[&str]) -> Result<Ranker, ModelError> {
    let ranker = Ranker::load_with_width(path, runtime_path, names.len())?;
    if ranker.feature_names() != names {
        return Err(ModelError::FeatureNames {
            path: path.to_path_buf(),
            expected: names.iter().map(|n| n.to_string()).collect(),
            found: ranker.feature_names().to_vec(),
        });
    }
    Ok(ranker)
}

impl Scorer for LearnedScorer {
    fn score(&self, rows: &[FunctionFeatures]) -> Vec<f32> {
        let x: Vec<[f32; FunctionFeatures::WIDTH]> = rows.iter().map(FunctionFeatures::to_row).collect();
        // A failed run leaves the fusion's order (the search checks the length).
        self.functions.score(&x).unwrap_or_default()
    }

    fn score_files(&self, rows: &[FileFeatures]) -> Option<Vec<f32>> {
        let x: Vec<[f32; FileFeatures::WIDTH]> = rows.iter().map(FileFeatures::to_row).collect();
        self.files.as_ref().and_then(|m| m.score(&x).ok())
    }

    fn call_values(&self, rows: &[CallFeatures]) -> Option<Vec<f32>> {
        let (model, _) = self.policy.as_ref()?;
        let x: Vec<[f32; CallFeatures::WIDTH]> = rows.iter().map(CallFeatures::to_row).collect();
        model.score(&x).ok()
    }

    fn call_threshold(&self) -> Option<f32> {
        self.policy.as_ref().map(|p| p.1)
    }

    fn has_tail(&self) -> bool {
        self.tail.is_some()
    }

    fn covers(&self, language: Lang) -> bool {
        self.rankers().all(|m| m.trained_on(language.as_str()))
    }

    fn predicted_set(&self) -> Option<(f32, usize)> {
        self.functions.predicted_set()
    }

    fn for_language(&self, language: Lang) -> Option<&dyn Scorer> {
        self.languages.iter().find(|(l, _)| *l == language).map(|(_, s)| s as &dyn Scorer)
    }

    fn score_tail(&self, rows: &[FunctionFeatures], candidate: &[CandidateFeatures]) -> Option<Vec<f32>> {
        let model = self.tail.as_ref()?;
        let x: Vec<[f32; TAIL_WIDTH]> = rows.iter().zip(candidate).map(|(r, c)| tail_row(r, c)).collect();
        model.score(&x).ok()
    }
}
