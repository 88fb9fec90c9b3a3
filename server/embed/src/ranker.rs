//! The localization models: gradient-boosted trees (scripts/model/train_ranker.py) that turn a candidate's engine features into P(the fix edits it) — functions (16 features) and files (12).
//!
//! The model is small (tens of KB) and lives in the repository (`models/ranker.onnx`),
//! next to `models/ranker.json`, which records its sha256, its feature names and the
//! figures it was shipped with. It runs in the same process-wide ONNX Runtime as the
//! encoder (`runtime.rs`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ndarray::Array2;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{Tensor, TensorElementType};
use sha2::{Digest, Sha256};

use crate::error::EmbedError;
use crate::runtime;

/// Features per function candidate row, in the order of `FEATURE_NAMES` in locus-search's engine.
pub const RANKER_FEATURES: usize = 16;
/// Features per file candidate row, in the order of `FILE_FEATURE_NAMES` in locus-search's engine.
pub const FILE_RANKER_FEATURES: usize = 12;
/// Features per row of the tail model (`models/ranker.tail.onnx`): the function model's, then
/// `CANDIDATE_FEATURE_NAMES` of locus-search's engine.
pub const TAIL_RANKER_FEATURES: usize = RANKER_FEATURES + 1;
/// Overrides [`Ranker::default_path`].
pub const RANKER_ENV: &str = "LOCUS_RANKER";

const INPUT: &str = "features";
const OUTPUT: &str = "probabilities";
/// `probabilities` is `[N, 2]`: P(label 0), P(label 1); a candidate's score is column 1.
const CLASSES: usize = 2;
/// A few hundred shallow trees over at most a few hundred rows: one thread is plenty,
/// and the encoder keeps the other cores.
const THREADS: usize = 1;

/// The loaded localization model. `Send + Sync`: calls from several threads take turns
/// on the one session (a call over 100 rows takes well under a millisecond).
pub struct Ranker {
    session: Mutex<Session>,
    model_path: PathBuf,
    sha256: String,
    feature_names: Vec<String>,
    /// The languages of the issues it was trained on (`training_languages` of its `.json`);
    /// `None` when the `.json` does not say.
    languages: Option<Vec<String>>,
    /// The decision threshold its `.json` records.
    threshold: Option<f32>,
    /// Where its predicted set ends (`predicted_set` of its `.json`: ratio to the best score, most
    /// items), as calibrate_cut.py chose it for this model's scores.
    predicted_set: Option<(f32, usize)>,
    runtime_path: PathBuf,
    /// Features per row the model takes.
    width: usize,
}

impl std::fmt::Debug for Ranker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranker")
            .field("model_path", &self.model_path)
            .field("sha256", &self.sha256)
            .field("runtime_path", &self.runtime_path)
            .finish_non_exhaustive()
    }
}

impl Ranker {
    /// The function model to use: `$LOCUS_RANKER` when set, else the release bundle's
    /// (`<bundle>/share/locus/models/ranker.onnx`), else `models/ranker.onnx` at the root of
    /// the repository this crate was built from.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os(RANKER_ENV).filter(|v| !v.is_empty()) {
            return PathBuf::from(p);
        }
        if let Some(root) = crate::bundle_root() {
            return crate::bundle::models_dir(root).join("ranker.onnx");
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("models").join("ranker.onnx")
    }

    /// Loads `model`, checking its sha256 against the `.json` file of the same name
    /// beside it when there is one (`models/ranker.json`), and the ONNX Runtime library
    /// (`runtime_path`, else the search of [`crate::Embedder`]: `ORT_DYLIB_PATH`, the cache,
    /// python3's onnxruntime). Fails, never panics; a missing runtime or model says to
    /// run `bash scripts/setup.sh`.
    pub fn load(model: &Path, runtime_path: Option<&Path>) -> Result<Ranker, EmbedError> {
        Ranker::load_with_width(model, runtime_path, RANKER_FEATURES)
    }

    /// The file model beside a function model: `ranker.onnx` → `ranker.files.onnx`.
    pub fn files_path(function_model: &Path) -> PathBuf {
        function_model.with_extension("files.onnx")
    }

    /// The search policy's model beside a function model: `models/ranker.onnx` →
    /// `models/policy.onnx`.
    pub fn policy_path(function_model: &Path) -> PathBuf {
        function_model.with_file_name("policy.onnx")
    }

    /// The function model trained on one language's issues alone, in a folder of that
    /// language's name beside a function model: `models/ranker.onnx` →
    /// `models/rust/ranker.onnx` (a fold model `F/owner+name.onnx` → `F/rust/owner+name.onnx`).
    pub fn language_path(function_model: &Path, language: &str) -> PathBuf {
        let name = function_model.file_name().unwrap_or_default();
        function_model.with_file_name(language).join(name)
    }

    /// The tail model beside a function model: `models/ranker.onnx` → `models/ranker.tail.onnx`.
    pub fn tail_path(function_model: &Path) -> PathBuf {
        function_model.with_extension("tail.onnx")
    }

    /// As [`Ranker::load`], for a model whose rows have `width` features (the file model:
    /// [`FILE_RANKER_FEATURES`]).
    pub fn load_with_width(
        model: &Path,
        runtime_path: Option<&Path>,
        width: usize,
    ) -> Result<Ranker, EmbedError> {
        // The model before the runtime, as in Embedder::load: a wrong path is reported
        // without loading a native library.
        let bytes = match std::fs::read(model) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = model.parent().map(Path::to_path_buf).unwrap_or_default();
                return Err(EmbedError::ModelNotFound { dir, missing: model.to_path_buf() });
            }
            Err(e) => return Err(EmbedError::io(model, e)),
        };
        let sha256 = hex(&Sha256::digest(&bytes));
        let meta = Metadata::beside(model, width)?;
        if let Some(meta) = &meta {
            if meta.sha256 != sha256 {
                return Err(EmbedError::ModelCorrupt {
                    path: model.to_path_buf(),
                    expected: meta.sha256.clone(),
                    actual: sha256,
                });
            }
        }

        let rt = runtime::runtime(runtime_path, &crate::cache_dir())?;
        let session = Session::builder(&rt.env)
            .map_err(EmbedError::onnx)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(EmbedError::onnx)?
            .with_intra_threads(THREADS)
            .map_err(EmbedError::onnx)?
            .with_inter_threads(1)
            .map_err(EmbedError::onnx)?
            .commit_from_memory(&bytes)
            .map_err(EmbedError::onnx)?;
        check_signature(&session, width)?;

        Ok(Ranker {
            session: Mutex::new(session),
            model_path: model.to_path_buf(),
            sha256,
            languages: meta.as_ref().and_then(|m| m.languages.clone()),
            threshold: meta.as_ref().and_then(|m| m.threshold),
            predicted_set: meta.as_ref().and_then(|m| m.predicted_set),
            feature_names: meta.map(|m| m.feature_names).unwrap_or_default(),
            runtime_path: rt.path.clone(),
            width,
        })
    }

    /// P(the fix edits this candidate) for each row, in row order. Each score depends
    /// on its own row only; an empty slice gives an empty vector without a call. Rows of
    /// another width than the model's are an error.
    pub fn score<const W: usize>(&self, rows: &[[f32; W]]) -> Result<Vec<f32>, EmbedError> {
        if W != self.width {
            return Err(EmbedError::Onnx(format!("rows of {W} features for a model of {}", self.width)));
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let input = Array2::from_shape_vec((rows.len(), W), flat).map_err(EmbedError::onnx)?;
        let inputs = ort::inputs![INPUT => Tensor::from_array(input).map_err(EmbedError::onnx)?];
        let mut session = self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session.run(inputs).map_err(EmbedError::onnx)?;
        let (shape, probs) = outputs[OUTPUT].try_extract_tensor::<f32>().map_err(EmbedError::onnx)?;
        let expected = [rows.len() as i64, CLASSES as i64];
        if **shape != expected {
            return Err(EmbedError::Onnx(format!("{OUTPUT} has shape {shape:?}, expected {expected:?}")));
        }
        Ok(probs.chunks_exact(CLASSES).map(|p| p[1]).collect())
    }

    /// The ONNX file this ranker runs.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The sha256 of the model file (hex), which names the scores it makes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The feature names the model was trained on, from its `.json` file; empty without one.
    /// A caller should check them against the engine's own order before trusting scores.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The languages (`"python"`, `"rust"`) of the issues the model was trained on, from its
    /// `.json`; `None` when it does not record them (a model from before the record, or one
    /// handed over without a `.json`).
    pub fn languages(&self) -> Option<&[String]> {
        self.languages.as_deref()
    }

    /// Whether the model may rank candidates of `language`: it was trained on issues of that
    /// language, or it does not say what it was trained on.
    pub fn trained_on(&self, language: &str) -> bool {
        self.languages.as_ref().is_none_or(|l| l.iter().any(|x| x == language))
    }

    /// The decision threshold its `.json` records (`threshold`), if any: the score a search
    /// policy's call must reach to be issued.
    pub fn threshold(&self) -> Option<f32> {
        self.threshold
    }

    /// Where the predicted set of this model's ranking ends, when its `.json` records it
    /// (`predicted_set`, written by scripts/model/calibrate_cut.py): items scoring at least `ratio`
    /// of the best, at most `max`.
    pub fn predicted_set(&self) -> Option<(f32, usize)> {
        self.predicted_set
    }

    /// The ONNX Runtime library of this process.
    pub fn runtime_path(&self) -> &Path {
        &self.runtime_path
    }
}

/// What `ranker.json` (written by train_ranker.py) says about the model beside it.
struct Metadata {
    sha256: String,
    feature_names: Vec<String>,
    /// The keys of `training_languages` with at least one instance, when recorded.
    languages: Option<Vec<String>>,
    /// The decision threshold on the score, when the model records one (the search policy's).
    threshold: Option<f32>,
    /// `predicted_set`'s ratio and most items, when recorded.
    predicted_set: Option<(f32, usize)>,
}

impl Metadata {
    /// `None` when there is no `.json` beside the model (a model handed over on its own
    /// is trusted as it is); an error when there is one that cannot be read.
    fn beside(model: &Path, width: usize) -> Result<Option<Metadata>, EmbedError> {
        let path = model.with_extension("json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EmbedError::io(&path, e)),
        };
        let invalid = |what: &str| {
            let message = format!(
                "{what}; it is not the metadata scripts/model/train_ranker.py writes \
                 (restore it with `git checkout models/`, or retrain)"
            );
            EmbedError::io(&path, std::io::Error::new(std::io::ErrorKind::InvalidData, message))
        };
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(&e.to_string()))?;
        let sha256 = json["onnx_sha256"].as_str().ok_or_else(|| invalid("no string `onnx_sha256`"))?;
        let feature_names = json["feature_names"]
            .as_array()
            .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
            .ok_or_else(|| invalid("no string list `feature_names`"))?;
        if feature_names.len() != width {
            return Err(invalid(&format!("{} feature names, expected {width}", feature_names.len())));
        }
        let languages = match &json["training_languages"] {
            serde_json::Value::Null => None,
            serde_json::Value::Object(counts) => Some(
                counts
                    .iter()
                    .filter(|(_, n)| n.as_u64().is_some_and(|n| n > 0))
                    .map(|(lang, _)| lang.clone())
                    .collect(),
            ),
            _ => return Err(invalid("`training_languages` is not an object of counts")),
        };
        let threshold = match &json["threshold"] {
            serde_json::Value::Null => None,
            v => Some(v.as_f64().ok_or_else(|| invalid("`threshold` is not a number"))? as f32),
        };
        let predicted_set = match &json["predicted_set"] {
            serde_json::Value::Null => None,
            v => {
                let ratio = v["ratio"].as_f64().filter(|r| (0.0..=1.0).contains(r));
                let most = v["max"].as_u64().filter(|&m| m >= 1);
                match (ratio, most) {
                    (Some(r), Some(m)) => Some((r as f32, m as usize)),
                    _ => {
                        return Err(invalid(
                            "`predicted_set` needs a `ratio` in [0, 1] and a `max` of at least 1",
                        ))
                    }
                }
            }
        };
        Ok(Some(Metadata {
            sha256: sha256.to_ascii_lowercase(),
            feature_names,
            languages,
            threshold,
            predicted_set,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The graph contract of train_ranker.py: one input `features` float32 `[N, width]` and
/// an output `probabilities`; a different file fails here, not mid-query.
fn check_signature(session: &Session, width: usize) -> Result<(), EmbedError> {
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let got = session.inputs().first().and_then(|i| i.dtype().tensor_shape()).and_then(|s| s.last().copied());
    let is_float =
        session.inputs().first().and_then(|i| i.dtype().tensor_type()) == Some(TensorElementType::Float32);
    if inputs != [INPUT] || got != Some(width as i64) || !is_float || !outputs.contains(&OUTPUT) {
        return Err(EmbedError::Onnx(format!(
            "the ranker model has inputs {inputs:?} (width {got:?}) and outputs {outputs:?}; expected one float32 \
             input {INPUT:?} of width {width} and an output {OUTPUT:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_the_checkout_models_folder() {
        // Only meaningful without the override; the variable is not set by the test runner.
        if std::env::var_os(RANKER_ENV).is_none() {
            let p = Ranker::default_path();
            assert!(p.ends_with("models/ranker.onnx"), "{}", p.display());
            assert!(p.starts_with(env!("CARGO_MANIFEST_DIR")), "{}", p.display());
        }
    }

    #[test]
    fn missing_model_names_the_setup_script() {
        let err = Ranker::load(Path::new("/nonexistent/ranker.onnx"), None).unwrap_err();
        assert!(matches!(err, EmbedError::ModelNotFound { .. }), "{err:?}");
        assert!(err.needs_setup());
        assert!(err.to_string().contains("bash scripts/setup.sh"), "{err}");
        assert!(err.to_string().contains("/nonexistent/ranker.onnx"), "{err}");
    }

    #[test]
    fn checksum_mismatch_is_refused_before_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("ranker.onnx");
        std::fs::write(&model, b"not the trained model").unwrap();
        let meta = serde_json::json!({
            "onnx_sha256": "0".repeat(64),
            "feature_names": (0..RANKER_FEATURES).map(|i| format!("f{i}")).collect::<Vec<_>>(),
        });
        std::fs::write(dir.path().join("ranker.json"), meta.to_string()).unwrap();
        let err = Ranker::load(&model, Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        assert!(matches!(err, EmbedError::ModelCorrupt { .. }), "{err:?}");
    }

    #[test]
    fn unreadable_metadata_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("ranker.onnx");
        std::fs::write(&model, b"x").unwrap();
        for bad in ["{not json", r#"{"onnx_sha256": 3}"#, r#"{"onnx_sha256": "ab", "feature_names": ["a"]}"#]
        {
            std::fs::write(dir.path().join("ranker.json"), bad).unwrap();
            let err = Ranker::load(&model, None).unwrap_err();
            assert!(matches!(err, EmbedError::Io { .. }), "{bad}: {err:?}");
            assert!(err.to_string().contains("ranker.json"), "{err}");
        }
    }

    #[test]
    fn the_training_languages_are_read_from_the_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("ranker.onnx");
        let names: Vec<String> = (0..2).map(|i| format!("f{i}")).collect();
        let write = |langs: serde_json::Value| {
            let meta =
                serde_json::json!({"onnx_sha256": "ab", "feature_names": names, "training_languages": langs});
            std::fs::write(dir.path().join("ranker.json"), meta.to_string()).unwrap();
        };
        write(serde_json::json!({"python": 400, "rust": 0}));
        let meta = Metadata::beside(&model, 2).unwrap().unwrap();
        assert_eq!(
            meta.languages,
            Some(vec!["python".to_string()]),
            "a language with no instance is not covered"
        );
        write(serde_json::Value::Null);
        assert_eq!(Metadata::beside(&model, 2).unwrap().unwrap().languages, None);
        write(serde_json::json!(["python"]));
        let err = Metadata::beside(&model, 2).err().expect("a list is not a record of counts");
        assert!(err.to_string().contains("training_languages"), "{err}");
    }

    #[test]
    fn the_predicted_set_is_read_from_the_metadata_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("ranker.onnx");
        let write = |set: serde_json::Value| {
            let meta =
                serde_json::json!({"onnx_sha256": "ab", "feature_names": ["a", "b"], "predicted_set": set});
            std::fs::write(dir.path().join("ranker.json"), meta.to_string()).unwrap();
        };
        write(serde_json::json!({"ratio": 0.3, "max": 4, "f1_out_of_fold": 21.0}));
        assert_eq!(Metadata::beside(&model, 2).unwrap().unwrap().predicted_set, Some((0.3, 4)));
        write(serde_json::Value::Null);
        assert_eq!(Metadata::beside(&model, 2).unwrap().unwrap().predicted_set, None);
        for bad in [serde_json::json!({"ratio": 1.5, "max": 4}), serde_json::json!({"ratio": 0.3, "max": 0})]
        {
            write(bad.clone());
            let err = Metadata::beside(&model, 2).err().expect("refused");
            assert!(err.to_string().contains("predicted_set"), "{bad}: {err}");
        }
    }

    #[test]
    fn sha256_hex() {
        assert_eq!(hex(&Sha256::digest(b"abc"))[..16], *"ba7816bf8f01cfea");
    }
}
