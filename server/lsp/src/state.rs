//! The session's state: the current index snapshot, open documents, pending edits and settings.
//!
//! Rule: handlers mutate this state synchronously, before their first `.await`; queries take an
//! `Arc<Index>` snapshot and run on blocking threads. Edits are queued and folded into a new
//! snapshot by `flush`, which every query calls first, so an answer always reflects every edit
//! the client sent before the query.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use dashmap::DashMap;
use locus_engine::{Granularity, ModelPaths};
use locus_index::{walk, Index, Skipped, WalkOptions};
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

/// Settings a client may send (initializationOptions or didChangeConfiguration, under `locus`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub max_results: usize,
    pub granularity: Granularity,
    pub budget_ms: u64,
    pub exclude: Vec<String>,
    pub model_dir: Option<String>,
    pub runtime_path: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_results: 10,
            granularity: Granularity::Function,
            budget_ms: locus_search::DEFAULT_BUDGET_MS,
            exclude: Vec::new(),
            model_dir: None,
            runtime_path: None,
        }
    }
}

impl Settings {
    /// Where the encoder, the runtime and the learned models are looked for.
    pub fn model_paths(&self) -> ModelPaths {
        ModelPaths {
            encoder_dir: self.model_dir.as_ref().map(PathBuf::from),
            runtime: self.runtime_path.as_ref().map(PathBuf::from),
            ranker: None,
            embed_threads: None,
        }
    }

    /// Reads settings from `{"locus": {...}}` or `{...}`; unknown or ill-typed fields keep
    /// their current values.
    pub fn merged(&self, v: &serde_json::Value) -> Settings {
        let v = v.get("locus").unwrap_or(v);
        let mut base = serde_json::to_value(self).unwrap_or_default();
        if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
            for (k, val) in o {
                let mut trial = b.clone();
                trial.insert(k.clone(), val.clone());
                if serde_json::from_value::<Settings>(serde_json::Value::Object(trial)).is_ok() {
                    b.insert(k.clone(), val.clone());
                }
            }
        }
        let mut merged: Settings = serde_json::from_value(base).unwrap_or_else(|_| self.clone());
        // Editors send unset path settings as "": that means "not set", not "the empty path".
        merged.model_dir = merged.model_dir.filter(|p| !p.trim().is_empty());
        merged.runtime_path = merged.runtime_path.filter(|p| !p.trim().is_empty());
        merged
    }
}

/// An open document: the client's text wins over the disk's.
pub struct Doc {
    pub version: i32,
    pub text: String,
    /// Its workspace-relative path when the index takes it (decided when it is opened and again
    /// when the exclusions change), else `None`: outside the root, through a link, ignored...
    pub rel: Option<String>,
}

pub struct State {
    pub root: RwLock<Option<PathBuf>>,
    pub index: RwLock<Arc<Index>>,
    /// Whether the initial full index is built.
    pub ready: AtomicBool,
    /// Full builds asked for and not finished yet.
    pub indexing: AtomicUsize,
    /// Client messages that were ignored or out of line, by what was wrong (`locus/status`).
    pub notices: Mutex<BTreeMap<&'static str, u32>>,
    pub docs: DashMap<String, Doc>,
    pub settings: RwLock<Settings>,
    /// Edits not yet folded into the index: relative path → new text (`None`: deleted).
    pub pending: Mutex<BTreeMap<String, Option<String>>>,
    /// Serialises index updates (the full build and `flush`). `flush` hands its guard to the
    /// blocking task that builds the new snapshot, so the lock is held until that snapshot is
    /// stored even when the query that started it is cancelled (its future dropped): no other
    /// update can start from the older snapshot and overwrite it.
    pub rebuild: Arc<tokio::sync::Mutex<()>>,
    /// Updates whose edits were taken from `pending` and are not in the snapshot yet.
    pub applying: AtomicUsize,
    /// Cancellation flags of running searches by progress token.
    pub searches: DashMap<String, Arc<AtomicBool>>,
    /// URIs that carry diagnostics from the last presented result.
    pub diagnosed: Mutex<Vec<tower_lsp_server::ls_types::Uri>>,
    pub progress_supported: AtomicBool,
    /// The encoder, once loaded (`Err`: why semantic search is off).
    pub encoder: Mutex<Option<Result<Arc<locus_engine::Encoder>, String>>>,
    /// The learned localization model, once loaded (`Err`: why the fusion ranks instead).
    pub scorer: Mutex<Option<Result<Arc<locus_engine::LearnedScorer>, String>>>,
    /// Vectors and the snapshot they were made for, not kept alive by them: a replaced
    /// snapshot is freed at once, not when its successor's vectors are ready.
    pub dense: RwLock<Option<(Weak<Index>, Arc<locus_engine::DenseIndex>)>>,
    /// Until a snapshot's vectors are built: vectors made on demand for its searches'
    /// candidates, shared by the searches of that snapshot.
    pub partial: Mutex<Option<(Arc<Index>, Arc<locus_engine::DenseIndex>)>>,
    /// Snapshots replaced by an edit, freed after the search that asked for the edit
    /// ([`State::free_retired`]): freeing a snapshot takes a core for tens of milliseconds.
    pub retired: Mutex<Vec<Arc<Index>>>,
    /// A vector refresh is running / another one was asked for meanwhile.
    pub embedding: AtomicBool,
    pub embed_again: AtomicBool,
    /// Counts [`State::build_full`]s: a second stage belongs to the build that started it.
    pub builds: AtomicUsize,
    /// While a build's second stage parses the test code it left out ([`Index::build_staged`]):
    /// the paths edits changed since, which keep their edited state when the stage adds its units.
    pub touched: Mutex<Option<HashSet<String>>>,
    /// Files read but not in the index yet (a build's second stage is parsing them).
    pub files_pending: AtomicUsize,
}

/// The second stage of a build ([`State::build_full`]): test code to parse and add.
pub struct SecondStage {
    deferred: locus_index::Deferred,
    build: usize,
    /// The first stage's units as read from disk, and where the snapshot of both is written.
    disk_units: Vec<Arc<locus_index::unit::FileUnit>>,
    snapshot: Option<PathBuf>,
}

impl SecondStage {
    pub fn files(&self) -> usize {
        self.deferred.files()
    }

    pub fn bytes(&self) -> usize {
        self.deferred.bytes()
    }
}

impl State {
    pub fn new() -> State {
        State {
            root: RwLock::new(None),
            index: RwLock::new(Arc::new(Index::from_units(PathBuf::new(), Vec::new(), Skipped::default()))),
            ready: AtomicBool::new(false),
            indexing: AtomicUsize::new(0),
            notices: Mutex::new(BTreeMap::new()),
            docs: DashMap::new(),
            settings: RwLock::new(Settings::default()),
            pending: Mutex::new(BTreeMap::new()),
            rebuild: Arc::new(tokio::sync::Mutex::new(())),
            applying: AtomicUsize::new(0),
            searches: DashMap::new(),
            diagnosed: Mutex::new(Vec::new()),
            progress_supported: AtomicBool::new(false),
            encoder: Mutex::new(None),
            scorer: Mutex::new(None),
            dense: RwLock::new(None),
            partial: Mutex::new(None),
            retired: Mutex::new(Vec::new()),
            embedding: AtomicBool::new(false),
            embed_again: AtomicBool::new(false),
            builds: AtomicUsize::new(0),
            touched: Mutex::new(None),
            files_pending: AtomicUsize::new(0),
        }
    }

    /// Vectors for `ix`'s entity ids, if they are built: those of this very snapshot, or of the
    /// one it was patched from by an edit that kept every name (the same ids; the edited
    /// entities' vectors are then those of their text before the edit until the refresh that
    /// the edit started replaces them).
    pub fn dense_for(&self, ix: &Arc<Index>) -> Option<Arc<locus_engine::DenseIndex>> {
        let d = self.dense.read().unwrap_or_else(|e| e.into_inner());
        d.as_ref().filter(|(i, d)| is_of(i, ix) || d.layout() == ix.layout).map(|(_, d)| d.clone())
    }

    /// Vectors for `ix` when an edit moved its ids (a definition added, removed or renamed) since
    /// the snapshot the vectors are for: those vectors moved to the new ids
    /// ([`locus_engine::DenseIndex::reshaped`]: unchanged files' shared) and the edited files
    /// given theirs from the cache ([`locus_engine::DenseIndex::patched_from_cache`]), lent to
    /// one search so that it reads the whole tree's vectors instead of embedding its candidates
    /// on demand beside a refresh; a definition just typed has none until the refresh after the
    /// search. `None` when there are none to move (no vectors yet, vectors made on demand,
    /// files added or removed).
    pub fn moved_vectors_for(&self, ix: &Arc<Index>) -> Option<Arc<locus_engine::DenseIndex>> {
        let t = std::time::Instant::now();
        let (_, prev) = self.dense.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        let moved = prev.reshaped(ix)?.patched_from_cache(ix)?;
        tracing::debug!(took = ?t.elapsed(), "vectors moved to an edit's ids");
        Some(Arc::new(moved))
    }

    /// Vectors for a search of `ix` when [`State::dense_for`] has none: made on demand for the
    /// search's candidates (`Workspace::locate`) while the whole tree's are computed in the
    /// background. `None` when the encoder cannot be loaded.
    pub fn on_demand_for(&self, ix: &Arc<Index>) -> Option<Arc<locus_engine::DenseIndex>> {
        let enc = self.encoder().ok()?;
        let mut p = self.partial.lock().unwrap_or_else(|e| e.into_inner());
        match p.as_ref() {
            Some((i, d)) if Arc::ptr_eq(i, ix) => Some(d.clone()),
            _ => {
                // Nothing read up front: what a search sees is its candidates' vectors, as
                // `locus eval --on-demand` measures it.
                let d = Arc::new(locus_engine::DenseIndex::on_demand(ix.clone(), enc, false));
                *p = Some((ix.clone(), d.clone()));
                Some(d)
            }
        }
    }

    /// Whether the vectors were built for this very snapshot (else a refresh is due, even when
    /// [`State::dense_for`] lends the predecessor's).
    pub fn dense_is_current(&self, ix: &Arc<Index>) -> bool {
        let d = self.dense.read().unwrap_or_else(|e| e.into_inner());
        d.as_ref().is_some_and(|(i, _)| is_of(i, ix))
    }

    /// Whether loading the encoder was tried and failed (semantic search is off this session,
    /// until the model or runtime settings change).
    pub fn encoder_failed(&self) -> bool {
        matches!(*self.encoder.lock().unwrap_or_else(|e| e.into_inner()), Some(Err(_)))
    }

    /// Loads the encoder on first use; remembers a failure (and its message) for the session.
    pub fn encoder(&self) -> Result<Arc<locus_engine::Encoder>, String> {
        let mut e = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
        if e.is_none() {
            *e = Some(self.settings().model_paths().encoder().map(Arc::new).map_err(|err| err.to_string()));
        }
        e.clone().unwrap_or_else(|| Err("encoder not loaded".into()))
    }

    /// Loads the localization model on first use.
    pub fn scorer(&self) -> Result<Arc<locus_engine::LearnedScorer>, String> {
        let mut s = self.scorer.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(self.settings().model_paths().scorer().map(Arc::new).map_err(|e| e.to_string()));
        }
        s.clone().unwrap_or_else(|| Err("model not loaded".into()))
    }

    /// Brings the vectors up to date with the current snapshot, embedding what the cache lacks,
    /// on a blocking thread. Returns a short status for progress messages.
    pub fn refresh_dense_blocking(&self, mut progress: impl FnMut(usize, usize)) -> String {
        let enc = match self.encoder() {
            Ok(e) => e,
            Err(msg) => return format!("semantic search off: {msg}"),
        };
        loop {
            self.embed_again.store(false, Ordering::SeqCst);
            let ix = self.snapshot();
            let never = AtomicBool::new(false);
            // After an edit that kept every name, only the edited files' vectors are redone;
            // after one that moved the ids (a definition added, removed or renamed), the other
            // files' vectors move to their new ids first ([`locus_engine::DenseIndex::reshaped`])
            // instead of every vector being read again.
            let prev = self.dense.read().unwrap_or_else(|e| e.into_inner()).clone();
            let patched = match prev {
                Some((_, d)) if d.layout() == ix.layout => d.patched(&ix).transpose(),
                Some((_, d)) => d.reshaped(&ix).and_then(|moved| moved.patched(&ix).transpose()),
                None => None,
            };
            let built = match patched {
                Some(r) => r,
                None => locus_engine::vectors(&ix, enc.clone(), &never, &mut progress),
            };
            match built {
                Ok(d) => {
                    let n = d.len();
                    let old = self
                        .dense
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .replace((Arc::downgrade(&ix), Arc::new(d)));
                    let partial = self.partial.lock().unwrap_or_else(|e| e.into_inner()).take();
                    // The replaced vectors (and the snapshot they held, when it was the last
                    // holder) are freed here, off the request path.
                    drop((old, partial));
                    release_freed_memory();
                    if !self.embed_again.load(Ordering::SeqCst) {
                        return format!("{n} vectors ready");
                    }
                }
                Err(e) => return format!("semantic search off: {e}"),
            }
        }
    }

    pub fn snapshot(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn root(&self) -> Option<PathBuf> {
        self.root.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn settings(&self) -> Settings {
        self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn queue(&self, path: String, text: Option<String>) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(path, text);
    }

    /// Counts a client message that was ignored or out of line.
    pub fn notice(&self, what: &'static str) {
        tracing::warn!("{what}");
        *self.notices.lock().unwrap_or_else(|e| e.into_inner()).entry(what).or_insert(0) += 1;
    }

    /// Which of these relative paths the index takes (the walk's rules, with today's settings).
    pub fn admitted(&self, rels: &[&str]) -> Vec<bool> {
        let Some(root) = self.root() else { return vec![false; rels.len()] };
        let opts = WalkOptions { exclude: self.settings().exclude, ..WalkOptions::default() };
        walk::admitted(&root, rels, &opts)
    }

    /// After the exclusions changed: decides again which open documents the index takes, and
    /// drops queued texts of paths it no longer takes.
    pub fn readmit(&self) {
        let mut keys = Vec::new();
        let mut rels = Vec::new();
        let root = self.root();
        for d in self.docs.iter() {
            let rel = root.as_deref().and_then(|r| uri_key_to_rel(r, d.key()));
            if let Some(rel) = rel {
                keys.push(d.key().clone());
                rels.push(rel);
            }
        }
        let pending: Vec<String> =
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        let all: Vec<&str> = rels.iter().chain(&pending).map(|s| s.as_str()).collect();
        let ok = self.admitted(&all);
        for (i, key) in keys.iter().enumerate() {
            if let Some(mut d) = self.docs.get_mut(key) {
                d.rel = ok[i].then(|| rels[i].clone());
            }
        }
        let mut q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (j, path) in pending.iter().enumerate() {
            if !ok[rels.len() + j] {
                if let Some(t) = q.get_mut(path) {
                    *t = None;
                }
            }
        }
    }

    /// Folds pending edits into a new snapshot. Cheap when nothing is pending or being applied;
    /// it does not wait for a full build when nothing is pending.
    pub async fn flush(self: &Arc<Self>) {
        if self.pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
            && self.applying.load(Ordering::SeqCst) == 0
        {
            return;
        }
        let guard = self.rebuild.clone().lock_owned().await;
        // Counted before the edits leave `pending`: at every moment a flush sees either the
        // edits or an update applying them (and then waits for its lock).
        let applying = Applying::start(self.clone());
        let changes: Vec<(String, Option<String>)> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        if changes.is_empty() {
            return;
        }
        if let Some(t) = self.touched.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            t.extend(changes.iter().map(|c| c.0.clone()));
        }
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let next = me.snapshot().with_changes(changes);
            let old =
                std::mem::replace(&mut *me.index.write().unwrap_or_else(|e| e.into_inner()), Arc::new(next));
            drop(applying);
            drop(guard);
            // Freed after the search that waits for this flush, not beside it (a caller that is
            // not a search frees them at once; past a few, they are freed here).
            let mut retired = me.retired.lock().unwrap_or_else(|e| e.into_inner());
            retired.push(old);
            if retired.len() > MAX_RETIRED {
                drop(retired);
                me.free_retired();
            }
        })
        .await;
    }

    /// Frees the snapshots edits replaced, and returns the memory to the system, on a blocking
    /// thread (what a search still reads stays: a snapshot is freed with its last holder).
    pub fn free_retired(&self) {
        let retired = std::mem::take(&mut *self.retired.lock().unwrap_or_else(|e| e.into_inner()));
        if !retired.is_empty() {
            tokio::task::spawn_blocking(move || {
                drop(retired);
                release_freed_memory();
            });
        }
    }

    /// Builds the full index of the root, then re-applies open documents on top. On a cold
    /// tree with much test code to parse, in two stages ([`Index::build_staged`]): the index
    /// stored here (searches use it at once) leaves that code out, and the returned
    /// [`SecondStage`] adds it ([`State::second_stage`]).
    pub async fn build_full(self: &Arc<Self>) -> Result<Option<SecondStage>, String> {
        let Some(root) = self.root() else { return Ok(None) };
        let _guard = self.rebuild.lock().await;
        let build = self.builds.fetch_add(1, Ordering::SeqCst) + 1;
        // Edits queued before this walk are superseded by it: it reads the disk afresh, and the
        // open buffers are applied again at the end. Replaying them could apply a disk event
        // judged under the old exclusions (a deletion of a path the new ones take).
        let superseded = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        // Until this build is stored, those edits are in no snapshot: queries wait for it, as
        // they would have waited to apply them.
        let _applying = (!superseded.is_empty()).then(|| Applying::start(self.clone()));
        let opts = WalkOptions { exclude: self.settings().exclude, ..WalkOptions::default() };
        // Files unchanged since the workspace's snapshot (the last build, in this or an earlier
        // session) are not parsed again; the snapshot is rewritten in the background.
        let built = match tokio::task::spawn_blocking(move || {
            let snapshot = root.canonicalize().ok().map(|r| locus_engine::snapshot_path(&r));
            Index::build_staged(&root, &opts, snapshot.as_deref()).map(|(ix, later)| (ix, later, snapshot))
        })
        .await
        {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut second = None;
        let built = built.map(|(ix, later, snapshot)| {
            let ix = Arc::new(ix);
            if let Some(deferred) = later {
                // The snapshot is written once the second stage has the whole tree.
                let disk_units = ix.files.iter().map(|f| f.unit.clone()).collect();
                second = Some(SecondStage { deferred, build, disk_units, snapshot });
            } else if let Some(path) = snapshot.filter(|_| ix.reuse.changed()) {
                let ix = ix.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = ix.save_snapshot(&path) {
                        tracing::warn!("could not write the index snapshot {}: {e}", path.display());
                    }
                });
            }
            ix
        });
        let ix = match built {
            Ok(ix) => ix,
            Err(e) => {
                // The old snapshot stays: so do the edits it still needs (newer ones win).
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for (k, v) in superseded {
                    pending.entry(k).or_insert(v);
                }
                return Err(format!("indexing failed: {e}"));
            }
        };
        let open: Vec<(String, Option<String>)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for d in self.docs.iter() {
                if let Some(rel) = &d.rel {
                    pending.insert(rel.clone(), Some(d.text.clone()));
                }
            }
            std::mem::take(&mut *pending).into_iter().collect()
        };
        // What the buffers and the edits made during the walk say of a file stands over what a
        // second stage read of it (a file deleted after it was read, a buffer's text).
        let applied: HashSet<String> = open.iter().map(|c| c.0.clone()).collect();
        let next = if open.is_empty() {
            ix
        } else {
            Arc::new(
                tokio::task::spawn_blocking(move || ix.with_changes(open))
                    .await
                    .map_err(|e| e.to_string())?,
            )
        };
        *self.root.write().unwrap_or_else(|e| e.into_inner()) = Some(next.root.clone());
        let old = std::mem::replace(&mut *self.index.write().unwrap_or_else(|e| e.into_inner()), next);
        // Edits from here on are recorded for the second stage too (under the lock it still holds).
        *self.touched.lock().unwrap_or_else(|e| e.into_inner()) = second.as_ref().map(|_| applied);
        self.files_pending.store(second.as_ref().map_or(0, |s| s.files()), Ordering::SeqCst);
        // Complete only without a second stage; searches use this index either way.
        self.ready.store(second.is_none(), Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            drop(old);
            release_freed_memory();
        });
        Ok(second)
    }

    /// Parses the test code a build left out and adds it to the current snapshot (which has
    /// every edit since), except files an edit changed or removed meanwhile: their edited state
    /// stands. Nothing is added when a newer build started meanwhile (it read the disk again).
    /// Searches go on from the first stage's snapshot while it parses.
    pub async fn second_stage(self: &Arc<Self>, stage: SecondStage) -> Result<(), String> {
        let SecondStage { deferred, build, mut disk_units, snapshot } = stage;
        let units = tokio::task::spawn_blocking(move || deferred.parse()).await.map_err(|e| e.to_string())?;
        let _guard = self.rebuild.lock().await;
        if self.builds.load(Ordering::SeqCst) != build {
            return Ok(());
        }
        let touched = self.touched.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
        let me = self.clone();
        let added = units.clone();
        let next =
            tokio::task::spawn_blocking(move || me.snapshot().with_units(added, |p| touched.contains(p)))
                .await
                .map_err(|e| e.to_string())?;
        let old =
            std::mem::replace(&mut *self.index.write().unwrap_or_else(|e| e.into_inner()), Arc::new(next));
        self.files_pending.store(0, Ordering::SeqCst);
        self.ready.store(true, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            drop(old);
            if let Some(path) = snapshot {
                disk_units.extend(units);
                disk_units.sort_by(|a, b| a.path.cmp(&b.path));
                if let Err(e) = locus_index::persist::save(&path, &disk_units) {
                    tracing::warn!("could not write the index snapshot {}: {e}", path.display());
                }
            }
            release_freed_memory();
        });
        Ok(())
    }

    /// Reads a workspace file from disk with the indexer's checks (inside the root, no links,
    /// a regular file — never a FIFO —, size, binary, UTF-8). `None` when it cannot be used.
    pub fn read_disk(&self, rel: &str) -> Option<String> {
        let root = self.root()?;
        let abs = walk::resolve_inside(&root, rel)?;
        walk::read_source(&abs, walk::DEFAULT_MAX_FILE_BYTES).ok()
    }
}

/// One update in `State::applying`, for as long as it lives (a panic included).
struct Applying(Arc<State>);

impl Applying {
    fn start(state: Arc<State>) -> Applying {
        state.applying.fetch_add(1, Ordering::SeqCst);
        Applying(state)
    }
}

impl Drop for Applying {
    fn drop(&mut self) {
        self.0.applying.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// Snapshots replaced by edits and kept for [`State::free_retired`] at most.
const MAX_RETIRED: usize = 4;

/// Whether `weak` is `ix` (a `Weak` keeps its snapshot's allocation, so the address is never
/// another snapshot's).
fn is_of(weak: &Weak<Index>, ix: &Arc<Index>) -> bool {
    std::ptr::eq(weak.as_ptr(), Arc::as_ptr(ix))
}

/// Hands memory that malloc holds free back to the system. glibc keeps what a replaced snapshot
/// or vector set freed for reuse, so every re-assembly after an edit left the server larger by
/// about one copy of the indexes (`docs/benchmarks.md`, session 16).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of malloc's own heaps to the system.
    unsafe {
        let t = std::time::Instant::now();
        libc::malloc_trim(0);
        tracing::debug!(took = ?t.elapsed(), "freed memory returned");
    }
}

/// Applies one `didChange` content change to an open document's text: a range (UTF-16
/// positions, clamped to the text) replaced, or the whole text when there is no range.
pub fn apply_change(text: &mut String, change: TextDocumentContentChangeEvent) {
    match change.range {
        Some(r) => {
            let s = crate::convert::offset_of(text, r.start);
            let e = crate::convert::offset_of(text, r.end).max(s);
            text.replace_range(s..e, &change.text);
        }
        None => *text = change.text,
    }
}

/// The relative path for a document key (its URI string), when under the root and a source file
/// (whether the index takes it is `State::admitted`).
pub fn uri_key_to_rel(root: &std::path::Path, key: &str) -> Option<String> {
    let uri: tower_lsp_server::ls_types::Uri = key.parse().ok()?;
    let rel = crate::convert::rel_path(root, &uri)?;
    locus_syntax::Lang::of_path(&rel)?;
    Some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (found by the soak test): a query cancelled while its `flush` was building the
    /// new snapshot released the update lock early; the next flush then started from the older
    /// snapshot, and whichever stored last dropped the other's edits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_flush_loses_no_edit() {
        let state = Arc::new(State::new());
        // A big edit, slow to parse, then a cancelled flush that started applying it.
        let big: String = (0..20_000).map(|i| format!("def f{i}(x):\n    return x + {i}\n")).collect();
        state.queue("big.py".into(), Some(big));
        let cancelled = tokio::time::timeout(std::time::Duration::ZERO, state.flush()).await;
        assert!(cancelled.is_err(), "the flush should still be running");
        // A small edit right behind it.
        state.queue("small.py".into(), Some("def small(): pass\n".into()));
        state.flush().await;
        let ix = state.snapshot();
        let paths: Vec<&str> = ix.files.iter().map(|f| f.unit.path.as_str()).collect();
        assert_eq!(paths, ["big.py", "small.py"]);
    }
}
