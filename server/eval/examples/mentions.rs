//! A path-mention baseline run through the real runner: ranks a tree's source files by how
//! often their file stem occurs in the issue text. It needs no engine, so it doubles as a smoke
//! test of materialization over every mirror and as an example of wiring `locus_eval::run`.
//!
//! `cargo run --release -p locus-eval --example mentions -- DATA_DIR MIRRORS CACHE [DATASET] [JOBS]`
//! (DATASET defaults to `swebench_lite`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use locus_eval::{run, Issue, Prediction, RunOptions};

/// Source extensions the baseline ranks.
const SOURCE_EXTENSIONS: [&str; 2] = ["py", "rs"];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, mirrors, cache, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: mentions DATA_DIR MIRRORS CACHE [DATASET] [JOBS]");
    };
    let dataset = rest.first().map_or("swebench_lite", String::as_str);
    let data = PathBuf::from(data);
    let mut opts = RunOptions::new(
        data.join(format!("{dataset}.jsonl")),
        data.join(format!("{dataset}.gold.jsonl")),
        mirrors,
        cache,
        "mentions",
    );
    opts.jobs = rest.get(1).map(|j| j.parse()).transpose()?.unwrap_or(1);
    // The project root is where this crate's workspace lives.
    opts.forbid_under = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    let summary = run(&opts, &mentions)?;
    eprintln!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn mentions(tree: &Path, issue: &Issue<'_>) -> anyhow::Result<Prediction> {
    let start = Instant::now();
    let text = issue.text.to_lowercase();
    let mut files = Vec::new();
    collect(tree, tree, &mut files)?;
    let mut scored: Vec<(usize, String)> = files
        .into_iter()
        .map(|rel| {
            let stem =
                Path::new(&rel).file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
            // Stems like `__init__` or `lib` say little; count only distinctive ones.
            let hits =
                if stem.len() > 3 && !stem.starts_with("__") { text.matches(&stem).count() } else { 0 };
            (hits, rel)
        })
        .filter(|(hits, _)| *hits > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let ranked_files: Vec<String> = scored.into_iter().map(|(_, f)| f).collect();
    Ok(Prediction {
        predicted_files: ranked_files.iter().take(1).cloned().collect(),
        ranked_files,
        ms: start.elapsed().as_secs_f64() * 1000.0,
        ..Prediction::default()
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() && !entry.file_name().to_string_lossy().starts_with('.') {
            collect(root, &path, out)?;
        } else if kind.is_file()
            && path.extension().is_some_and(|e| SOURCE_EXTENSIONS.iter().any(|x| e == *x))
        {
            out.push(path.strip_prefix(root)?.to_string_lossy().into_owned());
        }
    }
    Ok(())
}
