//! The errors of locus-embed; every message says what to run or change next.

use std::path::PathBuf;

use crate::bundle::setup_hint;

/// The fix for anything missing or damaged in the runtime or model folders.
pub const SETUP_HINT: &str = "run `bash scripts/setup.sh` from the Locus checkout";

/// Why the encoder or the vector store could not do what was asked.
#[derive(thiserror::Error, Debug)]
pub enum EmbedError {
    /// No ONNX Runtime shared library at any of the places searched.
    #[error(
        "ONNX Runtime (libonnxruntime.so.1.31.x) not found; searched: {}. To install it, {} \
         (or set ORT_DYLIB_PATH to the library)",
        display_paths(searched),
        setup_hint()
    )]
    RuntimeNotFound { searched: Vec<PathBuf> },

    /// A library file was found but could not be loaded (wrong version, wrong architecture, damaged).
    #[error("could not load ONNX Runtime from {}: {message}. To install a working one, {}", path.display(), setup_hint())]
    RuntimeLoad { path: PathBuf, message: String },

    /// This process already runs a different ONNX Runtime library; one process can load only one.
    #[error(
        "ONNX Runtime is already loaded from {} in this process; cannot also load {} (restart to switch)",
        loaded.display(),
        requested.display()
    )]
    RuntimeConflict { loaded: PathBuf, requested: PathBuf },

    /// A file of the model folder is missing.
    #[error("model file {} is missing (folder {}). The encoder is built by setup and the ranker ships in the checkout's models/ (`git checkout models/`); {}", missing.display(), dir.display(), setup_hint())]
    ModelNotFound { dir: PathBuf, missing: PathBuf },

    /// A model file does not match the checksum setup.sh recorded: it is not trusted.
    #[error(
        "model file {} is damaged or was changed (sha256 {actual}, its recorded checksum is {expected}); \
         it is not used. The encoder is rebuilt by setup and the ranker restored by `git checkout models/`; {}",
        path.display(),
        setup_hint()
    )]
    ModelCorrupt { path: PathBuf, expected: String, actual: String },

    /// The tokenizer could not be read or could not encode a text.
    #[error("tokenizer {}: {message}. To rebuild the model folder, {}", path.display(), setup_hint())]
    Tokenizer { path: PathBuf, message: String },

    /// ONNX Runtime rejected the model or failed while running it.
    #[error("ONNX Runtime: {0}")]
    Onnx(String),

    /// A setting of [`crate::EmbedConfig`] is out of range.
    #[error("invalid embedder setting: {0}")]
    Config(String),

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl EmbedError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> EmbedError {
        EmbedError::Io { path: path.into(), source }
    }

    pub(crate) fn onnx(e: impl std::fmt::Display) -> EmbedError {
        EmbedError::Onnx(e.to_string())
    }

    /// True when installing or rebuilding with `scripts/setup.sh` is the fix.
    pub fn needs_setup(&self) -> bool {
        matches!(
            self,
            EmbedError::RuntimeNotFound { .. }
                | EmbedError::RuntimeLoad { .. }
                | EmbedError::ModelNotFound { .. }
                | EmbedError::ModelCorrupt { .. }
                | EmbedError::Tokenizer { .. }
        )
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere".to_owned();
    }
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
