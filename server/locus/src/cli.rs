//! `locus index` and `locus locate`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use clap::Args;
use locus_index::{Index, WalkOptions};
use locus_search::{Mode, Options};
use serde_json::json;

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
    #[arg(long, value_parser = ["file", "function"])]
    pub granularity: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the search trace: turns, calls, efficiency, time per tool.
    #[arg(long)]
    pub explain: bool,
    /// Search engine: adaptive (default), single, fixed, bm25.
    #[arg(long, default_value = "adaptive")]
    pub engine: String,
    /// Gitignore-style globs to leave out (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Leave the encoder out (no semantic tool).
    #[arg(long)]
    pub no_semantic: bool,
    /// Rank with the hand-weighted fusion instead of the learned localization model.
    #[arg(long)]
    pub no_model: bool,
}

/// The learned localization model, or `None` with a note (the fusion ranks instead).
pub fn scorer() -> Option<std::sync::Arc<dyn locus_search::Scorer>> {
    match locus_lsp::dense::LearnedScorer::load(None) {
        Ok(s) => Some(std::sync::Arc::new(s)),
        Err(e) => {
            eprintln!("locus: the learned ranking is off (the fusion ranks instead): {e}");
            None
        }
    }
}

/// Loads the encoder and brings the workspace's vectors up to date (cached by content hash),
/// with a progress line on stderr. `None`, with a note saying how to fix it, when the model or
/// runtime is missing: every other tool still works.
pub fn vectors(ix: &Index) -> Option<locus_lsp::dense::DenseIndex> {
    let enc = match locus_lsp::dense::Encoder::load(&locus_embed::EmbedConfig::default()) {
        Ok(e) => std::sync::Arc::new(e),
        Err(e) => {
            eprintln!("locus: semantic search is off: {e}");
            return None;
        }
    };
    let cancel = AtomicBool::new(false);
    let t = std::time::Instant::now();
    let mut shown = false;
    let r = locus_lsp::dense::DenseIndex::build(ix, enc, true, &cancel, |done, total| {
        eprint!("\rlocus: embedding {done}/{total} entities");
        shown = true;
    });
    if shown {
        eprintln!(" ({:.1} s)", t.elapsed().as_secs_f64());
    }
    match r {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("locus: semantic search is off: {e}");
            None
        }
    }
}

pub fn build_index(path: &std::path::Path, exclude: &[String]) -> anyhow::Result<Index> {
    if !path.is_dir() {
        bail!("{} is not a directory; give the root of the workspace to search", path.display());
    }
    let opts = WalkOptions { exclude: exclude.to_vec(), ..WalkOptions::default() };
    Index::build(path, &opts).with_context(|| format!("indexing {}", path.display()))
}

pub fn index(a: IndexArgs) -> anyhow::Result<()> {
    let ix = build_index(&a.path, &a.exclude)?;
    let st = ix.stats();
    let t = std::time::Instant::now();
    let dense = if a.no_vectors { None } else { vectors(&ix) };
    let vector_seconds = t.elapsed().as_secs_f64();
    let model = dense.as_ref().map(|d| d.model_id().to_string());
    let n_vectors = dense.as_ref().map(|d| d.len()).unwrap_or(0);
    if a.json {
        let mut v = serde_json::to_value(&st)?;
        v["peak_rss_kb"] = json!(peak_rss_kb());
        v["vectors"] = json!(n_vectors);
        v["model"] = json!(model);
        v["vector_seconds"] = json!(vector_seconds);
        println!("{}", serde_json::to_string_pretty(&v)?);
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
    let Some(mode) = Mode::parse(&a.engine) else {
        bail!("unknown engine `{}`; use adaptive, single, fixed or bm25", a.engine);
    };
    let ix = build_index(&a.path, &a.exclude)?;
    let use_model = !a.no_model && matches!(mode, Mode::Adaptive | Mode::SinglePass | Mode::Fixed);
    let opts = Options {
        mode,
        max_results: a.top.max(1),
        scorer: if use_model { scorer() } else { None },
        ..Options::default()
    };
    let cancel = AtomicBool::new(false);
    let dense = if a.no_semantic || mode == Mode::Bm25 { None } else { vectors(&ix) };
    let d = dense.as_ref().map(|d| d as &dyn locus_search::tools::Semantic);
    let loc = locus_search::locate(&ix, d, &issue, &opts, &cancel)?;
    if a.json {
        let st = ix.stats();
        let index =
            json!({"files": st.files, "entities": st.entities.values().sum::<u32>(), "seconds": st.seconds});
        let v = output::localization_json(&loc, a.top, a.granularity.as_deref(), index);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        output::print_human(&loc, a.top, a.granularity.as_deref());
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
