//! The code graph: contains, imports, calls and inherits edges between entities, resolved by
//! name as far as the syntax allows. A call whose target cannot be named with confidence (a
//! method on a variable, a function from outside the workspace) is kept as unresolved, never
//! guessed.

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
    /// Calls whose target was not resolved: (caller, index of the call in the caller's file's
    /// `unit.calls`). Hundreds of thousands in a large workspace: no name is copied.
    pub unresolved: Vec<(EntityId, u32)>,
    pub counts: FxHashMap<EdgeKind, u32>,
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

    /// Every edge leaving `id`, with its kind.
    pub fn out(&self, id: EntityId) -> &[(EntityId, EdgeKind)] {
        self.out.of(id)
    }

    /// Every edge arriving at `id`, with its kind.
    pub fn inc(&self, id: EntityId) -> &[(EntityId, EdgeKind)] {
        self.inc.of(id)
    }

    /// All edges `(from, to, kind)`, grouped by `from`.
    fn triples(&self) -> impl Iterator<Item = (EntityId, EntityId, EdgeKind)> + '_ {
        (0..self.out.start.len().saturating_sub(1)).flat_map(move |i| {
            self.out.of(EntityId(i as u32)).iter().map(move |&(to, k)| (EntityId(i as u32), to, k))
        })
    }

    fn from_triples(
        n: usize,
        triples: Vec<(EntityId, EntityId, EdgeKind)>,
        unresolved: Vec<(EntityId, u32)>,
    ) -> Graph {
        let mut counts = FxHashMap::default();
        for t in &triples {
            *counts.entry(t.2).or_insert(0) += 1;
        }
        let (out, inc) =
            rayon::join(|| Adjacency::group(n, &triples, true), || Adjacency::group(n, &triples, false));
        Graph { out, inc, unresolved, counts }
    }

    /// The graph after the files `changed` were replaced by units of the same shape (same
    /// entities by kind, name, qualified name, parent and bases; same imports: see
    /// `Index::with_changes`), so every entity keeps its id and every other file resolves as
    /// before. Only the changed files' edges are computed again. An edge belongs to the file
    /// that produces it: a `contains` edge to its `to` entity's (a parent and its child share a
    /// file; a Rust type's edge to an impl block elsewhere is the impl's), any other to its
    /// `from` entity's.
    pub(crate) fn with_files_changed(&self, files: &[FileEntry], changed: &[FileId]) -> Graph {
        let range = |fi: FileId| {
            let f = &files[fi.index()];
            f.first.0..f.first.0 + f.unit.entities.len() as u32
        };
        let ranges: Vec<std::ops::Range<u32>> = changed.iter().map(|&fi| range(fi)).collect();
        let in_changed = |id: EntityId| ranges.iter().any(|r| r.contains(&id.0));
        let r = Resolver::new(files);
        let fresh: Vec<FileEdges> =
            changed.iter().map(|&fi| file_edges(&r, fi, &files[fi.index()])).collect();
        let mut triples: Vec<(EntityId, EntityId, EdgeKind)> = self
            .triples()
            .filter(|&(from, to, k)| !in_changed(if k == EdgeKind::Contains { to } else { from }))
            .collect();
        let mut unresolved: Vec<(EntityId, u32)> =
            self.unresolved.iter().copied().filter(|&(from, _)| !in_changed(from)).collect();
        merge(fresh, &mut triples, &mut unresolved);
        Graph::from_triples(self.out.start.len().saturating_sub(1), triples, unresolved)
    }
}

/// How deep `from a import b` chains through package `__init__` re-exports are followed.
const MAX_REEXPORT_DEPTH: usize = 3;

struct Resolver<'a> {
    files: &'a [FileEntry],
    /// Python module dotted suffix (`flask.app`, `app`) → files.
    modules: FxHashMap<String, Vec<FileId>>,
    /// Per file: top-level entity name → global id.
    top: Vec<FxHashMap<&'a str, EntityId>>,
    /// Top-level entity name → its entry in `top` of every file that has one, in file order.
    top_by_name: FxHashMap<&'a str, Vec<EntityId>>,
    /// Per file: a name its imports bind → those imports (positions in `unit.imports`, in
    /// order). Most calls name nothing imported; a lookup spares reading every import.
    bound: Vec<FxHashMap<&'a str, Vec<u32>>>,
    /// Qualified member name (`Session.send`, `Semaphore::new`) → global ids.
    members: FxHashMap<&'a str, Vec<EntityId>>,
    /// Type / trait / class name → global ids of the defining entities.
    types: FxHashMap<&'a str, Vec<EntityId>>,
}

pub(crate) fn build(files: &[FileEntry], n_entities: usize) -> Graph {
    let r = Resolver::new(files);
    // Resolution is read-only: files are resolved in parallel, edges merged in file order.
    let per_file: Vec<FileEdges> =
        files.par_iter().enumerate().map(|(fi, f)| file_edges(&r, FileId(fi as u32), f)).collect();
    let (mut triples, mut unresolved) = (Vec::new(), Vec::new());
    merge(per_file, &mut triples, &mut unresolved);
    Graph::from_triples(n_entities, triples, unresolved)
}

/// Appends files' edges (without self-loops and repeats) and unresolved calls. No two files
/// produce the same edge, so edges kept from other files need no check.
fn merge(
    per_file: Vec<FileEdges>,
    triples: &mut Vec<(EntityId, EntityId, EdgeKind)>,
    unresolved: &mut Vec<(EntityId, u32)>,
) {
    let mut seen = FxHashSet::default();
    for (edges, unres) in per_file {
        for (from, to, kind) in edges {
            if from != to && seen.insert((from, to, kind)) {
                triples.push((from, to, kind));
            }
        }
        unresolved.extend(unres);
    }
}

/// One file's edges `(from, to, kind)` and unresolved calls `(caller, index in unit.calls)`.
type FileEdges = (Vec<(EntityId, EntityId, EdgeKind)>, Vec<(EntityId, u32)>);

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
            unresolved.push((from, ci as u32));
        }
        for &t in targets.iter() {
            edges.push((from, t, EdgeKind::Calls));
        }
    }
    (edges, unresolved)
}

impl<'a> Resolver<'a> {
    fn new(files: &'a [FileEntry]) -> Resolver<'a> {
        let mut modules: FxHashMap<String, Vec<FileId>> = FxHashMap::default();
        let mut top = Vec::with_capacity(files.len());
        let mut members: FxHashMap<&str, Vec<EntityId>> = FxHashMap::default();
        let mut types: FxHashMap<&str, Vec<EntityId>> = FxHashMap::default();
        let mut top_by_name: FxHashMap<&str, Vec<EntityId>> = FxHashMap::default();
        let mut bound = Vec::with_capacity(files.len());
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
            let mut t = FxHashMap::default();
            for (li, e) in u.entities.iter().enumerate().skip(1) {
                let id = f.id_of(li as u32);
                if e.parent.is_none() || u.entities[e.parent.unwrap() as usize].kind == Kind::Module {
                    t.entry(e.name.as_str()).or_insert(id);
                }
                if e.qual != e.name && e.kind != Kind::Impl {
                    members.entry(e.qual.as_str()).or_default().push(id);
                }
                if matches!(e.kind, Kind::Class | Kind::Struct | Kind::Enum | Kind::Union | Kind::Trait) {
                    types.entry(e.name.as_str()).or_default().push(id);
                }
            }
            // Files come in order: each list of `top_by_name` is in file order.
            for (&name, &id) in &t {
                top_by_name.entry(name).or_default().push(id);
            }
            top.push(t);
            let mut b: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
            for (k, imp) in u.imports.iter().enumerate() {
                for n in &imp.names {
                    let list = b.entry(n.as_str()).or_default();
                    if list.last() != Some(&(k as u32)) {
                        list.push(k as u32);
                    }
                }
            }
            bound.push(b);
        }
        Resolver { files, modules, top, top_by_name, bound, members, types }
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
            return self.modules.get(&key).cloned().unwrap_or_default();
        }
        let Some(c) = self.modules.get(module) else { return Vec::new() };
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
        if let Some(&id) = self.top[file.index()].get(name) {
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
        name: &str,
    ) -> impl Iterator<Item = &'a locus_syntax::Import> + 's {
        let imports = &self.files[file.index()].unit.imports;
        self.bound[file.index()].get(name).into_iter().flatten().map(move |&k| &imports[k as usize])
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
        for id in
            self.types.get(name).into_iter().flatten().copied().chain(self.top_named(name).iter().copied())
        {
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

    fn top_named(&self, name: &str) -> &[EntityId] {
        self.top_by_name.get(name).map_or(&[], |ids| ids.as_slice())
    }

    /// A name used in file `from`: defined there, or imported into it.
    fn resolve_name(&self, from: FileId, lang: Lang, name: &str, kinds: &[Kind]) -> Vec<EntityId> {
        let fits = |id: EntityId| kinds.is_empty() || kinds.contains(&self.entity(id).1.kind);
        if let Some(&id) = self.top[from.index()].get(name) {
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
            if let Some(ids) = self.types.get(name) {
                let same_lang: Vec<EntityId> = ids
                    .iter()
                    .copied()
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
        self.members.get(key.as_str()).cloned().unwrap_or_default()
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
                                    if let Some(&id) = self.top[tf.index()].get(callee) {
                                        out.push(id);
                                    }
                                }
                                _ => {}
                            }
                        }
                        if out.is_empty() {
                            // `import a.b` then `a.b.f()`.
                            for mf in self.python_module(file, recv) {
                                if let Some(&id) = self.top[mf.index()].get(callee) {
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
