//! The code graph: contains, imports, calls and inherits edges between entities, resolved by
//! name as far as the syntax allows. A call whose target cannot be named with confidence (a
//! method on a variable, a function from outside the workspace) is kept as unresolved, never
//! guessed.

use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use locus_syntax::{base_type_name, Kind, Lang};

use crate::{EntityId, FileEntry, FileId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    Contains,
    Imports,
    Calls,
    Inherits,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Contains => "contains",
            EdgeKind::Imports => "imports",
            EdgeKind::Calls => "calls",
            EdgeKind::Inherits => "inherits",
        }
    }
}

/// Edges grouped by one end, in compressed rows: entity `i`'s edges are
/// `edges[start[i]..start[i + 1]]`. Two flat arrays instead of a list per entity: a tenth of the
/// allocations, and rebuilt in one linear pass when a file changes.
#[derive(Clone, Default)]
struct Adjacency {
    start: Vec<u32>,
    edges: Vec<(EntityId, EdgeKind)>,
}

impl Adjacency {
    /// Groups `(key, other, kind)` triples by key, keeping their order within a key.
    fn group(n: usize, triples: &[(EntityId, EntityId, EdgeKind)], key_is_from: bool) -> Adjacency {
        let key = |t: &(EntityId, EntityId, EdgeKind)| if key_is_from { t.0 } else { t.1 };
        let mut start = vec![0u32; n + 1];
        for t in triples {
            start[key(t).index() + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut edges = vec![(EntityId(0), EdgeKind::Contains); triples.len()];
        for t in triples {
            let k = key(t).index();
            edges[fill[k] as usize] = (if key_is_from { t.1 } else { t.0 }, t.2);
            fill[k] += 1;
        }
        Adjacency { start, edges }
    }

    fn of(&self, id: EntityId) -> &[(EntityId, EdgeKind)] {
        match (self.start.get(id.index()), self.start.get(id.index() + 1)) {
            (Some(&a), Some(&b)) => &self.edges[a as usize..b as usize],
            _ => &[],
        }
    }
}

#[derive(Clone, Default)]
pub struct Graph {
    out: Adjacency,
    inc: Adjacency,
    /// Calls whose target was not resolved, per file: (the caller's index in the file's
    /// entities, the call's index in `unit.calls`). Hundreds of thousands in a large workspace:
    /// no name is copied, and an edit keeps every list but those of the files it resolves again.
    unresolved: Vec<Arc<[(u32, u32)]>>,
    pub counts: FxHashMap<EdgeKind, u32>,
    /// Name resolution's tables for these edges' files.
    tables: Arc<Tables>,
}

impl Graph {
    pub fn neighbours(
        &self,
        id: EntityId,
        kind: EdgeKind,
        outgoing: bool,
    ) -> impl Iterator<Item = EntityId> + '_ {
        let list = if outgoing { self.out.of(id) } else { self.inc.of(id) };
        list.iter().filter(move |(_, k)| *k == kind).map(|(t, _)| *t)
    }

    /// The calls whose target was not resolved: (caller, index of the call in its file's
    /// `unit.calls`), file by file; `files` are the index's.
    pub fn unresolved<'a>(&'a self, files: &'a [FileEntry]) -> impl Iterator<Item = (EntityId, u32)> + 'a {
        self.unresolved
            .iter()
            .zip(files)
            .flat_map(|(calls, f)| calls.iter().map(|&(local, c)| (f.id_of(local), c)))
    }

    pub fn n_unresolved(&self) -> usize {
        self.unresolved.iter().map(|calls| calls.len()).sum()
    }

    /// Every edge leaving `id`, with its kind.
    pub fn out(&self, id: EntityId) -> &[(EntityId, EdgeKind)] {
        self.out.of(id)
    }

    /// Every edge arriving at `id`, with its kind.
    pub fn inc(&self, id: EntityId) -> &[(EntityId, EdgeKind)] {
        self.inc.of(id)
    }

    fn from_triples(
        n: usize,
        triples: Vec<(EntityId, EntityId, EdgeKind)>,
        unresolved: Vec<Arc<[(u32, u32)]>>,
    ) -> Graph {
        let counts = count_kinds(triples.iter().map(|t| t.2));
        let (out, inc) =
            rayon::join(|| Adjacency::group(n, &triples, true), || Adjacency::group(n, &triples, false));
        Graph { out, inc, unresolved, counts, tables: Arc::default() }
    }

    /// The graph after the files `changed` were replaced by units of the same shape (same
    /// entities by kind, name, qualified name, parent and bases; same imports: see
    /// `Index::with_changes`), so every entity keeps its id, every other file resolves as
    /// before and name resolution's tables stay right. Only the changed files' edges are
    /// computed again ([`Graph::rebuilt`]). `locs` places the ids in their files.
    pub(crate) fn with_files_changed(
        &self,
        locs: &[crate::EntityLoc],
        files: &[FileEntry],
        changed: &[FileId],
    ) -> Option<Graph> {
        self.rebuilt(locs, files, Some, changed, locs.len(), self.tables.clone())
    }
}

impl Graph {
    /// The graph after an edit moved entity ids (one file's definitions added or removed: see
    /// `Index::with_changes`). `old_locs` places the old ids in their files, `files` are the
    /// files now, `map` takes an old id to its new one (`None`: the edit removed that entity;
    /// it keeps the order of ids), and `redo` (sorted) are the files whose edges are resolved
    /// again: the edited file and every file that mentions a name it added or removed, the only
    /// ones whose resolution can change. Every other file's edges and unresolved calls are
    /// kept, under their new ids, in their place; the redone files' edges follow them in each
    /// list. `None` when a kept edge ends at a removed entity (a file that needed resolving
    /// again was not named: the caller builds afresh).
    pub(crate) fn with_ids_moved(
        &self,
        old_locs: &[crate::EntityLoc],
        files: &[FileEntry],
        map: impl Fn(EntityId) -> Option<EntityId> + Sync,
        edited: FileId,
        redo: &[FileId],
        n: usize,
    ) -> Option<Graph> {
        let tables = Arc::new(self.tables.moved(files, edited)?);
        self.rebuilt(old_locs, files, map, redo, n, tables)
    }

    /// The graph with the edges and unresolved calls of the files `redo` (sorted) resolved
    /// again with `tables`, every other file's kept in its place under `map` (old id → new id,
    /// in order; `None`: removed) with the redone files' edges after them in each row. An edge
    /// belongs to the file that produces it: a `contains` edge to its `to` entity's (a parent
    /// and its child share a file; a Rust type's edge to an impl block elsewhere is the
    /// impl's), any other to its `from` entity's. `None` when a kept edge ends at a removed
    /// entity.
    fn rebuilt(
        &self,
        old_locs: &[crate::EntityLoc],
        files: &[FileEntry],
        map: impl Fn(EntityId) -> Option<EntityId> + Sync,
        redo: &[FileId],
        n: usize,
        tables: Arc<Tables>,
    ) -> Option<Graph> {
        let mut again = vec![false; files.len()];
        for f in redo {
            again[f.index()] = true;
        }
        let kept = |id: EntityId| !again[old_locs[id.index()].file.index()];
        // The edge `key → other` (or `other → key`) of `kind` belongs to a kept file.
        let kept_out = |key: EntityId, other: EntityId, k: EdgeKind| {
            kept(if k == EdgeKind::Contains { other } else { key })
        };
        let kept_inc = |key: EntityId, other: EntityId, k: EdgeKind| {
            kept(if k == EdgeKind::Contains { key } else { other })
        };
        if self.unresolved.len() != files.len() {
            return None;
        }
        let ((fresh, out), inc) = rayon::join(
            || {
                rayon::join(
                    || {
                        let r = Resolver::new(files, &tables);
                        let per_file: Vec<FileEdges> =
                            redo.par_iter().map(|&fi| file_edges(&r, fi, &files[fi.index()])).collect();
                        let mut triples = Vec::new();
                        let unresolved = merge(per_file, &mut triples);
                        (triples, unresolved)
                    },
                    || self.out.moved(n, &map, kept_out),
                )
            },
            || self.inc.moved(n, &map, kept_inc),
        );
        let (triples, fresh_unresolved) = fresh;
        let (mut out, mut inc) = (out?, inc?);
        let ((), ()) = rayon::join(
            || out.add(triples.iter().copied()),
            || inc.add(triples.iter().map(|&(from, to, k)| (to, from, k))),
        );
        let mut unresolved = self.unresolved.clone();
        for (fi, calls) in redo.iter().zip(fresh_unresolved) {
            unresolved[fi.index()] = calls;
        }
        let counts = count_kinds(out.edges.iter().map(|e| e.1));
        Some(Graph { out, inc, unresolved, counts, tables })
    }
}

impl Adjacency {
    /// These rows under moved ids (`map`, which keeps their order; `n` ids now), keeping the
    /// edges `kept(key, other, kind)` accepts. An id `map` has no image for has no row, one it
    /// is no image of gets an empty row. `None` when a kept edge ends at an entity without an
    /// image, or such an entity has one.
    fn moved(
        &self,
        n: usize,
        map: impl Fn(EntityId) -> Option<EntityId>,
        kept: impl Fn(EntityId, EntityId, EdgeKind) -> bool,
    ) -> Option<Adjacency> {
        let mut start = Vec::with_capacity(n + 1);
        let mut edges = Vec::with_capacity(self.edges.len());
        for key in (0..self.start.len().saturating_sub(1) as u32).map(EntityId) {
            let row = self.of(key);
            let Some(now) = map(key) else {
                if row.iter().any(|&(other, k)| kept(key, other, k)) {
                    return None;
                }
                continue;
            };
            while start.len() <= now.index() {
                start.push(edges.len() as u32);
            }
            for &(other, k) in row {
                if kept(key, other, k) {
                    edges.push((map(other)?, k));
                }
            }
        }
        while start.len() <= n {
            start.push(edges.len() as u32);
        }
        Some(Adjacency { start, edges })
    }

    /// Appends edges `(key, other, kind)` to the rows of their keys, after those there.
    fn add(&mut self, more: impl Iterator<Item = (EntityId, EntityId, EdgeKind)>) {
        let mut more: Vec<(EntityId, EntityId, EdgeKind)> = more.collect();
        if more.is_empty() {
            return;
        }
        more.sort_by_key(|t| t.0);
        let n = self.start.len() - 1;
        let mut start = Vec::with_capacity(n + 1);
        let mut edges = Vec::with_capacity(self.edges.len() + more.len());
        let mut next = more.iter().peekable();
        for key in 0..n {
            start.push(edges.len() as u32);
            edges.extend_from_slice(&self.edges[self.start[key] as usize..self.start[key + 1] as usize]);
            while let Some(&&(k, other, kind)) = next.peek() {
                if k.index() != key {
                    break;
                }
                edges.push((other, kind));
                next.next();
            }
        }
        start.push(edges.len() as u32);
        *self = Adjacency { start, edges };
    }
}

/// How deep `from a import b` chains through package `__init__` re-exports are followed.
const MAX_REEXPORT_DEPTH: usize = 3;

/// The hash a name is looked up by in [`Names`]' rows (each hit is checked against the name).
fn key(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    name.hash(&mut h);
    h.finish()
}

/// Rows `(key, file, n)` sorted: one allocation per table, no name copied; a lookup is a binary
/// search for the key's rows, which the caller checks against the name (hashes may collide).
struct Rows<K>(Vec<(K, u32, u32)>);

impl<K: Ord + Copy> Rows<K> {
    fn sorted(mut rows: Vec<(K, u32, u32)>) -> Rows<K> {
        rows.sort_unstable();
        rows.dedup();
        Rows(rows)
    }

    /// `(file, n)` of the rows of `k`, in order.
    fn of(&self, k: K) -> impl Iterator<Item = (u32, u32)> + '_ {
        let lo = self.0.partition_point(|r| r.0 < k);
        self.0[lo..].iter().take_while(move |r| r.0 == k).map(|r| (r.1, r.2))
    }
}

impl<K> Default for Rows<K> {
    fn default() -> Self {
        Rows(Vec::new())
    }
}

/// What name resolution looks names up in, for some files: entities as `(file, local)`, which an
/// edit elsewhere does not change.
#[derive(Default)]
struct Names {
    /// `(file, name)` → every top-level entity of that name in the file, in order (the first
    /// one counts).
    top: Rows<(u32, u64)>,
    /// Name → the first top-level entity of that name of every file that has one, in file order.
    top_by_name: Rows<u64>,
    /// `(file, name)` → the imports that bind the name (positions in `unit.imports`, in order).
    /// Most calls name nothing imported; a lookup spares reading every import.
    bound: Rows<(u32, u64)>,
    /// Qualified member name (`Session.send`, `Semaphore::new`) → its entities.
    members: Rows<u64>,
    /// Type / trait / class name → the defining entities.
    types: Rows<u64>,
}

impl Names {
    fn of(files: &[FileEntry], which: impl Iterator<Item = u32>) -> Names {
        let (mut top, mut top_by_name, mut bound, mut members, mut types) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut first: FxHashMap<&str, u32> = FxHashMap::default();
        for fi in which {
            let u = &files[fi as usize].unit;
            first.clear();
            for (li, e) in u.entities.iter().enumerate().skip(1) {
                let li = li as u32;
                if e.parent.is_none() || u.entities[e.parent.unwrap() as usize].kind == Kind::Module {
                    top.push(((fi, key(&e.name)), fi, li));
                    first.entry(e.name.as_str()).or_insert(li);
                }
                if e.qual != e.name && e.kind != Kind::Impl {
                    members.push((key(&e.qual), fi, li));
                }
                if matches!(e.kind, Kind::Class | Kind::Struct | Kind::Enum | Kind::Union | Kind::Trait) {
                    types.push((key(&e.name), fi, li));
                }
            }
            top_by_name.extend(first.iter().map(|(name, &li)| (key(name), fi, li)));
            for (k, imp) in u.imports.iter().enumerate() {
                for n in &imp.names {
                    bound.push(((fi, key(n)), fi, k as u32));
                }
            }
        }
        Names {
            top: Rows::sorted(top),
            top_by_name: Rows::sorted(top_by_name),
            bound: Rows::sorted(bound),
            members: Rows::sorted(members),
            types: Rows::sorted(types),
        }
    }
}

/// Name resolution's tables, kept with the graph: shared by the graph an edit that keeps every
/// name patches, and carried across one that moves ids ([`Tables::moved`]), so that resolving
/// an edited file again does not build them for the whole workspace.
#[derive(Default)]
pub(crate) struct Tables {
    /// Python module dotted suffix (`flask.app`, `app`) → files (paths only: shared while the
    /// files are the same).
    modules: Arc<FxHashMap<String, Vec<FileId>>>,
    base: Arc<Names>,
    /// Files (sorted) whose entities changed since `base` was built; `edited` has them now.
    changed: Vec<u32>,
    edited: Names,
}

/// At most this many files edited in ways that moved ids before name resolution's tables are
/// built again.
const MAX_EDITED_FILES: usize = 32;

impl Tables {
    fn build(files: &[FileEntry]) -> Tables {
        let mut modules: FxHashMap<String, Vec<FileId>> = FxHashMap::default();
        for (fi, f) in files.iter().enumerate() {
            let u = &f.unit;
            if u.lang == Lang::Python {
                let p = u.path.trim_end_matches(".py").trim_end_matches(".pyi");
                let p = p.strip_suffix("/__init__").unwrap_or(p);
                let parts: Vec<&str> = p.split('/').collect();
                for i in 0..parts.len() {
                    modules.entry(parts[i..].join(".")).or_default().push(FileId(fi as u32));
                }
            }
        }
        let base = Arc::new(Names::of(files, 0..files.len() as u32));
        Tables { modules: Arc::new(modules), base, changed: Vec::new(), edited: Names::default() }
    }

    /// These tables after the entities of `file` changed (`files`: the files now, the same paths
    /// and imports). `None` when too many files were edited since they were built.
    fn moved(&self, files: &[FileEntry], file: FileId) -> Option<Tables> {
        let mut changed = self.changed.clone();
        if let Err(at) = changed.binary_search(&file.0) {
            changed.insert(at, file.0);
        }
        if changed.len() > MAX_EDITED_FILES {
            return None;
        }
        let edited = Names::of(files, changed.iter().copied());
        Some(Tables { modules: self.modules.clone(), base: self.base.clone(), changed, edited })
    }

    /// `(file, n)` of a table's rows for `k`: those of `base` but for changed files, then the
    /// edited files'. In `(file, n)` order when `sorted`.
    fn rows<K: Ord + Copy>(&self, pick: impl Fn(&Names) -> &Rows<K>, k: K, sorted: bool) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = pick(&self.base).of(k).collect();
        if !self.changed.is_empty() {
            out.retain(|(f, _)| self.changed.binary_search(f).is_err());
            let n = out.len();
            out.extend(pick(&self.edited).of(k));
            if sorted && n != out.len() {
                out.sort_unstable();
            }
        }
        out
    }
}

pub(crate) fn build(files: &[FileEntry], n_entities: usize) -> Graph {
    let tables = Tables::build(files);
    let r = Resolver::new(files, &tables);
    // Resolution is read-only: files are resolved in parallel, edges merged in file order.
    let per_file: Vec<FileEdges> =
        files.par_iter().enumerate().map(|(fi, f)| file_edges(&r, FileId(fi as u32), f)).collect();
    let mut triples = Vec::new();
    let unresolved = merge(per_file, &mut triples);
    let mut g = Graph::from_triples(n_entities, triples, unresolved);
    g.tables = Arc::new(tables);
    g
}

/// Appends files' edges (without self-loops and repeats) and returns their unresolved calls,
/// file by file. No two files produce the same edge, so edges kept from other files need no
/// check.
fn merge(
    per_file: Vec<FileEdges>,
    triples: &mut Vec<(EntityId, EntityId, EdgeKind)>,
) -> Vec<Arc<[(u32, u32)]>> {
    let mut seen = FxHashSet::default();
    let mut unresolved = Vec::with_capacity(per_file.len());
    for (edges, unres) in per_file {
        for (from, to, kind) in edges {
            if from != to && seen.insert((from, to, kind)) {
                triples.push((from, to, kind));
            }
        }
        unresolved.push(Arc::from(unres));
    }
    unresolved
}

/// Edges by kind (kinds without edges left out).
fn count_kinds(kinds: impl Iterator<Item = EdgeKind>) -> FxHashMap<EdgeKind, u32> {
    const ALL: [EdgeKind; 4] = [EdgeKind::Contains, EdgeKind::Imports, EdgeKind::Calls, EdgeKind::Inherits];
    let mut by = [0u32; ALL.len()];
    for k in kinds {
        by[k as usize] += 1;
    }
    ALL.into_iter().zip(by).filter(|&(_, n)| n > 0).collect()
}

/// One file's edges `(from, to, kind)` and unresolved calls `(caller's index in the file, index
/// in unit.calls)`.
type FileEdges = (Vec<(EntityId, EntityId, EdgeKind)>, Vec<(u32, u32)>);

/// The edges leaving one file's entities, and its unresolved calls.
fn file_edges(r: &Resolver, fi: FileId, f: &FileEntry) -> FileEdges {
    let u = &f.unit;
    let mut edges = Vec::new();
    let mut unresolved = Vec::new();
    // Contains: file → top level, parent → child.
    for (li, e) in u.entities.iter().enumerate().skip(1) {
        let parent = e.parent.unwrap_or(0);
        edges.push((f.id_of(parent), f.id_of(li as u32), EdgeKind::Contains));
    }
    for imp in &u.imports {
        for target in r.import_targets(fi, u.lang, imp) {
            edges.push((f.first, target, EdgeKind::Imports));
        }
    }
    for (li, e) in u.entities.iter().enumerate().skip(1) {
        let id = f.id_of(li as u32);
        for base in &e.bases {
            let name = match u.lang {
                Lang::Python => base.rsplit('.').next().unwrap_or(base).split('[').next().unwrap_or(base),
                Lang::Rust => base.as_str(),
            };
            for t in r.resolve_name(fi, u.lang, name, &[Kind::Class, Kind::Trait]) {
                edges.push((id, t, EdgeKind::Inherits));
            }
        }
        // A Rust type contains its impl blocks, wherever they are.
        if e.kind == Kind::Impl {
            for t in r.resolve_name(fi, u.lang, &e.name, &[Kind::Struct, Kind::Enum, Kind::Union]) {
                edges.push((t, id, EdgeKind::Contains));
            }
        }
    }
    // The same callee is called many times in a file: resolve each (callee, receiver, scope) once.
    let mut memo: FxHashMap<(&str, Option<&str>, u32), Vec<EntityId>> = FxHashMap::default();
    for (ci, c) in u.calls.iter().enumerate() {
        let local = c.from.unwrap_or(0);
        let from = f.id_of(local);
        let recv = c.receiver;
        let scope = if matches!(recv, Some("self" | "cls" | "Self" | "super()")) { local } else { 0 };
        let targets =
            memo.entry((c.callee, recv, scope)).or_insert_with(|| r.call_targets(fi, local, c.callee, recv));
        if targets.is_empty() {
            unresolved.push((local, ci as u32));
        }
        for &t in targets.iter() {
            edges.push((from, t, EdgeKind::Calls));
        }
    }
    (edges, unresolved)
}

struct Resolver<'a> {
    files: &'a [FileEntry],
    t: &'a Tables,
}

impl<'a> Resolver<'a> {
    fn new(files: &'a [FileEntry], t: &'a Tables) -> Resolver<'a> {
        Resolver { files, t }
    }

    fn at(&self, (file, local): (u32, u32)) -> (EntityId, &'a locus_syntax::Entity) {
        let f = &self.files[file as usize];
        (f.id_of(local), &f.unit.entities[local as usize])
    }

    /// The top-level entity of `file` named `name` (the first, if several).
    fn top(&self, file: FileId, name: &str) -> Option<EntityId> {
        let rows = self.t.rows(|n| &n.top, (file.0, key(name)), false);
        rows.into_iter().map(|r| self.at(r)).find(|(_, e)| e.name == name).map(|(id, _)| id)
    }

    /// The entities of a table's rows for `name` that `is` accepts (the hash matched; is it the
    /// name?), in id order.
    fn named(
        &self,
        pick: impl Fn(&Names) -> &Rows<u64>,
        name: &str,
        is: impl Fn(&locus_syntax::Entity) -> bool,
    ) -> Vec<EntityId> {
        let rows = self.t.rows(pick, key(name), true);
        rows.into_iter().map(|r| self.at(r)).filter(|(_, e)| is(e)).map(|(id, _)| id).collect()
    }

    /// The first top-level entity named `name` of every file that has one, in file order.
    fn top_named(&self, name: &str) -> Vec<EntityId> {
        self.named(|n| &n.top_by_name, name, |e| e.name == name)
    }

    /// Types (classes, structs, enums, unions, traits) named `name`, in id order.
    fn types_named(&self, name: &str) -> Vec<EntityId> {
        self.named(|n| &n.types, name, |e| e.name == name)
    }

    fn entity(&self, id: EntityId) -> (&FileEntry, &locus_syntax::Entity) {
        // Files are few; a binary search over first ids finds the owner.
        let fi = self.files.partition_point(|f| f.first <= id) - 1;
        let f = &self.files[fi];
        (f, &f.unit.entities[(id.0 - f.first.0) as usize])
    }

    /// Resolves a Python module path, absolute (`a.b`) or relative (`..a`), to files.
    fn python_module(&self, from: FileId, module: &str) -> Vec<FileId> {
        let dots = module.chars().take_while(|c| *c == '.').count();
        if dots > 0 {
            let path = &self.files[from.index()].unit.path;
            let mut dir: Vec<&str> = path.split('/').collect();
            dir.pop();
            for _ in 1..dots {
                dir.pop();
            }
            let rest = &module[dots..];
            let mut full: Vec<&str> = dir;
            if !rest.is_empty() {
                full.extend(rest.split('.'));
            }
            let key = full.join(".");
            return self.t.modules.get(&key).cloned().unwrap_or_default();
        }
        let Some(c) = self.t.modules.get(module) else { return Vec::new() };
        // Prefer the shortest path (the package itself over a vendored copy).
        let mut c = c.clone();
        c.sort_by_key(|&f| (self.files[f.index()].unit.path.len(), f));
        c.truncate(1);
        c
    }

    fn import_targets(&self, from: FileId, lang: Lang, imp: &locus_syntax::Import) -> Vec<EntityId> {
        let (path, names) = (imp.path.as_str(), &imp.names);
        let mut out = Vec::new();
        match lang {
            Lang::Python if imp.module => {
                out.extend(self.python_module(from, path).iter().map(|&f| self.files[f.index()].first));
            }
            Lang::Python => {
                let module_files = self.python_module(from, path);
                for name in names {
                    let sub =
                        if path.ends_with('.') { format!("{path}{name}") } else { format!("{path}.{name}") };
                    let sub_files = self.python_module(from, &sub);
                    if !sub_files.is_empty() {
                        out.extend(sub_files.iter().map(|&f| self.files[f.index()].first));
                        continue;
                    }
                    for &mf in &module_files {
                        out.push(self.files[mf.index()].first);
                        out.extend(self.exported(mf, name, 0));
                    }
                }
            }
            Lang::Rust => {
                let name = path.rsplit("::").next().unwrap_or(path);
                let name = name.split(" as ").next().unwrap_or(name).trim();
                out.extend(self.rust_path_item(path, name));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The entity a Python module file exposes as `name`: defined there, or re-exported by an
    /// import (package `__init__` files).
    fn exported(&self, file: FileId, name: &str, depth: usize) -> Vec<EntityId> {
        if let Some(id) = self.top(file, name) {
            return vec![id];
        }
        if depth >= MAX_REEXPORT_DEPTH {
            return Vec::new();
        }
        for imp in self.imports_binding(file, name) {
            for mf in self.python_module(file, &imp.path) {
                let r = self.exported(mf, name, depth + 1);
                if !r.is_empty() {
                    return r;
                }
            }
        }
        Vec::new()
    }

    /// The imports of `file` that bind `name`, in order.
    fn imports_binding<'s>(
        &'s self,
        file: FileId,
        name: &'s str,
    ) -> impl Iterator<Item = &'a locus_syntax::Import> + 's {
        let imports = &self.files[file.index()].unit.imports;
        let rows = self.t.rows(|n| &n.bound, (file.0, key(name)), true);
        rows.into_iter()
            .map(move |(_, k)| &imports[k as usize])
            .filter(move |imp| imp.names.iter().any(|n| n == name))
    }

    /// Top-level Rust items named `name` in files whose path mentions the use path's module
    /// segments (`crate::runtime::Builder` → a `Builder` under a `runtime` directory or file).
    fn rust_path_item(&self, path: &str, name: &str) -> Vec<EntityId> {
        let segs: Vec<&str> = path
            .split("::")
            .filter(|s| !matches!(*s, "crate" | "self" | "super" | "std" | "core" | "alloc"))
            .collect();
        if segs.len() < 2
            && !path.starts_with("crate")
            && !path.starts_with("self")
            && !path.starts_with("super")
        {
            return Vec::new();
        }
        let module = segs.iter().rev().nth(1).copied();
        let mut out = Vec::new();
        for id in self.types_named(name).into_iter().chain(self.top_named(name)) {
            let (f, _) = self.entity(id);
            let ok = match module {
                Some(m) => f.unit.path.split('/').any(|p| p == m || p.trim_end_matches(".rs") == m),
                None => true,
            };
            if ok && f.unit.lang == Lang::Rust {
                out.push(id);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// A name used in file `from`: defined there, or imported into it.
    fn resolve_name(&self, from: FileId, lang: Lang, name: &str, kinds: &[Kind]) -> Vec<EntityId> {
        let fits = |id: EntityId| kinds.is_empty() || kinds.contains(&self.entity(id).1.kind);
        if let Some(id) = self.top(from, name) {
            if fits(id) {
                return vec![id];
            }
        }
        let mut out = Vec::new();
        for imp in self.imports_binding(from, name) {
            match lang {
                Lang::Python if imp.module => {
                    // `import a.b as name`: the module itself.
                    out.extend(
                        self.python_module(from, &imp.path).iter().map(|&f| self.files[f.index()].first),
                    );
                }
                Lang::Python => {
                    let sub = format!("{}.{name}", imp.path.trim_end_matches('.'));
                    let sub = if imp.path.ends_with('.') { format!("{}{name}", imp.path) } else { sub };
                    let subs = self.python_module(from, &sub);
                    if !subs.is_empty() {
                        // `from pkg import module`.
                        out.extend(subs.iter().map(|&f| self.files[f.index()].first));
                        continue;
                    }
                    for mf in self.python_module(from, &imp.path) {
                        out.extend(self.exported(mf, name, 0).into_iter().filter(|&id| fits(id)));
                    }
                }
                Lang::Rust => {
                    let item = imp.path.rsplit("::").next().unwrap_or(name);
                    let item = item.split(" as ").next().unwrap_or(item).trim();
                    out.extend(self.rust_path_item(&imp.path, item).into_iter().filter(|&id| fits(id)));
                }
            }
        }
        if out.is_empty() && lang == Lang::Rust {
            // Rust code names types of its own crate without importing them when they live in
            // the same module tree; accept a definition only when it is the only one.
            let ids = self.types_named(name);
            if !ids.is_empty() {
                let same_lang: Vec<EntityId> = ids
                    .into_iter()
                    .filter(|&id| self.entity(id).0.unit.lang == Lang::Rust && fits(id))
                    .collect();
                if same_lang.len() == 1 {
                    out = same_lang;
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The class (Python) or impl type (Rust) enclosing a local entity, if any.
    fn enclosing_type(&self, file: FileId, local: u32) -> Option<(String, u32)> {
        let u = &self.files[file.index()].unit;
        let mut cur = u.entities.get(local as usize)?.parent;
        while let Some(p) = cur {
            let e = &u.entities[p as usize];
            match e.kind {
                Kind::Class | Kind::Impl | Kind::Trait => return Some((e.name.clone(), p)),
                _ => cur = e.parent,
            }
        }
        None
    }

    fn members_of(&self, ty: &str, method: &str, lang: Lang) -> Vec<EntityId> {
        let key = format!("{ty}{}{method}", lang.member_sep());
        self.named(|n| &n.members, &key, |e| e.qual == key)
    }

    fn call_targets(&self, file: FileId, local: u32, callee: &str, receiver: Option<&str>) -> Vec<EntityId> {
        let u = &self.files[file.index()].unit;
        let lang = u.lang;
        match receiver {
            None => self.resolve_name(file, lang, callee, &[]),
            Some("self") | Some("cls") | Some("Self") | Some("super()") => {
                let Some((ty, ty_local)) = self.enclosing_type(file, local) else { return Vec::new() };
                let mut out = self.members_of(&ty, callee, lang);
                if lang == Lang::Python {
                    // Same-file definitions first.
                    let first = self.files[file.index()].first;
                    let last = self.files[file.index()].id_of(u.entities.len() as u32);
                    if out.iter().any(|&id| (first..last).contains(&id)) {
                        out.retain(|&id| (first..last).contains(&id));
                    }
                    if out.is_empty() {
                        // Look one or two levels up the base classes.
                        let mut bases: Vec<String> = u.entities[ty_local as usize].bases.clone();
                        for _ in 0..2 {
                            let mut next = Vec::new();
                            for b in &bases {
                                let b = b.rsplit('.').next().unwrap_or(b);
                                for cls in self.resolve_name(file, lang, b, &[Kind::Class]) {
                                    let (_, ce) = self.entity(cls);
                                    out.extend(self.members_of(&ce.qual, callee, lang));
                                    next.extend(ce.bases.iter().cloned());
                                }
                            }
                            if !out.is_empty() {
                                break;
                            }
                            bases = next;
                        }
                    }
                }
                out.sort_unstable();
                out.dedup();
                out
            }
            Some(recv) => {
                let simple = recv.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == ':');
                if !simple {
                    return Vec::new();
                }
                match lang {
                    Lang::Python => {
                        // `Class.method(...)` / `module.func(...)` with the head imported or local.
                        let head = recv.rsplit('.').next().unwrap_or(recv);
                        let mut out = Vec::new();
                        for t in self.resolve_name(file, lang, head, &[]) {
                            let (_, te) = self.entity(t);
                            match te.kind {
                                Kind::Class => out.extend(self.members_of(&te.qual, callee, lang)),
                                Kind::File => {
                                    let tf = self.file_index(self.entity(t).0.first);
                                    if let Some(id) = self.top(tf, callee) {
                                        out.push(id);
                                    }
                                }
                                _ => {}
                            }
                        }
                        if out.is_empty() {
                            // `import a.b` then `a.b.f()`.
                            for mf in self.python_module(file, recv) {
                                if let Some(id) = self.top(mf, callee) {
                                    out.push(id);
                                }
                            }
                        }
                        out
                    }
                    Lang::Rust => {
                        let ty = base_type_name(recv);
                        let mut out = self.members_of(&ty, callee, lang);
                        if out.is_empty() && ty.chars().next().is_some_and(|c| c.is_lowercase()) {
                            // `task::spawn(...)`: a module path.
                            out = self.rust_path_item(&format!("crate::{recv}::{callee}"), callee);
                        }
                        out
                    }
                }
            }
        }
    }

    /// The file whose file entity is `first`.
    fn file_index(&self, first: EntityId) -> FileId {
        FileId(self.files.partition_point(|f| f.first < first) as u32)
    }
}
