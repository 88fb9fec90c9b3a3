//! `locus doctor`: what this installation of Locus found — the runtime, the encoder, the
//! localization models, the vector cache — where, with their checksums, and for anything
//! missing the exact fix. The language server logs the same lines once at start.

use std::path::{Path, PathBuf};

use locus_embed::{Embedder, MODEL_NAME};
use serde::Serialize;

use crate::{LearnedScorer, ModelPaths};

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
    /// The parsed workspaces kept between runs (`locus_index::persist`) and their size on disk.
    pub index_cache: PathBuf,
    pub index_cache_bytes: u64,
}

impl Doctor {
    /// Looks for everything the way a search would (settings in `paths`, then the
    /// environment, the bundle, the cache). Loads the runtime, the encoder and the models; opens
    /// no vector cache and indexes nothing.
    pub fn run(paths: &ModelPaths) -> Doctor {
        let runtime = runtime(paths);
        let needs = |what: &str| format!("not loaded: {what} ONNX Runtime (above)");
        let encoder = match runtime {
            Ok(_) => Embedder::load(&paths.embed_config()).map_err(|e| e.to_string()),
            Err(_) => Err(needs("it needs")),
        };
        let scorer = match runtime {
            Ok(_) => paths.scorer().map_err(|e| e.to_string()),
            Err(_) => Err(needs("they need")),
        };
        Doctor::of(runtime, encoder.as_ref(), scorer.as_ref())
    }

    /// The report on what a process already loaded (the language server's own encoder and
    /// models), so nothing is loaded twice; `Err` holds why one could not be loaded.
    pub fn of(
        runtime: Result<PathBuf, String>,
        encoder: Result<&Embedder, &String>,
        scorer: Result<&LearnedScorer, &String>,
    ) -> Doctor {
        let checks = vec![
            match runtime {
                Ok(p) => Check { name: "ONNX Runtime", ok: true, detail: p.display().to_string() },
                Err(e) => Check { name: "ONNX Runtime", ok: false, detail: e },
            },
            encoder_check(encoder),
            models_check(scorer),
        ];
        let vector_cache = locus_embed::cache_dir().join("vectors");
        let index_cache = locus_embed::cache_dir().join("index");
        Doctor {
            version: env!("CARGO_PKG_VERSION"),
            binary: std::env::current_exe().ok(),
            bundle: locus_embed::bundle_root().map(Path::to_path_buf),
            checks,
            vector_cache_bytes: folder_bytes(&vector_cache),
            vector_cache,
            index_cache_bytes: folder_bytes(&index_cache),
            index_cache,
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
        out.push(format!(
            "index cache: {} ({:.1} MB; the last 32 workspaces' parsed files, for a fast reopen; safe to delete)",
            self.index_cache.display(),
            self.index_cache_bytes as f64 / 1e6
        ));
        out
    }
}

/// The ONNX Runtime library of this process (loaded by the first caller), or why none loads.
pub fn runtime(paths: &ModelPaths) -> Result<PathBuf, String> {
    locus_embed::runtime_library(paths.runtime.as_deref()).map_err(|e| e.to_string())
}

fn encoder_check(encoder: Result<&Embedder, &String>) -> Check {
    let name = "encoder";
    match encoder {
        Err(e) => Check { name, ok: false, detail: e.clone() },
        Ok(emb) => {
            // The id ends with the first 12 hex digits of model.onnx's sha256, checked against
            // the folder's recorded checksums when it was loaded.
            let model = emb.model_path();
            let dir = model.parent().unwrap_or(model);
            let mut detail = format!("{} in {} (checksums verified)", emb.model_id(), dir.display());
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

fn models_check(scorer: Result<&LearnedScorer, &String>) -> Check {
    let name = "localization models";
    match scorer {
        Err(e) => Check { name, ok: false, detail: e.clone() },
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
            let mut found: Vec<String> = s.rankers().map(describe).collect();
            for (language, m) in &s.languages {
                let own: Vec<String> = m.rankers().map(describe).collect();
                found.push(format!(
                    "for {} issues, {}/: {}",
                    language.as_str(),
                    language.as_str(),
                    own.join(", ")
                ));
            }
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
