//! `locus eval`: runs an engine over benchmark instances materialized from bare git mirrors.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::bail;
use clap::Args;
use locus_eval::{Instance, Prediction, RunOptions};
use locus_index::{Index, WalkOptions};
use locus_search::{Mode, Options};

#[derive(Args)]
pub struct EvalArgs {
    #[arg(long)]
    pub instances: PathBuf,
    #[arg(long)]
    pub gold: PathBuf,
    /// Directory of bare mirrors, `<owner>+<name>/...`.
    #[arg(long)]
    pub mirrors: PathBuf,
    /// Where trees and results are cached (never inside the project).
    #[arg(long)]
    pub cache: PathBuf,
    /// Only these repositories (`owner/name`, repeatable).
    #[arg(long)]
    pub repo: Vec<String>,
    /// Only these instance ids (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub ids: Vec<String>,
    #[arg(long)]
    pub limit: Option<usize>,
    /// adaptive (default), single, fixed or bm25.
    #[arg(long, default_value = "adaptive")]
    pub engine: String,
    /// Output directory (default: CACHE/runs/ENGINE-DATASET).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Also write each instance's candidate features (JSON lines) here: the localization
    /// model's training data. Use with a fresh --out so no instance is reused.
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Use the encoder (semantic tool); vectors are embedded per tree, cached by content hash.
    #[arg(long)]
    pub semantic: bool,
    /// Rank functions with the learned localization model (models/ranker.onnx).
    #[arg(long)]
    pub model: bool,
    /// Rank each instance's functions with the model trained without its repository:
    /// `DIR/<owner>+<name>.onnx` (+ `.json`; the file model `.files.onnx` beside it when
    /// present), as `scripts/model/train_ranker.py --folds-out DIR` writes them. An honest end-to-end figure for every repository the model was trained on.
    #[arg(long, conflicts_with = "model")]
    pub model_folds: Option<PathBuf>,
    /// Leading files whose every function joins the learned scorer's candidates. Deeper
    /// pools are for --features dumps that scripts/model/pool_experiments.py cuts down.
    #[arg(long, default_value_t = locus_search::POOL_FILES)]
    pub pool_files: usize,
}

/// The leave-one-repository-out models of `--model-folds`, loaded once each.
struct FoldModels {
    dir: PathBuf,
    loaded: Mutex<std::collections::HashMap<String, Arc<dyn locus_search::Scorer>>>,
}

impl FoldModels {
    fn for_repo(&self, repo: &str) -> anyhow::Result<Arc<dyn locus_search::Scorer>> {
        let mut loaded = self.loaded.lock().unwrap();
        if let Some(s) = loaded.get(repo) {
            return Ok(s.clone());
        }
        let path = self.dir.join(format!("{}.onnx", repo.replace('/', "+")));
        let scorer = locus_lsp::dense::LearnedScorer::load_from(&path, None)
            .map_err(|e| anyhow::anyhow!("the fold model for {repo}: {e}"))?;
        let s: Arc<dyn locus_search::Scorer> = Arc::new(scorer);
        loaded.insert(repo.to_string(), s.clone());
        Ok(s)
    }
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let Some(mode) = Mode::parse(&a.engine) else {
        bail!("unknown engine `{}`; use adaptive, single, fixed or bm25", a.engine);
    };
    let mut opts = RunOptions::new(a.instances, a.gold, a.mirrors, a.cache, a.engine.clone());
    opts.repos = a.repo;
    opts.ids = a.ids;
    opts.limit = a.limit;
    opts.out = a.out;
    opts.jobs = a.jobs.max(1);
    opts.progress = true;
    opts.forbid_under = project_root();
    let semantic = a.semantic || mode == Mode::Dense;
    let encoder = if semantic {
        locus_lsp::dense::Encoder::load(&locus_embed::EmbedConfig::default())
            .map(Arc::new)
            .map_err(|e| e.to_string())
    } else {
        Err("not asked for".to_string())
    };
    if semantic {
        if let Err(e) = &encoder {
            bail!("the encoder is needed for --semantic: {e}");
        }
    }
    let vector_ms: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    // The index of the last tree, reused when consecutive instances share a commit.
    let last: Mutex<Option<(PathBuf, Arc<Index>, f64)>> = Mutex::new(None);
    let features_out = match &a.features {
        Some(p) => Some(Mutex::new(std::io::BufWriter::new(std::fs::File::create(p)?))),
        None => None,
    };
    let scorer = if a.model {
        let s = locus_lsp::dense::LearnedScorer::load(None)
            .map_err(|e| anyhow::anyhow!("the localization model is needed for --model: {e}"))?;
        Some(Arc::new(s) as Arc<dyn locus_search::Scorer>)
    } else {
        None
    };
    let folds = a.model_folds.map(|dir| FoldModels { dir, loaded: Mutex::default() });
    let search = Options {
        mode,
        max_results: 50,
        collect_features: features_out.is_some(),
        scorer,
        pool_files: a.pool_files,
        ..Options::default()
    };
    let locate = |root: &Path, inst: &Instance| -> anyhow::Result<Prediction> {
        let (ix, index_ms) = {
            let cached = last.lock().unwrap().clone();
            match cached {
                Some((p, ix, ms)) if p == root => (ix, ms),
                _ => {
                    let t = Instant::now();
                    let ix = Arc::new(Index::build(root, &WalkOptions::default())?);
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    *last.lock().unwrap() = Some((root.to_path_buf(), ix.clone(), ms));
                    (ix, ms)
                }
            }
        };
        let cancel = AtomicBool::new(false);
        let dense = if semantic {
            let enc = encoder.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            let t = Instant::now();
            let d = locus_lsp::dense::DenseIndex::build(&ix, enc.clone(), true, &cancel, |_, _| {})?;
            vector_ms.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
            Some(d)
        } else {
            None
        };
        let d = dense.as_ref().map(|d| d as &dyn locus_search::tools::Semantic);
        let t = Instant::now();
        let fold_opts;
        let opts = match &folds {
            Some(f) => {
                fold_opts = Options { scorer: Some(f.for_repo(&inst.repo)?), ..search.clone() };
                &fold_opts
            }
            None => &search,
        };
        let loc = locus_search::locate(&ix, d, &inst.problem_statement, opts, &cancel)?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if let Some(out) = &features_out {
            use std::io::Write;
            // "c": the candidate inputs (CANDIDATE_FEATURE_NAMES), which only the tail model reads.
            let cands: Vec<serde_json::Value> = loc
                .features
                .iter()
                .zip(&loc.candidate_features)
                .map(|((name, f), c)| serde_json::json!({"name": name, "f": f, "c": c}))
                .collect();
            let files: Vec<serde_json::Value> =
                loc.file_features.iter().map(|(path, f)| serde_json::json!({"path": path, "f": f})).collect();
            let line = serde_json::json!({
                "instance_id": inst.instance_id,
                "repo": inst.repo,
                "pool_files": opts.pool_files,
                "candidate_features": locus_search::CANDIDATE_FEATURE_NAMES,
                "candidates": cands,
                "files": files,
            });
            let mut w = out.lock().unwrap();
            writeln!(w, "{line}")?;
            w.flush()?;
        }
        Ok(Prediction {
            ranked_files: loc.files.iter().map(|r| r.path.clone()).collect(),
            ranked_functions: loc.functions.iter().map(|r| r.name.clone()).collect(),
            predicted_files: loc.predicted_files.clone(),
            predicted_functions: loc.predicted_functions.clone(),
            ms,
            index_ms,
            turns: loc.trace.turns.len() as u32,
            calls: loc.trace.calls,
            efficiency: loc.trace.efficiency as f64,
            redundant_calls: loc.trace.redundant_calls,
            peak_rss_kb: crate::cli::peak_rss_kb(),
        })
    };
    // The runner prints the table and writes summary.json itself.
    locus_eval::run(&opts, &locate)?;
    let v = vector_ms.lock().unwrap();
    if !v.is_empty() {
        eprintln!("vectors: {} trees, {:.1} s in all", v.len(), v.iter().sum::<f64>() / 1000.0);
    }
    Ok(())
}

/// The project checkout this binary was built from, if it is still there: eval output must
/// never land inside it.
fn project_root() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map(|p| p.to_path_buf()).filter(|p| p.join("Cargo.toml").exists())
}
