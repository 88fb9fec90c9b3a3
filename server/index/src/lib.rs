//! Builds Locus's in-memory indexes of a workspace: entities, symbols, BM25 and the code graph.
//!
//! Architecture invariant: an [`Index`] is immutable once built; updates produce a new one from
//! per-file [`FileUnit`]s, most of which are reused (shared by `Arc`) from the previous index.
//! Building never fails on user code: files that cannot be used are skipped and counted.

pub mod bm25;
pub mod graph;
pub mod persist;
pub mod symbols;
pub mod text;
pub mod unit;
pub mod walk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use locus_syntax::{Entity, Kind};
use rayon::prelude::*;
use serde::Serialize;

pub use bm25::Bm25;
pub use graph::{EdgeKind, Graph};
pub use symbols::{Match, Symbols};
pub use unit::FileUnit;
pub use walk::{SkipReason, Skipped, SourceFile, WalkOptions};

/// An entity's global id: its index into [`Index::locs`]. Every file has a file entity (its
/// [`FileEntry::first`]), followed contiguously by the file's other entities; ids are ordered
/// by file path, then by position in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EntityId(pub u32);

impl EntityId {
    /// The position in [`Index::locs`] (and in every per-entity table).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A file's index: its position in [`Index::files`] (files are sorted by path). Not an entity
/// id: the file's own entity is [`FileEntry::first`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FileId(pub u32);

impl FileId {
    /// The position in [`Index::files`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A file of the index: its unit and the global id of its file entity.
#[derive(Clone)]
pub struct FileEntry {
    pub unit: Arc<FileUnit>,
    /// Global id of the file's entity; its other entities follow contiguously.
    pub first: EntityId,
}

impl FileEntry {
    /// The global id of the file's entity at `local` (a position in `unit.entities`; 0 is the
    /// file itself).
    pub fn id_of(&self, local: u32) -> EntityId {
        EntityId(self.first.0 + local)
    }

    /// The lexical documents of the file's entities, the file's own first.
    fn docs(&self) -> impl Iterator<Item = bm25::DocTerms<'_>> {
        let u = &self.unit;
        u.docs.iter().zip(&u.doc_lens).enumerate().map(|(li, (terms, &len))| bm25::DocTerms {
            doc: self.id_of(li as u32),
            len,
            terms,
        })
    }
}

/// Where an entity is: its file, and its position in that file's `unit.entities`.
#[derive(Clone, Copy, Debug)]
pub struct EntityLoc {
    pub file: FileId,
    pub local: u32,
}

pub struct Index {
    pub root: PathBuf,
    pub files: Vec<FileEntry>,
    pub locs: Vec<EntityLoc>,
    /// Shared with the index an edit was applied to when names did not change.
    pub symbols: Arc<Symbols>,
    pub lexical: Arc<Bm25>,
    pub graph: Arc<Graph>,
    pub skipped: Skipped,
    /// Milliseconds spent building (walk + parse + indexes) for the last full build.
    pub build_ms: f64,
    /// What the last full build took from the on-disk snapshot ([`Index::build_with`]).
    pub reuse: persist::Reuse,
    /// Names this index's entity ids: every assembly gets a new one, a patched index
    /// ([`Index::with_changes`] when names are kept) keeps its predecessor's, so tables indexed
    /// by entity id (the encoder's vectors) stay valid across it.
    pub layout: u64,
    /// The syntax trees of the files edited or opened last, shared by the snapshots edits make.
    trees: Arc<Trees>,
}

/// How many files' syntax trees are kept.
const KEPT_TREES: usize = 4;

/// The syntax trees of the files edited or opened last (the oldest dropped first), each with
/// the hash of the text it is the tree of: the next edit of such a file parses again only what
/// it touched.
#[derive(Default)]
struct Trees(std::sync::Mutex<std::collections::VecDeque<(String, [u8; 32], locus_syntax::Tree)>>);

impl Trees {
    /// The tree of `path` when it is that of the text hashed `hash` (taken out: the edit makes
    /// the next one).
    fn take(&self, path: &str, hash: &[u8; 32]) -> Option<locus_syntax::Tree> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let at = kept.iter().position(|(p, h, _)| p == path && h == hash)?;
        kept.remove(at).map(|(_, _, t)| t)
    }

    fn holds(&self, path: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|(p, _, _)| p == path)
    }

    /// Keeps `tree` unless `path` has one (an edit's, newer than what a file's opening parsed).
    fn keep_first(&self, path: &str, hash: [u8; 32], tree: locus_syntax::Tree) {
        if !self.holds(path) {
            self.keep(path.to_string(), hash, tree);
        }
    }

    fn keep(&self, path: String, hash: [u8; 32], tree: locus_syntax::Tree) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(p, _, _)| *p != path);
        if kept.len() == KEPT_TREES {
            kept.pop_front();
        }
        kept.push_back((path, hash, tree));
    }
}

/// The next [`Index::layout`].
fn next_layout() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[derive(Debug, Serialize)]
pub struct IndexStats {
    pub files: usize,
    pub entities: BTreeMap<String, u32>,
    pub edges: BTreeMap<String, u32>,
    pub unresolved_calls: usize,
    pub skipped: BTreeMap<String, u32>,
    pub syntax_errors: u32,
    pub terms: usize,
    pub seconds: f64,
    /// Files taken from the on-disk snapshot and files parsed.
    pub snapshot: persist::Reuse,
}

impl Index {
    /// Walks `root`, reads and parses every Python and Rust file, and builds all indexes.
    pub fn build(root: &Path, opts: &WalkOptions) -> std::io::Result<Index> {
        Index::build_with(root, opts, None)
    }

    /// [`Index::build`], taking the parsed units of unchanged files from the snapshot at
    /// `snapshot` ([`persist`]) when it is usable; [`Index::reuse`] says what was taken. Write
    /// the snapshot back with [`Index::save_snapshot`].
    pub fn build_with(root: &Path, opts: &WalkOptions, snapshot: Option<&Path>) -> std::io::Result<Index> {
        Index::build_inner(root, opts, snapshot, false).map(|(ix, _)| ix)
    }

    /// [`Index::build_with`] in two stages when that answers sooner: test code (by path,
    /// [`unit::is_test_path`]) and files over [`DEFER_LARGE_FILE`] that must be parsed, when
    /// they are at least [`DEFER_MIN_BYTES`] in all, are left out of the index returned and
    /// handed back as [`Deferred`], to be parsed next and added with [`Index::with_units`].
    /// Units the snapshot holds are taken whatever the path.
    pub fn build_staged(
        root: &Path,
        opts: &WalkOptions,
        snapshot: Option<&Path>,
    ) -> std::io::Result<(Index, Option<Deferred>)> {
        Index::build_inner(root, opts, snapshot, true)
    }

    fn build_inner(
        root: &Path,
        opts: &WalkOptions,
        snapshot: Option<&Path>,
        staged: bool,
    ) -> std::io::Result<(Index, Option<Deferred>)> {
        let t = Instant::now();
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "workspace root is not a directory",
            ));
        }
        if let Some(f) = walk::special_ignore_file(&root) {
            return Err(std::io::Error::other(format!(
                "{} is not a regular file (a FIFO or a device?): reading it could block forever; \
                 replace it with a file or remove it",
                f.display()
            )));
        }
        let (listed, mut skipped) = walk::list(&root, opts);
        let (files, read_skipped) = walk::read_all(listed, opts);
        for (k, v) in read_skipped.0 {
            *skipped.0.entry(k).or_insert(0) += v;
        }
        let t_read = t.elapsed();
        let defer =
            |f: &SourceFile| staged && (unit::is_test_path(&f.path) || f.text.len() > DEFER_LARGE_FILE);
        let (mut units, mut reuse, mut later) = match snapshot {
            Some(path) => units_reusing(files, path, defer),
            None => {
                let (later, now): (Vec<SourceFile>, Vec<SourceFile>) = files.into_iter().partition(defer);
                let parsed = now.len();
                (build_units(now), persist::Reuse { parsed, ..Default::default() }, later)
            }
        };
        let deferred_bytes: usize = later.iter().map(|f| f.text.len()).sum();
        if deferred_bytes < DEFER_MIN_BYTES && !later.is_empty() {
            reuse.parsed += later.len();
            units.extend(build_units(std::mem::take(&mut later)));
        }
        let t_parse = t.elapsed();
        let mut ix = Index::from_units(root, units, skipped);
        tracing::debug!(?t_read, ?t_parse, total = ?t.elapsed(), ?reuse, deferred = later.len(), "index built");
        ix.build_ms = t.elapsed().as_secs_f64() * 1000.0;
        ix.reuse = reuse;
        let deferred = (!later.is_empty()).then_some(Deferred { files: later, bytes: deferred_bytes });
        Ok((ix, deferred))
    }

    /// This index with `units` added, except those whose path it already has or `skip` names
    /// (files an edit changed or removed since they were read), assembled anew.
    pub fn with_units(&self, units: Vec<Arc<FileUnit>>, skip: impl Fn(&str) -> bool) -> Index {
        let mut by_path: BTreeMap<String, Arc<FileUnit>> =
            self.files.iter().map(|f| (f.unit.path.clone(), f.unit.clone())).collect();
        for u in units {
            if !skip(&u.path) {
                by_path.entry(u.path.clone()).or_insert(u);
            }
        }
        let ix = Index::from_units(self.root.clone(), by_path.into_values().collect(), self.skipped.clone());
        Index { trees: self.trees.clone(), ..ix }
    }

    /// Writes every file's parsed unit to `path` for the next [`Index::build_with`].
    pub fn save_snapshot(&self, path: &Path) -> std::io::Result<()> {
        let units: Vec<Arc<FileUnit>> = self.files.iter().map(|f| f.unit.clone()).collect();
        persist::save(path, &units)
    }

    /// Assembles the indexes from per-file units (sorted by path here).
    pub fn from_units(root: PathBuf, mut units: Vec<Arc<FileUnit>>, skipped: Skipped) -> Index {
        let t = Instant::now();
        units.sort_by(|a, b| a.path.cmp(&b.path));
        units.dedup_by(|a, b| a.path == b.path);
        let mut files = Vec::with_capacity(units.len());
        let mut locs = Vec::new();
        for (fi, u) in units.into_iter().enumerate() {
            let first = EntityId(locs.len() as u32);
            for li in 0..u.entities.len() {
                locs.push(EntityLoc { file: FileId(fi as u32), local: li as u32 });
            }
            files.push(FileEntry { unit: u, first });
        }
        // The three indexes are independent: built side by side.
        let symbols = || {
            let mut maps = symbols::Maps::default();
            for f in &files {
                maps.add_file(f.first, &f.unit.path);
                for (li, e) in f.unit.entities.iter().enumerate().skip(1) {
                    maps.add_entity(f.id_of(li as u32), &e.name, &e.qual);
                }
            }
            Symbols::from(maps)
        };
        let lexical = || Bm25::build(locs.len(), files.iter().flat_map(FileEntry::docs));
        let ((symbols, lexical), graph) =
            rayon::join(|| rayon::join(symbols, lexical), || graph::build(&files, locs.len()));
        tracing::debug!(total = ?t.elapsed(), "indexes assembled");
        Index {
            root,
            files,
            locs,
            symbols: Arc::new(symbols),
            lexical: Arc::new(lexical),
            graph: Arc::new(graph),
            skipped,
            build_ms: t.elapsed().as_secs_f64() * 1000.0,
            reuse: persist::Reuse::default(),
            layout: next_layout(),
            trees: Arc::default(),
        }
    }

    /// A new index with the given files replaced (`Some(text)`) or removed (`None`). Unchanged
    /// files are shared with `self`; a file whose text did not change is not parsed again.
    pub fn with_changes(&self, changes: Vec<(String, Option<String>)>) -> Index {
        let rebuilt: Vec<(String, Option<Arc<FileUnit>>)> = changes
            .into_par_iter()
            .map(|(path, text)| {
                let unit = text.and_then(|text| {
                    let lang = locus_syntax::Lang::of_path(&path)?;
                    let hash = *blake3::hash(text.as_bytes()).as_bytes();
                    let old = self.file_index(&path).map(|i| &self.files[i.index()].unit);
                    if let Some(old) = old.filter(|o| o.hash == hash) {
                        return Some(old.clone());
                    }
                    // A file edited before is parsed again where this edit touched it.
                    let tree = old.and_then(|o| Some((&*o.text, self.trees.take(&path, &o.hash)?)));
                    let before = tree.as_ref().map(|(text, tree)| (*text, tree));
                    let (unit, tree) =
                        FileUnit::build_keeping(path.clone(), lang, Arc::from(text), hash, before);
                    if let Some(tree) = tree {
                        self.trees.keep(path.clone(), hash, tree);
                    }
                    Some(Arc::new(unit))
                });
                (path, unit)
            })
            .collect();
        if let Some(ix) = self.patched(&rebuilt).or_else(|| self.reshaped(&rebuilt)) {
            return ix;
        }
        let mut by_path: BTreeMap<String, Arc<FileUnit>> =
            self.files.iter().map(|f| (f.unit.path.clone(), f.unit.clone())).collect();
        for (path, unit) in rebuilt {
            match unit {
                Some(u) => by_path.insert(path, u),
                None => by_path.remove(&path),
            };
        }
        let ix = Index::from_units(self.root.clone(), by_path.into_values().collect(), self.skipped.clone());
        Index { trees: self.trees.clone(), ..ix }
    }

    /// The index after `rebuilt` when every changed file keeps its shape ([`same_shape`]): then
    /// every entity keeps its id and names resolve as before, so the symbols are shared, the
    /// lexical index has only the changed files' documents replaced and the graph only their
    /// edges. `None` when a file was added, removed or changed shape (a full assembly then).
    fn patched(&self, rebuilt: &[(String, Option<Arc<FileUnit>>)]) -> Option<Index> {
        let t = Instant::now();
        let mut files = self.files.clone();
        let mut changed = Vec::new();
        for (path, unit) in rebuilt {
            let unit = unit.as_ref()?;
            let fi = self.file_index(path)?;
            let old = &self.files[fi.index()].unit;
            if Arc::ptr_eq(old, unit) {
                continue;
            }
            if !same_shape(old, unit) {
                return None;
            }
            files[fi.index()].unit = unit.clone();
            changed.push(fi);
        }
        changed.sort_unstable();
        changed.dedup();
        // Only the documents that differ are replaced: typing in one function changes its own.
        let differs = |fi: FileId, li: usize| {
            let (a, b) = (&self.files[fi.index()].unit, &files[fi.index()].unit);
            a.doc_lens[li] != b.doc_lens[li] || a.docs[li] != b.docs[li]
        };
        let changed_docs: Vec<(EntityId, usize, FileId)> = changed
            .iter()
            .flat_map(|&fi| (0..files[fi.index()].unit.docs.len()).map(move |li| (fi, li)))
            .filter(|&(fi, li)| differs(fi, li))
            .map(|(fi, li)| (files[fi.index()].id_of(li as u32), li, fi))
            .collect();
        fn terms<'a>(
            of: &'a [FileEntry],
            docs: &'a [(EntityId, usize, FileId)],
        ) -> impl Iterator<Item = bm25::DocTerms<'a>> + 'a {
            docs.iter().map(move |&(doc, li, fi)| {
                let u = &of[fi.index()].unit;
                bm25::DocTerms { doc, len: u.doc_lens[li], terms: &u.docs[li] }
            })
        }
        // The graph is shared when no changed file's calls changed (lines aside): its edges and
        // unresolved calls are then the same.
        let same_calls = changed
            .iter()
            .all(|&fi| self.files[fi.index()].unit.calls.same_sites(&files[fi.index()].unit.calls));
        let (lexical, graph) = rayon::join(
            || match changed_docs.is_empty() {
                true => self.lexical.clone(),
                false => Arc::new(
                    self.lexical
                        .with_docs_replaced(terms(&self.files, &changed_docs), terms(&files, &changed_docs)),
                ),
            },
            || match same_calls {
                true => Some(self.graph.clone()),
                false => self.graph.with_files_changed(&self.locs, &files, &changed).map(Arc::new),
            },
        );
        let graph = graph?;
        tracing::debug!(files = changed.len(), took = ?t.elapsed(), "index patched");
        Some(Index {
            root: self.root.clone(),
            files,
            locs: self.locs.clone(),
            symbols: self.symbols.clone(),
            lexical,
            graph,
            skipped: self.skipped.clone(),
            build_ms: t.elapsed().as_secs_f64() * 1000.0,
            reuse: persist::Reuse::default(),
            layout: self.layout,
            trees: self.trees.clone(),
        })
    }

    /// The index after `rebuilt` when one file changed and its entities differ by one run of
    /// definitions added, removed or renamed (functions, classes, types, impl blocks), its
    /// imports and every other entity kept ([`Run`]): a new `def` or `class`. The ids after the run move; the symbols are read
    /// through the move ([`Symbols::moved`]); the lexical index has the file's documents
    /// replaced and later ids moved; the graph keeps every edge under its new ids except those
    /// of the edited file and of the files that mention a name the run added or removed, which
    /// are resolved again. `None` otherwise (a full assembly then).
    fn reshaped(&self, rebuilt: &[(String, Option<Arc<FileUnit>>)]) -> Option<Index> {
        let t = Instant::now();
        let mut edited = None;
        for (path, unit) in rebuilt {
            let unit = unit.as_ref()?;
            let fi = self.file_index(path)?;
            if !Arc::ptr_eq(&self.files[fi.index()].unit, unit) && edited.replace((fi, unit)).is_some() {
                return None;
            }
        }
        let (fi, unit) = edited?;
        let old = &self.files[fi.index()];
        let run = Run::between(&old.unit, unit)?;
        let (at, old_n, new_n) = (old.first, old.unit.entities.len() as u32, unit.entities.len() as u32);
        let moved = |id: EntityId| EntityId(id.0 - old_n + new_n);
        let mut files = self.files.clone();
        files[fi.index()].unit = unit.clone();
        for f in &mut files[fi.index() + 1..] {
            f.first = moved(f.first);
        }
        let mut locs = Vec::with_capacity(self.locs.len() + new_n as usize - old_n as usize);
        locs.extend_from_slice(&self.locs[..at.index()]);
        locs.extend((0..new_n).map(|local| EntityLoc { file: fi, local }));
        locs.extend_from_slice(&self.locs[at.index() + old_n as usize..]);
        let symbols = self.symbols.moved(
            || self.files.iter().map(|f| f.first.0).collect(),
            files.iter().map(|f| f.first.0).collect(),
            fi.0,
            |f| {
                let f = &files[f as usize];
                f.unit
                    .entities
                    .iter()
                    .enumerate()
                    .skip(1)
                    .map(|(li, e)| (f.id_of(li as u32), &*e.name, &*e.qual))
            },
        )?;
        // Names the run added or removed: only a file that mentions one can resolve differently.
        let names: Vec<memchr::memmem::Finder> = run
            .removed(&old.unit)
            .iter()
            .chain(run.added(unit))
            .map(|e| e.name.as_str())
            .filter(|n| !n.is_empty())
            .map(memchr::memmem::Finder::new)
            .collect();
        let redo: Vec<FileId> = (0..files.len() as u32)
            .into_par_iter()
            .map(FileId)
            .filter(|&f| f == fi || names.iter().any(|n| unit::may_mention(&files[f.index()].unit, n)))
            .collect();
        let (kept_below, moved_from) = (at.0 + run.prefix, at.0 + old_n - run.suffix);
        let map = |id: EntityId| match id.0 {
            i if i < kept_below => Some(id),
            i if i >= moved_from => Some(moved(id)),
            _ => None,
        };
        let (lexical, graph) = rayon::join(
            || {
                let (p, s) = (run.prefix as usize, run.suffix as usize);
                let (before, after): (Vec<_>, Vec<_>) =
                    (old.docs().collect(), files[fi.index()].docs().collect());
                self.lexical.with_ids_moved(at, p, s, &before, &after)
            },
            || self.graph.with_ids_moved(&self.locs, &files, map, fi, &redo, locs.len()),
        );
        let graph = graph?;
        tracing::debug!(redone = redo.len(), took = ?t.elapsed(), "index ids moved");
        Some(Index {
            root: self.root.clone(),
            files,
            locs,
            symbols: Arc::new(symbols),
            lexical: Arc::new(lexical),
            graph: Arc::new(graph),
            skipped: self.skipped.clone(),
            build_ms: t.elapsed().as_secs_f64() * 1000.0,
            reuse: persist::Reuse::default(),
            layout: next_layout(),
            trees: self.trees.clone(),
        })
    }

    /// Parses a file to keep its syntax tree (unless one is kept): called when an editor opens
    /// the file, so that its first edit, too, is parsed again only where it changed.
    pub fn keep_tree(&self, path: &str) {
        let Some(fi) = self.file_index(path) else { return };
        let unit = &self.files[fi.index()].unit;
        if self.trees.holds(path) {
            return;
        }
        if let Some(tree) = locus_syntax::Tree::of(unit.lang, &unit.text) {
            self.trees.keep_first(path, unit.hash, tree);
        }
    }

    pub fn n_entities(&self) -> usize {
        self.locs.len()
    }

    pub fn loc(&self, id: EntityId) -> EntityLoc {
        self.locs[id.index()]
    }

    pub fn entity(&self, id: EntityId) -> &Entity {
        let l = self.locs[id.index()];
        &self.files[l.file.index()].unit.entities[l.local as usize]
    }

    pub fn file_of(&self, id: EntityId) -> &FileEntry {
        &self.files[self.locs[id.index()].file.index()]
    }

    /// The id of the file entity of the file holding an entity (a file's is its own).
    pub fn file_entity(&self, id: EntityId) -> EntityId {
        self.file_of(id).first
    }

    pub fn path_of(&self, id: EntityId) -> &str {
        &self.file_of(id).unit.path
    }

    /// `path:qual` for entities, `path` for files (the evaluation's naming).
    pub fn full_name(&self, id: EntityId) -> String {
        let e = self.entity(id);
        if e.kind == Kind::File {
            self.path_of(id).to_string()
        } else {
            format!("{}:{}", self.path_of(id), e.qual)
        }
    }

    /// Entity ids of a file, the file itself first.
    pub fn entities_of_file(
        &self,
        file: FileId,
    ) -> impl DoubleEndedIterator<Item = EntityId> + ExactSizeIterator {
        let f = &self.files[file.index()];
        (f.first.0..f.first.0 + f.unit.entities.len() as u32).map(EntityId)
    }

    /// The index of a file by relative path.
    pub fn file_index(&self, path: &str) -> Option<FileId> {
        self.files.binary_search_by(|f| f.unit.path.as_str().cmp(path)).ok().map(|i| FileId(i as u32))
    }

    /// Whether an entity is test code: in a test file, or (Rust) a `#[test]` function, a
    /// `#[cfg(test)]` item, a `mod tests`, or inside one.
    pub fn is_test(&self, id: EntityId) -> bool {
        let f = self.file_of(id);
        f.unit.in_test_code((id.0 - f.first.0) as usize)
    }

    pub fn stats(&self) -> IndexStats {
        let mut entities = BTreeMap::new();
        let mut syntax_errors = 0;
        for f in &self.files {
            syntax_errors += f.unit.syntax_errors;
            for e in &f.unit.entities {
                *entities.entry(e.kind.as_str().to_string()).or_insert(0) += 1;
            }
        }
        let edges = self.graph.counts.iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect();
        IndexStats {
            files: self.files.len(),
            entities,
            edges,
            unresolved_calls: self.graph.n_unresolved(),
            skipped: self.skipped.0.clone(),
            syntax_errors,
            terms: self.lexical.n_terms(),
            seconds: self.build_ms / 1000.0,
            snapshot: self.reuse.clone(),
        }
    }
}

/// How two versions of a file's entities differ when that is one run of definitions added,
/// removed or renamed: the `prefix` entities before it and the `suffix` after it are the same
/// (kind, name, qualified name, bases and parent), the file's imports too. Any kind of entity may
/// be in the run: every name resolution returns is a name the resolving file mentions, so the
/// files that mention the run's names are the only ones that can resolve differently.
struct Run {
    prefix: u32,
    suffix: u32,
}

impl Run {
    fn between(old: &FileUnit, new: &FileUnit) -> Option<Run> {
        if old.path != new.path || old.lang != new.lang || !same_imports(old, new) {
            return None;
        }
        let (a, b) = (&old.entities, &new.entities);
        let same = |x: &Entity, y: &Entity| {
            x.kind == y.kind && x.name == y.name && x.qual == y.qual && x.bases == y.bases
        };
        let max = a.len().min(b.len());
        let prefix = (0..max).take_while(|&i| same(&a[i], &b[i]) && a[i].parent == b[i].parent).count();
        let suffix =
            (0..max - prefix).take_while(|&k| same(&a[a.len() - 1 - k], &b[b.len() - 1 - k])).count();
        let (a_end, b_end) = (a.len() - suffix, b.len() - suffix);
        let movable = |e: &Entity| e.kind != Kind::File;
        if (prefix == a_end && prefix == b_end)
            || !a[prefix..a_end].iter().all(movable)
            || !b[prefix..b_end].iter().all(movable)
        {
            return None;
        }
        // An entity after the run keeps its parent: one before the run, or one after it (moved).
        let parent_kept = |(x, y): (&Entity, &Entity)| match (x.parent, y.parent) {
            (None, None) => true,
            (Some(p), Some(q)) if (p as usize) < prefix => p == q,
            (Some(p), Some(q)) if (p as usize) >= a_end => p as usize - a_end == q as usize - b_end,
            _ => false,
        };
        a[a_end..]
            .iter()
            .zip(&b[b_end..])
            .all(parent_kept)
            .then_some(Run { prefix: prefix as u32, suffix: suffix as u32 })
    }

    fn removed<'u>(&self, old: &'u FileUnit) -> &'u [Entity] {
        &old.entities[self.prefix as usize..old.entities.len() - self.suffix as usize]
    }

    fn added<'u>(&self, new: &'u FileUnit) -> &'u [Entity] {
        &new.entities[self.prefix as usize..new.entities.len() - self.suffix as usize]
    }
}

/// Whether both import the same things, lines aside.
fn same_imports(old: &FileUnit, new: &FileUnit) -> bool {
    old.imports.len() == new.imports.len()
        && old
            .imports
            .iter()
            .zip(&new.imports)
            .all(|(a, b)| a.path == b.path && a.names == b.names && a.module == b.module)
}

/// Whether `new` names, nests and imports exactly what `old` does: the same entities by kind,
/// name, qualified name, parent and bases, and the same imports (lines aside). What the symbol
/// index and name resolution read from a file; bodies, spans, signatures, docs and calls may
/// differ. Typing inside a function keeps a file's shape.
pub fn same_shape(old: &FileUnit, new: &FileUnit) -> bool {
    old.path == new.path
        && old.lang == new.lang
        && old.entities.len() == new.entities.len()
        && old.entities.iter().zip(&new.entities).all(|(a, b)| {
            a.kind == b.kind
                && a.name == b.name
                && a.qual == b.qual
                && a.parent == b.parent
                && a.bases == b.bases
        })
        && same_imports(old, new)
}

/// Test code a staged build ([`Index::build_staged`]) leaves for its second stage only from
/// this size on: below it (about 0.5 s of parsing on two cores) one stage answers as soon.
pub const DEFER_MIN_BYTES: usize = 2 << 20;

/// Files larger than this wait for a staged build's second stage, tests or not: mostly
/// generated code (sympy's `rubi` rules: 3.5 MB in 9 files of its 19.4 MB of non-test code); the
/// largest file a Lite-available fix edits is 183 KB (sympy's `polytools.py`).
pub const DEFER_LARGE_FILE: usize = 256 << 10;

/// The files a staged build left out ([`Index::build_staged`]), read but not parsed.
pub struct Deferred {
    files: Vec<SourceFile>,
    bytes: usize,
}

impl Deferred {
    pub fn files(&self) -> usize {
        self.files.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Parses them, for [`Index::with_units`]: on threads of their own, at a lower priority
    /// (nice 10), so that searches meanwhile get the cores. On rayon's shared pool a search's
    /// parallel steps queued behind the parse (the first answer on sympy waited 1.9 s for it).
    pub fn parse(self) -> Vec<Arc<FileUnit>> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("locus-parse-{i}"))
            .start_handler(|_| lower_priority())
            .build();
        match pool {
            Ok(pool) => pool.install(|| build_units(self.files)),
            Err(_) => build_units(self.files),
        }
    }
}

/// Lowers the calling thread's scheduling priority (Linux: `setpriority` of a thread id).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; a failure leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// The units of `files`: from the snapshot at `path` where a file's text is unchanged, parsed
/// otherwise, except those `defer` takes, which are returned unparsed.
fn units_reusing(
    mut files: Vec<SourceFile>,
    path: &Path,
    defer: impl Fn(&SourceFile) -> bool + Sync,
) -> (Vec<Arc<FileUnit>>, persist::Reuse, Vec<SourceFile>) {
    let mut reuse = persist::Reuse::default();
    let mut stored = match persist::load(path) {
        Ok(s) => s.unwrap_or_default(),
        Err(why) => {
            tracing::info!("index snapshot not used: {why}");
            reuse.rejected = Some(why);
            Default::default()
        }
    };
    let n_stored = stored.len();
    largest_first(&mut files);
    let work: Vec<(SourceFile, Option<persist::Stored>)> = files
        .into_iter()
        .map(|f| {
            let s = stored.remove(&f.path);
            (f, s)
        })
        .collect();
    enum Built {
        Reused(Arc<FileUnit>),
        Parsed(Arc<FileUnit>),
        Later(SourceFile),
    }
    let built: Vec<Built> = work
        .into_par_iter()
        .map(|(f, s)| {
            let hash = *blake3::hash(f.text.as_bytes()).as_bytes();
            let reusable = s.filter(|s| s.matches(f.lang, hash));
            if reusable.is_none() && defer(&f) {
                return Built::Later(f);
            }
            let text: Arc<str> = Arc::from(f.text);
            match reusable.and_then(|s| s.unit(f.lang, text.clone(), hash)) {
                Some(u) => Built::Reused(Arc::new(u)),
                None => Built::Parsed(parse_unit(f.path, f.lang, text, hash)),
            }
        })
        .collect();
    let (mut units, mut later) = (Vec::with_capacity(built.len()), Vec::new());
    for b in built {
        match b {
            Built::Reused(u) => {
                reuse.reused += 1;
                units.push(u);
            }
            Built::Parsed(u) => {
                reuse.parsed += 1;
                units.push(u);
            }
            Built::Later(f) => later.push(f),
        }
    }
    // A deferred file's stored unit is stale: it is counted dropped.
    reuse.dropped = n_stored - reuse.reused;
    (units, reuse, later)
}

/// Orders `files` by size, the largest first, so that the parallel parse does not end with one
/// core on a large file the split left for last (sympy's generated `rubi` files, 0.2–0.4 s each,
/// sit in the middle of its paths).
fn largest_first(files: &mut [SourceFile]) {
    files.sort_by_key(|f| std::cmp::Reverse(f.text.len()));
}

/// A file taking longer than this to parse and tokenise is logged (debug).
const SLOW_FILE_MS: u128 = 100;

/// Parses and tokenises files in parallel, the largest first (in no particular order after).
pub fn build_units(mut files: Vec<SourceFile>) -> Vec<Arc<FileUnit>> {
    largest_first(&mut files);
    files
        .into_par_iter()
        .map(|f| {
            let hash = *blake3::hash(f.text.as_bytes()).as_bytes();
            parse_unit(f.path, f.lang, Arc::from(f.text), hash)
        })
        .collect()
}

/// One file's unit (`hash`: its text's blake3), logging the slow ones (debug).
fn parse_unit(path: String, lang: locus_syntax::Lang, text: Arc<str>, hash: [u8; 32]) -> Arc<FileUnit> {
    let t = Instant::now();
    let u = Arc::new(FileUnit::build_hashed(path, lang, text, hash));
    if t.elapsed().as_millis() > SLOW_FILE_MS {
        tracing::debug!(path = %u.path, ms = t.elapsed().as_millis() as u64, "slow file");
    }
    u
}

#[cfg(test)]
mod tests;
