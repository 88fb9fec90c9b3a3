//! The model folder written by scripts/setup.sh: where it is, and reading its files only after their checksums pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::EmbedError;

/// The base encoder's folder name under `<cache>/models/`: all-MiniLM-L6-v2 as published, the
/// fallback when Locus's own encoder is not installed.
pub const MODEL_NAME: &str = "all-minilm-l6-v2";
/// Locus's own encoder's folder name under `<cache>/models/`: all-MiniLM-L6-v2 fine-tuned for
/// localization (`models/encoder/` in the checkout, installed by setup.sh). Preferred when present.
pub const TUNED_MODEL_NAME: &str = "locus-minilm-l6-loc";
/// Written last by setup.sh, in `sha256sum` format: its presence means the folder is complete.
pub const CHECKSUMS: &str = "checksums.sha256";
pub const TOKENIZER: &str = "tokenizer.json";

/// Which of the two graphs setup.sh builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// `model.onnx`: dynamic int8 weights, about 23 MB; what Locus runs.
    #[default]
    Int8,
    /// `model.fp32.onnx`: the exact graph, 90 MB; for comparisons and benchmarks.
    Fp32,
}

impl Precision {
    pub fn file_name(self) -> &'static str {
        match self {
            Precision::Int8 => "model.onnx",
            Precision::Fp32 => "model.fp32.onnx",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::Fp32 => "fp32",
        }
    }
}

/// The model folder: the setting, then `LOCUS_MODEL_DIR`, then the release bundle's encoder
/// (`<bundle>/share/locus/encoder/locus-minilm-l6-loc`), then Locus's own encoder
/// (`<cache>/models/locus-minilm-l6-loc`) where setup installed it (its `checksums.sha256`,
/// written last, is there), else the base (`<cache>/models/all-minilm-l6-v2`).
pub(crate) fn model_dir(setting: Option<&Path>, cache: &Path) -> PathBuf {
    if let Some(p) = setting {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("LOCUS_MODEL_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    default_model_dir(crate::bundle_root(), cache)
}

/// Without a setting: the bundle's encoder, else the cache's tuned folder when they are
/// complete, else the base's.
pub(crate) fn default_model_dir(bundle: Option<&Path>, cache: &Path) -> PathBuf {
    if let Some(dir) = bundle.map(crate::bundle::encoder_dir).filter(|d| d.join(CHECKSUMS).is_file()) {
        return dir;
    }
    let tuned = cache.join("models").join(TUNED_MODEL_NAME);
    if tuned.join(CHECKSUMS).is_file() {
        tuned
    } else {
        cache.join("models").join(MODEL_NAME)
    }
}

/// The name vectors are filed under: the folder's name (`all-minilm-l6-v2`,
/// `locus-minilm-l6-loc`, or whatever folder `LOCUS_MODEL_DIR` names).
pub(crate) fn model_name(dir: &Path) -> String {
    dir.file_name().map_or_else(|| MODEL_NAME.to_owned(), |n| n.to_string_lossy().into_owned())
}

/// The recorded checksums of a model folder, by file name.
pub(crate) struct Checksums {
    dir: PathBuf,
    by_name: HashMap<String, String>,
}

impl Checksums {
    pub(crate) fn read(dir: &Path) -> Result<Checksums, EmbedError> {
        let path = dir.join(CHECKSUMS);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Name the folder itself when it is absent: nothing was installed yet.
                let missing = if dir.is_dir() { path } else { dir.to_path_buf() };
                return Err(EmbedError::ModelNotFound { dir: dir.to_path_buf(), missing });
            }
            Err(e) => return Err(EmbedError::io(path, e)),
        };
        Ok(Checksums { dir: dir.to_path_buf(), by_name: parse_sha256sum(&text) })
    }

    /// The bytes of `name`, after checking them against the recorded sha256.
    /// Returns them with their hex digest. A file without a recorded sum is not trusted.
    pub(crate) fn read_verified(&self, name: &str) -> Result<(Vec<u8>, String), EmbedError> {
        let path = self.dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EmbedError::ModelNotFound { dir: self.dir.clone(), missing: path });
            }
            Err(e) => return Err(EmbedError::io(path, e)),
        };
        let actual = sha256_hex(&bytes);
        match self.by_name.get(name) {
            Some(expected) if *expected == actual => Ok((bytes, actual)),
            Some(expected) => Err(EmbedError::ModelCorrupt { path, expected: expected.clone(), actual }),
            None => Err(EmbedError::ModelCorrupt {
                path,
                expected: format!("nothing (no line for {name} in {CHECKSUMS})"),
                actual,
            }),
        }
    }
}

/// `sha256sum` output: `<64 hex>  <name>` (or ` *<name>` in binary mode) per line.
fn parse_sha256sum(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (hex, rest) = line.split_once(' ')?;
            let name = rest.strip_prefix([' ', '*']).unwrap_or(rest);
            let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            valid.then(|| (name.to_owned(), hex.to_ascii_lowercase()))
        })
        .collect()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256sum_lines() {
        let text =
            format!("{}  model.onnx\n{} *tokenizer.json\nnot a line\n", "a".repeat(64), "B".repeat(64));
        let sums = parse_sha256sum(&text);
        assert_eq!(sums.len(), 2);
        assert_eq!(sums["model.onnx"], "a".repeat(64));
        assert_eq!(sums["tokenizer.json"], "b".repeat(64));
    }

    #[test]
    fn changed_file_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.onnx"), b"weights").unwrap();
        let sum = sha256_hex(b"weights");
        std::fs::write(dir.path().join(CHECKSUMS), format!("{sum}  model.onnx\n")).unwrap();
        let sums = Checksums::read(dir.path()).unwrap();
        assert_eq!(sums.read_verified("model.onnx").unwrap().1, sum);

        std::fs::write(dir.path().join("model.onnx"), b"weightz").unwrap();
        let err = sums.read_verified("model.onnx").unwrap_err();
        assert!(matches!(err, EmbedError::ModelCorrupt { .. }), "{err}");
        assert!(err.to_string().contains("scripts/setup.sh"), "{err}");

        let err = sums.read_verified("tokenizer.json").unwrap_err();
        assert!(matches!(err, EmbedError::ModelNotFound { .. }), "{err}");
    }

    #[test]
    fn the_tuned_encoder_is_preferred_once_complete() {
        let cache = tempfile::tempdir().unwrap();
        let base = cache.path().join("models").join(MODEL_NAME);
        let tuned = cache.path().join("models").join(TUNED_MODEL_NAME);
        assert_eq!(
            default_model_dir(None, cache.path()),
            base,
            "nothing installed: the base (its error names it)"
        );
        std::fs::create_dir_all(&tuned).unwrap();
        std::fs::write(tuned.join("model.onnx"), b"half written").unwrap();
        assert_eq!(
            default_model_dir(None, cache.path()),
            base,
            "a tuned folder without checksums is not complete"
        );
        std::fs::write(tuned.join(CHECKSUMS), "").unwrap();
        assert_eq!(default_model_dir(None, cache.path()), tuned);
        assert_eq!(model_name(&tuned), TUNED_MODEL_NAME);
        assert_eq!(model_name(&base), MODEL_NAME);
        let explicit = cache.path().join("mine");
        assert_eq!(model_dir(Some(&explicit), cache.path()), explicit);
    }

    #[test]
    fn a_complete_bundle_encoder_comes_before_the_cache() {
        let cache = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let tuned = cache.path().join("models").join(TUNED_MODEL_NAME);
        std::fs::create_dir_all(&tuned).unwrap();
        std::fs::write(tuned.join(CHECKSUMS), "").unwrap();
        let bundled = crate::bundle::encoder_dir(bundle.path());
        std::fs::create_dir_all(&bundled).unwrap();
        assert_eq!(default_model_dir(Some(bundle.path()), cache.path()), tuned, "no checksums: incomplete");
        std::fs::write(bundled.join(CHECKSUMS), "").unwrap();
        assert_eq!(default_model_dir(Some(bundle.path()), cache.path()), bundled);
        assert_eq!(model_name(&bundled), TUNED_MODEL_NAME, "the same vectors as the cache's copy");
    }

    #[test]
    fn folder_without_checksums_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let err = Checksums::read(dir.path()).err().unwrap();
        assert!(matches!(err, EmbedError::ModelNotFound { .. }), "{err}");
    }
}
