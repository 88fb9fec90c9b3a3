//! Runs an engine, handed in as a closure, over a benchmark and writes the report files.
//!
//! The run is resumable: each finished row is appended (and flushed) to
//! `out/per_instance.jsonl` as it completes, and a later run with the same engine reuses those
//! rows instead of recomputing them. Skipped and failed rows are retried, since a mirror may have
//! appeared or a bug been fixed since. At the end the file is rewritten sorted by instance id,
//! with the gold and scores recomputed from the current gold file, next to `summary.json`; it
//! then holds exactly the rows behind the summary (rows of other engines or of instances outside
//! the current selection are dropped, so give differently filtered runs different `out` dirs).
//! Neither the cache nor the output may lie inside the project's work tree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context as _;
use rayon::prelude::*;

use crate::data::{self, Instance, Issue};
use crate::materialize::{self, MaterializeError};
use crate::report::{self, InstanceRow, Summary};

/// Name of the per-instance rows file inside the output directory.
pub const PER_INSTANCE_FILE: &str = "per_instance.jsonl";
/// Name of the aggregate file inside the output directory.
pub const SUMMARY_FILE: &str = "summary.json";

/// What an engine answers for one instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prediction {
    /// Best first, paths relative to the tree root.
    pub ranked_files: Vec<String>,
    /// Best first, qualified like the gold: `path/a.py:Class.method`, `path/a.rs:Type::method`.
    pub ranked_functions: Vec<String>,
    /// The engine's score of each ranked function, relative to the best (1.0), when it has
    /// scores: what a predicted set's cut-off is calibrated on.
    pub ranked_function_scores: Vec<f32>,
    /// The committed answer as a set, scored by set F1.
    pub predicted_files: Vec<String>,
    pub predicted_functions: Vec<String>,
    /// Query time; 0 lets the runner use the measured wall time of the call.
    pub ms: f64,
    /// Time spent indexing the tree.
    pub index_ms: f64,
    pub turns: u32,
    pub calls: u32,
    /// Mean gain `g_i` of the tool calls.
    pub efficiency: f64,
    /// Tool calls with `g_i = 0`.
    pub redundant_calls: u32,
    pub peak_rss_kb: Option<u64>,
    /// Vectors the search made for its candidates on demand (`None`: it made none that way).
    pub vectors_on_demand: Option<usize>,
    /// The pools the engine's rankers saw (empty when it has none): candidate recall.
    pub candidate_files: Vec<String>,
    pub candidate_functions: Vec<String>,
}

/// The engine under evaluation: given the materialized tree root and the issue (no patch, no
/// gold), rank files and functions.
pub type Locate<'a> = dyn Fn(&Path, &Issue<'_>) -> anyhow::Result<Prediction> + Sync + 'a;

/// What to run and where to put it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Instances jsonl (`swebench_lite.jsonl`, ...).
    pub instances: PathBuf,
    /// Gold jsonl matching `instances`.
    pub gold: PathBuf,
    /// Directory of bare mirrors, `<owner>+<name>/...`.
    pub mirrors: PathBuf,
    /// Cache directory: trees go to `cache/trees/`, default output to `cache/runs/`.
    pub cache: PathBuf,
    /// Keep only these repositories (`owner/name`); empty keeps all.
    pub repos: Vec<String>,
    /// Keep only these instance ids; empty keeps all.
    pub ids: Vec<String>,
    /// Keep only the first `limit` instances (in file order) after filtering.
    pub limit: Option<usize>,
    /// Engine name, recorded in every row and used to decide which rows a resumed run reuses.
    pub engine: String,
    /// Output directory; default `cache/runs/<engine>-<dataset>`.
    pub out: Option<PathBuf>,
    /// Instances evaluated in parallel; 0 and 1 both mean one at a time on the calling thread.
    pub jobs: usize,
    /// The project root (the directory holding the workspace's `Cargo.toml`): the run refuses a
    /// cache or output directory under it.
    pub forbid_under: Option<PathBuf>,
    /// Print a progress line per instance to stderr.
    pub progress: bool,
}

impl RunOptions {
    /// Options with no filters, one job, the default output directory and progress on.
    pub fn new(
        instances: impl Into<PathBuf>,
        gold: impl Into<PathBuf>,
        mirrors: impl Into<PathBuf>,
        cache: impl Into<PathBuf>,
        engine: impl Into<String>,
    ) -> Self {
        RunOptions {
            instances: instances.into(),
            gold: gold.into(),
            mirrors: mirrors.into(),
            cache: cache.into(),
            repos: Vec::new(),
            ids: Vec::new(),
            limit: None,
            engine: engine.into(),
            out: None,
            jobs: 1,
            forbid_under: None,
            progress: true,
        }
    }

    /// The output directory this run writes to.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            self.cache.join("runs").join(format!(
                "{}-{}",
                path_safe(&self.engine),
                data::dataset_name(&self.instances)
            ))
        })
    }

    /// The subset label for the summary: the dataset name plus the filters applied.
    pub fn subset(&self) -> String {
        let mut filters = Vec::new();
        if !self.repos.is_empty() {
            filters.push(format!("repos={}", self.repos.join(",")));
        }
        if !self.ids.is_empty() {
            filters.push(format!("ids={}", self.ids.len()));
        }
        if let Some(limit) = self.limit {
            filters.push(format!("limit={limit}"));
        }
        let name = data::dataset_name(&self.instances);
        if filters.is_empty() {
            name
        } else {
            format!("{name}[{}]", filters.join(";"))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "{what} {path} lies inside the project tree {project}; \
         pass a cache/output directory outside it"
    )]
    InsideProject { what: &'static str, path: PathBuf, project: PathBuf },
}

/// Runs `locate` over the selected instances, writes `per_instance.jsonl` and `summary.json`
/// into the output directory, prints the markdown table and returns the summary.
pub fn run(opts: &RunOptions, locate: &Locate<'_>) -> anyhow::Result<Summary> {
    let out = opts.out_dir();
    if let Some(project) = &opts.forbid_under {
        refuse_inside(project, "cache directory", &opts.cache)?;
        refuse_inside(project, "output directory", &out)?;
    }

    let instances = data::load_instances(&opts.instances)?;
    let (gold, gold_bad) = data::load_gold_map(&opts.gold)?;
    for (path, bad) in [(&opts.instances, &instances.bad_lines), (&opts.gold, &gold_bad)] {
        for b in bad {
            eprintln!("{}:{}: skipped bad line: {}", path.display(), b.line, b.error);
        }
    }
    let bad_input_lines = instances.bad_lines.len() + gold_bad.len();
    let selected = select(instances.items, opts);

    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let rows_path = out.join(PER_INSTANCE_FILE);
    let mut done = reusable_rows(&rows_path, &opts.engine)?;
    let selected_ids: HashSet<&str> = selected.iter().map(|i| i.instance_id.as_str()).collect();
    done.retain(|id, _| selected_ids.contains(id.as_str()));
    // Rewrite the file with only the reusable rows, so a line cut short by a kill cannot swallow
    // the next appended row.
    write_rows(&rows_path, done.values())?;

    let mut pending: Vec<&Instance> =
        selected.iter().filter(|i| !done.contains_key(&i.instance_id)).collect();
    // Instances sharing a tree run back to back, and a repository's trees in the order of its
    // history: consecutive trees then share most files, which an engine may reuse (`locus
    // eval` parses only the files that differ from the last tree).
    let mut times: HashMap<&str, i64> = HashMap::new();
    let mut by_repo: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for i in &pending {
        by_repo.entry(&i.repo).or_default().push(&i.base_commit);
    }
    for (repo, commits) in by_repo {
        for (hash, t) in materialize::commit_times(&opts.mirrors, repo, &commits) {
            if let Some(c) = commits.iter().find(|c| c.eq_ignore_ascii_case(&hash)) {
                times.insert(c, t);
            }
        }
    }
    pending.sort_by(|a, b| {
        let t = |i: &Instance| times.get(i.base_commit.as_str()).copied().unwrap_or(i64::MAX);
        (&a.repo, t(a), &a.base_commit, &a.instance_id).cmp(&(&b.repo, t(b), &b.base_commit, &b.instance_id))
    });
    if opts.progress {
        eprintln!(
            "{}: {} instances, {} reused, {} to run -> {}",
            opts.engine,
            selected.len(),
            done.len(),
            pending.len(),
            out.display()
        );
    }

    let sink = Mutex::new(RowSink {
        file: BufWriter::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&rows_path)
                .with_context(|| format!("opening {}", rows_path.display()))?,
        ),
        rows: Vec::new(),
        finished: 0,
        start: Instant::now(),
    });
    let total = pending.len();
    let work = |instance: &Instance| -> anyhow::Result<()> {
        let mut row = run_one(opts, locate, instance);
        row.score(gold.get(&instance.instance_id));
        let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
        sink.push(row, opts.progress.then_some(total))
    };
    if opts.jobs <= 1 {
        pending.iter().try_for_each(|i| work(i))?;
    } else {
        rayon::ThreadPoolBuilder::new()
            .num_threads(opts.jobs)
            .build()
            .context("starting the worker pool")?
            .install(|| pending.par_iter().try_for_each(|i| work(i)))?;
    }
    let new_rows = sink.into_inner().unwrap_or_else(|e| e.into_inner()).rows;

    let mut rows: Vec<InstanceRow> = done.into_values().chain(new_rows).collect();
    for row in &mut rows {
        row.score(gold.get(&row.instance_id));
    }
    rows.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    write_rows(&rows_path, rows.iter())?;

    let mut summary = report::summarize(&opts.engine, &opts.subset(), &rows);
    summary.bad_input_lines = bad_input_lines;
    let summary_path = out.join(SUMMARY_FILE);
    let json = serde_json::to_string_pretty(&summary)? + "\n";
    write_atomic(&summary_path, json.as_bytes())?;
    print!("{}", report::markdown_table(std::slice::from_ref(&summary)));
    Ok(summary)
}

/// Filters by repository and id, then applies the limit, keeping file order.
fn select(instances: Vec<Instance>, opts: &RunOptions) -> Vec<Instance> {
    let mut seen = HashSet::new();
    instances
        .into_iter()
        .filter(|i| opts.repos.is_empty() || opts.repos.contains(&i.repo))
        .filter(|i| opts.ids.is_empty() || opts.ids.contains(&i.instance_id))
        // A duplicated id would make two rows fight over one key.
        .filter(|i| seen.insert(i.instance_id.clone()))
        .take(opts.limit.unwrap_or(usize::MAX))
        .collect()
}

/// Materializes the tree and calls the engine; never fails, the outcome is in the row.
fn run_one(opts: &RunOptions, locate: &Locate<'_>, instance: &Instance) -> InstanceRow {
    let mut row = InstanceRow {
        engine: opts.engine.clone(),
        instance_id: instance.instance_id.clone(),
        repo: instance.repo.clone(),
        base_commit: instance.base_commit.clone(),
        ..InstanceRow::default()
    };
    let tree =
        match materialize::materialize(&opts.mirrors, &opts.cache, &instance.repo, &instance.base_commit) {
            Ok(tree) => tree,
            Err(e @ MaterializeError::NoMirror { .. }) => {
                row.skipped = Some(e.to_string());
                return row;
            }
            Err(e) => {
                row.skipped = Some(format!("could not materialize the tree: {e}"));
                return row;
            }
        };
    row.missing_blobs = materialize::missing_blobs(&tree).len();

    let start = Instant::now();
    // A panicking engine costs one instance, not the whole run.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| locate(&tree, &instance.issue())));
    row.wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(Ok(p)) => {
            row.ranked_files = p.ranked_files;
            row.ranked_functions = p.ranked_functions;
            row.ranked_function_scores = p.ranked_function_scores;
            row.predicted_files = p.predicted_files;
            row.predicted_functions = p.predicted_functions;
            row.ms = if p.ms > 0.0 { p.ms } else { row.wall_ms };
            row.index_ms = p.index_ms;
            row.turns = p.turns;
            row.calls = p.calls;
            row.efficiency = p.efficiency;
            row.redundant_calls = p.redundant_calls;
            row.peak_rss_kb = p.peak_rss_kb;
            row.vectors_on_demand = p.vectors_on_demand;
            row.candidate_files = p.candidate_files;
            row.candidate_functions = p.candidate_functions;
        }
        Ok(Err(e)) => {
            row.error = Some(format!("{e:#}"));
            row.ms = row.wall_ms;
        }
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            row.error = Some(format!("engine panicked: {msg}"));
            row.ms = row.wall_ms;
        }
    }
    row
}

/// Appends finished rows to `per_instance.jsonl`, one flushed line each.
struct RowSink {
    file: BufWriter<File>,
    rows: Vec<InstanceRow>,
    finished: usize,
    start: Instant,
}

impl RowSink {
    fn push(&mut self, row: InstanceRow, progress_total: Option<usize>) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.file, &row)?;
        self.file.write_all(b"\n")?;
        self.file.flush().context("appending to per_instance.jsonl")?;
        self.finished += 1;
        if let Some(total) = progress_total {
            let head = progress_head(self.finished, total, self.start.elapsed().as_secs_f64());
            eprintln!("{head} {}", progress_line(&row));
        }
        self.rows.push(row);
        Ok(())
    }
}

/// `[12/63 19% 2.1/min, 24 min left]`: one plain line per finished instance, readable on a
/// terminal and in a log alike (no carriage returns).
fn progress_head(done: usize, total: usize, secs: f64) -> String {
    let pct = if total == 0 { 100.0 } else { 100.0 * done as f64 / total as f64 };
    let per_min = if secs > 0.0 { done as f64 * 60.0 / secs } else { 0.0 };
    let left = total.saturating_sub(done);
    let eta = if left == 0 {
        format!("{:.0} s in all", secs)
    } else if done == 0 || secs <= 0.0 {
        "time left unknown".to_owned()
    } else {
        let s = secs / done as f64 * left as f64;
        if s >= 90.0 {
            format!("{:.0} min left", s / 60.0)
        } else {
            format!("{s:.0} s left")
        }
    };
    format!("[{done}/{total} {pct:.0}% {per_min:.1}/min, {eta}]")
}

fn progress_line(row: &InstanceRow) -> String {
    if let Some(reason) = &row.skipped {
        return format!("{} skipped: {reason}", row.instance_id);
    }
    let metric = |k: &str| row.metrics.get(k).map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let mut line = format!(
        "{} file_acc@5={} function_acc@10={} {:.0} ms",
        row.instance_id,
        metric("file_acc@5"),
        metric("function_acc@10"),
        row.ms
    );
    if let Some(e) = &row.error {
        line.push_str(&format!(" error: {e}"));
    }
    line
}

/// Rows of an earlier run of the same engine that finished cleanly, by instance id. Lines that
/// do not parse (a run killed mid-write) are dropped.
fn reusable_rows(path: &Path, engine: &str) -> anyhow::Result<BTreeMap<String, InstanceRow>> {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let loaded = data::parse_jsonl::<InstanceRow>(&text);
    Ok(loaded
        .items
        .into_iter()
        .filter(|r| r.engine == engine && r.skipped.is_none() && r.error.is_none())
        .map(|r| (r.instance_id.clone(), r))
        .collect())
}

fn write_rows<'a>(path: &Path, rows: impl Iterator<Item = &'a InstanceRow>) -> anyhow::Result<()> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&serde_json::to_string(row)?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Writes via a temporary sibling and a rename, so readers never see half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))
}

/// Fails when `path` (existing or not) resolves to somewhere under `project`.
fn refuse_inside(project: &Path, what: &'static str, path: &Path) -> Result<(), anyhow::Error> {
    let project = resolve(project)?;
    let resolved = resolve(path)?;
    if resolved.starts_with(&project) {
        return Err(RunError::InsideProject { what, path: resolved, project }.into());
    }
    Ok(())
}

/// The canonical form of a path that may not exist yet: its deepest existing ancestor is
/// canonicalized (resolving symlinks) and the rest appended, `..` and `.` applied lexically.
pub fn resolve(path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().context("reading the current directory")?.join(path)
    };
    let mut lexical = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved =
        existing.canonicalize().with_context(|| format!("resolving {}", existing.display()))?;
    resolved.extend(rest.iter().rev());
    Ok(resolved)
}

/// An engine name usable as a directory name.
fn path_safe(name: &str) -> String {
    if name.trim_matches('.').is_empty() {
        return "_".repeat(name.len().max(1));
    }
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::materialize::test_repo::{drop_object, SourceRepo};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_progress_head_has_count_percent_rate_and_time_left() {
        assert_eq!(progress_head(12, 63, 360.0), "[12/63 19% 2.0/min, 26 min left]");
        assert_eq!(progress_head(9, 10, 45.0), "[9/10 90% 12.0/min, 5 s left]");
        assert_eq!(progress_head(10, 10, 50.0), "[10/10 100% 12.0/min, 50 s in all]");
        assert_eq!(progress_head(0, 0, 0.0), "[0/0 100% 0.0/min, 0 s in all]");
    }

    /// A bare mirror of `o/r` with two files, nested like the real ones (`o+r/repo`), plus
    /// instance and gold files: two instances on the mirror, one without, one bad line.
    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        commit: String,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_owned();
            let mut src = SourceRepo::init(&root.join("src"));
            let commit = src.commit(
                &[("pkg/alpha.py", "def parse():\n    pass\n"), ("pkg/beta.py", "def render():\n    pass\n")],
                &[],
            );
            src.mirror(&root.join("mirrors"), "o+r/repo");

            let instance = |id: &str, repo: &str, text: &str| {
                serde_json::json!({
                    "instance_id": id, "repo": repo, "base_commit": commit,
                    "problem_statement": text, "patch": "",
                })
                .to_string()
            };
            let instances = [
                instance("o__r-2", "o/r", "render is broken"),
                instance("x__y-1", "x/y", "no mirror here"),
                "{not json".to_owned(),
                instance("o__r-1", "o/r", "parse fails"),
                instance("o__r-3", "o/r", "FAIL"),
            ];
            fs::write(root.join("toy.jsonl"), instances.join("\n") + "\n").unwrap();
            let gold = |id: &str, file: &str, func: &str| {
                serde_json::json!({
                    "instance_id": id, "files": [file], "functions": [func],
                    "added_functions": [], "all_files": [file], "function_gold_reliable": true,
                })
                .to_string()
            };
            let golds = [
                gold("o__r-1", "pkg/alpha.py", "pkg/alpha.py:parse"),
                gold("o__r-2", "pkg/beta.py", "pkg/beta.py:render"),
                gold("o__r-3", "pkg/beta.py", "pkg/beta.py:render"),
                gold("x__y-1", "a.py", "a.py:f"),
            ];
            fs::write(root.join("toy.gold.jsonl"), golds.join("\n") + "\n").unwrap();
            Fixture { _dir: dir, root, commit }
        }

        fn options(&self) -> RunOptions {
            let mut opts = RunOptions::new(
                self.root.join("toy.jsonl"),
                self.root.join("toy.gold.jsonl"),
                self.root.join("mirrors"),
                self.root.join("cache"),
                "toy",
            );
            opts.progress = false;
            opts
        }
    }

    /// A toy engine: ranks the tree's files by whether their functions' names occur in the
    /// issue; fails on issues saying FAIL.
    fn toy_engine(
        calls: &AtomicUsize,
    ) -> impl Fn(&Path, &Issue<'_>) -> anyhow::Result<Prediction> + Sync + '_ {
        move |tree, issue: &Issue<'_>| {
            calls.fetch_add(1, Ordering::SeqCst);
            anyhow::ensure!(!issue.text.contains("FAIL"), "asked to fail");
            let mut scored = Vec::new();
            for name in ["alpha", "beta"] {
                let path = format!("pkg/{name}.py");
                let text = fs::read_to_string(tree.join(&path))?;
                let func = text.strip_prefix("def ").and_then(|t| t.split('(').next()).unwrap().to_owned();
                let hit = issue.text.contains(&func);
                scored.push((!hit, path.clone(), format!("{path}:{func}")));
            }
            scored.sort();
            Ok(Prediction {
                ranked_files: scored.iter().map(|s| s.1.clone()).collect(),
                ranked_functions: scored.iter().map(|s| s.2.clone()).collect(),
                predicted_files: vec![scored[0].1.clone()],
                predicted_functions: vec![scored[0].2.clone()],
                calls: 2,
                redundant_calls: 1,
                efficiency: 0.5,
                ..Prediction::default()
            })
        }
    }

    fn read_rows(path: &Path) -> Vec<InstanceRow> {
        data::parse_jsonl(&fs::read_to_string(path).unwrap()).items
    }

    #[test]
    fn end_to_end_on_a_toy_mirror() {
        let fx = Fixture::new();
        let opts = fx.options();
        let calls = AtomicUsize::new(0);
        let summary = run(&opts, &toy_engine(&calls)).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        assert_eq!((summary.n, summary.errors, summary.bad_input_lines), (3, 1, 1));
        assert_eq!(summary.skipped.count, 1);
        assert_eq!(summary.skipped.reasons["no mirror for x/y"], 1);
        assert_eq!(summary.subset, "toy");
        let m = &summary.metrics;
        assert_eq!((m.n_file, m.n_function, m.n_function_with_added), (3, 3, 3));
        // Two instances ranked right, the failed one scores 0.
        assert_eq!(m.file_acc_1, Some(2.0 / 3.0));
        assert_eq!(m.function_acc_5, Some(2.0 / 3.0));
        assert_eq!(m.redundant_call_rate, Some(0.5));

        let out = fx.root.join("cache/runs/toy-toy");
        let rows = read_rows(&out.join(PER_INSTANCE_FILE));
        let ids: Vec<_> = rows.iter().map(|r| r.instance_id.as_str()).collect();
        assert_eq!(ids, ["o__r-1", "o__r-2", "o__r-3", "x__y-1"]);
        assert_eq!(rows[0].ranked_files, ["pkg/alpha.py", "pkg/beta.py"]);
        assert_eq!(rows[0].gold_functions, ["pkg/alpha.py:parse"]);
        assert_eq!(rows[0].metrics["function_mrr"], 1.0);
        assert!(rows[0].ms > 0.0, "wall time stands in for an unreported ms");
        assert_eq!(rows[2].error.as_deref(), Some("asked to fail"));
        assert_eq!(rows[3].skipped.as_deref(), Some("no mirror for x/y"));
        assert!(rows[3].metrics.is_empty());
        let on_disk: Summary =
            serde_json::from_str(&fs::read_to_string(out.join(SUMMARY_FILE)).unwrap()).unwrap();
        assert_eq!(on_disk, summary);
        assert!(fx.root.join("cache/trees/o+r").join(&fx.commit).join("pkg/alpha.py").is_file());
    }

    #[test]
    fn resumes_after_a_kill_reusing_clean_rows() {
        let fx = Fixture::new();
        let opts = fx.options();
        let calls = AtomicUsize::new(0);
        let first = run(&opts, &toy_engine(&calls)).unwrap();

        // A kill mid-write leaves a torn last line.
        let rows_path = opts.out_dir().join(PER_INSTANCE_FILE);
        let mut f = OpenOptions::new().append(true).open(&rows_path).unwrap();
        f.write_all(br#"{"engine":"toy","instance_id":"o__r-"#).unwrap();
        drop(f);

        let again = AtomicUsize::new(0);
        let second = run(&opts, &toy_engine(&again)).unwrap();
        // Only the failed instance is retried; the skipped one never reaches the engine.
        assert_eq!(again.load(Ordering::SeqCst), 1);
        // Equal but for the retried instance's timing.
        let untimed = |s: Summary| Summary {
            metrics: report::Metrics {
                p50_ms: None,
                p95_ms: None,
                mean_ms: None,
                mean_wall_ms: None,
                ..s.metrics
            },
            ..s
        };
        assert_eq!(untimed(second), untimed(first));
        assert_eq!(read_rows(&rows_path).len(), 4);

        // Another engine in the same directory reuses nothing.
        let mut other = opts.clone();
        other.engine = "other".into();
        other.out = Some(opts.out_dir());
        let theirs = AtomicUsize::new(0);
        run(&other, &toy_engine(&theirs)).unwrap();
        assert_eq!(theirs.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn parallel_run_matches_sequential() {
        let fx = Fixture::new();
        let strip = |rows: Vec<InstanceRow>| -> Vec<InstanceRow> {
            rows.into_iter().map(|r| InstanceRow { ms: 0.0, wall_ms: 0.0, ..r }).collect()
        };
        let mut seq = fx.options();
        seq.out = Some(fx.root.join("seq"));
        let mut par = fx.options();
        par.out = Some(fx.root.join("par"));
        par.jobs = 2;
        let calls = AtomicUsize::new(0);
        run(&seq, &toy_engine(&calls)).unwrap();
        run(&par, &toy_engine(&calls)).unwrap();
        assert_eq!(
            strip(read_rows(&fx.root.join("seq").join(PER_INSTANCE_FILE))),
            strip(read_rows(&fx.root.join("par").join(PER_INSTANCE_FILE)))
        );
    }

    #[test]
    fn filters_and_limit_select_in_file_order() {
        let fx = Fixture::new();
        let mut opts = fx.options();
        opts.repos = vec!["o/r".into()];
        opts.limit = Some(2);
        let calls = AtomicUsize::new(0);
        let summary = run(&opts, &toy_engine(&calls)).unwrap();
        assert_eq!(summary.subset, "toy[repos=o/r;limit=2]");
        let rows = read_rows(&opts.out_dir().join(PER_INSTANCE_FILE));
        let ids: Vec<_> = rows.iter().map(|r| r.instance_id.as_str()).collect();
        assert_eq!(ids, ["o__r-1", "o__r-2"]);

        let mut by_id = fx.options();
        by_id.ids = vec!["o__r-2".into()];
        by_id.out = Some(fx.root.join("one"));
        assert_eq!(run(&by_id, &toy_engine(&calls)).unwrap().n, 1);
    }

    #[test]
    fn engine_panic_costs_one_instance() {
        let fx = Fixture::new();
        let mut opts = fx.options();
        opts.ids = vec!["o__r-1".into()];
        let summary = run(&opts, &|_: &Path, _: &Issue<'_>| -> anyhow::Result<Prediction> {
            panic!("index out of bounds")
        })
        .unwrap();
        assert_eq!((summary.n, summary.errors), (1, 1));
        let rows = read_rows(&opts.out_dir().join(PER_INSTANCE_FILE));
        assert_eq!(rows[0].error.as_deref(), Some("engine panicked: index out of bounds"));
    }

    #[test]
    fn refuses_cache_or_output_inside_the_project() {
        let fx = Fixture::new();
        let project = fx.root.join("project");
        fs::create_dir_all(&project).unwrap();
        let calls = AtomicUsize::new(0);

        let mut opts = fx.options();
        opts.cache = project.join("sub/../cache");
        opts.forbid_under = Some(project.clone());
        let err = run(&opts, &toy_engine(&calls)).unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(RunError::InsideProject { what: "cache directory", .. })),
            "{err:#}"
        );

        let mut opts = fx.options();
        opts.out = Some(project.join("out"));
        opts.forbid_under = Some(project.clone());
        let err = run(&opts, &toy_engine(&calls)).unwrap_err();
        assert!(err.to_string().contains("output directory"), "{err:#}");

        // A symlink out of the project does not fool the check either.
        std::os::unix::fs::symlink(&project, fx.root.join("alias")).unwrap();
        let mut opts = fx.options();
        opts.cache = fx.root.join("alias/cache");
        opts.forbid_under = Some(project.clone());
        assert!(run(&opts, &toy_engine(&calls)).is_err());

        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(fs::read_dir(&project).unwrap().count(), 0, "nothing written");

        // Outside the project it runs.
        let mut opts = fx.options();
        opts.forbid_under = Some(project);
        assert!(run(&opts, &toy_engine(&calls)).is_ok());
    }

    #[test]
    fn resolve_handles_paths_that_do_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        assert_eq!(resolve(&dir.path().join("a/b/../c")).unwrap(), real.join("a/c"));
        assert_eq!(path_safe("bm25+graph"), "bm25_graph");
        assert_eq!(path_safe(".."), "__");
    }

    /// A SWE-bench-like run, end to end with a naive engine: a `psf/requests`-like mirror built
    /// here with two base commits (the second adds `requests/adapters.py` and a blob the mirror
    /// then loses), instances of a repository without a mirror, a repository filter and a
    /// limit, two jobs. Each instance must be located in the tree at its own base commit.
    #[test]
    fn naive_engine_locates_each_instance_in_its_base_commit_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut src = SourceRepo::init(&root.join("src"));
        let module = |name: &str| format!("def {name}():\n    pass\n");
        let first = src.commit(
            &[
                ("requests/__init__.py", ""),
                ("requests/models.py", &module("json")),
                ("requests/sessions.py", &module("send")),
                ("requests/utils.py", &module("quote")),
                ("README.md", "requests\n"),
            ],
            &[],
        );
        let second = src.commit(
            &[
                ("requests/adapters.py", &module("retry")),
                ("requests/models.py", &module("content")),
                ("docs/logo.bin", "a large file the mirror drops\n"),
            ],
            &[],
        );
        let git_dir = src.mirror(&root.join("mirrors"), "psf+requests/repo");
        drop_object(&git_dir, &src.blob(&second, "docs/logo.bin"));

        let instance = |id: &str, repo: &str, commit: &str, text: &str| {
            serde_json::json!({
                "instance_id": id, "repo": repo, "base_commit": commit,
                "problem_statement": text, "patch": "diff --git a/x b/x",
            })
            .to_string()
        };
        let lines = [
            instance(
                "psf__requests-1",
                "psf/requests",
                &first,
                "Cookies lost: sessions.py drops what sessions set",
            ),
            instance("django__django-1", "django/django", "abcdef12", "no mirror for this one"),
            instance("psf__requests-2", "psf/requests", &second, "Adapters: the adapters retry forever"),
            instance("pallets__flask-1", "pallets/flask", &first, "filtered out by repository"),
            instance("django__django-2", "django/django", "abcdef12", "no mirror either"),
            instance("psf__requests-3", "psf/requests", &second, "Response.json in models: models break"),
            instance("psf__requests-4", "psf/requests", &first, "beyond the limit: utils"),
        ];
        fs::write(root.join("lite.jsonl"), lines.join("\n") + "\n").unwrap();
        let gold = |id: &str, file: &str| {
            serde_json::json!({"instance_id": id, "files": [file], "all_files": [file]}).to_string()
        };
        let golds = [
            gold("psf__requests-1", "requests/sessions.py"),
            gold("psf__requests-2", "requests/adapters.py"),
            gold("psf__requests-3", "requests/models.py"),
            gold("psf__requests-4", "requests/utils.py"),
            gold("django__django-1", "django/a.py"),
            gold("django__django-2", "django/a.py"),
        ];
        fs::write(root.join("lite.gold.jsonl"), golds.join("\n") + "\n").unwrap();

        let mut opts = RunOptions::new(
            root.join("lite.jsonl"),
            root.join("lite.gold.jsonl"),
            root.join("mirrors"),
            root.join("cache"),
            "naive",
        );
        opts.repos = vec!["psf/requests".into(), "django/django".into()];
        opts.limit = Some(5);
        opts.jobs = 2;
        opts.progress = false;
        // Ranks the package's modules by how often their stem appears in the issue.
        let naive = |tree: &Path, issue: &Issue<'_>| -> anyhow::Result<Prediction> {
            let text = issue.text.to_lowercase();
            let mut files: Vec<(usize, String)> = fs::read_dir(tree.join("requests"))?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".py"))
                .map(|n| (text.matches(n.trim_end_matches(".py")).count(), format!("requests/{n}")))
                .collect();
            files.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let ranked_files: Vec<String> = files.into_iter().map(|f| f.1).collect();
            Ok(Prediction {
                predicted_files: ranked_files[..1].to_vec(),
                ranked_files,
                ..Prediction::default()
            })
        };
        let summary = run(&opts, &naive).unwrap();
        assert_eq!((summary.n, summary.errors, summary.bad_input_lines), (3, 0, 0));
        assert_eq!(summary.skipped.count, 2);
        assert_eq!(summary.skipped.reasons["no mirror for django/django"], 2);
        assert_eq!(summary.subset, "lite[repos=psf/requests,django/django;limit=5]");
        assert_eq!(summary.metrics.n_file, 3);
        assert_eq!(summary.metrics.file_acc_1, Some(1.0));

        let rows = read_rows(&opts.out_dir().join(PER_INSTANCE_FILE));
        let ids: Vec<_> = rows.iter().map(|r| r.instance_id.as_str()).collect();
        assert_eq!(
            ids,
            ["django__django-1", "django__django-2", "psf__requests-1", "psf__requests-2", "psf__requests-3"]
        );
        let by_id = |id: &str| rows.iter().find(|r| r.instance_id == id).unwrap();
        // At the first commit there is no adapters.py; at the second there is.
        let first_row = by_id("psf__requests-1");
        assert_eq!(first_row.base_commit, first);
        assert_eq!(first_row.ranked_files[0], "requests/sessions.py");
        assert!(
            !first_row.ranked_files.iter().any(|f| f.ends_with("adapters.py")),
            "{:?}",
            first_row.ranked_files
        );
        assert_eq!(by_id("psf__requests-2").ranked_files[0], "requests/adapters.py");
        assert_eq!(by_id("psf__requests-3").ranked_files[0], "requests/models.py");
        // The dropped blob exists only at the second commit.
        let missing: Vec<_> = ["psf__requests-1", "psf__requests-2", "psf__requests-3"]
            .map(|id| by_id(id).missing_blobs)
            .to_vec();
        assert_eq!(missing, [0, 1, 1]);
        let trees = root.join("cache/trees/psf+requests");
        assert!(trees.join(&first).join("requests/sessions.py").is_file());
        assert_eq!(
            materialize::missing_blobs(&trees.join(&second)),
            ["docs/logo.bin"],
            "the tree of the second commit lists the dropped blob"
        );
    }
}
