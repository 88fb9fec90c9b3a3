//! `locus index` and `locus locate`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use locus_engine::{DenseIndex, Granularity, ModelPaths, Workspace};
use locus_index::Index;
use locus_search::{Mode, Options};
use serde::Serialize;

use crate::output;

#[derive(Args)]
pub struct IndexArgs {
    /// Workspace root.
    pub path: PathBuf,
    /// Print `{files, entities, edges, skipped, seconds}` as JSON.
    #[arg(long)]
    pub json: bool,
    /// Gitignore-style globs to leave out (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Do not compute encoder vectors (structural and lexical indexes only).
    #[arg(long)]
    pub no_vectors: bool,
}

#[derive(Args)]
pub struct LocateArgs {
    /// Workspace root.
    pub path: PathBuf,
    /// Read the issue from this file.
    #[arg(long, conflicts_with = "text")]
    pub issue: Option<PathBuf>,
    /// The issue text itself (otherwise --issue, otherwise stdin).
    #[arg(long)]
    pub text: Option<String>,
    /// How many files and functions to show.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Show only files or only functions.
    #[arg(long)]
    pub granularity: Option<Granularity>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the search trace: turns, calls, efficiency, time per tool.
    #[arg(long)]
    pub explain: bool,
    /// Search engine: adaptive (default), single, fixed, bm25, dense.
    #[arg(long, default_value = "adaptive")]
    pub engine: Mode,
    /// Gitignore-style globs to leave out (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Leave the encoder out (no semantic tool).
    #[arg(long)]
    pub no_semantic: bool,
    /// Do not embed the whole workspace first: the vectors the cache holds, and the search's
    /// candidates embedded now (seconds on a tree never embedded, instead of minutes).
    #[arg(long, conflicts_with = "no_semantic")]
    pub on_demand: bool,
    /// Rank with the hand-weighted fusion instead of the learned localization model.
    #[arg(long)]
    pub no_model: bool,
    /// Who chooses the search's calls: hand (the hand-set policy) or learned (the policy model,
    /// models/policy.onnx, loaded with the learned models; the hand-set policy without them).
    #[arg(long, default_value = "hand")]
    pub policy: locus_search::Policy,
}

#[derive(Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `locus doctor`: the report on stdout; fails (exit 1) when something is missing.
pub fn doctor(a: DoctorArgs) -> anyhow::Result<()> {
    let report = locus_engine::Doctor::run(&ModelPaths::default());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for line in report.lines() {
            println!("{line}");
        }
    }
    if !report.ok() {
        bail!("something Locus needs is missing (above, with the command that fixes it)");
    }
    Ok(())
}

/// The learned localization models, or `None` with a note (the fusion ranks instead).
pub fn scorer() -> Option<Arc<dyn locus_search::Scorer>> {
    match ModelPaths::default().scorer() {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            eprintln!("locus: the learned ranking is off (the fusion ranks instead): {e}");
            None
        }
    }
}

/// Loads the encoder and brings the workspace's vectors up to date (cached by content hash),
/// with a progress line on stderr. `None`, with a note saying how to fix it, when the model or
/// runtime is missing: every other tool still works.
pub fn vectors(ix: &Index) -> Option<Arc<DenseIndex>> {
    let enc = match ModelPaths::default().encoder() {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("locus: semantic search is off: {e}");
            return None;
        }
    };
    let mut progress = output::Progress::stderr("embedding", "entities");
    let r =
        locus_engine::vectors(ix, enc, &AtomicBool::new(false), |done, total| progress.update(done, total));
    progress.finish();
    match r {
        Ok(d) => Some(Arc::new(d)),
        Err(e) => {
            eprintln!("locus: semantic search is off: {e}");
            None
        }
    }
}

/// Loads the encoder and the vectors the cache holds for the workspace; a search embeds its
/// candidates' missing ones ([`DenseIndex::on_demand`]).
fn on_demand_vectors(ix: &Arc<Index>) -> Option<Arc<DenseIndex>> {
    match ModelPaths::default().encoder() {
        Ok(e) => Some(Arc::new(DenseIndex::on_demand(ix.clone(), Arc::new(e), true))),
        Err(e) => {
            eprintln!("locus: semantic search is off: {e}");
            None
        }
    }
}

/// `locus index --json`: the index's statistics and the vectors'.
#[derive(Serialize)]
struct IndexReport {
    #[serde(flatten)]
    index: locus_index::IndexStats,
    peak_rss_kb: Option<u64>,
    vectors: usize,
    /// Which encoder made the vectors (its model id), if any.
    model: Option<String>,
    vector_seconds: f64,
}

pub fn index(a: IndexArgs) -> anyhow::Result<()> {
    let ix = locus_engine::index(&a.path, &a.exclude)?;
    let st = ix.stats();
    let t = std::time::Instant::now();
    let dense = if a.no_vectors { None } else { vectors(&ix) };
    let vector_seconds = t.elapsed().as_secs_f64();
    let model = dense.as_ref().map(|d| d.model_id().to_string());
    let n_vectors = dense.as_ref().map(|d| d.len()).unwrap_or(0);
    if a.json {
        let report =
            IndexReport { index: st, peak_rss_kb: peak_rss_kb(), vectors: n_vectors, model, vector_seconds };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} files, {} entities, {} edges ({} calls unresolved), {} skipped, in {:.2} s",
            st.files,
            st.entities.values().sum::<u32>(),
            st.edges.values().sum::<u32>(),
            st.unresolved_calls,
            st.skipped.values().sum::<u32>(),
            st.seconds
        );
        println!("entities: {:?}", st.entities);
        println!("edges: {:?}", st.edges);
        if !st.skipped.is_empty() {
            println!("skipped: {:?}", st.skipped);
        }
        match &model {
            Some(m) => println!("vectors: {n_vectors} ({m}), {vector_seconds:.1} s"),
            None => println!("vectors: none"),
        }
    }
    Ok(())
}

/// Most issue text read from a file or stdin; more is cut (signals are mined from the head).
const MAX_ISSUE_READ: u64 = 16 * 1024 * 1024;

fn read_issue(a: &LocateArgs) -> anyhow::Result<String> {
    let bytes = if let Some(t) = &a.text {
        t.clone().into_bytes()
    } else if let Some(p) = &a.issue {
        let mut buf = Vec::new();
        std::fs::File::open(p)
            .with_context(|| format!("reading the issue file {}", p.display()))?
            .take(MAX_ISSUE_READ)
            .read_to_end(&mut buf)?;
        buf
    } else {
        let mut buf = Vec::new();
        std::io::stdin().take(MAX_ISSUE_READ).read_to_end(&mut buf)?;
        buf
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if text.trim().is_empty() {
        bail!("the issue text is empty; pass --issue FILE, --text STR, or pipe it on stdin");
    }
    Ok(text)
}

pub fn locate(a: LocateArgs) -> anyhow::Result<()> {
    let issue = read_issue(&a)?;
    let ix = Arc::new(locus_engine::index(&a.path, &a.exclude)?);
    let use_model = !a.no_model && a.engine.learned_by_default();
    if a.on_demand && a.engine == Mode::Dense {
        bail!("--on-demand embeds the candidates of the engine's other tools; --engine dense searches every vector: leave one out");
    }
    let vectors = if a.no_semantic || a.engine == Mode::Bm25 {
        None
    } else if a.on_demand {
        on_demand_vectors(&ix)
    } else {
        vectors(&ix)
    };
    let ws = Workspace { index: ix, vectors, scorer: if use_model { scorer() } else { None } };
    let opts = Options { mode: a.engine, max_results: a.top.max(1), policy: a.policy, ..Options::default() };
    let loc = ws.locate(&issue, &opts, &AtomicBool::new(false))?;
    if a.json {
        let out = output::LocateOutput::new(&ws, &loc, a.top, a.granularity);
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        output::print_human(&loc, a.top, a.granularity);
        if a.explain {
            output::print_explain(&loc);
        }
    }
    Ok(())
}

/// Peak resident memory of this process (Linux), in KiB.
pub fn peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
