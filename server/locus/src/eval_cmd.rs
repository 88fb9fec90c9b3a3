//! `locus eval`: runs an engine over benchmark instances materialized from bare git mirrors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Args;
use locus_engine::{LearnedScorer, ModelPaths, Workspace};
use locus_eval::{Issue, Prediction, RunOptions};
use locus_index::{Index, WalkOptions};
use locus_search::{CandidateFeatures, FileFeatures, FunctionFeatures, Mode, Options, RankedBy};
use serde::Serialize;

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
    /// model's training data. Use with a fresh --out so no instance is reused. The learned
    /// policy does not widen the pool in such a run (the rankers train on their standard pool).
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Also write, per instance, every call the search policy considered in each turn (issued
    /// or not) with its features and what it returned or would have returned, by entity name
    /// (JSON lines): the search policy's training data; scripts/policy/call_stats.py labels
    /// them against the gold. Use with a fresh --out so no instance is reused.
    #[arg(long)]
    pub call_traces: Option<PathBuf>,
    /// Use the encoder (semantic tool); vectors are embedded per tree, cached by content hash.
    #[arg(long)]
    pub semantic: bool,
    /// With --semantic: no tree is embedded whole; each search embeds the candidates it needs
    /// (from an empty start per instance, as on a tree never embedded), read from the vector
    /// cache when it holds them. Its time is part of the search's.
    #[arg(long, requires = "semantic")]
    pub on_demand: bool,
    /// With --on-demand and --policy learned: let the policy widen the candidate pool when its
    /// search ends unsure, embedding every widened candidate on demand (slow on a cold tree).
    #[arg(long, requires = "on_demand")]
    pub widen_on_demand: bool,
    /// Parse every tree afresh, instead of reusing the parsed files an earlier tree of the same
    /// repository shares with it (`CACHE/index/<owner>+<name>.units`, the language server's
    /// snapshot format; a file is reused only when its path and content hash match).
    #[arg(long)]
    pub fresh_index: bool,
    /// Answer from the first stage of the language server's cold build (`Index::build_staged`:
    /// test code and files over 256 KB left out when at least 2 MB of them must be parsed),
    /// every tree parsed afresh as on a cold open: what the answers given before the second
    /// stage has added those files are worth.
    #[arg(long, conflicts_with = "fresh_index")]
    pub first_stage: bool,
    /// Rank functions with the learned localization model (models/ranker.onnx).
    #[arg(long)]
    pub model: bool,
    /// Rank each instance's functions with the model trained without its repository:
    /// `DIR/<owner>+<name>.onnx` (+ `.json`; the file model `.files.onnx` beside it when
    /// present), as `scripts/model/train_ranker.py --folds-out DIR` writes them. An honest end-to-end figure for every repository the model was trained on.
    #[arg(long, conflicts_with = "model")]
    pub model_folds: Option<PathBuf>,
    /// Who chooses the search's calls: hand (the hand-set policy), learned (the policy model,
    /// models/policy.onnx; needs --model) or explore (every candidate call of the learned
    /// policy's turns issued: its training data, with --call-traces).
    #[arg(long, default_value = "hand")]
    pub policy: locus_search::Policy,
    /// The learned policy's value threshold instead of the one its model records.
    #[arg(long)]
    pub policy_threshold: Option<f32>,
    /// Leading files whose every function joins the learned scorer's candidates. Deeper
    /// pools are for --features dumps that scripts/model/pool_experiments.py cuts down.
    #[arg(long, default_value_t = locus_search::POOL_FILES)]
    pub pool_files: usize,
    /// Gitignore-style globs of files every tree is indexed without (repeatable), as the
    /// language server's `locus.exclude` setting: what an answer from part of a workspace
    /// (`--exclude '**/tests/**'`) is worth. The gold is scored as always.
    #[arg(long)]
    pub exclude: Vec<String>,
}

/// The leave-one-repository-out models of `--model-folds`, loaded once each.
struct FoldModels {
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<LearnedScorer>>>,
}

impl FoldModels {
    fn for_repo(&self, repo: &str) -> anyhow::Result<Arc<LearnedScorer>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = loaded.get(repo) {
            return Ok(s.clone());
        }
        let path = self.dir.join(format!("{}.onnx", repo.replace('/', "+")));
        let scorer = LearnedScorer::load_from(&path, None)
            .map_err(|e| anyhow::anyhow!("the fold model for {repo}: {e}"))?;
        let s = Arc::new(scorer);
        loaded.insert(repo.to_string(), s.clone());
        Ok(s)
    }
}

/// Which models rank: none, the shipped ones, or each repository's fold model.
enum Models {
    None,
    /// The shipped models and the repositories their `.json` says they were trained on.
    Shipped(Arc<LearnedScorer>, Option<Vec<String>>),
    Folds(FoldModels),
}

impl Models {
    /// The shipped models and the repositories any of them (the language models' included)
    /// was trained on.
    fn shipped(scorer: LearnedScorer) -> Models {
        let repos_of = |s: &LearnedScorer| {
            let meta = std::fs::read_to_string(s.path().with_extension("json")).ok();
            meta.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| serde_json::from_value::<Vec<String>>(v["training_repos"].clone()).ok())
        };
        let repos = std::iter::once(&scorer)
            .chain(scorer.languages.iter().map(|(_, s)| s))
            .map(repos_of)
            .collect::<Option<Vec<_>>>()
            .map(|all| all.concat());
        Models::Shipped(Arc::new(scorer), repos)
    }

    fn for_repo(&self, repo: &str) -> anyhow::Result<Option<Arc<LearnedScorer>>> {
        Ok(match self {
            Models::None => None,
            Models::Shipped(s, _) => Some(s.clone()),
            Models::Folds(f) => Some(f.for_repo(repo)?),
        })
    }

    /// Whether the model that ranks `repo`'s instances saw that repository in training
    /// (`None`: no model, or its record does not say).
    fn in_sample(&self, repo: &str) -> Option<bool> {
        match self {
            Models::None => None,
            Models::Shipped(_, repos) => repos.as_ref().map(|r| r.iter().any(|x| x == repo)),
            // A repository's fold model is the one trained without it.
            Models::Folds(_) => Some(false),
        }
    }
}

/// Who put a feature dump's rows in their order: training data ordered by a model that saw the
/// instance is in-sample, and the dump says so.
#[derive(Serialize)]
struct RowsOrder {
    /// Who ordered the final lists (`fusion`, or which models).
    ranking: RankedBy,
    /// The function model's file and sha256, when a model was loaded.
    model: Option<String>,
    sha256: Option<String>,
    /// Whether that model was trained on this instance's repository (`null`: no model, or
    /// its record does not say).
    in_sample: Option<bool>,
}

/// One line of a `--call-traces` dump: the calls considered in each turn, with the entities
/// (full names, as the gold writes them) they returned.
#[derive(Serialize)]
struct CallTraceLine<'a> {
    instance_id: &'a str,
    repo: &'a str,
    turns: usize,
    calls: Vec<CallTraceRow<'a>>,
}

#[derive(Serialize)]
struct CallTraceRow<'a> {
    #[serde(flatten)]
    call: &'a locus_search::ConsideredCall,
    returned_names: Vec<String>,
    new_names: Vec<String>,
}

/// One line of a `--features` dump (scripts/model/ reads it): the candidates the models score,
/// with their rows in the schema's columns (`models/features.json`).
#[derive(Serialize)]
struct FeatureLine<'a> {
    instance_id: &'a str,
    repo: &'a str,
    pool_files: usize,
    feature_names: &'static [&'static str],
    /// The names of `c`, the candidate inputs only the tail model reads.
    candidate_features: &'static [&'static str],
    file_feature_names: &'static [&'static str],
    rows_ordered_by: RowsOrder,
    candidates: Vec<CandidateRow<'a>>,
    files: Vec<FileRow<'a>>,
}

#[derive(Serialize)]
struct CandidateRow<'a> {
    name: &'a str,
    f: [f32; FunctionFeatures::WIDTH],
    c: [f32; CandidateFeatures::WIDTH],
}

#[derive(Serialize)]
struct FileRow<'a> {
    path: &'a str,
    f: [f32; FileFeatures::WIDTH],
}

pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let mode: Mode = a.engine.parse().map_err(anyhow::Error::msg)?;
    // Trees of one repository share most files: each instance parses only what differs from
    // the last tree of its repository indexed here.
    let snapshots = (!a.fresh_index && !a.first_stage).then(|| a.cache.join("index"));
    let mut opts = RunOptions::new(a.instances, a.gold, a.mirrors, a.cache, a.engine.clone());
    opts.repos = a.repo;
    opts.ids = a.ids;
    opts.limit = a.limit;
    opts.out = a.out;
    opts.jobs = a.jobs.max(1);
    let jobs = opts.jobs;
    opts.progress = true;
    opts.forbid_under = project_root();
    // Instances run side by side share the cores: each embeds with its share.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let paths = ModelPaths { embed_threads: Some((cores / opts.jobs).max(1)), ..ModelPaths::default() };
    let semantic = a.semantic || mode == Mode::Dense;
    if a.on_demand && matches!(mode, Mode::Dense | Mode::Bm25) {
        anyhow::bail!("--on-demand embeds the candidates of the engine's other tools: use it with --engine adaptive, single or fixed");
    }
    let on_demand = a.on_demand;
    // One model session per job over one vector cache: a session embeds one batch at a time, so
    // jobs sharing one took turns and kept one core busy (500 instances on demand: 117 % CPU).
    let encoders: Vec<Arc<locus_engine::Encoder>> = if semantic {
        let first =
            paths.encoder().map_err(|e| anyhow::anyhow!("the encoder is needed for --semantic: {e}"))?;
        let cfg = paths.embed_config();
        let mut all = vec![Arc::new(first)];
        for _ in 1..jobs {
            let sibling = all[0].sibling(&cfg)?;
            all.push(Arc::new(sibling));
        }
        all
    } else {
        Vec::new()
    };
    let vector_ms: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    // The index of the last tree, reused when consecutive instances share a commit.
    let last: Mutex<Option<(PathBuf, Arc<Index>, f64)>> = Mutex::new(None);
    let features_out = match &a.features {
        Some(p) => Some(Mutex::new(std::io::BufWriter::new(std::fs::File::create(p)?))),
        None => None,
    };
    let calls_out = match &a.call_traces {
        Some(p) => Some(Mutex::new(std::io::BufWriter::new(std::fs::File::create(p)?))),
        None => None,
    };
    let models = match (a.model, a.model_folds) {
        (true, _) => Models::shipped(
            paths
                .scorer()
                .map_err(|e| anyhow::anyhow!("the localization model is needed for --model: {e}"))?,
        ),
        (false, Some(dir)) => Models::Folds(FoldModels { dir, loaded: Mutex::default() }),
        (false, None) => Models::None,
    };
    if a.policy == locus_search::Policy::Learned {
        match &models {
            Models::Shipped(s, _) if s.policy.is_some() => {}
            Models::Shipped(s, _) => anyhow::bail!(
                "--policy learned: there is no search policy model beside {} (models/policy.onnx); \
                 restore it with `git checkout models/` or train it (scripts/policy/train_policy.py)",
                s.path().display()
            ),
            Models::Folds(f) if f.dir.join("policy.onnx").exists() => {}
            Models::Folds(f) => anyhow::bail!(
                "--policy learned with --model-folds: there is no policy model in {} (copy models/policy.onnx \
                 and policy.json there: the policy is trained on the corpus only, so one model serves every fold)",
                f.dir.display()
            ),
            Models::None => anyhow::bail!(
                "--policy learned needs --model or --model-folds: the policy model is loaded with the learned models"
            ),
        }
    }
    let search = Options {
        mode,
        max_results: 50,
        collect_features: features_out.is_some(),
        collect_candidates: true,
        collect_calls: calls_out.is_some(),
        pool_files: a.pool_files,
        policy: a.policy,
        call_threshold: a.policy_threshold,
        // Training data for the rankers is their standard pool (`Options::widen_pool`).
        widen_pool: features_out.is_none(),
        widen_on_demand: a.widen_on_demand,
        ..Options::default()
    };
    let walk = WalkOptions { exclude: a.exclude.clone(), ..WalkOptions::default() };
    // The engine sees the issue's text and repository, never the patch or the gold.
    let locate = |root: &Path, issue: &Issue<'_>| -> anyhow::Result<Prediction> {
        let (ix, index_ms) = {
            let cached = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match cached {
                Some((p, ix, ms)) if p == root => (ix, ms),
                _ => {
                    let t = Instant::now();
                    let snapshot = match &snapshots {
                        Some(d) => {
                            Some(d.join(format!("{}.units", locus_eval::materialize::repo_slug(issue.repo)?)))
                        }
                        None => None,
                    };
                    let ix = Arc::new(match a.first_stage {
                        true => Index::build_staged(root, &walk, None)?.0,
                        false => Index::build_with(root, &walk, snapshot.as_deref())?,
                    });
                    if let Some(path) = snapshot.filter(|_| ix.reuse.changed()) {
                        if let Err(e) = ix.save_snapshot(&path) {
                            tracing::warn!("could not write the index snapshot {}: {e}", path.display());
                        }
                    }
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    *last.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((root.to_path_buf(), ix.clone(), ms));
                    (ix, ms)
                }
            }
        };
        let cancel = AtomicBool::new(false);
        // The job's own session: instances run on the worker pool's `jobs` threads.
        let encoder = (!encoders.is_empty())
            .then(|| &encoders[rayon::current_thread_index().unwrap_or(0) % encoders.len()]);
        let vectors = match encoder {
            Some(enc) if on_demand => {
                Some(Arc::new(locus_engine::DenseIndex::on_demand(ix.clone(), enc.clone(), false)))
            }
            Some(enc) => {
                let t = Instant::now();
                // A cold tree takes minutes: its embedding shows progress (one instance at a
                // time only, so that lines of parallel instances do not interleave).
                let mut progress =
                    (jobs == 1).then(|| crate::output::Progress::stderr("embedding", "entities"));
                let d = locus_engine::vectors(&ix, enc.clone(), &cancel, |done, total| {
                    if let Some(p) = progress.as_mut() {
                        p.update(done, total);
                    }
                })?;
                if let Some(p) = progress {
                    p.finish();
                }
                vector_ms.lock().unwrap_or_else(|e| e.into_inner()).push(t.elapsed().as_secs_f64() * 1000.0);
                Some(Arc::new(d))
            }
            None => None,
        };
        let model = models.for_repo(issue.repo)?;
        let ws = Workspace {
            index: ix.clone(),
            vectors,
            scorer: model.clone().map(|m| m as Arc<dyn locus_search::Scorer>),
        };
        let t = Instant::now();
        let loc = ws.locate(issue.text, &search, &cancel)?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if let Some(out) = &features_out {
            use std::io::Write;
            let line = FeatureLine {
                instance_id: issue.instance_id,
                repo: issue.repo,
                pool_files: search.pool_files,
                feature_names: FunctionFeatures::NAMES,
                candidate_features: CandidateFeatures::NAMES,
                file_feature_names: FileFeatures::NAMES,
                rows_ordered_by: RowsOrder {
                    ranking: loc.trace.ranking,
                    model: model.as_ref().map(|m| m.path().display().to_string()),
                    sha256: model.as_ref().map(|m| m.functions.sha256().to_string()),
                    in_sample: models.in_sample(issue.repo),
                },
                candidates: loc
                    .features
                    .iter()
                    .zip(&loc.candidate_features)
                    .map(|((name, f), c)| CandidateRow { name, f: f.to_row(), c: c.to_row() })
                    .collect(),
                files: loc.file_features.iter().map(|(path, f)| FileRow { path, f: f.to_row() }).collect(),
            };
            let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
            writeln!(w, "{}", serde_json::to_string(&line)?)?;
            w.flush()?;
        }
        if let Some(out) = &calls_out {
            use std::io::Write;
            let names = |ids: &[locus_index::EntityId]| ids.iter().map(|&id| ix.full_name(id)).collect();
            let line = CallTraceLine {
                instance_id: issue.instance_id,
                repo: issue.repo,
                turns: loc.trace.turns.len(),
                calls: loc
                    .trace
                    .considered
                    .iter()
                    .map(|c| CallTraceRow {
                        call: c,
                        returned_names: names(&c.returned),
                        new_names: names(&c.new),
                    })
                    .collect(),
            };
            let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
            writeln!(w, "{}", serde_json::to_string(&line)?)?;
            w.flush()?;
        }
        Ok(Prediction {
            ranked_files: loc.files.iter().map(|r| r.path.clone()).collect(),
            ranked_functions: loc.functions.iter().map(|r| r.name.clone()).collect(),
            ranked_function_scores: loc.functions.iter().map(|r| r.score).collect(),
            predicted_files: loc.predicted_files.clone(),
            predicted_functions: loc.predicted_functions.clone(),
            ms,
            index_ms,
            turns: loc.trace.turns.len() as u32,
            calls: loc.trace.calls,
            efficiency: loc.trace.efficiency as f64,
            redundant_calls: loc.trace.redundant_calls,
            peak_rss_kb: crate::cli::peak_rss_kb(),
            vectors_on_demand: loc.trace.on_demand.map(|d| d.vectors),
            candidate_files: loc.candidate_files,
            candidate_functions: loc.candidate_functions,
        })
    };
    if a.features.is_some() && matches!(models, Models::Shipped(..)) {
        eprintln!(
            "locus: note: the rows are in the shipped models' order, and those were trained on the \
             benchmark repositories: each line says whether its repository was among them \
             (`rows_ordered_by.in_sample`); --model-folds orders them out of sample"
        );
    }
    // The runner prints the table and writes summary.json itself.
    locus_eval::run(&opts, &locate)?;
    let v = vector_ms.lock().unwrap_or_else(|e| e.into_inner());
    if !v.is_empty() {
        eprintln!("vectors: {} trees, {:.1} s in all", v.len(), v.iter().sum::<f64>() / 1000.0);
    }
    Ok(())
}

/// The project checkout this binary was built from, if it is still there: eval output must
/// never land inside it.
pub(crate) fn project_root() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map(|p| p.to_path_buf()).filter(|p| p.join("Cargo.toml").exists())
}
