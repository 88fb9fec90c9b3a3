//! `locus doctor`: what this installation of Locus found — the runtime, the encoder, the
//! localization models, the vector cache — where, with their checksums, and for anything
//! missing the exact fix. The language server logs the same lines once at start.

use std::path::{Path, PathBuf};

use locus_embed::{Embedder, MODEL_NAME};
use serde::Serialize;

use crate::ModelPaths;

/// One thing Locus needs, and what was found.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// Whether it was found and works; a missing one says how to fix it in `detail`.
    pub ok: bool,
    /// What was found and where, or what went wrong and what to do.
    pub detail: String,
}

/// Everything `locus doctor` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Doctor {
    pub version: &'static str,
    pub binary: Option<PathBuf>,
    /// The release bundle this binary runs from, if any (files are then found there first).
    pub bundle: Option<PathBuf>,
    pub checks: Vec<Check>,
    /// The vector cache's folder and its size on disk, in bytes.
    pub vector_cache: PathBuf,
    pub vector_cache_bytes: u64,
}

impl Doctor {
    /// Looks for everything the way a search would (settings in `paths`, then the
    /// environment, the bundle, the cache). Loads the runtime, the encoder and the models; opens
    /// no vector cache and indexes nothing.
    pub fn run(paths: &ModelPaths) -> Doctor {
        let mut checks = Vec::new();
        let runtime = locus_embed::runtime_library(paths.runtime.as_deref());
        checks.push(match &runtime {
            Ok(p) => Check { name: "ONNX Runtime", ok: true, detail: p.display().to_string() },
            Err(e) => Check { name: "ONNX Runtime", ok: false, detail: e.to_string() },
        });
        checks.push(encoder_check(paths, runtime.is_ok()));
        checks.push(models_check(paths, runtime.is_ok()));
        let vector_cache = locus_embed::cache_dir().join("vectors");
        Doctor {
            version: env!("CARGO_PKG_VERSION"),
            binary: std::env::current_exe().ok(),
            bundle: locus_embed::bundle_root().map(Path::to_path_buf),
            checks,
            vector_cache_bytes: folder_bytes(&vector_cache),
            vector_cache,
        }
    }

    /// Whether everything was found and works.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The report as lines of text, the way `locus doctor` prints it and the server logs it.
    pub fn lines(&self) -> Vec<String> {
        let binary =
            self.binary.as_ref().map_or_else(|| "unknown path".to_owned(), |p| p.display().to_string());
        let mut out = vec![format!("locus {} ({binary})", self.version)];
        out.push(match &self.bundle {
            Some(b) => format!("release bundle: {}", b.display()),
            None => "release bundle: none (files come from the settings, the environment, then the cache)"
                .to_owned(),
        });
        for c in &self.checks {
            out.push(format!("{:<7} {}: {}", if c.ok { "ok" } else { "MISSING" }, c.name, c.detail));
        }
        out.push(format!(
            "vector cache: {} ({:.1} MB; delete it to free the space, vectors are recomputed on demand)",
            self.vector_cache.display(),
            self.vector_cache_bytes as f64 / 1e6
        ));
        out
    }
}

fn encoder_check(paths: &ModelPaths, runtime_ok: bool) -> Check {
    let name = "encoder";
    if !runtime_ok {
        return Check { name, ok: false, detail: "not loaded: it needs ONNX Runtime (above)".to_owned() };
    }
    match Embedder::load(&paths.embed_config()) {
        Err(e) => Check { name, ok: false, detail: e.to_string() },
        Ok(emb) => {
            let model = emb.model_path();
            let sha =
                locus_embed::sha256_file(model).map(|s| s[..16].to_owned()).unwrap_or_else(|e| e.to_string());
            let dir = model.parent().unwrap_or(model);
            let mut detail =
                format!("{} in {} (model.onnx sha256 {sha}…, verified)", emb.model_id(), dir.display());
            if dir.file_name().is_some_and(|n| n == MODEL_NAME) {
                detail.push_str(&format!(
                    "; this is the base all-MiniLM-L6-v2, not Locus's own encoder: {}",
                    locus_embed::setup_hint()
                ));
            }
            Check { name, ok: true, detail }
        }
    }
}

fn models_check(paths: &ModelPaths, runtime_ok: bool) -> Check {
    let name = "localization models";
    if !runtime_ok {
        return Check { name, ok: false, detail: "not loaded: they need ONNX Runtime (above)".to_owned() };
    }
    match paths.scorer() {
        Err(e) => Check { name, ok: false, detail: e.to_string() },
        Ok(s) => {
            let describe = |r: &locus_embed::Ranker| {
                let file =
                    r.model_path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                let langs = r.languages().map_or_else(
                    || "its training languages not recorded".to_owned(),
                    |l| format!("trained on {}", l.join(", ")),
                );
                format!("{file} (sha256 {}…, {langs})", &r.sha256()[..16.min(r.sha256().len())])
            };
            let mut found = vec![describe(&s.functions)];
            found.extend(s.files.as_ref().map(describe));
            found.extend(s.tail.as_ref().map(describe));
            let dir = s.path().parent().unwrap_or(s.path());
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            Check { name, ok: true, detail: format!("{} in {}", found.join("; "), dir.display()) }
        }
    }
}

/// The bytes of the files under `dir` (0 when it does not exist).
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
