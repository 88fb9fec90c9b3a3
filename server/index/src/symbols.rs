//! The symbol index: exact, case-insensitive and fuzzy lookup of entity names, qualified names
//! and file paths.

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::text::normalize_name;
use crate::EntityId;

/// How a name matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    Exact,
    CaseInsensitive,
    /// Same letters ignoring case and underscores (`registerHook` ~ `register_hook`).
    Normalized,
}

/// The name tables, as built for one layout of entity ids.
#[derive(Default)]
pub(crate) struct Maps {
    /// Entity name as written → entities.
    exact: FxHashMap<String, Vec<EntityId>>,
    /// Lower-cased name → entities.
    lower: FxHashMap<String, Vec<EntityId>>,
    /// Normalised name → entities.
    norm: FxHashMap<String, Vec<EntityId>>,
    /// Lower-cased qualified name (`session.send`, `semaphore::new`) → entities.
    qual: FxHashMap<String, Vec<EntityId>>,
    /// Lower-cased file path → file entity.
    paths: FxHashMap<String, EntityId>,
    /// Normalised module stem (`sessions` for `requests/sessions.py`; `useexhaustivedependencies`
    /// for `use_exhaustive_dependencies.rs`, so `useExhaustiveDependencies` finds it) → file
    /// entities.
    stems: FxHashMap<String, Vec<EntityId>>,
}

impl Maps {
    pub(crate) fn add_entity(&mut self, id: EntityId, name: &str, qual: &str) {
        if name.is_empty() {
            return;
        }
        self.exact.entry(name.to_string()).or_default().push(id);
        self.lower.entry(name.to_lowercase()).or_default().push(id);
        let n = normalize_name(name);
        if !n.is_empty() {
            self.norm.entry(n).or_default().push(id);
        }
        if !qual.is_empty() && qual != name {
            self.qual.entry(qual.to_lowercase()).or_default().push(id);
        }
    }

    /// Adds a file by the id of its file entity.
    pub(crate) fn add_file(&mut self, id: EntityId, path: &str) {
        let lower = path.to_lowercase();
        let file = lower.rsplit('/').next().unwrap_or(&lower).to_string();
        let stem = file.split('.').next().unwrap_or(&file).to_string();
        self.paths.insert(lower.clone(), id);
        self.stems.entry(stem_key(&stem)).or_default().push(id);
        if stem == "__init__" || stem == "mod" || stem == "lib" {
            // A package is named after its directory.
            let dir = lower.rsplit('/').nth(1).unwrap_or("");
            if !dir.is_empty() {
                self.stems.entry(stem_key(dir)).or_default().push(id);
            }
        }
    }
}

/// The symbol index. Built once per assembly of the index; after an edit that moved entity ids
/// ([`crate::Index::with_changes`] adding or removing a definition) the tables are kept as built
/// and read through [`Moved`], which takes their ids to the current layout and holds the edited
/// files' entities in a small table of its own.
#[derive(Clone, Default)]
pub struct Symbols {
    base: Arc<Maps>,
    moved: Option<Arc<Moved>>,
}

/// How the ids of [`Symbols::base`] map to the current layout.
struct Moved {
    /// The first id of every file in the layout `base` was built for, and now.
    base_firsts: Vec<u32>,
    now_firsts: Vec<u32>,
    /// Files (sorted) whose entities other than the file itself `base` holds as they were:
    /// `overlay` has them as they are, with current ids.
    changed: Vec<u32>,
    overlay: Maps,
}

impl From<Maps> for Symbols {
    fn from(maps: Maps) -> Symbols {
        Symbols { base: Arc::new(maps), moved: None }
    }
}

impl Symbols {
    /// These symbols after the entities of file `file` changed and ids moved: `old_firsts` (asked
    /// for on the first move only) and `now_firsts` are every file's first id before and after,
    /// `entities_of` a changed file's entities (other than the file's own) with their current ids. `None` when too many files
    /// were edited since the tables were built: a fresh build is then due.
    pub(crate) fn moved<'a, I>(
        &self,
        old_firsts: impl Fn() -> Vec<u32>,
        now_firsts: Vec<u32>,
        file: u32,
        entities_of: impl Fn(u32) -> I,
    ) -> Option<Symbols>
    where
        I: Iterator<Item = (EntityId, &'a str, &'a str)>,
    {
        let (base_firsts, mut changed) = match &self.moved {
            Some(m) => (m.base_firsts.clone(), m.changed.clone()),
            None => (old_firsts(), Vec::new()),
        };
        if let Err(at) = changed.binary_search(&file) {
            changed.insert(at, file);
        }
        if changed.len() > MAX_MOVED_FILES {
            return None;
        }
        let mut overlay = Maps::default();
        for &f in &changed {
            for (id, name, qual) in entities_of(f) {
                overlay.add_entity(id, name, qual);
            }
        }
        let moved = Moved { base_firsts, now_firsts, changed, overlay };
        Some(Symbols { base: self.base.clone(), moved: Some(Arc::new(moved)) })
    }

    /// The current id of an id of `base`; `None` for an entity of a changed file (the overlay
    /// has it).
    fn now(m: &Moved, id: EntityId) -> Option<EntityId> {
        let fi = m.base_firsts.partition_point(|&f| f <= id.0).saturating_sub(1);
        let local = id.0 - m.base_firsts[fi];
        if local != 0 && m.changed.binary_search(&(fi as u32)).is_ok() {
            return None;
        }
        Some(EntityId(m.now_firsts[fi] + local))
    }

    /// A list of entities by current id, in id order: from `base` as built, or taken to the
    /// current layout and merged with the overlay's.
    fn ids<'s>(&'s self, pick: impl Fn(&'s Maps) -> Option<&'s Vec<EntityId>>) -> Cow<'s, [EntityId]> {
        let base = pick(&self.base).map_or(&[][..], |v| v.as_slice());
        let Some(m) = &self.moved else { return Cow::Borrowed(base) };
        let mut out: Vec<EntityId> = base.iter().filter_map(|&id| Symbols::now(m, id)).collect();
        if let Some(more) = pick(&m.overlay) {
            out.extend(more);
            out.sort_unstable();
        }
        Cow::Owned(out)
    }

    /// Entities named `name`, best matches first: exact, then case-insensitive, then normalised.
    pub fn lookup(&self, name: &str) -> Vec<(EntityId, Match)> {
        let mut out = Vec::new();
        let mut seen = rustc_hash::FxHashSet::default();
        let mut push = |ids: Cow<'_, [EntityId]>, m: Match, out: &mut Vec<(EntityId, Match)>| {
            for &id in ids.iter() {
                if seen.insert(id) {
                    out.push((id, m));
                }
            }
        };
        push(self.ids(|m| m.exact.get(name)), Match::Exact, &mut out);
        let lower = name.to_lowercase();
        push(self.ids(|m| m.lower.get(&lower)), Match::CaseInsensitive, &mut out);
        let n = normalize_name(name);
        if n.len() >= 4 {
            push(self.ids(|m| m.norm.get(&n)), Match::Normalized, &mut out);
        }
        out
    }

    /// Entities with qualified name `qual` (`Session.send`, `Semaphore::new`), case-insensitive.
    pub fn lookup_qual(&self, qual: &str) -> Cow<'_, [EntityId]> {
        let key = qual.to_lowercase();
        self.ids(|m| m.qual.get(&key))
    }

    /// The file entity of the file at exactly this relative path (case-insensitive).
    pub fn file(&self, path: &str) -> Option<EntityId> {
        let id = self.base.paths.get(&path.to_lowercase()).copied()?;
        match &self.moved {
            Some(m) => Symbols::now(m, id),
            None => Some(id),
        }
    }

    /// File entities of the files whose path ends with `suffix` at a `/` boundary (`models.py`,
    /// `requests/models.py`), in id order.
    pub fn files_ending_with(&self, suffix: &str) -> Vec<EntityId> {
        let s = suffix.to_lowercase();
        let s = s.trim_start_matches("./").trim_start_matches('/');
        if s.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<EntityId> = self
            .base
            .paths
            .iter()
            .filter(|(p, _)| {
                p.as_str() == s || (p.ends_with(s) && p.as_bytes()[p.len() - s.len() - 1] == b'/')
            })
            .filter_map(|(_, &id)| match &self.moved {
                Some(m) => Symbols::now(m, id),
                None => Some(id),
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// File entities of the files whose module stem or package directory is `stem`.
    pub fn files_with_stem(&self, stem: &str) -> Cow<'_, [EntityId]> {
        let key = stem_key(stem);
        self.ids(|m| m.stems.get(&key))
    }
}

/// At most this many files edited in ways that moved ids before the symbol tables are built
/// again (each lookup merges their entities in).
const MAX_MOVED_FILES: usize = 32;

/// A stem as looked up: lower case without `_` and `-` (`use_exhaustive_dependencies`,
/// `useExhaustiveDependencies` and `use-exhaustive-dependencies` are one key).
fn stem_key(stem: &str) -> String {
    normalize_name(stem).replace('-', "")
}
