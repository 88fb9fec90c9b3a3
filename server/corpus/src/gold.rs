//! A file's gold: the function-level items a change modified (its lines placed in the parent
//! version's entities, as locus-syntax names them) and the items it added.
//!
//! Rules, per changed line (blank lines ignored):
//! - a removed line belongs to the innermost item (`Kind::is_item`) of the *parent* around it;
//! - an added line belongs to the innermost item of the *child* around it: if that item exists
//!   in the parent (same qualified name) it was modified, otherwise the line is part of an added
//!   item and counts only in `added` (so a pure insertion inside a function marks that function,
//!   and a new method between two others marks neither them nor their class);
//! - a comment-only line directly in a container's body (a class, a trait, a module) is ignored;
//! - a Rust item covers its attributes and the doc comments above it (Python's decorators and
//!   docstrings are part of a definition already);
//! - in Rust, items of test code (`#[test]` functions, `#[cfg(test)]` or `mod tests` modules)
//!   are never gold.

use locus_syntax::{Kind, Lang, ParsedFile};
use rustc_hash::FxHashSet;

/// What one source file contributes to an instance's gold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileGold {
    /// Qualified names of the parent's items the change modified, in file order.
    pub modified: Vec<String>,
    /// Qualified names of the child's items that the parent lacks, in file order.
    pub added: Vec<String>,
    /// Whether some changed line lies outside test code (else the file is no gold file).
    pub touched: bool,
    /// Whether both versions were UTF-8 and parsed without a syntax error.
    pub clean: bool,
}

/// One version of a file, parsed, reduced to what the placement needs (a version is cached
/// by blob id across commits, so it holds no text, docs or signatures).
#[derive(Debug)]
pub struct Version {
    items: Vec<Item>,
    /// Qualified names of the non-test items.
    quals: FxHashSet<String>,
    /// UTF-8 and no syntax error.
    clean: bool,
}

/// A function-level item (`Kind::is_item`) of a version.
#[derive(Debug)]
struct Item {
    kind: Kind,
    qual: String,
    /// The first line it covers (zero-based): in Rust, its attributes and the doc comments
    /// above it included (the parser's span starts at the item itself), as Python's decorators
    /// and docstrings are part of a definition.
    start_line: u32,
    /// The line the item itself starts on.
    head_line: u32,
    /// The last line it covers (zero-based).
    last_line: u32,
    start_byte: u32,
    end_byte: u32,
    /// Test code, or inside test code.
    test: bool,
}

impl Version {
    /// Parses one version of a file. Total: non-UTF-8 text is decoded lossily (and the version
    /// marked unclean), a broken file yields what tree-sitter recovered.
    pub fn parse(lang: Lang, bytes: &[u8]) -> Version {
        let (text, utf8) = match std::str::from_utf8(bytes) {
            Ok(t) => (std::borrow::Cow::Borrowed(t), true),
            Err(_) => (String::from_utf8_lossy(bytes), false),
        };
        let ParsedFile { entities, syntax_errors, .. } = locus_syntax::parse(lang, &text);
        let mut test = vec![false; entities.len()];
        for (i, e) in entities.iter().enumerate() {
            let inherited = e.parent.map(|p| p as usize).filter(|&p| p < i).is_some_and(|p| test[p]);
            test[i] = inherited || (lang == Lang::Rust && e.is_rust_test_marker());
        }
        let lines: Vec<&str> = if lang == Lang::Rust { text.lines().collect() } else { Vec::new() };
        let items: Vec<Item> = entities
            .into_iter()
            .zip(test)
            .filter(|(e, _)| e.kind.is_item())
            .map(|(e, test)| Item {
                kind: e.kind,
                // A node that ends at column 0 ends with the line before.
                last_line: if e.span.end.col == 0 && e.span.end.line > e.span.start.line {
                    e.span.end.line - 1
                } else {
                    e.span.end.line
                },
                start_line: if lang == Lang::Rust {
                    leading_lines(&lines, e.span.start.line)
                } else {
                    e.span.start.line
                },
                head_line: e.span.start.line,
                start_byte: e.span.start_byte,
                end_byte: e.span.end_byte,
                qual: e.qual,
                test,
            })
            .collect();
        let quals = items.iter().filter(|i| !i.test).map(|i| i.qual.clone()).collect();
        Version { items, quals, clean: utf8 && syntax_errors == 0 }
    }

    /// The innermost item around a zero-based line.
    fn innermost(&self, line: u32) -> Option<&Item> {
        let mut best: Option<&Item> = None;
        for it in &self.items {
            if it.start_line > line || it.last_line < line {
                continue;
            }
            let better = best.is_none_or(|o| {
                (it.start_byte, std::cmp::Reverse(it.end_byte))
                    > (o.start_byte, std::cmp::Reverse(o.end_byte))
            });
            if better {
                best = Some(it);
            }
        }
        best
    }

    /// The position of the first non-test item named `qual`, for ordering.
    fn position(&self, qual: &str) -> usize {
        self.items.iter().position(|i| !i.test && i.qual == qual).unwrap_or(usize::MAX)
    }
}

/// Attribute lines to look through for the `#[` that opens a multi-line attribute.
const MAX_ATTRIBUTE_LINES: usize = 16;

/// The first line of the attributes and comments directly above a Rust item starting at
/// `start` (zero-based): `#[…]` (also over several lines), `///` and `//` lines, with no blank
/// line between (`//!` documents the enclosing module, not the item).
fn leading_lines(lines: &[&str], start: u32) -> u32 {
    let mut s = (start as usize).min(lines.len());
    while s > 0 {
        let prev = lines[s - 1].trim();
        if prev.starts_with("#[") || (prev.starts_with("//") && !prev.starts_with("//!")) {
            s -= 1;
            continue;
        }
        // The last line of a multi-line attribute: find its opening line.
        if prev.ends_with(']') && !prev.is_empty() {
            let opening = (s.saturating_sub(1 + MAX_ATTRIBUTE_LINES)..s - 1)
                .rev()
                .take_while(|&k| !lines[k].trim().is_empty())
                .find(|&k| lines[k].trim().starts_with("#["));
            if let Some(k) = opening {
                s = k;
                continue;
            }
        }
        break;
    }
    s as u32
}

fn is_comment(lang: Lang, line: &str) -> bool {
    let t = line.trim_start();
    match lang {
        Lang::Python => t.starts_with('#'),
        Lang::Rust => {
            t.starts_with("//") || t.starts_with("/*") || t.starts_with("*/") || t.starts_with("* ")
        }
    }
}

fn is_container(kind: Kind) -> bool {
    !matches!(kind, Kind::Function | Kind::Method)
}

/// Places a file's changed lines. `parent` is `None` for an added file, `child` for a deleted
/// one; line numbers are 1-based, as in the diff.
pub fn file_gold(
    lang: Lang,
    parent: Option<&Version>,
    child: Option<&Version>,
    removed: &[(u32, Vec<u8>)],
    added: &[(u32, Vec<u8>)],
) -> FileGold {
    let mut touched = false;
    // (position in the parent, name): file order.
    let mut modified: Vec<(usize, String)> = Vec::new();
    // A comment in a container's body (between methods, say) modifies nothing; one among the
    // doc comments above it documents it.
    let mut mark = |it: &Item, at: u32, line: &str, existed: bool, touched: &mut bool| {
        if it.test {
            return;
        }
        *touched = true;
        if existed && !(is_container(it.kind) && at >= it.head_line && is_comment(lang, line)) {
            modified.push((parent.map_or(usize::MAX, |p| p.position(&it.qual)), it.qual.clone()));
        }
    };
    if let Some(p) = parent {
        for (n, bytes) in removed {
            let line = String::from_utf8_lossy(bytes);
            if line.trim().is_empty() {
                continue;
            }
            let at = n.saturating_sub(1);
            match p.innermost(at) {
                Some(it) => mark(it, at, &line, true, &mut touched),
                None => touched = true,
            }
        }
    }
    if let Some(c) = child {
        for (n, bytes) in added {
            let line = String::from_utf8_lossy(bytes);
            if line.trim().is_empty() {
                continue;
            }
            let at = n.saturating_sub(1);
            match c.innermost(at) {
                Some(it) => {
                    let existed = parent.is_some_and(|p| p.quals.contains(&it.qual));
                    mark(it, at, &line, existed, &mut touched)
                }
                None => touched = true,
            }
        }
    }
    modified.sort();
    let mut seen = FxHashSet::default();
    let modified: Vec<String> =
        modified.into_iter().filter(|(_, q)| seen.insert(q.clone())).map(|(_, q)| q).collect();

    let mut added_names = Vec::new();
    if let Some(c) = child {
        let mut seen = FxHashSet::default();
        for it in &c.items {
            let new = parent.is_none_or(|p| !p.quals.contains(&it.qual));
            if !it.test && new && seen.insert(it.qual.as_str()) {
                added_names.push(it.qual.clone());
            }
        }
    }
    let clean = parent.is_none_or(|p| p.clean) && child.is_none_or(|c| c.clean);
    FileGold { modified, added: added_names, touched, clean }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch;
    use expect_test::{expect, Expect};

    /// Diffs `old` and `new` with git-like hunks written by hand in the fixture: the fixture is
    /// the unified diff itself, the old and new texts are rebuilt from it.
    fn check(lang: Lang, diff: &str, expect: Expect) {
        let files = patch::parse(diff.as_bytes());
        let f = &files[0];
        let (mut old, mut new) = (String::new(), String::new());
        for line in diff.lines().skip_while(|l| !l.starts_with("@@")) {
            match line.as_bytes().first() {
                Some(b'-') => old.push_str(&format!("{}\n", &line[1..])),
                Some(b'+') => new.push_str(&format!("{}\n", &line[1..])),
                Some(b' ') => {
                    old.push_str(&format!("{}\n", &line[1..]));
                    new.push_str(&format!("{}\n", &line[1..]));
                }
                _ => {}
            }
        }
        let (old, new) = (Version::parse(lang, old.as_bytes()), Version::parse(lang, new.as_bytes()));
        let g = file_gold(lang, Some(&old), Some(&new), &f.removed, &f.added);
        expect.assert_eq(&format!(
            "modified {:?}\nadded {:?}\ntouched {} clean {}\n",
            g.modified, g.added, g.touched, g.clean
        ));
    }

    #[test]
    fn python_method_body_edit() {
        check(
            Lang::Python,
            "diff --git a/a.py b/a.py\n@@ -1,6 +1,6 @@\n class Session:\n     def send(self):\n-        return 1\n+        return 2\n \n     def close(self):\n         pass\n",
            expect![[r#"
                modified ["Session.send"]
                added []
                touched true clean true
            "#]],
        );
    }

    #[test]
    fn python_added_method_marks_neither_neighbours_nor_class() {
        check(
            Lang::Python,
            "diff --git a/a.py b/a.py\n@@ -1,6 +1,10 @@\n class Printer:\n     def a(self):\n         return 1\n \n+    # helpers\n+    def b(self):\n+        return 2\n+\n     def c(self):\n         return 3\n",
            expect![[r#"
                modified []
                added ["Printer.b"]
                touched true clean true
            "#]],
        );
    }

    #[test]
    fn python_class_attribute_and_pure_insertion() {
        check(
            Lang::Python,
            "diff --git a/a.py b/a.py\n@@ -1,5 +1,7 @@\n class Printer:\n-    x = 1\n+    x = 2\n     def a(self):\n         y = 1\n+        z = 2\n         return y\n+VERSION = 3\n",
            expect![[r#"
                modified ["Printer", "Printer.a"]
                added []
                touched true clean true
            "#]],
        );
    }

    #[test]
    fn rust_impl_method_and_test_module() {
        check(
            Lang::Rust,
            "diff --git a/src/x.rs b/src/x.rs\n@@ -1,12 +1,12 @@\n struct Parser;\n impl Parser {\n     fn parse(&self) -> u8 {\n-        1\n+        2\n     }\n }\n #[cfg(test)]\n mod tests {\n     #[test]\n     fn parses() {\n-        assert_eq!(1, 1);\n+        assert_eq!(2, 2);\n     }\n }\n",
            expect![[r#"
                modified ["Parser::parse"]
                added []
                touched true clean true
            "#]],
        );
    }

    #[test]
    fn rust_doc_comments_and_attributes_belong_to_their_item() {
        check(
            Lang::Rust,
            "diff --git a/src/x.rs b/src/x.rs\n@@ -1,14 +1,14 @@\n-/// A parser.\n+/// A strict parser.\n pub struct Parser;\n impl Parser {\n-    /// Parses.\n+    /// Parses `s`.\n     #[cfg(any(\n-        unix,\n+        windows,\n     ))]\n     pub fn parse(&self) -> u8 {\n         1\n     }\n \n-    #[inline]\n+    #[inline(always)]\n     pub fn other(&self) {}\n }\n",
            expect![[r#"
                modified ["Parser", "Parser::parse", "Parser::other"]
                added []
                touched true clean true
            "#]],
        );
    }

    #[test]
    fn deleted_and_added_files() {
        let v = |b: &[u8]| Version::parse(Lang::Python, b);
        let g = file_gold(
            Lang::Python,
            None,
            Some(&v(b"def f():\n    pass\n")),
            &[],
            &[(1, b"def f():".to_vec())],
        );
        assert_eq!(g.added, ["f"]);
        assert!(g.modified.is_empty());
        let g = file_gold(
            Lang::Python,
            Some(&v(b"def f():\n    pass\n")),
            None,
            &[(1, b"def f():".to_vec())],
            &[],
        );
        assert_eq!(g.modified, ["f"]);
        let g = file_gold(
            Lang::Python,
            Some(&v(b"def f(:\n    pass\n")),
            Some(&v(b"\xff\n")),
            &[(1, b"def f(:".to_vec())],
            &[],
        );
        assert!(!g.clean);
    }
}
