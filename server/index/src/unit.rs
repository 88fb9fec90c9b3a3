//! One file's contribution to the indexes: its entities (the file itself first) and each entity's
//! lexical document. Built independently per file, cached by content hash across edits.

use std::sync::Arc;

use locus_syntax::{Entity, Kind, Lang, ParsedFile, Point, Span};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::text;

/// Whether a unit may name `name` (its finder) where name resolution reads it: in a call (callee
/// or receiver), an import, a base, or an impl's type. Never a miss, sometimes a false hit.
pub fn may_mention(u: &FileUnit, name: &memchr::memmem::Finder<'_>) -> bool {
    let holds = |s: &str| name.find(s.as_bytes()).is_some();
    u.calls.may_mention(name)
        || u.imports.iter().any(|i| holds(&i.path) || i.names.iter().any(|n| holds(n)))
        || u.entities
            .iter()
            .any(|e| e.bases.iter().any(|b| holds(b)) || (e.kind == Kind::Impl && holds(&e.name)))
}

/// Strings stored in one buffer: the `i`-th is `text[ends[i - 1]..ends[i]]`. Where a unit keeps
/// many short strings (a document's terms, a file's call names), one allocation instead of one
/// per string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Packed {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Packed {
    fn new<'s>(strings: impl ExactSizeIterator<Item = &'s str>) -> Packed {
        let (mut text, mut ends) = (String::new(), Vec::with_capacity(strings.len()));
        for s in strings {
            text.push_str(s);
            ends.push(text.len() as u32);
        }
        Packed { text: text.into(), ends: ends.into() }
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// An entity's lexical document: its distinct terms, sorted, each with its frequency in the
/// entity. For sympy a `String` per term was 1.1 M allocations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermCounts {
    terms: Packed,
    /// Per term, its frequency.
    counts: Box<[u32]>,
}

impl TermCounts {
    /// The document of `counts` (term → frequency), sorted by term.
    pub fn from_counts<S: AsRef<str>>(counts: impl IntoIterator<Item = (S, u32)>) -> TermCounts {
        let mut v: Vec<(S, u32)> = counts.into_iter().collect();
        v.sort_unstable_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        TermCounts {
            terms: Packed::new(v.iter().map(|(t, _)| t.as_ref())),
            counts: v.iter().map(|t| t.1).collect(),
        }
    }

    /// Number of distinct terms.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The `i`-th term and its frequency.
    pub fn get(&self, i: usize) -> (&str, u32) {
        (self.terms.get(i), self.counts[i])
    }

    /// The terms with their frequencies, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, u32)> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Whether `term` is in the document.
    pub fn contains(&self, term: &str) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.terms.get(mid).cmp(term) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }
}

/// A file's call sites (`receiver.callee(...)`), compact: each name is stored once per file and a
/// site is four numbers. As `locus_syntax::Call`s, sympy's 699 k sites took about 91 MB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    /// The file's distinct callee and receiver names.
    names: Packed,
    sites: Box<[Site]>,
}

/// A call site: name numbers into [`Calls::names`]; [`NONE`] for no caller or no receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Site {
    from: u32,
    callee: u32,
    receiver: u32,
    line: u32,
}

const NONE: u32 = u32::MAX;

/// One call site of [`Calls`], as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSite<'a> {
    /// The innermost enclosing entity (an index into the unit's entities), if any.
    pub from: Option<u32>,
    pub callee: &'a str,
    pub receiver: Option<&'a str>,
    pub line: u32,
}

impl Calls {
    pub fn new(calls: &[locus_syntax::Call]) -> Calls {
        let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
        let mut names: Vec<&str> = Vec::new();
        let mut id = |name| {
            *ids.entry(name).or_insert_with(|| {
                names.push(name);
                names.len() as u32 - 1
            })
        };
        let sites = calls
            .iter()
            .map(|c| Site {
                from: c.from.unwrap_or(NONE),
                callee: id(c.callee.as_str()),
                receiver: c.receiver.as_deref().map_or(NONE, &mut id),
                line: c.line,
            })
            .collect();
        Calls { names: Packed::new(names.into_iter()), sites }
    }

    pub fn len(&self) -> usize {
        self.sites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// The `i`-th call site.
    pub fn get(&self, i: usize) -> CallSite<'_> {
        let s = self.sites[i];
        CallSite {
            from: (s.from != NONE).then_some(s.from),
            callee: self.names.get(s.callee as usize),
            receiver: (s.receiver != NONE).then(|| self.names.get(s.receiver as usize)),
            line: s.line,
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = CallSite<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Whether some callee or receiver name contains `s` (or the names run together do: never a
    /// miss, sometimes a false hit).
    pub fn may_mention(&self, s: &memchr::memmem::Finder<'_>) -> bool {
        s.find(self.names.text.as_bytes()).is_some()
    }

    /// Whether both call the same names from the same entities, lines aside.
    pub fn same_sites(&self, other: &Calls) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| a.from == b.from && a.callee == b.callee && a.receiver == b.receiver)
    }
}

pub struct FileUnit {
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    pub lang: Lang,
    pub text: Arc<str>,
    pub hash: [u8; 32],
    /// `entities[0]` is the file itself; the others are the parsed entities in source order,
    /// with `parent` indices into this same list (a top-level entity's parent is `None`).
    pub entities: Vec<Entity>,
    pub imports: Vec<locus_syntax::Import>,
    pub calls: Calls,
    pub syntax_errors: u32,
    /// The lexical document of each entity, parallel to `entities` (empty: not indexed).
    pub docs: Vec<TermCounts>,
    pub doc_lens: Vec<u32>,
    pub is_test: bool,
}

impl FileUnit {
    pub fn build(path: String, lang: Lang, text: Arc<str>) -> FileUnit {
        let hash = *blake3::hash(text.as_bytes()).as_bytes();
        FileUnit::build_hashed(path, lang, text, hash)
    }

    /// [`FileUnit::build`] when the caller already hashed `text` (blake3) to compare it with a
    /// stored unit.
    pub fn build_hashed(path: String, lang: Lang, text: Arc<str>, hash: [u8; 32]) -> FileUnit {
        FileUnit::build_keeping(path, lang, text, hash, None).0
    }

    /// [`FileUnit::build_hashed`] of a file's text after an edit, reusing `before` (the text
    /// before it and its tree, [`locus_syntax::parse_keeping`]) and returning the new text's
    /// tree for the next edit. The unit is the one a fresh build makes.
    pub fn build_keeping(
        path: String,
        lang: Lang,
        text: Arc<str>,
        hash: [u8; 32],
        before: Option<(&str, &locus_syntax::Tree)>,
    ) -> (FileUnit, Option<locus_syntax::Tree>) {
        let (ParsedFile { entities: parsed, imports, calls, syntax_errors }, tree) =
            locus_syntax::parse_keeping(lang, &text, before);
        let mut entities = Vec::with_capacity(parsed.len() + 1);
        entities.push(file_entity(&path, &text));
        for mut e in parsed {
            e.parent = e.parent.map(|p| p + 1);
            entities.push(e);
        }
        let calls: Vec<locus_syntax::Call> = calls
            .into_iter()
            .map(|mut c| {
                c.from = c.from.map(|f| f + 1);
                c
            })
            .collect();
        let calls = Calls::new(&calls);
        let (docs, doc_lens) = documents(lang, &path, &text, &entities);
        let unit = FileUnit {
            is_test: is_test_path(&path),
            path,
            lang,
            text,
            hash,
            entities,
            imports,
            calls,
            syntax_errors,
            docs,
            doc_lens,
        };
        (unit, tree)
    }

    /// Whether entity `local` (an index into `entities`) is test code: the file is a test file,
    /// or the entity or one of its parents is a Rust test marker (`#[test]`, `#[cfg(test)]`,
    /// `mod tests`).
    pub fn in_test_code(&self, local: usize) -> bool {
        if self.is_test {
            return true;
        }
        if self.lang != Lang::Rust {
            return false;
        }
        let mut at = Some(local);
        // Parents come before their children: the walk ends in at most `local` steps.
        while let Some(i) = at.filter(|&i| i < self.entities.len()) {
            let e = &self.entities[i];
            if e.is_rust_test_marker() {
                return true;
            }
            at = e.parent.map(|p| p as usize).filter(|&p| p < i);
        }
        false
    }

    /// The innermost entity whose span holds `line` (0 = the file itself).
    pub fn innermost_at(&self, line: u32) -> u32 {
        let mut best = 0u32;
        let mut best_len = u32::MAX;
        for (i, e) in self.entities.iter().enumerate().skip(1) {
            if e.span.contains(line) {
                let len = e.span.end.line - e.span.start.line;
                if len <= best_len {
                    best = i as u32;
                    best_len = len;
                }
            }
        }
        best
    }
}

fn file_entity(path: &str, text: &str) -> Entity {
    let lines = text.lines().count() as u32;
    let last_len = text.lines().last().map(|l| l.len()).unwrap_or(0) as u32;
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    Entity {
        kind: Kind::File,
        name,
        qual: String::new(),
        parent: None,
        span: Span {
            start_byte: 0,
            end_byte: text.len() as u32,
            start: Point { line: 0, col: 0 },
            end: Point { line: lines.saturating_sub(1), col: last_len },
        },
        signature: path.to_string(),
        doc: String::new(),
        bases: Vec::new(),
        decorators: Vec::new(),
    }
}

/// Whether a path is test code, benchmarks or examples (the fix of a bug report seldom lives there).
pub fn is_test_path(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    path.starts_with("tests/")
        || path.starts_with("test/")
        || path.starts_with("testing/")
        || path.contains("/tests/")
        || path.contains("/test/")
        || path.contains("/testing/")
        || path.starts_with("benches/")
        || path.contains("/benches/")
        || path.starts_with("examples/")
        || path.contains("/examples/")
        || file.starts_with("test_")
        || file.ends_with("_test.py")
        || file.ends_with("_tests.rs")
        || file.ends_with("_test.rs")
        || file == "conftest.py"
        || file == "tests.rs"
        || file == "test.rs"
}

/// Builds each entity's document: path, qualified name, signature, doc and its *own* text (its
/// span minus its children's spans), so that every byte of the file is in exactly one document.
/// Impl blocks get no document: they are containers, their members carry the text.
fn documents(lang: Lang, path: &str, text: &str, entities: &[Entity]) -> (Vec<TermCounts>, Vec<u32>) {
    let n = entities.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, e) in entities.iter().enumerate().skip(1) {
        children[e.parent.map(|p| p as usize).unwrap_or(0)].push(i);
    }
    let path_terms = text::terms(&path.replace(['/', '.'], " "));
    let mut docs = Vec::with_capacity(n);
    let mut lens = Vec::with_capacity(n);
    for (i, e) in entities.iter().enumerate() {
        if e.kind == Kind::Impl {
            docs.push(TermCounts::default());
            lens.push(0);
            continue;
        }
        let mut counts: FxHashMap<String, u32> = FxHashMap::default();
        let mut len = 0u32;
        let mut add = |t: &str| {
            len += 1;
            match counts.get_mut(t) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(t.to_string(), 1);
                }
            }
        };
        for t in &path_terms {
            add(t);
        }
        if i > 0 {
            text::for_each_term(&e.qual, &mut add);
            // Python docstrings are inside the span already; Rust doc comments precede it.
            if lang == Lang::Rust {
                text::for_each_term(&e.doc, &mut add);
            }
        }
        // Own text: the span with the children's spans cut out.
        let (mut pos, end) = (e.span.start_byte as usize, e.span.end_byte as usize);
        let mut kids: Vec<&Entity> = children[i].iter().map(|&k| &entities[k]).collect();
        kids.sort_by_key(|k| k.span.start_byte);
        for k in kids {
            let (ks, ke) = (k.span.start_byte as usize, k.span.end_byte as usize);
            if ks > pos {
                text::for_each_term(text.get(pos..ks).unwrap_or(""), &mut add);
            }
            pos = pos.max(ke);
        }
        if end > pos {
            text::for_each_term(text.get(pos..end).unwrap_or(""), &mut add);
        }
        docs.push(TermCounts::from_counts(counts));
        lens.push(len);
    }
    (docs, lens)
}
