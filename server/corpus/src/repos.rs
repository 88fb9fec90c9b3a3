//! Which repositories a corpus is built from: `owner/name` lists (arguments, files with `#`
//! comments), the refusal of benchmark repositories, and where each one's mirror is.
//!
//! Invariant: no benchmark repository is ever read. Refusal goes by the repository's *name*,
//! case-insensitively and whatever the owner, so forks and renamed owners are refused too.

use std::fmt;
use std::path::{Path, PathBuf};

/// SWE-bench's twelve repositories (names only).
pub const SWE_BENCH: &[&str] = &[
    "astropy",
    "django",
    "matplotlib",
    "seaborn",
    "flask",
    "requests",
    "xarray",
    "pylint",
    "pytest",
    "scikit-learn",
    "sphinx",
    "sympy",
];

/// The Rust benchmark's repositories (names only).
pub const RUST_BENCH: &[&str] = &[
    "tokio",
    "tracing",
    "bytes",
    "ripgrep",
    "fd",
    "bat",
    "serde",
    "rayon",
    "hyper",
    "proc-macro2",
    "asterinas",
    "arrow-rs",
    "bitflags",
    "rand",
    "sysinfo",
    "crossbeam",
    "syn",
    "regex",
];

/// A repository, `owner/name`, as GitHub spells it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

/// Why a repository list was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RepoError {
    #[error("`{0}` is not a repository name: write it as owner/name (letters, digits, `-`, `_`, `.`)")]
    Malformed(String),
    #[error(
        "refusing {repo}: `{name}` is a repository of the {bench} benchmark, and training on it \
         would leak test data into the models; remove it from the list"
    )]
    Benchmark { repo: String, name: String, bench: &'static str },
}

impl RepoName {
    pub fn parse(s: &str) -> Result<RepoName, RepoError> {
        let s = s.trim();
        let bad = || RepoError::Malformed(s.to_string());
        let (owner, name) = s.split_once('/').ok_or_else(bad)?;
        let ok = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !ok(owner) || !ok(name) {
            return Err(bad());
        }
        Ok(RepoName { owner: owner.to_string(), name: name.to_string() })
    }

    /// `owner__name`, the instance id prefix.
    pub fn id_prefix(&self) -> String {
        format!("{}__{}", self.owner, self.name)
    }

    /// `owner+name`, the mirror's directory.
    pub fn mirror_dir(&self) -> String {
        format!("{}+{}", self.owner, self.name)
    }

    /// Refuses a benchmark repository.
    pub fn check_not_benchmark(&self) -> Result<(), RepoError> {
        let lower = self.name.to_ascii_lowercase();
        for (list, bench) in [(SWE_BENCH, "SWE-bench"), (RUST_BENCH, "Rust localization")] {
            if list.contains(&lower.as_str()) {
                return Err(RepoError::Benchmark { repo: self.to_string(), name: lower, bench });
            }
        }
        Ok(())
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Parses a repository list: one `owner/name` per line, `#` starts a comment, blank lines
/// skipped. `origin` names the list in errors.
pub fn parse_list(text: &str) -> Result<Vec<RepoName>, RepoError> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(RepoName::parse)
        .collect()
}

/// The repositories to build from, sorted and without duplicates; every benchmark repository
/// among them is an error (all are named, not only the first).
pub fn resolve(args: &[String], file_text: Option<&str>) -> anyhow::Result<Vec<RepoName>> {
    let mut repos: Vec<RepoName> = args.iter().map(|a| RepoName::parse(a)).collect::<Result<_, _>>()?;
    if let Some(text) = file_text {
        repos.extend(parse_list(text)?);
    }
    repos.sort();
    repos.dedup();
    let refused: Vec<String> =
        repos.iter().filter_map(|r| r.check_not_benchmark().err()).map(|e| e.to_string()).collect();
    if !refused.is_empty() {
        anyhow::bail!("{}", refused.join("\n"));
    }
    Ok(repos)
}

/// The git directory of a repository's mirror, if the mirror exists.
pub fn mirror_git_dir(mirrors: &Path, repo: &RepoName) -> Option<PathBuf> {
    crate::git::find_git_dir(&mirrors.join(repo.mirror_dir()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_benchmarks_by_name_whatever_the_owner_or_case() {
        for r in ["psf/requests", "someone/Requests", "tokio-rs/tokio", "me/SCIKIT-LEARN", "rust-lang/regex"]
        {
            let e = RepoName::parse(r).unwrap().check_not_benchmark().unwrap_err();
            assert!(e.to_string().contains(r), "{e}");
            assert!(e.to_string().contains("leak test data"), "{e}");
        }
        for r in ["pallets/click", "psf/requests-oauthlib", "rust-lang/cargo"] {
            RepoName::parse(r).unwrap().check_not_benchmark().unwrap();
        }
    }

    #[test]
    fn lists_with_comments_sorted_and_deduplicated() {
        let repos =
            resolve(&["psf/black".into()], Some("# header\npallets/click  # a comment\n\npsf/black\n"))
                .unwrap();
        let names: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
        assert_eq!(names, ["pallets/click", "psf/black"]);
        let err = resolve(&["pallets/click".into(), "psf/requests".into(), "pallets/flask".into()], None)
            .unwrap_err();
        assert!(
            err.to_string().contains("psf/requests") && err.to_string().contains("pallets/flask"),
            "{err}"
        );
        assert!(resolve(&["../x".into()], None).is_err());
        assert!(resolve(&["a/b/c".into()], None).is_err());
    }
}
