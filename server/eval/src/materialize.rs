//! Source trees at a base commit, extracted from bare git mirrors into the evaluation cache.
//!
//! Layout: the mirror of `owner/name` lives somewhere under `mirrors/<owner>+<name>/` (the bare
//! git dir may be nested, e.g. `sympy+sympy/repo`); the tree at `commit` lands in
//! `cache/trees/<owner>+<name>/<commit>/`. Extraction goes into a temporary sibling directory that
//! is renamed into place only once it is whole and carries its `.complete` marker, so a killed
//! run never leaves half a tree behind. Blobs the mirror lacks (some mirrors drop files over
//! 4 MiB) are skipped and listed in `missing_blobs.txt` inside the tree instead of failing the
//! whole instance. Nothing is ever written into the mirror.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Marker written inside a tree once extraction finished; its presence means "complete".
pub const COMPLETE_MARKER: &str = ".complete";
/// Lists, one path per line, the files whose blobs the mirror lacks. Present only when non-empty.
pub const MISSING_BLOBS_FILE: &str = "missing_blobs.txt";

/// How deep under `mirrors/<owner>+<name>/` the bare git dir may sit. The known layouts put it
/// at depth 0 or 1; a little slack costs nothing.
const MAX_MIRROR_DEPTH: usize = 3;

/// Distinguishes temporary directories of concurrent extractions within one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error("no mirror for {repo}")]
    NoMirror { repo: String },
    #[error("repository name {repo:?} is not of the form owner/name")]
    InvalidRepo { repo: String },
    #[error("commit {commit:?} is not a hexadecimal object id")]
    InvalidCommit { commit: String },
    #[error("commit {commit} is not in the mirror of {repo}; the mirror may be stale, refetch it")]
    CommitNotFound { repo: String, commit: String },
    #[error("git {args} failed in {git_dir}: {stderr}")]
    Git { git_dir: PathBuf, args: String, stderr: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Extracts the tree of `repo` (`owner/name`) at `commit` into
/// `cache/trees/<owner>+<name>/<commit>/` and returns that directory; returns it at once when a
/// complete copy is already there.
pub fn materialize(
    mirrors: &Path,
    cache: &Path,
    repo: &str,
    commit: &str,
) -> Result<PathBuf, MaterializeError> {
    let slug = repo_slug(repo)?;
    validate_commit(commit)?;
    let parent = cache.join("trees").join(&slug);
    let dest = parent.join(commit);
    if dest.join(COMPLETE_MARKER).is_file() {
        return Ok(dest);
    }
    let git_dir = find_git_dir(mirrors, repo)?;
    let git = Git::bare(&git_dir);
    if git.run(&["cat-file", "-e", &format!("{commit}^{{commit}}")], None).is_err() {
        return Err(MaterializeError::CommitNotFound { repo: repo.to_owned(), commit: commit.to_owned() });
    }

    create_dir_all(&parent)?;
    remove_stale_tmps(&parent);
    let tmp = parent.join(format!(
        ".tmp-{commit}-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = extract(git, commit, &tmp).and_then(|()| publish(&tmp, &dest));
    // On success `tmp` was renamed away; on failure it must not linger.
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_file(tmp.with_extension("index"));
    result.map(|()| dest)
}

/// The files of a materialized tree whose blobs were missing from the mirror.
pub fn missing_blobs(tree: &Path) -> Vec<String> {
    fs::read_to_string(tree.join(MISSING_BLOBS_FILE))
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Finds the bare git dir (a directory holding `HEAD` and `objects/`) for `owner/name` under
/// `mirrors/<owner>+<name>/`, breadth first so the shallowest one wins.
pub fn find_git_dir(mirrors: &Path, repo: &str) -> Result<PathBuf, MaterializeError> {
    let root = mirrors.join(repo_slug(repo)?);
    let mut queue = VecDeque::from([(root, 0usize)]);
    while let Some((dir, depth)) = queue.pop_front() {
        if dir.join("HEAD").is_file() && dir.join("objects").is_dir() {
            return Ok(dir);
        }
        if depth == MAX_MIRROR_DEPTH {
            continue;
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut children: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        children.sort();
        queue.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    Err(MaterializeError::NoMirror { repo: repo.to_owned() })
}

/// The commit time (seconds since the epoch) of each of `commits` that the mirror of `repo`
/// holds, by hash; an empty map when there is no mirror or git fails (the order is then the
/// hashes', as before).
pub fn commit_times(mirrors: &Path, repo: &str, commits: &[&str]) -> HashMap<String, i64> {
    let Ok(dir) = find_git_dir(mirrors, repo) else { return HashMap::new() };
    let mut args = vec!["show", "-s", "--format=%H %ct"];
    args.extend(commits.iter().filter(|c| c.bytes().all(|b| b.is_ascii_hexdigit())).copied());
    let Ok(out) = run_git(&dir, None, &args, None) else { return HashMap::new() };
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| {
            let (hash, time) = l.split_once(' ')?;
            Some((hash.to_owned(), time.trim().parse().ok()?))
        })
        .collect()
}

/// `owner/name` → `owner+name`, refusing anything that could escape the cache directory.
pub fn repo_slug(repo: &str) -> Result<String, MaterializeError> {
    let invalid = || MaterializeError::InvalidRepo { repo: repo.to_owned() };
    let (owner, name) = repo.split_once('/').ok_or_else(invalid)?;
    let ok = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if ok(owner) && ok(name) {
        Ok(format!("{owner}+{name}"))
    } else {
        Err(invalid())
    }
}

fn validate_commit(commit: &str) -> Result<(), MaterializeError> {
    if (4..=64).contains(&commit.len()) && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(MaterializeError::InvalidCommit { commit: commit.to_owned() })
    }
}

/// Checks the commit out into `tmp` through a private index, leaving out missing blobs.
fn extract(git: Git<'_>, commit: &str, tmp: &Path) -> Result<(), MaterializeError> {
    create_dir_all(tmp)?;
    let missing = missing_blob_paths(git, commit)?;
    let index = tmp.with_extension("index");
    let with_tree = git.with_scratch(tmp, &index);

    with_tree.run(&["read-tree", commit], None)?;
    if !missing.is_empty() {
        let mut stdin = Vec::new();
        for path in &missing {
            stdin.extend_from_slice(path.as_bytes());
            stdin.push(0);
        }
        with_tree.run(&["update-index", "--force-remove", "-z", "--stdin"], Some(stdin))?;
    }
    with_tree.run(&["checkout-index", "--all", "--force"], None)?;

    if !missing.is_empty() {
        let mut text = missing.join("\n");
        text.push('\n');
        write_file(&tmp.join(MISSING_BLOBS_FILE), text.as_bytes())?;
    }
    write_file(&tmp.join(COMPLETE_MARKER), format!("{commit}\n").as_bytes())
}

/// Paths of blobs in the commit's tree that the mirror's object store lacks.
fn missing_blob_paths(git: Git<'_>, commit: &str) -> Result<Vec<String>, MaterializeError> {
    let listing = git.run(&["ls-tree", "-r", "-z", "--full-tree", commit], None)?;
    // Each entry is `<mode> SP <type> SP <oid> TAB <path>`, NUL-terminated.
    let mut blobs: Vec<(String, String)> = Vec::new();
    for entry in listing.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split(' ');
        let (_mode, kind, oid) = (fields.next(), fields.next(), fields.next());
        if let (Some("blob"), Some(oid)) = (kind, oid) {
            blobs.push((oid.to_owned(), path.to_owned()));
        }
    }
    let mut stdin = Vec::with_capacity(blobs.len() * 41);
    for (oid, _) in &blobs {
        stdin.extend_from_slice(oid.as_bytes());
        stdin.push(b'\n');
    }
    let answers = git.run(&["cat-file", "--batch-check"], Some(stdin))?;
    // `--batch-check` answers one line per input line, in order: `<oid> missing` for absent ones.
    let mut missing = Vec::new();
    for ((_, path), line) in blobs.iter().zip(answers.lines()) {
        let line = line.map_err(|source| MaterializeError::Io {
            action: "reading git output for",
            path: git.dir.to_owned(),
            source,
        })?;
        if line.ends_with(" missing") {
            missing.push(path.clone());
        }
    }
    Ok(missing)
}

/// Renames the finished `tmp` into `dest`; if another extraction won the race, keeps its tree.
fn publish(tmp: &Path, dest: &Path) -> Result<(), MaterializeError> {
    match fs::rename(tmp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.join(COMPLETE_MARKER).is_file() => Ok(()),
        Err(first) => {
            // A `dest` without its marker is debris from an older, non-atomic writer.
            if dest.exists() {
                fs::remove_dir_all(dest).map_err(|source| MaterializeError::Io {
                    action: "removing incomplete tree",
                    path: dest.to_owned(),
                    source,
                })?;
                fs::rename(tmp, dest).map_err(|source| MaterializeError::Io {
                    action: "renaming extracted tree to",
                    path: dest.to_owned(),
                    source,
                })
            } else {
                Err(MaterializeError::Io {
                    action: "renaming extracted tree to",
                    path: dest.to_owned(),
                    source: first,
                })
            }
        }
    }
}

/// Removes `.tmp-*` leftovers of processes that no longer exist (a killed run).
fn remove_stale_tmps(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let proc_fs = Path::new("/proc/self").exists();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = tmp_owner_pid(&name) else {
            continue;
        };
        // Without /proc nobody can tell whether the owner lives, so leave its files alone.
        let owner_alive = !proc_fs || Path::new("/proc").join(pid.to_string()).exists();
        if pid != std::process::id() && !owner_alive {
            let path = entry.path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
}

/// `.tmp-<commit>-<pid>-<n>[.index]` → `pid`.
fn tmp_owner_pid(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?.strip_prefix(".tmp-")?;
    let name = name.strip_suffix(".index").unwrap_or(name);
    let mut parts = name.rsplitn(3, '-');
    let _n = parts.next()?;
    parts.next()?.parse().ok()
}

fn create_dir_all(path: &Path) -> Result<(), MaterializeError> {
    fs::create_dir_all(path).map_err(|source| MaterializeError::Io {
        action: "creating",
        path: path.to_owned(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), MaterializeError> {
    fs::write(path, bytes).map_err(|source| MaterializeError::Io {
        action: "writing",
        path: path.to_owned(),
        source,
    })
}

/// Git invocations against one bare mirror, optionally with a scratch work tree and index so
/// that checkouts never touch the mirror itself.
#[derive(Clone, Copy)]
struct Git<'a> {
    dir: &'a Path,
    /// `(work tree, index file)`.
    scratch: Option<(&'a Path, &'a Path)>,
}

impl<'a> Git<'a> {
    fn bare(dir: &'a Path) -> Self {
        Git { dir, scratch: None }
    }

    fn with_scratch(self, work_tree: &'a Path, index: &'a Path) -> Self {
        Git { scratch: Some((work_tree, index)), ..self }
    }

    fn run(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Vec<u8>, MaterializeError> {
        run_git(self.dir, self.scratch, args, stdin)
    }
}

fn run_git(
    git_dir: &Path,
    tree: Option<(&Path, &Path)>,
    args: &[&str],
    stdin: Option<Vec<u8>>,
) -> Result<Vec<u8>, MaterializeError> {
    let mut cmd = Command::new("git");
    // Inherited GIT_* variables (say, from a hook) would redirect git elsewhere.
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_CEILING_DIRECTORIES",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("-c")
        .arg(format!("safe.directory={}", git_dir.display()))
        .args(["-c", "core.autocrlf=false", "-c", "core.symlinks=true"])
        .arg("--git-dir")
        .arg(git_dir)
        // A partial clone would otherwise try to fetch what it lacks from the network.
        .env("GIT_NO_LAZY_FETCH", "1")
        .env("GIT_TERMINAL_PROMPT", "0");
    if let Some((work_tree, index)) = tree {
        cmd.arg("--work-tree").arg(work_tree).env("GIT_INDEX_FILE", index);
    }
    cmd.args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let io_err = |source| MaterializeError::Io { action: "running git in", path: git_dir.to_owned(), source };
    let mut child = cmd.spawn().map_err(io_err)?;
    // Feed stdin from a thread: git answers as it reads, and a full stdout pipe would otherwise
    // deadlock against a full stdin pipe.
    let feeder = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => Some(std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })),
        _ => None,
    };
    let output = child.wait_with_output().map_err(io_err)?;
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(MaterializeError::Git {
            git_dir: git_dir.to_owned(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Test-only: small git repositories and their bare mirrors, built with the `git` CLI so that
/// tests need no machine-specific mirror. Deterministic (fixed identity and dates) and blind to
/// the user's and the system's git configuration. The runner's tests use it too.
#[cfg(test)]
pub(crate) mod test_repo {
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// 2020-01-01T00:00:00Z; commit `n` of a [`SourceRepo`] is dated `n` seconds later.
    const EPOCH: u64 = 1_577_836_800;

    /// Runs `git ARGS` in `dir` and returns its trimmed stdout; panics when git fails.
    pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
        git_dated(dir, args, 0)
    }

    fn git_dated(dir: &Path, args: &[&str], tick: u64) -> String {
        let out = command(dir, tick).args(args).output().expect("running git");
        assert!(
            out.status.success(),
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `git` in `dir`, its identity and dates fixed, no system or global configuration.
    fn command(dir: &Path, tick: u64) -> Command {
        let date = format!("{} +0000", EPOCH + tick);
        let mut cmd = Command::new("git");
        // A test run from a git hook would otherwise act on the hook's repository.
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_NAMESPACE",
            "GIT_CEILING_DIRECTORIES",
            "GIT_CONFIG",
            "GIT_CONFIG_PARAMETERS",
            "GIT_CONFIG_COUNT",
        ] {
            cmd.env_remove(var);
        }
        cmd.current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Locus Test")
            .env("GIT_AUTHOR_EMAIL", "test@locus.invalid")
            .env("GIT_COMMITTER_NAME", "Locus Test")
            .env("GIT_COMMITTER_EMAIL", "test@locus.invalid")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_TERMINAL_PROMPT", "0")
            .args(["-c", "init.defaultBranch=main", "-c", "core.autocrlf=false"])
            .args(["-c", "commit.gpgsign=false", "-c", "gc.auto=0"]);
        cmd
    }

    /// A repository with a work tree, committed to file by file.
    pub(crate) struct SourceRepo {
        pub(crate) dir: PathBuf,
        commits: u64,
    }

    impl SourceRepo {
        pub(crate) fn init(dir: &Path) -> Self {
            fs::create_dir_all(dir).unwrap();
            git(dir, &["init", "-q"]);
            SourceRepo { dir: dir.to_owned(), commits: 0 }
        }

        /// Writes `files` (`(path, contents)`), deletes `removed`, commits it all and returns
        /// the commit id.
        pub(crate) fn commit(&mut self, files: &[(&str, &str)], removed: &[&str]) -> String {
            for (path, text) in files {
                let path = self.dir.join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
            for path in removed {
                fs::remove_file(self.dir.join(path)).unwrap();
            }
            self.commits += 1;
            git(&self.dir, &["add", "-A"]);
            let message = format!("commit {}", self.commits);
            git_dated(&self.dir, &["commit", "-q", "-m", &message], self.commits);
            git(&self.dir, &["rev-parse", "HEAD"])
        }

        /// The blob id of `path` at `commit`.
        pub(crate) fn blob(&self, commit: &str, path: &str) -> String {
            git(&self.dir, &["rev-parse", &format!("{commit}:{path}")])
        }

        /// Clones this repository bare into `mirrors/<rel>` (the real mirrors sit at
        /// `<owner>+<name>/repo`) and returns that git dir. Objects are copied, not hard-linked,
        /// and stay loose, so a test can delete one.
        pub(crate) fn mirror(&self, mirrors: &Path, rel: &str) -> PathBuf {
            let dest = mirrors.join(rel);
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            let (src, dst) = (self.dir.to_str().unwrap(), dest.to_str().unwrap());
            git(mirrors, &["clone", "-q", "--bare", "--no-hardlinks", src, dst]);
            dest
        }
    }

    /// Deletes object `oid` from the bare repository `git_dir`, like a mirror that dropped a
    /// large blob; panics unless it was there as a loose object and is gone afterwards.
    pub(crate) fn drop_object(git_dir: &Path, oid: &str) {
        let file = git_dir.join("objects").join(&oid[..2]).join(&oid[2..]);
        fs::remove_file(&file).unwrap_or_else(|e| panic!("removing loose object {}: {e}", file.display()));
        let readable = command(git_dir, 0).args(["cat-file", "-e", oid]).output().unwrap().status.success();
        assert!(!readable, "{oid} is still readable in {}", git_dir.display());
    }

    /// Every file under `dir` with its contents, to show that a directory was left untouched.
    pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.insert(path.strip_prefix(dir).unwrap().to_owned(), fs::read(&path).unwrap());
                }
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::test_repo::{drop_object, snapshot, SourceRepo};
    use super::*;

    const OLD_MODELS: &str = "class Response:\n    def json(self):\n        return old()\n";
    const NEW_MODELS: &str = "class Response:\n    def json(self):\n        return new()\n";

    /// A mirror of `o/r` laid out like the real ones (`mirrors/o+r/repo`), with two commits:
    /// `first` holds `pkg/models.py` (OLD_MODELS), `pkg/__init__.py` and `setup.py`; `second`
    /// rewrites the models (NEW_MODELS), adds `pkg/extra.py` and deletes `setup.py`.
    struct TwoCommits {
        _dir: tempfile::TempDir,
        mirrors: PathBuf,
        cache: PathBuf,
        git_dir: PathBuf,
        first: String,
        second: String,
    }

    fn two_commits() -> TwoCommits {
        let dir = tempfile::tempdir().unwrap();
        let mut src = SourceRepo::init(&dir.path().join("src"));
        let first = src.commit(
            &[("pkg/__init__.py", ""), ("pkg/models.py", OLD_MODELS), ("setup.py", "setup()\n")],
            &[],
        );
        let second = src.commit(
            &[("pkg/models.py", NEW_MODELS), ("pkg/extra.py", "def extra():\n    pass\n")],
            &["setup.py"],
        );
        let mirrors = dir.path().join("mirrors");
        let git_dir = src.mirror(&mirrors, "o+r/repo");
        TwoCommits { mirrors, cache: dir.path().join("cache"), git_dir, first, second, _dir: dir }
    }

    /// Names in `cache/trees/<slug>/` other than `keep`: temporary directories or index files
    /// an extraction left behind.
    fn leftovers(cache: &Path, slug: &str, keep: &[&str]) -> Vec<std::ffi::OsString> {
        fs::read_dir(cache.join("trees").join(slug))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !keep.iter().any(|k| n == k))
            .collect()
    }

    #[test]
    fn slug_refuses_path_escapes() {
        assert_eq!(repo_slug("psf/requests").unwrap(), "psf+requests");
        for bad in ["psf", "../x", "a/..", "a/b/c", "/b", "a/ b"] {
            assert!(repo_slug(bad).is_err(), "{bad}");
        }
        assert!(validate_commit("a0df2cbb").is_ok());
        assert!(validate_commit("../../etc").is_err());
        assert!(validate_commit("HEAD").is_err());
    }

    #[test]
    fn tmp_names_parse_back_to_pid() {
        assert_eq!(tmp_owner_pid(OsStr::new(".tmp-abc123-4242-7")), Some(4242));
        assert_eq!(tmp_owner_pid(OsStr::new(".tmp-abc123-4242-7.index")), Some(4242));
        assert_eq!(tmp_owner_pid(OsStr::new("abc123")), None);
    }

    #[test]
    fn missing_mirror_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let err = materialize(dir.path(), dir.path(), "django/django", "abcdef12").unwrap_err();
        assert!(matches!(err, MaterializeError::NoMirror { .. }), "{err}");
        assert_eq!(err.to_string(), "no mirror for django/django");
        assert!(!dir.path().join("trees").exists());
    }

    #[test]
    fn nested_git_dir_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let git_dir = dir.path().join("psf+requests/some/repo");
        fs::create_dir_all(git_dir.join("objects")).unwrap();
        fs::write(git_dir.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(find_git_dir(dir.path(), "psf/requests").unwrap(), git_dir);
    }

    /// Commit times come from the mirror (what orders a repository's trees by history); an
    /// unknown commit or repository gives none, and nothing fails.
    #[test]
    fn commit_times_are_read_from_the_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = SourceRepo::init(&dir.path().join("src"));
        let first = src.commit(&[("a.py", "x = 1\n")], &[]);
        let second = src.commit(&[("a.py", "x = 2\n")], &[]);
        let mirrors = dir.path().join("mirrors");
        src.mirror(&mirrors, "acme+tool/repo");
        let times = commit_times(&mirrors, "acme/tool", &[&second, &first]);
        assert_eq!(times.len(), 2);
        assert!(times[&first] < times[&second], "{times:?}");
        assert!(commit_times(&mirrors, "acme/tool", &["0123456789abcdef0123456789abcdef01234567"]).is_empty());
        assert!(commit_times(&mirrors, "acme/other", &[&first]).is_empty());
    }

    /// The tree of an older commit comes out as it was then (not as at HEAD), is extracted once
    /// and reused, leaves no temporary files, and writes nothing into the mirror.
    #[test]
    fn tree_at_an_older_commit_is_extracted_once_and_reused() {
        let fx = two_commits();
        let mirror_before = snapshot(&fx.git_dir);

        let tree = materialize(&fx.mirrors, &fx.cache, "o/r", &fx.first).unwrap();
        assert_eq!(tree, fx.cache.join("trees/o+r").join(&fx.first));
        assert_eq!(fs::read_to_string(tree.join(COMPLETE_MARKER)).unwrap(), format!("{}\n", fx.first));
        assert_eq!(fs::read_to_string(tree.join("pkg/models.py")).unwrap(), OLD_MODELS);
        assert!(tree.join("pkg/__init__.py").is_file());
        assert!(tree.join("setup.py").is_file());
        assert!(!tree.join("pkg/extra.py").exists(), "a file of a later commit leaked in");
        assert!(!tree.join(".git").exists());
        assert!(missing_blobs(&tree).is_empty());
        assert!(!tree.join(MISSING_BLOBS_FILE).exists());

        // The second call reuses the tree: a file planted in it survives.
        fs::write(tree.join("planted"), "x").unwrap();
        assert_eq!(materialize(&fx.mirrors, &fx.cache, "o/r", &fx.first).unwrap(), tree);
        assert!(tree.join("planted").exists());

        // The later commit gets a tree of its own, as it is at that commit.
        let later = materialize(&fx.mirrors, &fx.cache, "o/r", &fx.second).unwrap();
        assert_eq!(later, fx.cache.join("trees/o+r").join(&fx.second));
        assert_eq!(fs::read_to_string(later.join("pkg/models.py")).unwrap(), NEW_MODELS);
        assert!(later.join("pkg/extra.py").is_file());
        assert!(!later.join("setup.py").exists(), "a file deleted by the commit is back");
        assert_eq!(fs::read_to_string(tree.join("pkg/models.py")).unwrap(), OLD_MODELS);

        assert!(leftovers(&fx.cache, "o+r", &[&fx.first, &fx.second]).is_empty());
        assert!(snapshot(&fx.git_dir) == mirror_before, "the mirror was written to");
    }

    /// The bare git dir is found directly at `<owner>+<name>/`, at `repo` or `<name>.git` below
    /// it, and down to three levels deep; a deeper one is not looked for.
    #[test]
    fn mirror_layouts_down_to_three_levels_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = SourceRepo::init(&dir.path().join("src"));
        let commit = src.commit(&[("lib/core.py", "def core():\n    pass\n")], &[]);
        let mirrors = dir.path().join("mirrors");
        let cache = dir.path().join("cache");
        for (repo, rel) in [
            ("a/top", "a+top"),
            ("a/nested", "a+nested/repo"),
            ("a/dotgit", "a+dotgit/dotgit.git"),
            ("a/deep", "a+deep/x/y/repo"),
        ] {
            let git_dir = src.mirror(&mirrors, rel);
            assert_eq!(find_git_dir(&mirrors, repo).unwrap(), git_dir, "{rel}");
            let tree = materialize(&mirrors, &cache, repo, &commit).unwrap();
            assert!(tree.join("lib/core.py").is_file(), "{rel}");
        }
        src.mirror(&mirrors, "a+deeper/x/y/z/repo");
        let err = materialize(&mirrors, &cache, "a/deeper", &commit).unwrap_err();
        assert!(matches!(err, MaterializeError::NoMirror { .. }), "{err}");
    }

    /// A commit the mirror lacks, or an object id that is not a commit, is `CommitNotFound`,
    /// and nothing is left in the cache.
    #[test]
    fn unknown_commit_is_an_error_and_leaves_nothing() {
        let fx = two_commits();
        let blob = git_blob(&fx.git_dir, &fx.first, "pkg/models.py");
        for commit in ["0123456789abcdef", blob.as_str()] {
            let err = materialize(&fx.mirrors, &fx.cache, "o/r", commit).unwrap_err();
            assert!(matches!(err, MaterializeError::CommitNotFound { .. }), "{commit}: {err}");
            assert!(err.to_string().contains("refetch"), "{err}");
            assert!(!fx.cache.join("trees/o+r").join(commit).exists());
        }
        let trees = fx.cache.join("trees/o+r");
        assert!(!trees.exists() || fs::read_dir(&trees).unwrap().next().is_none());
    }

    fn git_blob(git_dir: &Path, commit: &str, path: &str) -> String {
        let out = run_git(git_dir, None, &["rev-parse", &format!("{commit}:{path}")], None).unwrap();
        String::from_utf8(out).unwrap().trim().to_owned()
    }

    /// Threads racing to extract the same commit all get the same, whole tree and leave no
    /// temporary directories behind.
    #[test]
    fn concurrent_extractions_agree() {
        let fx = two_commits();
        let trees: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..4).map(|_| s.spawn(|| materialize(&fx.mirrors, &fx.cache, "o/r", &fx.first))).collect();
            handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
        });
        assert!(trees.iter().all(|t| t == &trees[0]));
        assert_eq!(fs::read_to_string(trees[0].join("pkg/models.py")).unwrap(), OLD_MODELS);
        assert!(trees[0].join(COMPLETE_MARKER).is_file());
        assert!(leftovers(&fx.cache, "o+r", &[&fx.first]).is_empty());
    }

    /// A blob the mirror lacks (mirrors drop files over 4 MiB) is left out of the tree and
    /// listed in `missing_blobs.txt`, the rest of the tree is whole, an older commit whose
    /// version of that file is present is unaffected, and the mirror is not repaired or written.
    #[test]
    fn missing_blob_is_skipped_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = SourceRepo::init(&dir.path().join("src"));
        let big = "data/eop c04.1962-now";
        let first = src.commit(
            &[
                ("pkg/iers.py", "def load():\n    pass\n"),
                ("pkg/io/fits.py", "def read():\n    pass\n"),
                (big, "1962 0 0\n"),
            ],
            &[],
        );
        let second = src.commit(&[(big, "1962 0 0\n2024 1 1\n")], &[]);
        let mirrors = dir.path().join("mirrors");
        let cache = dir.path().join("cache");
        let git_dir = src.mirror(&mirrors, "o+r/repo");
        drop_object(&git_dir, &src.blob(&second, big));
        let mirror_before = snapshot(&git_dir);

        let tree = materialize(&mirrors, &cache, "o/r", &second).unwrap();
        assert_eq!(missing_blobs(&tree), [big]);
        assert_eq!(fs::read_to_string(tree.join(MISSING_BLOBS_FILE)).unwrap(), format!("{big}\n"));
        assert!(!tree.join(big).exists(), "{big} should be absent");
        assert!(tree.join("pkg/iers.py").is_file());
        assert!(tree.join("pkg/io/fits.py").is_file());
        assert!(tree.join(COMPLETE_MARKER).is_file());

        let old = materialize(&mirrors, &cache, "o/r", &first).unwrap();
        assert!(missing_blobs(&old).is_empty());
        assert!(!old.join(MISSING_BLOBS_FILE).exists());
        assert_eq!(fs::read_to_string(old.join(big)).unwrap(), "1962 0 0\n");

        assert!(snapshot(&git_dir) == mirror_before, "the mirror was written to");
    }
}
