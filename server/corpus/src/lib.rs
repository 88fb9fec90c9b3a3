//! Builds a localization training corpus from bare git mirrors of public repositories: each
//! instance is what a person wrote about a change (a pull request's text) and the gold is the
//! functions the change modified, named exactly as `locus-syntax` names entities
//! (`path/a.py:Class.method`, `src/x.rs:Type::method`), in the shapes of the evaluation data.
//!
//! Architecture invariants:
//! - no benchmark repository is ever read: they are refused by name before anything is opened
//!   (`repos`);
//! - the output is a function of the mirrors and the arguments: the same inputs give
//!   byte-identical files (history order, sorted lists, no clock, no randomness);
//! - odd input (binary or non-UTF-8 blobs, renames, missing blobs, huge changes) drops or marks
//!   an instance, counted by reason; it never panics;
//! - nothing is written inside a git work tree (the corpus is rebuilt, never committed).

pub mod corpus;
pub mod git;
pub mod gold;
pub mod message;
pub mod output;
pub mod patch;
pub mod paths;
pub mod repos;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::Serialize;

pub use corpus::{
    build_repo, build_repo_with_texts, DropReason, Gold, Instance, IssueTexts, Kept, Language, Options,
    RepoCorpus,
};
pub use repos::{RepoError, RepoName};

/// The version of the builder's rules, recorded in the manifest; bump it when a rule changes
/// what is kept or how gold is computed.
pub const BUILDER_VERSION: &str = "2";

/// `locus corpus build`: build the training corpus from bare mirrors.
#[derive(Clone, Debug, clap::Args)]
pub struct CorpusArgs {
    /// Directory of bare mirrors: `<mirrors>/<owner>+<name>/` holds the git directory, up to
    /// three levels down (e.g. `repo/`).
    #[arg(long)]
    pub mirrors: PathBuf,
    /// Output directory (created): corpus.jsonl, corpus.gold.jsonl, manifest.json. Must not be
    /// inside a git work tree.
    #[arg(long)]
    pub out: PathBuf,
    /// A file listing repositories, one `owner/name` per line, `#` comments.
    #[arg(long)]
    pub repos_file: Option<PathBuf>,
    /// Repositories (`owner/name`), in addition to --repos-file.
    pub repos: Vec<String>,
    /// Drop changes modifying more functions than this.
    #[arg(long, default_value_t = 5)]
    pub max_functions: usize,
    /// Drop changes modifying more source files than this.
    #[arg(long, default_value_t = 3)]
    pub max_files: usize,
    /// Drop commits touching more paths than this, before reading their diff.
    #[arg(long, default_value_t = 50)]
    pub max_paths: usize,
    /// Drop texts shorter than this many characters after cleanup.
    #[arg(long, default_value_t = 20)]
    pub min_text_chars: usize,
    /// Cut texts to this many characters.
    #[arg(long, default_value_t = 8000)]
    pub max_text_chars: usize,
    /// Walk only the newest N first-parent commits of each repository (0: all).
    #[arg(long, default_value_t = 0)]
    pub max_commits: usize,
    /// Source blobs larger than this many bytes count as unreadable.
    #[arg(long, default_value_t = 2 << 20)]
    pub max_blob_bytes: usize,
    /// Drop changes whose diff is larger than this many bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_patch_bytes: usize,
    /// Record a repository whose mirror is missing in the manifest instead of failing.
    #[arg(long)]
    pub skip_missing: bool,
    /// Also write drops.jsonl: every dropped commit and its reason.
    #[arg(long)]
    pub log_drops: bool,
    /// A manifest.json of an earlier build: walk each repository it lists from the commit it
    /// pinned instead of the mirror's HEAD (to rebuild that very corpus from newer mirrors).
    #[arg(long)]
    pub pins: Option<PathBuf>,
    /// Record a repository whose build fails (a broken mirror) in the manifest, with the
    /// error, and go on with the others, instead of failing.
    #[arg(long)]
    pub skip_failed: bool,
    /// Rebuild every repository, even those whose saved part (`<out>/parts/`) is current.
    #[arg(long)]
    pub fresh: bool,
    /// Real issue reports: a JSON object `{"owner__name-<PR number>": "title\nbody", …}` (the
    /// shape of Rust-SWE-Bench's `rb_all_bug_report.json`). Only changes whose pull request has
    /// one are kept, with the issue's text as the problem statement: a development set of real
    /// issue reports rather than a training corpus of pull-request texts.
    #[arg(long)]
    pub issue_texts: Option<PathBuf>,
}

impl CorpusArgs {
    /// The builder's limits.
    pub fn options(&self) -> Options {
        Options {
            max_functions: self.max_functions,
            max_files: self.max_files,
            max_paths: self.max_paths,
            min_text_chars: self.min_text_chars,
            max_text_chars: self.max_text_chars,
            max_commits: self.max_commits,
            max_blob_bytes: self.max_blob_bytes,
            max_patch_bytes: self.max_patch_bytes,
        }
    }

    /// The command line, every option spelled out in a fixed order (what the manifest records:
    /// running it again rebuilds the same corpus).
    pub fn command_line(&self) -> String {
        let mut parts = vec![
            "locus".to_string(),
            "corpus".into(),
            "build".into(),
            "--mirrors".into(),
            quote(&self.mirrors.display().to_string()),
            "--out".into(),
            quote(&self.out.display().to_string()),
        ];
        if let Some(f) = &self.repos_file {
            parts.push("--repos-file".into());
            parts.push(quote(&f.display().to_string()));
        }
        if let Some(f) = &self.pins {
            parts.push("--pins".into());
            parts.push(quote(&f.display().to_string()));
        }
        if let Some(f) = &self.issue_texts {
            parts.push("--issue-texts".into());
            parts.push(quote(&f.display().to_string()));
        }
        let o = self.options();
        for (name, v) in [
            ("--max-functions", o.max_functions),
            ("--max-files", o.max_files),
            ("--max-paths", o.max_paths),
            ("--min-text-chars", o.min_text_chars),
            ("--max-text-chars", o.max_text_chars),
            ("--max-commits", o.max_commits),
            ("--max-blob-bytes", o.max_blob_bytes),
            ("--max-patch-bytes", o.max_patch_bytes),
        ] {
            parts.push(name.into());
            parts.push(v.to_string());
        }
        if self.skip_missing {
            parts.push("--skip-missing".into());
        }
        if self.skip_failed {
            parts.push("--skip-failed".into());
        }
        if self.log_drops {
            parts.push("--log-drops".into());
        }
        parts.extend(self.repos.iter().map(|r| quote(r)));
        parts.join(" ")
    }
}

/// Shell-quotes a word when it needs it.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./+=:@,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `manifest.json`: what was built from what, and what was dropped why.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub builder: BuilderInfo,
    pub command: String,
    pub options: Options,
    /// With `--issue-texts`: the file the texts came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_texts: Option<IssueTextsInfo>,
    pub repositories: Vec<RepoEntry>,
    pub totals: Counts,
}

/// The issue reports a development set was built from.
#[derive(Clone, Debug, Serialize)]
pub struct IssueTextsInfo {
    /// The file's name (not its folder: the manifest is committed, the file may sit anywhere).
    pub file: String,
    pub sha256: String,
    /// Texts in the file, for any repository.
    pub texts: usize,
    /// Texts for the repositories built.
    pub texts_for_these_repositories: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct BuilderInfo {
    pub name: &'static str,
    pub crate_version: &'static str,
    pub rules_version: &'static str,
}

/// One repository in the manifest.
#[derive(Clone, Debug, Serialize)]
pub struct RepoEntry {
    pub repo: String,
    /// The git directory, relative to the mirrors directory; `null` when the mirror was missing.
    pub mirror: Option<String>,
    /// The mirror's HEAD when built (`null` when missing): rebuild from this very commit.
    pub commit: Option<String>,
    /// Its committer date, as git records it.
    pub commit_date: Option<String>,
    /// Why the repository is not in the corpus (`--skip-failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With issue texts: how many the repository has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_texts: Option<usize>,
    /// With issue texts: the pull requests whose change is not in the walked history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub texts_not_found: Vec<u64>,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Counts of a repository, or of all of them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub first_parent_commits: usize,
    /// Commits whose message names a pull request.
    pub pr_changes: usize,
    pub kept: usize,
    /// Kept instances by language (the majority language of their gold files).
    pub languages: BTreeMap<&'static str, usize>,
    /// Dropped commits by reason (every reason listed, zeros included).
    pub dropped: BTreeMap<&'static str, usize>,
}

impl Counts {
    fn empty() -> Counts {
        Counts {
            languages: [("python", 0), ("rust", 0)].into_iter().collect(),
            dropped: DropReason::ALL.iter().map(|r| (r.as_str(), 0)).collect(),
            ..Counts::default()
        }
    }

    fn of(c: &RepoCorpus) -> Counts {
        let mut counts = Counts::empty();
        counts.first_parent_commits = c.first_parent_commits;
        counts.pr_changes = c.pr_changes;
        counts.kept = c.kept.len();
        for k in &c.kept {
            *counts.languages.entry(k.lang.as_str()).or_default() += 1;
        }
        for (r, n) in c.dropped_counts() {
            counts.dropped.insert(r.as_str(), n);
        }
        counts
    }

    fn add(&mut self, o: &Counts) {
        self.first_parent_commits += o.first_parent_commits;
        self.pr_changes += o.pr_changes;
        self.kept += o.kept;
        for (k, v) in &o.languages {
            *self.languages.entry(k).or_default() += v;
        }
        for (k, v) in &o.dropped {
            *self.dropped.entry(k).or_default() += v;
        }
    }
}

/// Refuses an output directory inside a git work tree (the corpus must never be committed),
/// before creating anything; then creates it.
fn check_out_dir(out: &Path) -> Result<PathBuf> {
    let abs = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir().context("reading the current directory")?.join(out)
    };
    let existing = abs.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
    let existing =
        std::fs::canonicalize(existing).with_context(|| format!("resolving {}", existing.display()))?;
    for dir in existing.ancestors() {
        if dir.join(".git").exists() {
            bail!(
                "refusing to write the corpus into {}: it is inside the git work tree {}; \
                 the corpus is rebuilt from the manifest, never committed — choose a directory outside it",
                abs.display(),
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(&abs).with_context(|| format!("creating {}", abs.display()))?;
    Ok(abs)
}

/// Builds the corpus and writes it; returns the manifest written.
pub fn build(args: &CorpusArgs) -> Result<Manifest> {
    let file_text = match &args.repos_file {
        Some(f) => Some(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?),
        None => None,
    };
    let repos = repos::resolve(&args.repos, file_text.as_deref())?;
    if repos.is_empty() {
        bail!("no repositories: name them as arguments (owner/name) or in --repos-file");
    }
    // Every mirror is looked up before any work, so a missing one fails fast.
    let mut located = Vec::new();
    for r in &repos {
        match repos::mirror_git_dir(&args.mirrors, r) {
            Some(d) => located.push((r.clone(), Some(d))),
            None if args.skip_missing => located.push((r.clone(), None)),
            None => bail!(
                "no mirror of {r} under {}: expected a git directory in {}/ (fetch it, or pass --skip-missing)",
                args.mirrors.display(),
                args.mirrors.join(r.mirror_dir()).display()
            ),
        }
    }
    let pins: BTreeMap<String, String> = match &args.pins {
        Some(p) => read_pins(p)?,
        None => BTreeMap::new(),
    };
    let (texts, texts_info) = match &args.issue_texts {
        Some(f) => {
            let (t, info) = read_issue_texts(f, &repos)?;
            (Some(t), Some(info))
        }
        None => (None, None),
    };
    let out_dir = check_out_dir(&args.out)?;
    let opts = args.options();

    // Repositories are built in parallel (each one's serial parts, git and the walk, leave a
    // core idle), each saved as a part as soon as it is done; the output is assembled from the
    // parts in repository order.
    let parts_dir = out_dir.join("parts");
    std::fs::create_dir_all(&parts_dir).with_context(|| format!("creating {}", parts_dir.display()))?;
    let builder_id = builder_fingerprint();
    // With --issue-texts, a repository without any still gets its (empty) set: it keeps nothing.
    let no_texts = IssueTexts::new();
    let texts_of = |repo: &RepoName| -> Option<&IssueTexts> {
        texts.as_ref().map(|t| t.get(&repo.id_prefix().to_lowercase()).unwrap_or(&no_texts))
    };
    let built: Vec<Result<Result<RepoCorpus, String>>> = located
        .par_iter()
        .map(|(repo, dir)| -> Result<Result<RepoCorpus, String>> {
            let Some(dir) = dir else {
                eprintln!("corpus: {repo}: no mirror, skipped");
                return Ok(Err("no mirror".to_string()));
            };
            let tip = pins.get(&repo.to_string()).map(String::as_str);
            match build_or_reuse(repo, dir, tip, &opts, texts_of(repo), &parts_dir, &builder_id, args.fresh)
                .with_context(|| format!("building the corpus of {repo}"))
            {
                Ok(c) => Ok(Ok(c)),
                Err(e) if args.skip_failed => {
                    eprintln!("corpus: {repo}: failed, skipped: {e:#}");
                    Ok(Err(format!("{e:#}")))
                }
                Err(e) => Err(e),
            }
        })
        .collect();

    let mut corpus = Vec::new();
    let mut gold = Vec::new();
    let mut drops = Vec::new();
    let mut entries = Vec::new();
    let mut totals = Counts::empty();
    for ((repo, dir), c) in located.iter().zip(built) {
        let (Some(dir), c) = (dir, c?) else {
            entries.push(RepoEntry {
                repo: repo.to_string(),
                mirror: None,
                commit: None,
                commit_date: None,
                error: None,
                issue_texts: None,
                texts_not_found: Vec::new(),
                counts: Counts::empty(),
            });
            continue;
        };
        let c = match c {
            Ok(c) => c,
            Err(error) => {
                entries.push(RepoEntry {
                    repo: repo.to_string(),
                    mirror: Some(dir.strip_prefix(&args.mirrors).unwrap_or(dir).display().to_string()),
                    commit: None,
                    commit_date: None,
                    error: Some(error),
                    issue_texts: None,
                    texts_not_found: Vec::new(),
                    counts: Counts::empty(),
                });
                continue;
            }
        };
        let counts = Counts::of(&c);
        for k in &c.kept {
            corpus.extend(output::json_line(&k.instance)?);
            gold.extend(output::json_line(&k.gold)?);
        }
        if args.log_drops {
            #[derive(Serialize)]
            struct DropLine<'a> {
                repo: &'a str,
                commit: &'a str,
                reason: &'static str,
            }
            let name = repo.to_string();
            for (sha, r) in &c.dropped {
                drops.extend(output::json_line(&DropLine { repo: &name, commit: sha, reason: r.as_str() })?);
            }
        }
        totals.add(&counts);
        let mirror = dir.strip_prefix(&args.mirrors).unwrap_or(dir).display().to_string();
        entries.push(RepoEntry {
            repo: repo.to_string(),
            mirror: Some(mirror),
            commit: Some(c.commit),
            commit_date: Some(c.commit_date),
            error: None,
            issue_texts: texts_of(repo).map(BTreeMap::len),
            texts_not_found: c.texts_not_found,
            counts,
        });
    }
    let manifest = Manifest {
        builder: BuilderInfo {
            name: "locus-corpus",
            crate_version: env!("CARGO_PKG_VERSION"),
            rules_version: BUILDER_VERSION,
        },
        command: args.command_line(),
        options: opts,
        issue_texts: texts_info,
        repositories: entries,
        totals,
    };
    output::write_atomic(&out_dir.join("corpus.jsonl"), &corpus)?;
    output::write_atomic(&out_dir.join("corpus.gold.jsonl"), &gold)?;
    if args.log_drops {
        output::write_atomic(&out_dir.join("drops.jsonl"), &drops)?;
    }
    let mut m = serde_json::to_vec_pretty(&manifest)?;
    m.push(b'\n');
    output::write_atomic(&out_dir.join("manifest.json"), &m)?;
    Ok(manifest)
}

/// A part: one repository's corpus, saved as soon as it is built, with the key it was built
/// under. A later run with the same key (same builder, options and mirror HEAD) reuses it.
#[derive(Serialize, serde::Deserialize)]
struct Part {
    key: String,
    corpus: RepoCorpus,
}

/// What identifies the code that decides a repository's corpus: the rule modules of this crate
/// and the parser's sources. A change to any of them rebuilds every part; a change elsewhere (the
/// manifest, the command line) does not. Upgrading a tree-sitter grammar changes no source
/// here: rebuild with `--fresh` then.
fn builder_fingerprint() -> String {
    const SOURCES: &[&str] = &[
        include_str!("corpus.rs"),
        include_str!("git.rs"),
        include_str!("gold.rs"),
        include_str!("message.rs"),
        include_str!("patch.rs"),
        include_str!("paths.rs"),
        include_str!("repos.rs"),
        include_str!("../../syntax/src/lib.rs"),
        include_str!("../../syntax/src/python.rs"),
        include_str!("../../syntax/src/rust.rs"),
    ];
    let mut h = blake3::Hasher::new();
    h.update(BUILDER_VERSION.as_bytes());
    for s in SOURCES {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

#[allow(clippy::too_many_arguments)]
fn build_or_reuse(
    repo: &RepoName,
    dir: &Path,
    tip: Option<&str>,
    opts: &Options,
    texts: Option<&IssueTexts>,
    parts_dir: &Path,
    builder_id: &str,
    fresh: bool,
) -> Result<RepoCorpus> {
    let (head, _) = git::Git::new(dir).resolve(tip)?;
    let mut key = format!("{builder_id} {} {head}", serde_json::to_string(opts)?);
    if let Some(t) = texts {
        key.push_str(&format!(" texts {}", blake3::hash(&serde_json::to_vec(t)?).to_hex()));
    }
    let path = parts_dir.join(format!("{}.json", repo.mirror_dir()));
    if !fresh {
        if let Some(part) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Part>(&b).ok()) {
            if part.key == key && part.corpus.repo == *repo {
                eprintln!("corpus: {repo}: reused {}", path.display());
                return Ok(part.corpus);
            }
        }
    }
    let started = Instant::now();
    let c = build_repo_with_texts(repo, dir, Some(&head), opts, texts)?;
    eprintln!(
        "corpus: {repo}: {} commits, {} PR changes, {} kept ({:.1} s)",
        c.first_parent_commits,
        c.pr_changes,
        c.kept.len(),
        started.elapsed().as_secs_f64()
    );
    let part = Part { key, corpus: c };
    output::write_atomic(&path, &serde_json::to_vec(&part)?)?;
    Ok(part.corpus)
}

/// The pinned commits of an earlier manifest: repository → commit.
fn read_pins(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not a manifest.json", path.display()))?;
    let repos =
        v["repositories"].as_array().with_context(|| format!("{} lists no repositories", path.display()))?;
    Ok(repos
        .iter()
        .filter_map(|r| Some((r["repo"].as_str()?.to_string(), r["commit"].as_str()?.to_string())))
        .collect())
}

/// Reads `--issue-texts`: per repository (`owner__name`, lowercased), its texts by pull-request
/// number. A key that is not `owner__name-<number>` is an error that names it; texts for
/// repositories not being built are counted and left.
fn read_issue_texts(
    path: &Path,
    repos: &[RepoName],
) -> Result<(BTreeMap<String, IssueTexts>, IssueTextsInfo)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let all: BTreeMap<String, String> = serde_json::from_slice(&bytes).with_context(|| {
        format!("{} is not a JSON object of issue texts (\"owner__name-123\": \"text\")", path.display())
    })?;
    let wanted: std::collections::BTreeSet<String> =
        repos.iter().map(|r| r.id_prefix().to_lowercase()).collect();
    let mut by_repo: BTreeMap<String, IssueTexts> = BTreeMap::new();
    for (key, text) in &all {
        let (prefix, number) = key
            .rsplit_once('-')
            .and_then(|(p, n)| Some((p, n.parse::<u64>().ok()?)))
            .with_context(|| format!("{}: key {key:?} is not owner__name-<PR number>", path.display()))?;
        let prefix = prefix.to_lowercase();
        if wanted.contains(&prefix) {
            by_repo.entry(prefix).or_default().insert(number, text.clone());
        }
    }
    let info = IssueTextsInfo {
        file: path
            .file_name()
            .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
        sha256: sha256_hex(&bytes),
        texts: all.len(),
        texts_for_these_repositories: by_repo.values().map(BTreeMap::len).sum(),
    };
    Ok((by_repo, info))
}

/// The `locus corpus build` command.
pub fn run_cli(args: CorpusArgs) -> Result<()> {
    let started = Instant::now();
    let m = build(&args)?;
    eprintln!(
        "corpus: {} instances from {} repositories ({} commits walked) in {:.1} s → {}",
        m.totals.kept,
        m.repositories.len(),
        m.totals.first_parent_commits,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
