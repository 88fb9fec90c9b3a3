//! Reading a bare mirror with the `git` CLI, a few processes per repository (never several per
//! commit): one `git log` stream for the first-parent history (messages, parents, the files each
//! commit touches), `git diff-tree --stdin` for the patches of the candidates, and one
//! `git cat-file --batch` for the blobs they need.
//!
//! Every command runs without the user's or the system's git configuration, with replace refs
//! off, and with each diff option that a configuration could change given explicitly, so the
//! same mirror gives the same bytes on any machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context, Result};

/// One bare repository.
#[derive(Clone, Debug)]
pub struct Git {
    git_dir: PathBuf,
}

/// Diff options that fix the output whatever the repository's own configuration says.
const DIFF_OPTS: &[&str] = &[
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--diff-algorithm=myers",
    "--indent-heuristic",
    "--inter-hunk-context=0",
    "-U3",
    "-O/dev/null",
    // Abbreviated ids grow with the number of objects in a mirror; full ones never change.
    "--full-index",
];

impl Git {
    pub fn new(git_dir: &Path) -> Git {
        Git { git_dir: git_dir.to_path_buf() }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_NAMESPACE",
            "GIT_CONFIG",
            "GIT_CONFIG_PARAMETERS",
            "GIT_CONFIG_COUNT",
        ] {
            cmd.env_remove(var);
        }
        // The mirror may belong to another user than the builder; it is read, never written.
        let safe = std::fs::canonicalize(&self.git_dir).unwrap_or_else(|_| self.git_dir.clone());
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .arg("-c")
            .arg(format!("safe.directory={}", safe.display()))
            .args([
                "-c",
                "core.quotePath=false",
                "-c",
                "log.showSignature=false",
                "-c",
                "i18n.logOutputEncoding=UTF-8",
            ])
            .arg(format!("--git-dir={}", self.git_dir.display()))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `git ARGS` and returns stdout; an error carries git's stderr.
    fn output(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.command().args(args).output().with_context(|| format!("running git {args:?}"))?;
        if !out.status.success() {
            bail!(
                "git {args:?} in {} failed: {}",
                self.git_dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }

    /// The commit `rev` names (HEAD when `None`), and its committer date (ISO 8601, as git
    /// records it).
    pub fn resolve(&self, rev: Option<&str>) -> Result<(String, String)> {
        let rev = rev.unwrap_or("HEAD");
        if rev.starts_with('-') {
            bail!("`{rev}` is not a commit");
        }
        let out = self.output(&["log", "-1", "--format=%H %cI", rev, "--"])?;
        let s = String::from_utf8_lossy(&out);
        let (sha, date) = s.trim().split_once(' ').context("git log -1 printed no commit")?;
        Ok((sha.to_string(), date.to_string()))
    }

    /// The first-parent history from `tip`, newest first, at most `max` commits (0: all).
    ///
    /// Renames are detected; when the mirror lacks a blob that detection needs (a partial
    /// clone), the history is read again without it (a rename is then a deletion and an
    /// addition).
    pub fn first_parent_log(&self, tip: &str, max: usize) -> Result<Vec<LogCommit>> {
        self.log_with(tip, max, "-M").or_else(|_| self.log_with(tip, max, "--no-renames"))
    }

    fn log_with(&self, tip: &str, max: usize, renames: &str) -> Result<Vec<LogCommit>> {
        let mut args = vec![
            "log".to_string(),
            "--first-parent".into(),
            "--diff-merges=first-parent".into(),
            "--raw".into(),
            "--no-abbrev".into(),
            renames.into(),
            "-z".into(),
            "--no-color".into(),
            "--format=%x01%H%x00%P%x00%an%x00%ae%x00%B%x00".into(),
        ];
        if max > 0 {
            args.push(format!("--max-count={max}"));
        }
        args.push(tip.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(parse_log(&self.output(&args)?))
    }

    /// The patches of `commits` (each against its first parent), in the order given, through one
    /// `git diff-tree --stdin`. Each patch is handed to `each` as soon as it is read.
    /// Without `renames`, a renamed file is a deletion and an addition (rename detection reads
    /// the blobs of every added and deleted file, which a partial mirror may lack).
    pub fn patches(
        &self,
        commits: &[(String, String)],
        renames: bool,
        mut each: impl FnMut(usize, &[u8]),
    ) -> Result<()> {
        if commits.is_empty() {
            return Ok(());
        }
        let mut child = self
            .command()
            .args(["diff-tree", "--stdin", "-r", "-p"])
            .args(DIFF_OPTS)
            .arg(if renames { "-M" } else { "--no-renames" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting git diff-tree")?;
        let mut stdin = child.stdin.take().context("diff-tree stdin")?;
        let lines: String = commits.iter().map(|(c, p)| format!("{c} {p}\n")).collect();
        // A writer thread: diff-tree answers while it reads, so writing everything first could
        // fill both pipes.
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            stdin.write_all(lines.as_bytes())?;
            drop(stdin);
            Ok(())
        });
        let mut stderr = child.stderr.take().context("diff-tree stderr")?;
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            s
        });
        let mut out = BufReader::with_capacity(1 << 20, child.stdout.take().context("diff-tree stdout")?);
        let mut next = 0usize;
        let mut current: Option<usize> = None;
        let mut buf: Vec<u8> = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = out.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            // A commit's output starts with its id alone on a line (no diff line looks so); a
            // commit with no difference prints nothing at all, so ids may be skipped.
            if is_object_id(body) {
                if let Some(k) = (next..commits.len()).find(|&k| body == commits[k].0.as_bytes()) {
                    if let Some(c) = current {
                        each(c, &buf);
                    }
                    buf.clear();
                    current = Some(k);
                    next = k + 1;
                    continue;
                }
            }
            buf.extend_from_slice(&line);
        }
        if let Some(c) = current {
            each(c, &buf);
        }
        let status = child.wait()?;
        let _ = writer.join();
        let err = err_reader.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "git diff-tree in {} failed: {}",
                self.git_dir.display(),
                String::from_utf8_lossy(&err).trim()
            );
        }
        Ok(())
    }

    /// A `git cat-file --batch` process for reading blobs one by one.
    pub fn blobs(&self) -> Result<BlobReader> {
        let mut child = self
            .command()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting git cat-file")?;
        let stdin = child.stdin.take().context("cat-file stdin")?;
        let stdout = BufReader::with_capacity(1 << 20, child.stdout.take().context("cat-file stdout")?);
        Ok(BlobReader { child, stdin, stdout })
    }
}

/// A SHA-1 or SHA-256 object id in hex.
fn is_object_id(s: &[u8]) -> bool {
    (s.len() == 40 || s.len() == 64) && s.iter().all(|b| b.is_ascii_hexdigit())
}

/// A running `git cat-file --batch`: one request, one answer.
pub struct BlobReader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// What reading a blob gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Blob {
    Found(Vec<u8>),
    /// Not in the mirror (a partial mirror can lack large blobs).
    Missing,
    /// Larger than the limit; not read.
    TooLarge,
}

impl BlobReader {
    /// Reads the blob `id`; blobs over `max_bytes` are skipped (read past, not kept).
    pub fn read(&mut self, id: &str, max_bytes: usize) -> Result<Blob> {
        self.stdin.write_all(id.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
        let mut header = Vec::new();
        self.stdout.read_until(b'\n', &mut header)?;
        let header = String::from_utf8_lossy(&header);
        let fields: Vec<&str> = header.split_whitespace().collect();
        match fields.as_slice() {
            [_, "missing"] | [_, "ambiguous"] => Ok(Blob::Missing),
            [_, kind, size] => {
                let size: usize = size.parse().context("cat-file size")?;
                let mut data = vec![0u8; size];
                self.stdout.read_exact(&mut data)?;
                let mut nl = [0u8; 1];
                self.stdout.read_exact(&mut nl)?;
                if *kind != "blob" {
                    return Ok(Blob::Missing);
                }
                if size > max_bytes {
                    return Ok(Blob::TooLarge);
                }
                Ok(Blob::Found(data))
            }
            _ => bail!("git cat-file answered {header:?}"),
        }
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One commit of the first-parent history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogCommit {
    pub sha: String,
    pub parents: Vec<String>,
    pub author: String,
    pub email: String,
    pub message: String,
    /// The files it touches against its first parent.
    pub changes: Vec<RawChange>,
}

/// One `--raw` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawChange {
    pub old_mode: String,
    pub new_mode: String,
    pub old_blob: String,
    pub new_blob: String,
    /// `A`, `D`, `M`, `R`, `T`, … (the score of `R100` dropped).
    pub status: char,
    pub old_path: Option<String>,
    pub new_path: Option<String>,
}

impl RawChange {
    /// Whether the old (`old = true`) or new side is a regular file.
    pub fn regular(&self, old: bool) -> bool {
        let m = if old { &self.old_mode } else { &self.new_mode };
        m == "100644" || m == "100755"
    }
}

/// Parses `git log -z --raw` with the format `%x01%H%x00%P%x00%an%x00%ae%x00%B%x00`.
pub fn parse_log(out: &[u8]) -> Vec<LogCommit> {
    let mut commits = Vec::new();
    let mut i = 0;
    let field = |i: &mut usize| -> String {
        let start = *i;
        while *i < out.len() && out[*i] != 0 {
            *i += 1;
        }
        let s = String::from_utf8_lossy(&out[start..*i]).into_owned();
        *i = (*i + 1).min(out.len());
        s
    };
    while i < out.len() {
        if out[i] != 1 {
            i += 1;
            continue;
        }
        i += 1;
        let sha = field(&mut i);
        let parents = field(&mut i).split_whitespace().map(str::to_string).collect();
        let author = field(&mut i);
        let email = field(&mut i);
        let message = field(&mut i);
        let mut changes = Vec::new();
        loop {
            while i < out.len() && (out[i] == 0 || out[i] == b'\n') {
                i += 1;
            }
            if i >= out.len() || out[i] != b':' {
                break;
            }
            let meta = field(&mut i);
            let parts: Vec<&str> = meta[1..].split(' ').collect();
            if parts.len() < 5 {
                break;
            }
            let status = parts[4].chars().next().unwrap_or('?');
            let first = field(&mut i);
            let second = if matches!(status, 'R' | 'C') { Some(field(&mut i)) } else { None };
            let (old_path, new_path) = match (status, second) {
                ('A', _) => (None, Some(first)),
                ('D', _) => (Some(first), None),
                (_, Some(s)) => (Some(first), Some(s)),
                (_, None) => (Some(first.clone()), Some(first)),
            };
            changes.push(RawChange {
                old_mode: parts[0].to_string(),
                new_mode: parts[1].to_string(),
                old_blob: parts[2].to_string(),
                new_blob: parts[3].to_string(),
                status,
                old_path,
                new_path,
            });
        }
        commits.push(LogCommit { sha, parents, author, email, message, changes });
    }
    commits
}

/// Finds the git directory of `<mirrors>/<owner>+<name>`: the directory itself or one up to
/// three levels below it that holds `HEAD` and `objects/` (`repo/`, `repo/.git/`), shallowest
/// first, then by name.
pub fn find_git_dir(root: &Path) -> Option<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..=3 {
        let mut next = Vec::new();
        for dir in &level {
            if dir.join("HEAD").is_file() && dir.join("objects").is_dir() {
                return Some(dir.clone());
            }
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut subs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            subs.sort();
            next.extend(subs);
        }
        level = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_with_renames_merges_and_empty_commits() {
        let raw = b"\x01aaa\x00p1 p2\x00Ann\x00ann@x\x00Merge pull request #1 from a/b\n\nTitle\n\x00\x00\n:100644 100644 1111 2222 M\x00src/a.py\x00:100644 100644 3333 4444 R087\x00old.rs\x00new.rs\x00\x01bbb\x00\x00Bob\x00bob@x\x00root\n\x00\x00";
        let log = parse_log(raw);
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].parents, ["p1", "p2"]);
        assert_eq!(log[0].message, "Merge pull request #1 from a/b\n\nTitle\n");
        assert_eq!(log[0].changes.len(), 2);
        assert_eq!(log[0].changes[1].status, 'R');
        assert_eq!(log[0].changes[1].old_path.as_deref(), Some("old.rs"));
        assert_eq!(log[0].changes[1].new_path.as_deref(), Some("new.rs"));
        assert!(log[1].parents.is_empty());
        assert!(log[1].changes.is_empty());
        assert!(parse_log(b"\x01").len() == 1);
        assert!(parse_log(b"\x01a\x00b\x00c\x00d\x00e\x00:bad\x00").len() == 1);
    }
}
