//! One repository's instances: its first-parent history walked oldest first, each commit kept
//! as an instance (text → modified functions) or dropped with one reason.
//!
//! The rules run cheapest first, so most commits never cost a diff or a parse: message rules
//! (not a PR, bot, release or bump, text too short), then path rules on the `--raw` file list
//! (too many paths, no modified non-test source file); only what survives has its patch read
//! (one `git diff-tree --stdin` per chunk) and its source files parsed at both sides (in
//! parallel), then the gold rules (no function gold, too many functions or files) and the
//! near-duplicate rule, which compares with the instances already kept, in history order.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use locus_syntax::Lang;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::git::{Blob, BlobReader, Git, LogCommit};
use crate::gold::{file_gold, FileGold, Version};
use crate::message;
use crate::patch::{self, FileDiff};
use crate::paths::{classify, PathClass};
use crate::repos::RepoName;

/// Limits of the builder. Every field is a command-line option (`CorpusArgs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Most modified functions an instance may have; wider changes are dropped.
    pub max_functions: usize,
    /// Most modified source files an instance may have.
    pub max_files: usize,
    /// Most paths a commit may touch before anything else is read ("too wide").
    pub max_paths: usize,
    /// Fewest characters of cleaned text.
    pub min_text_chars: usize,
    /// Longer texts are cut to this many characters (not dropped).
    pub max_text_chars: usize,
    /// Newest first-parent commits walked per repository (0: all).
    pub max_commits: usize,
    /// Largest source blob read, in bytes; a larger one is a read failure.
    pub max_blob_bytes: usize,
    /// Largest diff (all files) of a kept change, in bytes.
    pub max_patch_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_functions: 5,
            max_files: 3,
            max_paths: 50,
            min_text_chars: 20,
            max_text_chars: 8000,
            max_commits: 0,
            max_blob_bytes: 2 << 20,
            max_patch_bytes: 1 << 20,
        }
    }
}

/// Why a commit is not an instance. The manifest counts every reason, zero counts included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// A root commit: no parent to be the base.
    NoParent,
    /// The message names no pull request (not a PR change).
    NotAPr,
    /// Made by a bot (author, or the branch a merge came from).
    BotAuthor,
    /// A release, version or dependency bump, by its title.
    ReleaseOrBump,
    /// Fewer than `min_text_chars` characters of text after cleanup.
    TextTooShort,
    /// More than `max_paths` paths touched.
    TooManyPaths,
    /// A diff over `max_patch_bytes` (generated or vendored code).
    PatchTooLarge,
    /// No non-test source file modified (docs, CI, tests, lock files only; or only added files).
    NoSourceChange,
    /// A source file's blob could not be read (missing from the mirror, or too large).
    ReadFailed,
    /// Source modified, but no function-level item modified or added (module level only).
    NoFunctionGold,
    /// More than `max_functions` modified functions.
    TooManyFunctions,
    /// More than `max_files` modified source files.
    TooManyFiles,
    /// The text is a near-duplicate of an instance kept earlier in the same repository.
    DuplicateText,
    /// The pull request's number was taken by an instance kept earlier.
    DuplicatePr,
    /// With issue texts (`--issue-texts`): the change's pull request has none.
    NoIssueText,
}

impl DropReason {
    pub const ALL: [DropReason; 15] = [
        DropReason::NoParent,
        DropReason::NotAPr,
        DropReason::BotAuthor,
        DropReason::ReleaseOrBump,
        DropReason::TextTooShort,
        DropReason::TooManyPaths,
        DropReason::PatchTooLarge,
        DropReason::NoSourceChange,
        DropReason::ReadFailed,
        DropReason::NoFunctionGold,
        DropReason::TooManyFunctions,
        DropReason::TooManyFiles,
        DropReason::DuplicateText,
        DropReason::DuplicatePr,
        DropReason::NoIssueText,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoParent => "no_parent",
            DropReason::NotAPr => "not_a_pr",
            DropReason::BotAuthor => "bot_author",
            DropReason::ReleaseOrBump => "release_or_bump",
            DropReason::TextTooShort => "text_too_short",
            DropReason::TooManyPaths => "too_many_paths",
            DropReason::PatchTooLarge => "patch_too_large",
            DropReason::NoSourceChange => "no_source_change",
            DropReason::ReadFailed => "read_failed",
            DropReason::NoFunctionGold => "no_function_gold",
            DropReason::TooManyFunctions => "too_many_functions",
            DropReason::TooManyFiles => "too_many_files",
            DropReason::DuplicateText => "duplicate_text",
            DropReason::DuplicatePr => "duplicate_pr",
            DropReason::NoIssueText => "no_issue_text",
        }
    }
}

/// An instance, in the shape of the evaluation data (`swebench_lite.jsonl`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    pub repo: String,
    pub base_commit: String,
    pub problem_statement: String,
    /// The change's diff against its base, test files left out (as SWE-bench's `patch`).
    pub patch: String,
}

/// An instance's gold, in the shape of `swebench_lite.gold.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gold {
    pub instance_id: String,
    /// Non-test source files modified (not only added), sorted.
    pub files: Vec<String>,
    /// `path:qual` of each modified function-level item, files in order, items in file order.
    pub functions: Vec<String>,
    /// `path:qual` of each item the change added (new files included).
    pub added_functions: Vec<String>,
    /// Every path the change touches (both sides of a rename), sorted.
    pub all_files: Vec<String>,
    /// Whether every modified source file was UTF-8 and parsed without a syntax error at both
    /// sides (the gold of a file with errors is kept, from what tree-sitter recovered).
    pub function_gold_reliable: bool,
}

/// The language of an instance: the majority language of its gold files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    Rust,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Rust => "rust",
        }
    }
}

/// A kept instance with its gold and language.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kept {
    pub instance: Instance,
    pub gold: Gold,
    pub lang: Language,
}

/// A repository's corpus.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoCorpus {
    pub repo: RepoName,
    /// The mirror's HEAD when built: every instance is on its first-parent history.
    pub commit: String,
    pub commit_date: String,
    pub first_parent_commits: usize,
    /// Commits whose message names a pull request.
    pub pr_changes: usize,
    /// Kept instances, oldest first.
    pub kept: Vec<Kept>,
    /// Every dropped commit and why, oldest first.
    pub dropped: Vec<(String, DropReason)>,
    /// With issue texts: the pull requests that had one but no change in the walked history
    /// (merged elsewhere, rebased without a PR number, or not merged), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts_not_found: Vec<u64>,
}

impl RepoCorpus {
    pub fn dropped_counts(&self) -> BTreeMap<DropReason, usize> {
        let mut m: BTreeMap<DropReason, usize> = DropReason::ALL.iter().map(|r| (*r, 0)).collect();
        for (_, r) in &self.dropped {
            *m.entry(*r).or_default() += 1;
        }
        m
    }
}

/// A source file of a candidate: modified (its parent side is gold) or added.
#[derive(Clone, Debug)]
struct SourceChange {
    lang: Lang,
    old_path: Option<String>,
    new_path: Option<String>,
    old_blob: Option<String>,
    new_blob: Option<String>,
    modified: bool,
}

/// A commit that passed the message and path rules.
#[derive(Clone, Debug)]
struct Candidate {
    sha: String,
    parent: String,
    number: Option<u64>,
    text: String,
    all_files: Vec<String>,
    sources: Vec<SourceChange>,
}

/// Candidates whose patches are read, blobs fetched and files parsed together.
const CHUNK: usize = 128;

/// Builds one repository's corpus from its mirror's HEAD, or from `tip` (a pinned commit).
pub fn build_repo(repo: &RepoName, git_dir: &Path, tip: Option<&str>, opts: &Options) -> Result<RepoCorpus> {
    build_repo_with_texts(repo, git_dir, tip, opts, None)
}

/// Real issue reports of one repository, by the number of the pull request that fixed them.
pub type IssueTexts = BTreeMap<u64, String>;

/// [`build_repo`], and with `texts` a development set of real issue reports: only changes whose
/// pull request has a text are kept, each with that text (cleaned, capped) as its problem
/// statement instead of the pull request's; the others are dropped as `no_issue_text`.
pub fn build_repo_with_texts(
    repo: &RepoName,
    git_dir: &Path,
    tip: Option<&str>,
    opts: &Options,
    texts: Option<&IssueTexts>,
) -> Result<RepoCorpus> {
    repo.check_not_benchmark()?;
    let git = Git::new(git_dir);
    let (commit, commit_date) = git.resolve(tip)?;
    let mut log = git.first_parent_log(&commit, opts.max_commits)?;
    log.reverse();
    let mut out = RepoCorpus {
        repo: repo.clone(),
        commit,
        commit_date,
        first_parent_commits: log.len(),
        pr_changes: 0,
        kept: Vec::new(),
        dropped: Vec::new(),
        texts_not_found: Vec::new(),
    };

    // Stage 1: message and path rules, in history order.
    let shas: Vec<String> = log.iter().map(|c| c.sha.clone()).collect();
    let verdicts: Vec<Result<Candidate, DropReason>> = log.iter().map(|c| screen(c, opts, texts)).collect();
    if let Some(texts) = texts {
        let seen: FxHashSet<u64> =
            log.iter().filter_map(|c| message::pr_message(&c.message)?.number).collect();
        out.texts_not_found = texts.keys().copied().filter(|n| !seen.contains(n)).collect();
    }
    out.pr_changes =
        verdicts.iter().filter(|v| !matches!(v, Err(DropReason::NoParent | DropReason::NotAPr))).count();
    drop(log);

    // Stages 2 and 3, by chunks of candidates, still in history order.
    let mut b = Builder {
        git: &git,
        blobs: git.blobs()?,
        opts,
        prefix: repo.id_prefix(),
        repo: repo.to_string(),
        seen_texts: FxHashSet::default(),
        seen_ids: FxHashSet::default(),
        cache: ParseCache::default(),
    };
    let mut pending: Vec<Candidate> = Vec::new();
    let mut order: Vec<Slot> = Vec::new();
    for (sha, v) in shas.into_iter().zip(verdicts) {
        match v {
            Err(r) => order.push(Slot::Dropped(sha, r)),
            Ok(c) => {
                order.push(Slot::Pending(pending.len()));
                pending.push(c);
            }
        }
        if pending.len() >= CHUNK {
            b.flush(&mut pending, &mut order, &mut out)?;
        }
    }
    b.flush(&mut pending, &mut order, &mut out)?;
    Ok(out)
}

/// A commit's place in history order while its chunk is processed.
enum Slot {
    Dropped(String, DropReason),
    /// Index into the pending chunk.
    Pending(usize),
}

/// The state of one repository's stages 2 and 3.
struct Builder<'a> {
    git: &'a Git,
    blobs: BlobReader,
    opts: &'a Options,
    /// `owner__name`.
    prefix: String,
    /// `owner/name`.
    repo: String,
    /// Near-duplicate keys of the kept texts.
    seen_texts: FxHashSet<[u8; 32]>,
    seen_ids: FxHashSet<String>,
    cache: ParseCache,
}

impl Builder<'_> {
    /// Processes the pending chunk and records every verdict in `order`, in order.
    fn flush(
        &mut self,
        pending: &mut Vec<Candidate>,
        order: &mut Vec<Slot>,
        out: &mut RepoCorpus,
    ) -> Result<()> {
        let results = process_chunk(
            self.git,
            &mut self.blobs,
            &mut self.cache,
            pending,
            self.opts,
            &self.prefix,
            &self.repo,
        )?;
        let mut results: Vec<Option<Result<Kept, DropReason>>> = results.into_iter().map(Some).collect();
        for slot in order.drain(..) {
            let (sha, result) = match slot {
                Slot::Dropped(sha, r) => (sha, Err(r)),
                Slot::Pending(k) => {
                    (pending[k].sha.clone(), results[k].take().unwrap_or(Err(DropReason::ReadFailed)))
                }
            };
            match result {
                Err(r) => out.dropped.push((sha, r)),
                Ok(kept) => {
                    if !self.seen_texts.insert(message::near_duplicate_key(&kept.instance.problem_statement))
                    {
                        out.dropped.push((sha, DropReason::DuplicateText));
                    } else if !self.seen_ids.insert(kept.instance.instance_id.clone()) {
                        out.dropped.push((sha, DropReason::DuplicatePr));
                    } else {
                        out.kept.push(kept);
                    }
                }
            }
        }
        pending.clear();
        Ok(())
    }
}

/// The message and path rules: a candidate, or why not. With issue texts, the text is the
/// issue's and a change without one is dropped.
fn screen(c: &LogCommit, opts: &Options, texts: Option<&IssueTexts>) -> Result<Candidate, DropReason> {
    let Some(parent) = c.parents.first() else {
        return Err(DropReason::NoParent);
    };
    let pr = message::pr_message(&c.message).ok_or(DropReason::NotAPr)?;
    // A merge commit's author merged it (bors[bot] merges every pull request of some
    // repositories): only the branch it merged says who made the change.
    let (author, email) = if pr.merged { ("", "") } else { (c.author.as_str(), c.email.as_str()) };
    if message::is_bot(author, email, pr.source_branch.as_deref()) {
        return Err(DropReason::BotAuthor);
    }
    let text = match texts {
        None => {
            let text = message::clean_text(&pr.text);
            if message::is_bump(text.lines().next().unwrap_or("")) {
                return Err(DropReason::ReleaseOrBump);
            }
            text
        }
        // An issue's title says what went wrong, not what the change is: no bump rule.
        Some(texts) => match pr.number.and_then(|n| texts.get(&n)) {
            Some(issue) => message::clean_text(&issue.replace("\r\n", "\n").replace('\r', "\n")),
            None => return Err(DropReason::NoIssueText),
        },
    };
    if text.chars().count() < opts.min_text_chars {
        return Err(DropReason::TextTooShort);
    }
    let text = message::cap_chars(&text, opts.max_text_chars);
    if c.changes.len() > opts.max_paths {
        return Err(DropReason::TooManyPaths);
    }
    let mut all_files: Vec<String> = Vec::new();
    let mut sources = Vec::new();
    for ch in &c.changes {
        all_files.extend(ch.old_path.iter().cloned());
        all_files.extend(ch.new_path.iter().cloned());
        let present = |b: &str| !b.bytes().all(|x| x == b'0');
        let old_source = match ch.old_path.as_deref().map(classify) {
            Some(PathClass::Source(lang)) if ch.regular(true) && present(&ch.old_blob) => Some(lang),
            _ => None,
        };
        let new_source = match ch.new_path.as_deref().map(classify) {
            Some(PathClass::Source(lang)) if ch.regular(false) && present(&ch.new_blob) => Some(lang),
            _ => None,
        };
        if let Some(lang) = old_source {
            // Modified, renamed (as a change of the old path) or deleted.
            let new_ok = ch.new_path.is_some() && ch.regular(false) && present(&ch.new_blob);
            sources.push(SourceChange {
                lang,
                old_path: ch.old_path.clone(),
                new_path: ch.new_path.clone().filter(|_| new_ok),
                old_blob: Some(ch.old_blob.clone()),
                new_blob: Some(ch.new_blob.clone()).filter(|_| new_ok),
                modified: true,
            });
        } else if let Some(lang) = new_source {
            sources.push(SourceChange {
                lang,
                old_path: None,
                new_path: ch.new_path.clone(),
                old_blob: None,
                new_blob: Some(ch.new_blob.clone()),
                modified: false,
            });
        }
    }
    if !sources.iter().any(|s| s.modified) {
        return Err(DropReason::NoSourceChange);
    }
    all_files.sort();
    all_files.dedup();
    Ok(Candidate { sha: c.sha.clone(), parent: parent.clone(), number: pr.number, text, all_files, sources })
}

/// Numbered lines of one side of a diff (1-based line number, the line).
type Lines = Vec<(u32, Vec<u8>)>;

/// What stage 2 holds per candidate before parsing.
struct Prepared {
    patch: String,
    /// Per source change: removed and added lines.
    lines: Vec<(Lines, Lines)>,
}

/// A parsed version of a file, by blob id and language.
type BlobKey = (String, Lang);

/// Parsed versions kept across chunks: the child of one change is often the parent of the next
/// change to the same file. Only speed depends on it, never a result.
#[derive(Default)]
pub(crate) struct ParseCache {
    map: FxHashMap<BlobKey, (u64, Arc<Version>)>,
    /// The current chunk's number; an entry remembers the last chunk that used it.
    generation: u64,
}

/// Most parsed versions kept; the least recently used half goes when it is exceeded.
const CACHE_VERSIONS: usize = 4096;

impl ParseCache {
    /// Whether `key` is cached; marks it used by this chunk.
    fn touch(&mut self, key: &BlobKey) -> bool {
        match self.map.get_mut(key) {
            Some(e) => {
                e.0 = self.generation;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: BlobKey, v: Arc<Version>) {
        self.map.insert(key, (self.generation, v));
    }

    fn get(&self, key: &BlobKey) -> Option<&Version> {
        self.map.get(key).map(|e| e.1.as_ref())
    }

    fn next_generation(&mut self) {
        if self.map.len() > CACHE_VERSIONS {
            let mut gens: Vec<u64> = self.map.values().map(|e| e.0).collect();
            gens.sort_unstable_by(|a, b| b.cmp(a));
            let keep_from = gens[CACHE_VERSIONS / 2];
            self.map.retain(|_, e| e.0 > keep_from);
        }
        self.generation += 1;
    }
}

/// Reads the chunk's patches and blobs, parses each distinct blob once (in parallel), and
/// applies the gold rules (all but the near-duplicate one, which needs history order across
/// chunks).
fn process_chunk(
    git: &Git,
    blobs: &mut BlobReader,
    cache: &mut ParseCache,
    chunk: &[Candidate],
    opts: &Options,
    prefix: &str,
    repo: &str,
) -> Result<Vec<Result<Kept, DropReason>>> {
    cache.next_generation();
    let pairs: Vec<(String, String)> = chunk.iter().map(|c| (c.sha.clone(), c.parent.clone())).collect();
    let mut diffs: Vec<Result<Vec<FileDiff>, DropReason>> = vec![Ok(Vec::new()); chunk.len()];
    let parse = |bytes: &[u8]| {
        if bytes.len() > opts.max_patch_bytes {
            Err(DropReason::PatchTooLarge)
        } else {
            Ok(patch::parse(bytes))
        }
    };
    if git.patches(&pairs, true, |k, b| diffs[k] = parse(b)).is_err() {
        // A mirror that lacks objects (a partial clone leaves large blobs out) fails the whole
        // stream: read the chunk's commits one by one, without rename detection if need be
        // (it reads the blobs of every added and deleted file), and drop what still fails.
        for (k, pair) in pairs.iter().enumerate() {
            let one = std::slice::from_ref(pair);
            // A commit with no difference prints nothing: an empty diff.
            let mut got = Ok(Vec::new());
            if git.patches(one, true, |_, b| got = parse(b)).is_err() {
                got = Ok(Vec::new());
                if git.patches(one, false, |_, b| got = parse(b)).is_err() {
                    got = Err(DropReason::ReadFailed);
                }
            }
            diffs[k] = got;
        }
    }
    let prepared: Vec<Result<Prepared, DropReason>> =
        chunk.iter().zip(diffs).map(|(c, d)| d.and_then(|d| prepare(c, d, opts))).collect();

    // The distinct blobs the chunk needs and the cache lacks, in order of first use.
    let mut need: Vec<BlobKey> = Vec::new();
    let mut needed: FxHashSet<BlobKey> = FxHashSet::default();
    for (c, p) in chunk.iter().zip(&prepared) {
        let Ok(p) = p else { continue };
        for (s, (removed, added)) in c.sources.iter().zip(&p.lines) {
            if removed.is_empty() && added.is_empty() {
                continue;
            }
            for id in [&s.old_blob, &s.new_blob].into_iter().flatten() {
                let key = (id.clone(), s.lang);
                if !cache.touch(&key) && needed.insert(key.clone()) {
                    need.push(key);
                }
            }
        }
    }
    let mut contents: Vec<(BlobKey, Vec<u8>)> = Vec::with_capacity(need.len());
    let mut failed: FxHashSet<String> = FxHashSet::default();
    for key in need {
        match blobs.read(&key.0, opts.max_blob_bytes)? {
            // A NUL byte: binary, whatever the extension says.
            Blob::Found(b) if !b.contains(&0) => contents.push((key, b)),
            Blob::Found(_) | Blob::Missing | Blob::TooLarge => {
                failed.insert(key.0);
            }
        }
    }
    let parsed: Vec<(BlobKey, Arc<Version>)> =
        contents.into_par_iter().map(|(key, b)| (key.clone(), Arc::new(Version::parse(key.1, &b)))).collect();
    for (key, v) in parsed {
        cache.insert(key, v);
    }
    let cache = &*cache;
    let results = chunk
        .par_iter()
        .zip(prepared.into_par_iter())
        .map(|(c, p)| p.and_then(|p| gold_of(c, p, cache, &failed, opts, prefix, repo)))
        .collect();
    Ok(results)
}

/// Splits a candidate's diff: the patch text (test files left out) and each source change's
/// lines. A change to more Python files than `max_files` is dropped here, before any blob is
/// read (a Python file's changed lines always count, so the gold would say the same).
fn prepare(c: &Candidate, sections: Vec<FileDiff>, opts: &Options) -> Result<Prepared, DropReason> {
    let mut patch_bytes = Vec::new();
    let mut by_old: FxHashMap<&str, usize> = FxHashMap::default();
    let mut by_new: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, s) in sections.iter().enumerate() {
        if let Some(p) = s.old_path.as_deref() {
            by_old.entry(p).or_insert(i);
        }
        if let Some(p) = s.new_path.as_deref() {
            by_new.entry(p).or_insert(i);
        }
        if s.path().map(classify) != Some(PathClass::Test) {
            patch_bytes.extend_from_slice(&s.text);
        }
    }
    let mut lines = Vec::with_capacity(c.sources.len());
    let mut python_files = 0;
    for s in &c.sources {
        let section = if s.modified {
            s.old_path.as_deref().and_then(|p| by_old.get(p))
        } else {
            s.new_path.as_deref().and_then(|p| by_new.get(p))
        };
        let (removed, added) = match section {
            Some(&i) => (sections[i].removed.clone(), sections[i].added.clone()),
            None => (Vec::new(), Vec::new()),
        };
        let blank = |l: &[u8]| l.iter().all(u8::is_ascii_whitespace);
        if s.modified && s.lang == Lang::Python && removed.iter().chain(&added).any(|(_, l)| !blank(l)) {
            python_files += 1;
        }
        lines.push((removed, added));
    }
    if python_files > opts.max_files {
        return Err(DropReason::TooManyFiles);
    }
    Ok(Prepared { patch: String::from_utf8_lossy(&patch_bytes).into_owned(), lines })
}

/// Places a candidate's changed lines in its parsed files and applies the gold rules, in
/// this order: no source change, too many files, no function gold, too many functions.
fn gold_of(
    c: &Candidate,
    p: Prepared,
    cache: &ParseCache,
    failed: &FxHashSet<String>,
    opts: &Options,
    prefix: &str,
    repo: &str,
) -> Result<Kept, DropReason> {
    let mut files: Vec<(String, Lang, Vec<String>)> = Vec::new();
    let mut added_functions = Vec::new();
    let mut reliable = true;
    for (s, (removed, added)) in c.sources.iter().zip(&p.lines) {
        if removed.is_empty() && added.is_empty() {
            // A pure rename or mode change: nothing to place.
            continue;
        }
        let version = |id: &Option<String>| -> Result<Option<&Version>, DropReason> {
            match id {
                None => Ok(None),
                Some(id) if failed.contains(id) => Err(DropReason::ReadFailed),
                Some(id) => cache.get(&(id.clone(), s.lang)).map(Some).ok_or(DropReason::ReadFailed),
            }
        };
        let g: FileGold = file_gold(s.lang, version(&s.old_blob)?, version(&s.new_blob)?, removed, added);
        if let Some(path) = s.new_path.as_deref() {
            added_functions.extend(g.added.iter().map(|q| format!("{path}:{q}")));
        }
        if s.modified && g.touched {
            let path = s.old_path.clone().unwrap_or_default();
            reliable &= g.clean;
            let functions = g.modified.iter().map(|q| format!("{path}:{q}")).collect();
            files.push((path, s.lang, functions));
        }
    }
    if files.is_empty() {
        return Err(DropReason::NoSourceChange);
    }
    if files.len() > opts.max_files {
        return Err(DropReason::TooManyFiles);
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let functions: Vec<String> = files.iter().flat_map(|f| f.2.iter().cloned()).collect();
    if functions.is_empty() && added_functions.is_empty() {
        return Err(DropReason::NoFunctionGold);
    }
    if functions.len() > opts.max_functions {
        return Err(DropReason::TooManyFunctions);
    }
    // The instance's language: the majority of its gold files; a tie goes to the first file's.
    let python = files.iter().filter(|f| f.1 == Lang::Python).count();
    let rust = files.len() - python;
    let lang = match python.cmp(&rust) {
        std::cmp::Ordering::Greater => Language::Python,
        std::cmp::Ordering::Less => Language::Rust,
        std::cmp::Ordering::Equal if files[0].1 == Lang::Python => Language::Python,
        std::cmp::Ordering::Equal => Language::Rust,
    };
    let suffix = match c.number {
        Some(n) => n.to_string(),
        None => c.sha[..c.sha.len().min(12)].to_string(),
    };
    let instance_id = format!("{prefix}-{suffix}");
    Ok(Kept {
        instance: Instance {
            instance_id: instance_id.clone(),
            repo: repo.to_string(),
            base_commit: c.parent.clone(),
            problem_statement: c.text.clone(),
            patch: p.patch,
        },
        gold: Gold {
            instance_id,
            files: files.into_iter().map(|f| f.0).collect(),
            functions,
            added_functions,
            all_files: c.all_files.clone(),
            function_gold_reliable: reliable,
        },
        lang,
    })
}
