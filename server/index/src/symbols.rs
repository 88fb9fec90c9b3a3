//! The symbol index: exact, case-insensitive and fuzzy lookup of entity names, qualified names
//! and file paths.

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

#[derive(Default)]
pub struct Symbols {
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

impl Symbols {
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

    /// Entities named `name`, best matches first: exact, then case-insensitive, then normalised.
    pub fn lookup(&self, name: &str) -> Vec<(EntityId, Match)> {
        let mut out = Vec::new();
        let mut seen = rustc_hash::FxHashSet::default();
        let mut push = |ids: Option<&Vec<EntityId>>, m: Match, out: &mut Vec<(EntityId, Match)>| {
            for &id in ids.into_iter().flatten() {
                if seen.insert(id) {
                    out.push((id, m));
                }
            }
        };
        push(self.exact.get(name), Match::Exact, &mut out);
        push(self.lower.get(&name.to_lowercase()), Match::CaseInsensitive, &mut out);
        let n = normalize_name(name);
        if n.len() >= 4 {
            push(self.norm.get(&n), Match::Normalized, &mut out);
        }
        out
    }

    /// Entities with qualified name `qual` (`Session.send`, `Semaphore::new`), case-insensitive.
    pub fn lookup_qual(&self, qual: &str) -> &[EntityId] {
        self.qual.get(&qual.to_lowercase()).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The file entity of the file at exactly this relative path (case-insensitive).
    pub fn file(&self, path: &str) -> Option<EntityId> {
        self.paths.get(&path.to_lowercase()).copied()
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
            .paths
            .iter()
            .filter(|(p, _)| {
                p.as_str() == s || (p.ends_with(s) && p.as_bytes()[p.len() - s.len() - 1] == b'/')
            })
            .map(|(_, &id)| id)
            .collect();
        out.sort_unstable();
        out
    }

    /// File entities of the files whose module stem or package directory is `stem`.
    pub fn files_with_stem(&self, stem: &str) -> &[EntityId] {
        self.stems.get(&stem_key(stem)).map(|v| v.as_slice()).unwrap_or(&[])
    }
}

/// A stem as looked up: lower case without `_` and `-` (`use_exhaustive_dependencies`,
/// `useExhaustiveDependencies` and `use-exhaustive-dependencies` are one key).
fn stem_key(stem: &str) -> String {
    normalize_name(stem).replace('-', "")
}
