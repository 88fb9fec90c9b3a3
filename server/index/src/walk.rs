//! Finds and reads the workspace's source files. The only module of the indexer that touches
//! the disk.
//!
//! Safety: symbolic links are never followed (a link could lead out of the workspace or into a
//! loop); every path returned is relative to the root and was reached by descending from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ignore::overrides::OverrideBuilder;
use locus_syntax::Lang;
use rayon::prelude::*;

/// Files larger than this are skipped: generated tables and vendored bundles say little about
/// where a bug is, and cost parse time and memory.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

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
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::TooLarge => "too_large",
            SkipReason::Binary => "binary",
            SkipReason::NotUtf8 => "not_utf8",
            SkipReason::Unreadable => "unreadable",
        }
    }
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

/// Lists the candidate source files under `root` (relative paths), with what was skipped.
pub fn list(root: &Path, opts: &WalkOptions) -> (Vec<(String, PathBuf, Lang)>, Skipped) {
    let mut skipped = Skipped::default();
    let mut out = Vec::new();
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
    for entry in builder.build() {
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
            skipped.add("symlink");
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        out.push((rel, entry.path().to_path_buf(), lang));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    (out, skipped)
}

/// Reads the listed files in parallel. Files that vanish or cannot be decoded are counted.
pub fn read_all(files: Vec<(String, PathBuf, Lang)>, opts: &WalkOptions) -> (Vec<SourceFile>, Skipped) {
    let results: Vec<Result<SourceFile, SkipReason>> = files
        .into_par_iter()
        .map(|(rel, abs, lang)| {
            // Re-check right before reading: the file may have been swapped for a link.
            let meta = std::fs::symlink_metadata(&abs).map_err(|_| SkipReason::Unreadable)?;
            if !meta.is_file() {
                return Err(SkipReason::Unreadable);
            }
            if meta.len() > opts.max_file_bytes {
                return Err(SkipReason::TooLarge);
            }
            let bytes = std::fs::read(&abs).map_err(|_| SkipReason::Unreadable)?;
            let text = decode(bytes, opts.max_file_bytes)?;
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
