//! Finds and reads the workspace's source files. The only module of the indexer that touches
//! the disk.
//!
//! Safety: symbolic links are never followed (a link could lead out of the workspace or into a
//! loop); every path returned is relative to the root and was reached by descending from it.
//! Nothing but regular files is ever opened for reading: opening a FIFO blocks until a writer
//! comes, and a device can be endless.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ignore::overrides::OverrideBuilder;
use locus_syntax::Lang;
use rayon::prelude::*;

/// Files larger than this are skipped: generated tables, test data and vendored bundles say
/// little about where a bug is, and cost parse time and memory (sympy's 1.5 MB generated
/// `test_trinomials.py` alone took 741 ms and ~110 MB of the parser's memory at the peak of a
/// cold index; no gold file of the benchmarks is over 0.5 MB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How much of a file is checked for NUL bytes to call it binary (git's heuristic).
const BINARY_SNIFF: usize = 8000;

#[derive(Clone, Debug)]
pub struct WalkOptions {
    pub max_file_bytes: u64,
    /// Gitignore-style globs to leave out (`tests/fixtures/**`).
    pub exclude: Vec<String>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions { max_file_bytes: DEFAULT_MAX_FILE_BYTES, exclude: Vec::new() }
    }
}

/// A source file read from the workspace.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Relative to the root, `/`-separated.
    pub path: String,
    pub lang: Lang,
    pub text: String,
}

/// Files that were not indexed, by reason.
#[derive(Clone, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct Skipped(pub BTreeMap<String, u32>);

impl Skipped {
    pub fn add(&mut self, reason: &str) {
        *self.0.entry(reason.to_string()).or_insert(0) += 1;
    }

    pub fn total(&self) -> u32 {
        self.0.values().sum()
    }
}

/// Why a file could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    TooLarge,
    Binary,
    NotUtf8,
    Unreadable,
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO, socket or device named like a source file.
    Special,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::TooLarge => "too_large",
            SkipReason::Binary => "binary",
            SkipReason::NotUtf8 => "not_utf8",
            SkipReason::Unreadable => "unreadable",
            SkipReason::Symlink => "symlink",
            SkipReason::Special => "special_file",
        }
    }
}

/// The ignore files the walker reads in each directory. One that is a FIFO or a device would
/// block the walk forever (the `ignore` crate opens it for reading), so a directory holding one
/// is skipped and counted (`special_ignore_file`), and a root holding one is refused.
const IGNORE_FILES: [&str; 3] = [".gitignore", ".ignore", ".git/info/exclude"];

/// The first of `dir`'s ignore files that exists and is not a regular file or a directory
/// (links followed, as the walker follows them).
pub fn special_ignore_file(dir: &Path) -> Option<PathBuf> {
    IGNORE_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| std::fs::metadata(p).map(|m| !(m.is_file() || m.is_dir())).unwrap_or(false))
}

/// Reads one source file: opened without following a link and without blocking (a FIFO swapped
/// in after the walk listed a file cannot hang the read), then checked through the open handle
/// to be a regular file within `max` bytes, and decoded.
pub fn read_source(abs: &Path, max: u64) -> Result<String, SkipReason> {
    let mut oo = std::fs::OpenOptions::new();
    oo.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        oo.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = oo.open(abs).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return SkipReason::Symlink;
        }
        let _ = e;
        SkipReason::Unreadable
    })?;
    let meta = file.metadata().map_err(|_| SkipReason::Unreadable)?;
    if !meta.is_file() {
        return Err(SkipReason::Special);
    }
    if meta.len() > max {
        return Err(SkipReason::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `max + 1`: a file that grew past the limit since the check is still caught by `decode`.
    file.take(max + 1).read_to_end(&mut bytes).map_err(|_| SkipReason::Unreadable)?;
    decode(bytes, max)
}

/// Checks bytes read from a source file: size, binary content, UTF-8.
pub fn decode(bytes: Vec<u8>, max: u64) -> Result<String, SkipReason> {
    if bytes.len() as u64 > max {
        return Err(SkipReason::TooLarge);
    }
    if bytes[..bytes.len().min(BINARY_SNIFF)].contains(&0) {
        return Err(SkipReason::Binary);
    }
    String::from_utf8(bytes).map_err(|_| SkipReason::NotUtf8)
}

/// A walker over `root` with the indexer's rules (gitignore-aware, hidden entries and links
/// left out, `opts.exclude` applied), descending only where `descend` allows. Directories with a
/// special ignore file are skipped and counted in the returned counter.
fn walker(
    root: &Path,
    opts: &WalkOptions,
    skipped: &mut Skipped,
    descend: impl Fn(&Path) -> bool + Send + Sync + 'static,
) -> (ignore::Walk, Arc<AtomicU32>) {
    let mut builder = ignore::WalkBuilder::new(root);
    builder.follow_links(false).require_git(false).hidden(true).parents(false);
    if !opts.exclude.is_empty() {
        let mut ob = OverrideBuilder::new(root);
        for g in &opts.exclude {
            if ob.add(&format!("!{g}")).is_err() {
                skipped.add("bad_exclude_glob");
            }
        }
        if let Ok(ov) = ob.build() {
            builder.overrides(ov);
        }
    }
    let special = Arc::new(AtomicU32::new(0));
    let counter = special.clone();
    builder.filter_entry(move |e| {
        if !e.file_type().is_some_and(|t| t.is_dir()) {
            return true;
        }
        if !descend(e.path()) {
            return false;
        }
        if special_ignore_file(e.path()).is_some() {
            counter.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    });
    (builder.build(), special)
}

/// Lists the candidate source files under `root` (relative paths), with what was skipped.
pub fn list(root: &Path, opts: &WalkOptions) -> (Vec<(String, PathBuf, Lang)>, Skipped) {
    let mut skipped = Skipped::default();
    let mut out = Vec::new();
    if special_ignore_file(root).is_some() {
        skipped.add("special_ignore_file");
        return (out, skipped);
    }
    let (walk, special) = walker(root, opts, &mut skipped, |_| true);
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(_) => {
                skipped.add("walk_error");
                continue;
            }
        };
        let Some(ft) = entry.file_type() else { continue };
        let Ok(rel) = entry.path().strip_prefix(root) else { continue };
        let Some(rel) = rel.to_str().map(|s| s.replace('\\', "/")) else {
            if Lang::of_path(&entry.path().to_string_lossy()).is_some() {
                skipped.add("non_utf8_path");
            }
            continue;
        };
        let Some(lang) = Lang::of_path(&rel) else { continue };
        if ft.is_symlink() {
            skipped.add(SkipReason::Symlink.as_str());
            continue;
        }
        if !ft.is_file() {
            if !ft.is_dir() {
                skipped.add(SkipReason::Special.as_str());
            }
            continue;
        }
        out.push((rel, entry.path().to_path_buf(), lang));
    }
    for _ in 0..special.load(Ordering::Relaxed) {
        skipped.add("special_ignore_file");
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    (out, skipped)
}

/// Which of `rels` the walk would index: the same rules as `list` (inside the root, no link on
/// the way, not hidden, ignored or excluded, a source file), checked by one walk that descends
/// only into the directories on their way. A path that does not exist (an unsaved new buffer)
/// is admitted when its deepest existing directory is reached and the rest of the path is
/// neither hidden nor excluded; gitignore patterns are applied to its missing part only once
/// it exists.
pub fn admitted(root: &Path, rels: &[&str], opts: &WalkOptions) -> Vec<bool> {
    let targets: Vec<Option<PathBuf>> = rels
        .iter()
        .map(|rel| {
            let p = Path::new(rel);
            let normal = p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
            (normal && !rel.is_empty() && Lang::of_path(rel).is_some()).then(|| root.join(p))
        })
        .collect();
    if targets.iter().all(Option::is_none) || special_ignore_file(root).is_some() {
        return vec![false; rels.len()];
    }
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    for t in targets.iter().flatten() {
        let mut d = t.parent();
        while let Some(dir) = d.filter(|d| d.starts_with(root) && *d != root) {
            dirs.insert(dir.to_path_buf());
            d = dir.parent();
        }
    }
    let wanted: HashSet<PathBuf> = targets.iter().flatten().cloned().collect();
    let dirs = Arc::new(dirs);
    let on_the_way = dirs.clone();
    let mut scratch = Skipped::default();
    let (walk, _) = walker(root, opts, &mut scratch, move |p| on_the_way.contains(p));
    let mut files: HashSet<PathBuf> = HashSet::new();
    let mut reached: HashSet<PathBuf> = HashSet::new();
    reached.insert(root.to_path_buf());
    for entry in walk.flatten() {
        let Some(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            reached.insert(entry.path().to_path_buf());
        } else if ft.is_file() && wanted.contains(entry.path()) {
            files.insert(entry.path().to_path_buf());
        }
    }
    let excluded = exclude_matcher(root, opts);
    targets
        .iter()
        .map(|t| {
            let Some(t) = t else { return false };
            if files.contains(t) {
                return true;
            }
            // Not listed: admitted only if it does not exist at all, and its deepest existing
            // directory was reached.
            let exists = |p: &Path| {
                !matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            };
            if exists(t) {
                return false;
            }
            let mut missing = vec![t.as_path()];
            let mut anc = t.parent();
            while let Some(a) = anc.filter(|a| !exists(a)) {
                missing.push(a);
                anc = a.parent();
            }
            let hidden = missing
                .iter()
                .any(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')));
            let is_excluded = excluded
                .as_ref()
                .is_some_and(|m| missing.iter().any(|p| m.matched(p, *p != t.as_path()).is_ignore()));
            !hidden && !is_excluded && anc.is_some_and(|d| reached.contains(d))
        })
        .collect()
}

fn exclude_matcher(root: &Path, opts: &WalkOptions) -> Option<ignore::overrides::Override> {
    if opts.exclude.is_empty() {
        return None;
    }
    let mut ob = OverrideBuilder::new(root);
    for g in &opts.exclude {
        let _ = ob.add(&format!("!{g}"));
    }
    ob.build().ok()
}

/// Reads the listed files in parallel. Files that vanish or cannot be decoded are counted.
pub fn read_all(files: Vec<(String, PathBuf, Lang)>, opts: &WalkOptions) -> (Vec<SourceFile>, Skipped) {
    let results: Vec<Result<SourceFile, SkipReason>> = files
        .into_par_iter()
        .map(|(rel, abs, lang)| {
            // The file may have gone or been swapped for a link or a FIFO since it was listed.
            let text = read_source(&abs, opts.max_file_bytes)?;
            Ok(SourceFile { path: rel, lang, text })
        })
        .collect();
    let mut skipped = Skipped::default();
    let mut files = Vec::new();
    for r in results {
        match r {
            Ok(f) => files.push(f),
            Err(reason) => skipped.add(reason.as_str()),
        }
    }
    (files, skipped)
}

/// Resolves a workspace-relative path to an absolute one, refusing anything that would leave
/// the root (`..`, absolute paths, or symbolic links on the way).
pub fn resolve_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute() || rel_path.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    let mut cur = root.to_path_buf();
    for c in rel_path.components() {
        cur.push(c);
        let meta = std::fs::symlink_metadata(&cur).ok()?;
        if meta.file_type().is_symlink() {
            return None;
        }
    }
    Some(cur)
}
