//! Checks shared by the fuzz targets: what every parse of any text must satisfy.

use std::sync::Arc;

use locus_index::FileUnit;
use locus_syntax::{parse, Lang};

/// Parses `text` as `lang`, builds its index unit, and asserts what every consumer relies on:
/// spans inside the text at character boundaries, parents before children and around them,
/// named entities, calls attributed to existing entities, one document per entity.
pub fn check_parse(lang: Lang, text: &str) {
    let parsed = parse(lang, text);
    let lines = text.matches('\n').count() as u32;
    for (i, e) in parsed.entities.iter().enumerate() {
        let (s, t) = (e.span.start_byte as usize, e.span.end_byte as usize);
        assert!(s <= t && t <= text.len(), "entity {i} `{}` span {s}..{t} outside 0..{}", e.qual, text.len());
        assert!(
            text.is_char_boundary(s) && text.is_char_boundary(t),
            "entity {i} span {s}..{t} splits a char"
        );
        assert!((e.span.start.line, e.span.start.col) <= (e.span.end.line, e.span.end.col));
        assert!(e.span.end.line <= lines, "entity {i} ends on line {} of {lines}", e.span.end.line);
        assert!(!e.name.is_empty(), "entity {i} ({:?}, qual `{}`) has no name", e.kind, e.qual);
        if let Some(p) = e.parent {
            assert!((p as usize) < i, "entity {i}'s parent {p} is not before it");
            let ps = &parsed.entities[p as usize].span;
            assert!(
                ps.start_byte as usize <= s && t <= ps.end_byte as usize,
                "entity {i} outside its parent {p}"
            );
        }
    }
    for c in &parsed.calls {
        if let Some(f) = c.from {
            assert!(
                (f as usize) < parsed.entities.len(),
                "call from entity {f} of {}",
                parsed.entities.len()
            );
        }
    }
    let path = match lang {
        Lang::Python => "pkg/mod.py",
        Lang::Rust => "src/lib.rs",
    };
    let unit = FileUnit::build(path.into(), lang, Arc::from(text));
    assert_eq!(unit.entities.len(), parsed.entities.len() + 1);
    assert_eq!(unit.docs.len(), unit.entities.len());
}
