//! `locus corpus pairs`: the encoder's training pairs from a corpus (`locus corpus build`): for
//! each instance, the query (the text, as the semantic tool sends it), the positives
//! (its gold functions as Locus embeds them, `entity_text`) and hard negatives — the non-gold
//! items of the same snapshot that BM25 ranks highest for the issue. The snapshot is the gold
//! files at the base commit plus up to `--siblings` source files of their directories (a whole
//! tree per instance would cost minutes; these are where a ranker's hardest confusions live).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use locus_corpus::git::{Blob, Git};
use locus_corpus::paths::{classify, PathClass};
use locus_eval::{Gold, Instance};
use locus_index::{FileUnit, Index, Skipped};
use serde::Serialize;

#[derive(Args)]
pub struct PairsArgs {
    /// The corpus's instances (`corpus.jsonl`).
    #[arg(long)]
    pub instances: PathBuf,
    /// Its gold (`corpus.gold.jsonl`).
    #[arg(long)]
    pub gold: PathBuf,
    /// Directory of bare mirrors, `<owner>+<name>/...`.
    #[arg(long)]
    pub mirrors: PathBuf,
    /// Where to write the pairs (JSON lines; never inside the project).
    #[arg(long)]
    pub out: PathBuf,
    /// Hard negatives per instance.
    #[arg(long, default_value_t = 7)]
    pub negatives: usize,
    /// Source files of the gold files' directories added to the snapshot.
    #[arg(long, default_value_t = 8)]
    pub siblings: usize,
    /// At most this many instances (in file order).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Largest file read into a snapshot (as the workspace walk's limit).
const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;
/// The query as the semantic tool sends it: the first characters.
const QUERY_CHARS: usize = 2000;

#[derive(Serialize)]
struct Pair<'a> {
    instance_id: &'a str,
    repo: &'a str,
    query: String,
    positives: Vec<Text>,
    negatives: Vec<Text>,
}

#[derive(Serialize)]
struct Text {
    name: String,
    text: String,
}

pub fn run(a: PairsArgs) -> anyhow::Result<()> {
    if let Some(project) = crate::eval_cmd::project_root() {
        // A bare file name's parent is "": the current directory.
        let out = a.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if std::fs::canonicalize(out).is_ok_and(|o| o.starts_with(&project)) {
            bail!(
                "{} is inside the project {}; write the pairs outside it",
                a.out.display(),
                project.display()
            );
        }
    }
    let instances = locus_eval::data::load_instances(&a.instances)?.items;
    let (gold, _) = locus_eval::data::load_gold_map(&a.gold)?;
    let mut by_repo: BTreeMap<&str, Vec<&Instance>> = BTreeMap::new();
    for inst in instances.iter().take(a.limit.unwrap_or(usize::MAX)) {
        by_repo.entry(inst.repo.as_str()).or_default().push(inst);
    }
    let mut w = BufWriter::new(std::fs::File::create(&a.out).with_context(|| a.out.display().to_string())?);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (repo, insts) in by_repo {
        let slug = repo.replace('/', "+");
        let Some(git_dir) = locus_corpus::git::find_git_dir(&a.mirrors.join(&slug)) else {
            *counts.entry("no mirror").or_default() += insts.len();
            continue;
        };
        let git = Git::new(&git_dir);
        let mut blobs = git.blobs()?;
        for inst in insts {
            let Some(g) = gold.get(&inst.instance_id) else {
                *counts.entry("no gold").or_default() += 1;
                continue;
            };
            match pair(&git_dir, &mut blobs, inst, g, &a)? {
                Some(p) => {
                    serde_json::to_writer(&mut w, &p)?;
                    w.write_all(b"\n")?;
                    *counts.entry("written").or_default() += 1;
                }
                None => *counts.entry("gold function not found at the base commit").or_default() += 1,
            }
        }
        eprintln!("locus: pairs: {repo} done; {counts:?}");
    }
    w.flush()?;
    eprintln!("locus: pairs: {counts:?} -> {}", a.out.display());
    Ok(())
}

/// The pair of one instance, or `None` when none of its gold functions is in the snapshot.
fn pair<'a>(
    git_dir: &Path,
    blobs: &mut locus_corpus::git::BlobReader,
    inst: &'a Instance,
    gold: &Gold,
    a: &PairsArgs,
) -> anyhow::Result<Option<Pair<'a>>> {
    let paths = snapshot_paths(git_dir, &inst.base_commit, &gold.files, a.siblings)?;
    let mut units = Vec::new();
    for path in paths {
        let Some(lang) = locus_syntax::Lang::of_path(&path) else { continue };
        let Blob::Found(bytes) = blobs.read(&format!("{}:{path}", inst.base_commit), MAX_FILE_BYTES)? else {
            continue;
        };
        let Ok(text) = String::from_utf8(bytes) else { continue };
        units.push(Arc::new(FileUnit::build(path, lang, Arc::from(text))));
    }
    let ix = Index::from_units(PathBuf::from("/snapshot"), units, Skipped::default());
    let wanted: BTreeSet<&str> = gold.functions.iter().map(String::as_str).collect();
    let items: Vec<_> = (0..ix.n_entities() as u32)
        .map(locus_index::EntityId)
        .filter(|&id| ix.entity(id).kind.is_item())
        .collect();
    let positives: Vec<Text> = items
        .iter()
        .map(|&id| (id, ix.full_name(id)))
        .filter(|(_, name)| wanted.contains(name.as_str()))
        .map(|(id, name)| Text { name, text: locus_engine::entity_text(&ix, id) })
        .collect();
    if positives.is_empty() {
        return Ok(None);
    }
    let query: String = inst.problem_statement.chars().take(QUERY_CHARS).collect();
    let mut counts: BTreeMap<String, f32> = BTreeMap::new();
    locus_index::text::for_each_term(&query, |t| *counts.entry(t.to_string()).or_insert(0.0) += 1.0);
    let terms: Vec<(String, f32)> = counts.into_iter().map(|(t, c)| (t, 1.0 + c.ln())).collect();
    let is_item: BTreeSet<_> = items.iter().copied().collect();
    let negatives = ix
        .lexical
        .search(&terms, a.negatives + positives.len(), |id| is_item.contains(&id))
        .into_iter()
        .map(|(id, _)| (id, ix.full_name(id)))
        .filter(|(_, name)| !wanted.contains(name.as_str()))
        .take(a.negatives)
        .map(|(id, name)| Text { name, text: locus_engine::entity_text(&ix, id) })
        .collect();
    Ok(Some(Pair { instance_id: &inst.instance_id, repo: &inst.repo, query, positives, negatives }))
}

/// The gold files, then up to `siblings` source files (not tests) of their directories at
/// `commit`, in path order.
fn snapshot_paths(
    git_dir: &Path,
    commit: &str,
    files: &[String],
    siblings: usize,
) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = files.to_vec();
    let dirs: BTreeSet<&str> = files.iter().map(|f| f.rsplit_once('/').map(|x| x.0).unwrap_or("")).collect();
    let mut extra = BTreeSet::new();
    for dir in dirs {
        let spec = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let listed = Command::new("git")
            .arg(format!("--git-dir={}", git_dir.display()))
            .args(["ls-tree", "--name-only", commit, "--"])
            .arg(if spec.is_empty() { "." } else { spec.as_str() })
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .context("running git ls-tree")?;
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            if matches!(classify(line), PathClass::Source(_)) && !files.iter().any(|f| f == line) {
                extra.insert(line.to_string());
            }
        }
    }
    out.extend(extra.into_iter().take(siblings));
    Ok(out)
}
