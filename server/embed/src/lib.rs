//! locus-embed owns the sentence encoder (all-MiniLM-L6-v2 run by ONNX Runtime) and the on-disk vector cache.
//!
//! Architecture invariant: this is the only crate of Locus that links ONNX Runtime
//! (through `ort`, loading the shared library at run time). Nothing here panics on a
//! missing or damaged runtime or model: [`Embedder::load`] returns an [`EmbedError`]
//! whose message says to run `bash scripts/setup.sh`, and the rest of Locus keeps
//! working without vectors.
//!
//! ```no_run
//! use locus_embed::{cosine, EmbedConfig, Embedder};
//! let embedder = Embedder::load(&EmbedConfig::default())?;
//! let v = embedder.embed(&["KeyError in register_hook", "def register_hook(name, fn): ..."])?;
//! println!("{}", cosine(&v[0], &v[1]));
//! # Ok::<(), locus_embed::EmbedError>(())
//! ```

pub mod bundle;
mod embedder;
mod error;
mod model;
mod ranker;
mod runtime;
mod store;

use std::path::PathBuf;

pub use bundle::{bundle_root, setup_hint, BUNDLE_MANIFEST};
pub use embedder::{EmbedConfig, Embedder, BATCH_SIZE, DEFAULT_MAX_TOKENS, MODEL_MAX_TOKENS};
pub use error::{EmbedError, SETUP_HINT};
pub use model::{Precision, CHECKSUMS, MODEL_NAME};
pub use ranker::{Ranker, FILE_RANKER_FEATURES, RANKER_ENV, RANKER_FEATURES, TAIL_RANKER_FEATURES};
pub use store::VectorStore;

/// The dimension of every vector.
pub const DIM: usize = 384;

/// Locus's per-user cache: `$LOCUS_CACHE`, else `$HOME/.cache/locus`
/// (the folder scripts/setup.sh fills; vectors go under `vectors/<model_id>/`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOCUS_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    // Without HOME (a bare service environment) the temp dir still works, uncached across boots.
    home.unwrap_or_else(std::env::temp_dir).join(".cache").join("locus")
}

/// The ONNX Runtime library this process uses, loading it if no one has yet (the setting,
/// `ORT_DYLIB_PATH`, the release bundle, the cache, python3's onnxruntime): `locus doctor`'s
/// first check.
pub fn runtime_library(setting: Option<&std::path::Path>) -> Result<PathBuf, EmbedError> {
    runtime::runtime(setting, &cache_dir()).map(|rt| rt.path.clone())
}

/// Cosine similarity; 0 when either vector is all zeros or the lengths differ.
/// For the unit vectors of [`Embedder::embed`] this is their dot product.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}

/// Scales `v` to unit length (leaves an all-zero vector as it is).
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_edge_cases() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn normalize_makes_unit_vectors() {
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = [0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
    }
}
