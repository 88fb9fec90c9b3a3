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

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context as _;
use rayon::prelude::*;

use crate::data::{self, Instance};
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
}

/// The engine under evaluation: given the materialized tree root and the instance, rank files
/// and functions. It must not read `instance.patch`.
pub type Locate<'a> = dyn Fn(&Path, &Instance) -> anyhow::Result<Prediction> + Sync + 'a;

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
    // Instances sharing a tree run back to back.
    pending.sort_by(|a, b| {
        (&a.repo, &a.base_commit, &a.instance_id).cmp(&(&b.repo, &b.base_commit, &b.instance_id))
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
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| locate(&tree, instance)));
    row.wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(Ok(p)) => {
            row.ranked_files = p.ranked_files;
            row.ranked_functions = p.ranked_functions;
            row.predicted_files = p.predicted_files;
            row.predicted_functions = p.predicted_functions;
            row.ms = if p.ms > 0.0 { p.ms } else { row.wall_ms };
            row.index_ms = p.index_ms;
            row.turns = p.turns;
            row.calls = p.calls;
            row.efficiency = p.efficiency;
            row.redundant_calls = p.redundant_calls;
            row.peak_rss_kb = p.peak_rss_kb;
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
}

impl RowSink {
    fn push(&mut self, row: InstanceRow, progress_total: Option<usize>) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.file, &row)?;
        self.file.write_all(b"\n")?;
        self.file.flush().context("appending to per_instance.jsonl")?;
        self.finished += 1;
        if let Some(total) = progress_total {
            eprintln!("[{}/{total}] {}", self.finished, progress_line(&row));
        }
        self.rows.push(row);
        Ok(())
    }
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
