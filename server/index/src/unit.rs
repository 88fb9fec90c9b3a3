//! One file's contribution to the indexes: its entities (the file itself first) and each entity's
//! lexical document. Built independently per file, cached by content hash across edits.

use std::sync::Arc;

use locus_syntax::{parse, Entity, Kind, Lang, ParsedFile, Point, Span};
use rustc_hash::FxHashMap;

use crate::text;

/// Terms with their frequency in one document, sorted by term.
pub type TermCounts = Vec<(String, u32)>;

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
    pub calls: Vec<locus_syntax::Call>,
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
        let ParsedFile { entities: parsed, imports, calls, syntax_errors } = parse(lang, &text);
        let mut entities = Vec::with_capacity(parsed.len() + 1);
        entities.push(file_entity(&path, &text));
        for mut e in parsed {
            e.parent = e.parent.map(|p| p + 1);
            entities.push(e);
        }
        let calls = calls
            .into_iter()
            .map(|mut c| {
                c.from = c.from.map(|f| f + 1);
                c
            })
            .collect();
        let (docs, doc_lens) = documents(lang, &path, &text, &entities);
        FileUnit {
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
        }
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
            docs.push(Vec::new());
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
        let mut v: TermCounts = counts.into_iter().collect();
        v.sort_unstable();
        docs.push(v);
        lens.push(len);
    }
    (docs, lens)
}
