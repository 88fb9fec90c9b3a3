//! The search tools. Each is a pure function of (index, arguments) returning scored entities;
//! the engine decides which to call and fuses what they return.

use locus_index::{EdgeKind, EntityId, Index, Match};
use locus_syntax::Kind;
use serde::Serialize;

/// The relation a `graph` call follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Contains,
    ContainedBy,
    Imports,
    ImportedBy,
    Calls,
    CalledBy,
    Inherits,
    InheritedBy,
    /// Entities with the same name in other types (overrides / implementations).
    Overrides,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Contains => "contains",
            Relation::ContainedBy => "contained-by",
            Relation::Imports => "imports",
            Relation::ImportedBy => "imported-by",
            Relation::Calls => "calls",
            Relation::CalledBy => "called-by",
            Relation::Inherits => "inherits",
            Relation::InheritedBy => "inherited-by",
            Relation::Overrides => "overrides",
        }
    }
}

/// A tool call: the tool and its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(tag = "tool", rename_all = "snake_case")]
pub enum Call {
    /// Entities named `name` (or qualified `A.b` / `A::b`).
    Symbol { name: String },
    /// BM25 over entity documents for the terms (`query` is the head, shown in
    /// traces) plus, at half weight, the terms of `extra` (empty on the first call).
    Lexical { query: String, extra: String },
    /// Nearest entities by the encoder's embedding.
    Semantic { query: String },
    /// Literal text in file contents; hits are attributed to the innermost entity.
    Grep { pattern: String },
    /// Neighbours of an entity.
    Graph { entity: EntityId, relation: Relation },
    /// The entities of a file (`file`: its file entity); with lines (0-based, ascending), the
    /// entities enclosing them first.
    Outline { file: EntityId, lines: Vec<u32> },
}

impl Call {
    pub fn tool(&self) -> &'static str {
        match self {
            Call::Symbol { .. } => "symbol",
            Call::Lexical { .. } => "lexical",
            Call::Semantic { .. } => "semantic",
            Call::Grep { .. } => "grep",
            Call::Graph { .. } => "graph",
            Call::Outline { .. } => "outline",
        }
    }

    /// A short human description (`symbol(register_hook)`, `graph(called-by, Session.send)`).
    pub fn describe(&self, ix: &Index) -> String {
        let cut = |s: &str| -> String {
            let s = s.replace('\n', " ");
            if s.chars().count() > 48 {
                format!("{}…", s.chars().take(47).collect::<String>())
            } else {
                s
            }
        };
        match self {
            Call::Symbol { name } => format!("symbol({name})"),
            Call::Lexical { query, extra } if extra.is_empty() => format!("lexical({})", cut(query)),
            Call::Lexical { query, extra } => format!("lexical({} + {})", cut(query), cut(extra)),
            Call::Semantic { query } => format!("semantic({})", cut(query)),
            Call::Grep { pattern } => format!("grep({})", cut(pattern)),
            Call::Graph { entity, relation } => {
                format!("graph({}, {})", relation.as_str(), ix.full_name(*entity))
            }
            Call::Outline { file, lines } if lines.is_empty() => format!("outline({})", ix.full_name(*file)),
            Call::Outline { file, lines } => {
                let lines: Vec<String> = lines.iter().map(u32::to_string).collect();
                format!("outline({}:{})", ix.full_name(*file), lines.join(","))
            }
        }
    }
}

/// One entity a tool returned, with the tool's score in 0..=1 (1 = the tool's best).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub entity: EntityId,
    pub score: f32,
}

/// Dense retrieval, supplied by the caller (the engine does not link the encoder).
pub trait Semantic: Sync {
    /// The `k` entities nearest to `query`, with cosine similarity, best first.
    fn nearest(&self, query: &str, k: usize) -> Vec<(EntityId, f32)>;
    /// The cosine similarity of `query` with each of `ids`, in order (0 for an entity
    /// without a vector, or for all of them when the query cannot be embedded).
    fn similarity(&self, query: &str, ids: &[EntityId]) -> Vec<f32>;
    /// How many entities have a vector now.
    fn ready(&self) -> usize;
}

/// Most entities any call returns; the engine only needs the head of each list.
pub const MAX_HITS: usize = 200;

pub fn symbol(ix: &Index, name: &str) -> Vec<Hit> {
    let sep = if name.contains("::") { "::" } else { "." };
    let segs: Vec<&str> = name.split(sep).filter(|s| !s.is_empty()).collect();
    let mut hits = Vec::new();
    if segs.len() >= 2 {
        // Try the longest qualified suffix first: `a.b.Class.method` → `Class.method`.
        let lsep = if sep == "::" { "::" } else { "." };
        for start in 0..segs.len() - 1 {
            let q = segs[start..].join(lsep);
            let q2 = segs[start..].join(if lsep == "." { "::" } else { "." });
            let ids: Vec<EntityId> = ix
                .symbols
                .lookup_qual(&q)
                .iter()
                .chain(ix.symbols.lookup_qual(&q2).iter())
                .copied()
                .collect();
            if !ids.is_empty() {
                hits.extend(ids.into_iter().map(|entity| Hit { entity, score: 1.0 }));
                break;
            }
        }
        // A dotted module path names a file: `requests.models` → requests/models.py.
        let as_path = segs.join("/");
        for ext in [".py", "/__init__.py", ".rs", "/mod.rs"] {
            for f in ix.symbols.files_ending_with(&format!("{as_path}{ext}")) {
                hits.push(Hit { entity: f, score: 0.9 });
            }
        }
        let last = segs[segs.len() - 1];
        if hits.is_empty() {
            for (id, m) in ix.symbols.lookup(last) {
                hits.push(Hit { entity: id, score: match_score(m) * 0.7 });
            }
        }
    } else if let Some(&n) = segs.first() {
        for (id, m) in ix.symbols.lookup(n) {
            hits.push(Hit { entity: id, score: match_score(m) });
        }
        for &f in ix.symbols.files_with_stem(n).iter() {
            hits.push(Hit { entity: f, score: 0.6 });
        }
    }
    dedup_cap(hits)
}

fn match_score(m: Match) -> f32 {
    match m {
        Match::Exact => 1.0,
        Match::CaseInsensitive => 0.8,
        Match::Normalized => 0.6,
    }
}

/// BM25 over entity documents of the kinds `accept` allows; scores normalised by the best.
pub fn lexical(ix: &Index, query_terms: &[(String, f32)], accept: impl Fn(EntityId) -> bool) -> Vec<Hit> {
    let raw = ix.lexical.search(query_terms, MAX_HITS, accept);
    let top = raw.first().map(|h| h.1).unwrap_or(1.0).max(1e-6);
    raw.into_iter().map(|(entity, s)| Hit { entity, score: s / top }).collect()
}

pub fn semantic(dense: &dyn Semantic, query: &str) -> Vec<Hit> {
    let raw = dense.nearest(query, MAX_HITS);
    // Cosine similarities of a sentence encoder cluster in a narrow band; rescale so the best
    // is 1 and a hit at 80 % of the best is near 0.
    let top = raw.first().map(|h| h.1).unwrap_or(0.0);
    if top <= 0.0 {
        return Vec::new();
    }
    raw.into_iter()
        .map(|(entity, s)| Hit { entity, score: ((s / top - 0.8) / 0.2).clamp(0.0, 1.0) })
        .filter(|h| h.score > 0.0)
        .collect()
}

/// Literal, case-sensitive search of file texts; each hit is the innermost entity of the line
/// (at most 20 a file, non-overlapping). One SIMD substring search over every file, lines
/// counted from the previous hit on. A text found in [`MAX_HITS`] places or more (counting at
/// most 20 a file) is too common to point anywhere (a quoted `'function'` in a tree full of
/// parsers): no hits, rather than the first files' in path order.
pub fn grep(ix: &Index, pattern: &str) -> Vec<Hit> {
    if pattern.len() < 4 {
        return Vec::new();
    }
    let finder = memchr::memmem::Finder::new(pattern.as_bytes());
    let mut hits = Vec::new();
    for f in &ix.files {
        let text = f.unit.text.as_bytes();
        let (mut line, mut counted) = (0u32, 0usize);
        for at in finder.find_iter(text).take(20) {
            line += memchr::memchr_iter(b'\n', &text[counted..at]).count() as u32;
            counted = at;
            hits.push(Hit { entity: f.id_of(f.unit.innermost_at(line)), score: 1.0 });
            if hits.len() >= MAX_HITS {
                return Vec::new();
            }
        }
    }
    dedup_cap(hits)
}

pub fn graph(ix: &Index, entity: EntityId, relation: Relation) -> Vec<Hit> {
    let g = &ix.graph;
    let ids: Vec<EntityId> = match relation {
        Relation::Contains => g.neighbours(entity, EdgeKind::Contains, true).collect(),
        Relation::ContainedBy => g.neighbours(entity, EdgeKind::Contains, false).collect(),
        Relation::Imports => g.neighbours(entity, EdgeKind::Imports, true).collect(),
        Relation::ImportedBy => g.neighbours(entity, EdgeKind::Imports, false).collect(),
        Relation::Calls => g.neighbours(entity, EdgeKind::Calls, true).collect(),
        Relation::CalledBy => g.neighbours(entity, EdgeKind::Calls, false).collect(),
        Relation::Inherits => g.neighbours(entity, EdgeKind::Inherits, true).collect(),
        Relation::InheritedBy => g.neighbours(entity, EdgeKind::Inherits, false).collect(),
        Relation::Overrides => {
            let e = ix.entity(entity);
            if e.kind != Kind::Method {
                Vec::new()
            } else {
                ix.symbols
                    .lookup(&e.name)
                    .into_iter()
                    .filter(|&(id, m)| {
                        m == Match::Exact && id != entity && ix.entity(id).kind == Kind::Method
                    })
                    .map(|(id, _)| id)
                    .take(MAX_HITS)
                    .collect()
            }
        }
    };
    dedup_cap(ids.into_iter().map(|entity| Hit { entity, score: 1.0 }).collect())
}

/// The entities of a file (`file`: its file entity). With lines, only the innermost entity at
/// each line (1) and its ancestors (0.3, the file included); without, the file (1) and its
/// entities (0.2).
pub fn outline(ix: &Index, file: EntityId, lines: &[u32]) -> Vec<Hit> {
    let fi = ix.loc(file).file;
    let entry = &ix.files[fi.index()];
    let unit = &entry.unit;
    let mut hits = Vec::new();
    if lines.is_empty() {
        for id in ix.entities_of_file(fi) {
            hits.push(Hit { entity: id, score: if id == file { 1.0 } else { 0.2 } });
        }
    }
    for &l in lines {
        let inner = unit.innermost_at(l);
        let mut anc = Vec::new();
        let mut cur = unit.entities[inner as usize].parent;
        while let Some(p) = cur {
            anc.push(p);
            cur = unit.entities[p as usize].parent;
        }
        hits.push(Hit { entity: entry.id_of(inner), score: 1.0 });
        if inner != 0 {
            anc.push(0);
        }
        for a in anc {
            hits.push(Hit { entity: entry.id_of(a), score: 0.3 });
        }
    }
    dedup_cap(hits)
}

fn dedup_cap(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by(|a, b| a.entity.cmp(&b.entity).then(b.score.total_cmp(&a.score)));
    hits.dedup_by_key(|h| h.entity);
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.entity.cmp(&b.entity)));
    hits.truncate(MAX_HITS);
    hits
}
