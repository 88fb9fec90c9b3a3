//! The release bundle (`scripts/release.sh`): one folder that carries everything Locus needs,
//! found relative to the running binary, so an unpacked bundle works offline with no Python and
//! no cache.
//!
//! ```text
//! locus-<version>-x86_64-linux/
//!   MANIFEST.sha256                         sha256 of every other file (`sha256sum -c` reads it)
//!   bin/locus
//!   lib/libonnxruntime.so.<version>         ONNX Runtime
//!   share/locus/encoder/<model>/            the encoder: model.onnx, tokenizer.json, checksums.sha256
//!   share/locus/models/ranker*.onnx, .json  the localization models
//! ```
//!
//! Lookups take an explicit choice first (a setting, `ORT_DYLIB_PATH`, `LOCUS_MODEL_DIR`,
//! `LOCUS_RANKER`: a user who names a file means it), then the bundle, then the cache that
//! `scripts/setup.sh` fills.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::model::TUNED_MODEL_NAME;

/// The file at a bundle's root that marks it as one.
pub const BUNDLE_MANIFEST: &str = "MANIFEST.sha256";

/// The release bundle the running binary belongs to (`<root>/bin/locus`, symbolic links
/// followed), when the folder above its `bin/` holds [`BUNDLE_MANIFEST`].
pub fn bundle_root() -> Option<&'static Path> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
        root_of(&exe)
    })
    .as_deref()
}

/// The bundle root of a binary at `exe`, if it is `<root>/bin/<name>` beside a manifest.
pub fn root_of(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let root = bin.parent()?;
    root.join(BUNDLE_MANIFEST).is_file().then(|| root.to_path_buf())
}

/// Where a bundle keeps ONNX Runtime.
pub fn runtime_dir(root: &Path) -> PathBuf {
    root.join("lib")
}

/// Where a bundle keeps the encoder (Locus's own).
pub fn encoder_dir(root: &Path) -> PathBuf {
    root.join("share").join("locus").join("encoder").join(TUNED_MODEL_NAME)
}

/// Where a bundle keeps the localization models.
pub fn models_dir(root: &Path) -> PathBuf {
    root.join("share").join("locus").join("models")
}

/// What to do when a file Locus needs is missing or damaged: reinstall the bundle when this
/// binary came in one, else run setup from the checkout.
pub fn setup_hint() -> String {
    match bundle_root() {
        Some(root) => format!(
            "reinstall Locus: unpack its release archive again (check this one with `cd {} && sha256sum -c {BUNDLE_MANIFEST}`)",
            root.display()
        ),
        None => crate::SETUP_HINT.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_the_folder_above_bin_with_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("bin").join("locus");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::write(&exe, b"").unwrap();
        assert_eq!(root_of(&exe), None, "no manifest: not a bundle");
        std::fs::write(dir.path().join(BUNDLE_MANIFEST), b"").unwrap();
        assert_eq!(root_of(&exe).as_deref(), Some(dir.path()));
        assert_eq!(root_of(&dir.path().join("locus")), None, "not in a bin/ folder");
        assert!(encoder_dir(dir.path()).ends_with("share/locus/encoder/locus-minilm-l6-loc"));
    }
}
