//! One Locus workspace, whichever front end asks: an index snapshot, the encoder's vectors for
//! it, the learned models and one [`Workspace::locate`]. The language server, `locus locate`
//! and `locus eval` assemble a [`Workspace`] from these parts and call it; none of them wires
//! the search itself.
//!
//! Architecture invariant: no LSP, JSON-RPC or UTF-16 here, and no benchmark data: a query is
//! the text and nothing else (an evaluation's patch and gold never reach this crate).

pub mod dense;
pub mod doctor;
pub mod learned;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use locus_embed::EmbedConfig;
use locus_index::{Index, WalkOptions};
use locus_search::{Cancelled, Localization, Options, Scorer};

pub use dense::{entity_text, DenseIndex, Encoder};
pub use doctor::Doctor;
pub use learned::{LearnedScorer, ModelError};
pub use report::{short_name, ChosenCall, Granularity, LocatedItem, Stats};

/// A workspace ready to answer: cheap to clone (every part is shared), so a front end can
/// assemble one per query from its current snapshot.
#[derive(Clone)]
pub struct Workspace {
    pub index: Arc<Index>,
    /// The encoder's vectors of this very snapshot; `None`: the semantic tool is off.
    pub vectors: Option<Arc<DenseIndex>>,
    /// The learned models; `None`: the fusion ranks.
    pub scorer: Option<Arc<dyn Scorer>>,
}

impl Workspace {
    pub fn new(index: Arc<Index>) -> Workspace {
        Workspace { index, vectors: None, scorer: None }
    }

    /// Locates `text` (the issue) in this workspace. A cancelled search returns [`Cancelled`],
    /// never half a result.
    pub fn locate(
        &self,
        text: &str,
        options: &Options,
        cancel: &AtomicBool,
    ) -> Result<Localization, Cancelled> {
        let dense = self.vectors.as_deref().map(|d| d as &dyn locus_search::tools::Semantic);
        let Some(on_demand) = self.vectors.as_deref().filter(|d| d.is_on_demand() && !d.is_complete()) else {
            return locus_search::locate(&self.index, dense, self.scorer.as_deref(), text, options, cancel);
        };
        // Vectors still missing: the search without them names the candidates (the pools the
        // models rank), those are embedded first, and the search runs again with them; a
        // candidate it adds is embedded when its similarity is asked for. The pool is not
        // widened meanwhile unless asked: a wide pool's every function would be embedded.
        let before = on_demand.on_demand_made();
        let options =
            &Options { widen_pool: options.widen_pool && options.widen_on_demand, ..options.clone() };
        let first = Options {
            collect_candidates: true,
            collect_features: false,
            collect_calls: false,
            ..options.clone()
        };
        let pool =
            locus_search::locate(&self.index, None, self.scorer.as_deref(), text, &first, cancel)?.pool;
        if let Err(e) = on_demand.ensure(&pool) {
            tracing::warn!("embedding the candidates on demand: {e}");
        }
        let mut loc =
            locus_search::locate(&self.index, dense, self.scorer.as_deref(), text, options, cancel)?;
        let after = on_demand.on_demand_made();
        loc.trace.on_demand =
            Some(locus_search::OnDemand { vectors: after.0 - before.0, ms: after.1 - before.1 });
        Ok(loc)
    }
}

/// ONNX Runtime threads per embedding call when not set: `$LOCUS_EMBED_THREADS`, else every
/// core (on 2 cores, 1.5× the vectors per second of one thread: `docs/benchmarks.md`).
fn default_embed_threads() -> usize {
    std::env::var("LOCUS_EMBED_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Tokens the encoder reads per text: `$LOCUS_EMBED_TOKENS` (2 to 512), else 0 (the model's
/// default, 256). Vectors made at another length are cached apart (the model id says it).
fn default_embed_tokens() -> usize {
    std::env::var("LOCUS_EMBED_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Where the neural parts come from; `None` fields use the defaults (the cache that
/// `scripts/setup.sh` fills, the models shipped in the checkout, `$LOCUS_RANKER`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelPaths {
    /// The encoder's folder (model.onnx, tokenizer.json, ...).
    pub encoder_dir: Option<PathBuf>,
    /// `libonnxruntime.so`.
    pub runtime: Option<PathBuf>,
    /// The function model; the file and tail models are looked for beside it.
    pub ranker: Option<PathBuf>,
    /// Threads per embedding call (`None`: [`default_embed_threads`]).
    pub embed_threads: Option<usize>,
}

impl ModelPaths {
    pub fn embed_config(&self) -> EmbedConfig {
        EmbedConfig {
            model_dir: self.encoder_dir.clone(),
            runtime_path: self.runtime.clone(),
            threads: self.embed_threads.unwrap_or_else(default_embed_threads),
            max_tokens: default_embed_tokens(),
        }
    }

    /// Loads the encoder and opens its vector cache.
    pub fn encoder(&self) -> Result<Encoder, locus_embed::EmbedError> {
        Encoder::load(&self.embed_config())
    }

    /// Loads the learned models.
    pub fn scorer(&self) -> Result<LearnedScorer, ModelError> {
        match &self.ranker {
            Some(p) => LearnedScorer::load_from(p, self.runtime.as_deref()),
            None => LearnedScorer::load(self.runtime.as_deref()),
        }
    }
}

/// Why a workspace could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{} is not a directory; give the root of the workspace to search", .0.display())]
    NotADirectory(PathBuf),
    #[error("indexing {}: {source}", path.display())]
    Index { path: PathBuf, source: std::io::Error },
}

/// Walks and indexes `root` (gitignore-aware; `exclude` globs left out), re-parsing only the
/// files that changed since the workspace's snapshot in the cache ([`snapshot_path`]), and
/// writes the snapshot back when it changed (a failure to write is logged, not an error).
pub fn index(root: &Path, exclude: &[String]) -> Result<Index, OpenError> {
    if !root.is_dir() {
        return Err(OpenError::NotADirectory(root.to_path_buf()));
    }
    let opts = WalkOptions { exclude: exclude.to_vec(), ..WalkOptions::default() };
    let err = |source| OpenError::Index { path: root.to_path_buf(), source };
    let snapshot = snapshot_path(&root.canonicalize().map_err(err)?);
    let ix = Index::build_with(root, &opts, Some(&snapshot)).map_err(err)?;
    if ix.reuse.changed() {
        if let Err(e) = ix.save_snapshot(&snapshot) {
            tracing::warn!("could not write the index snapshot {}: {e}", snapshot.display());
        }
    }
    Ok(ix)
}

/// Where the parsed units of the workspace at `root` (canonical) are kept between runs:
/// `<cache>/index/<hash of the root>.units` ([`locus_index::persist`]).
pub fn snapshot_path(root: &Path) -> std::path::PathBuf {
    locus_index::persist::snapshot_path(&locus_embed::cache_dir(), root)
}

/// The vectors of `index`: cached ones read, missing ones embedded (`progress(done, total)`
/// after each batch) unless `cancel` is set.
pub fn vectors(
    index: &Index,
    encoder: Arc<Encoder>,
    cancel: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> Result<DenseIndex, locus_embed::EmbedError> {
    DenseIndex::build(index, encoder, true, cancel, progress)
}

#[cfg(test)]
mod testing {
    /// For a test that needs an installed part (the encoder, the runtime): skips on a
    /// developer's machine, fails under CI (`CI=true`), where `scripts/setup.sh` installs it.
    pub(crate) fn missing(what: &str) {
        let msg = format!("needs {what}; `bash scripts/setup.sh` installs it");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
}

#[cfg(test)]
mod tests;
