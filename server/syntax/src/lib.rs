//! Parses one source file (Python or Rust) into Locus entities, imports and call sites.
//!
//! Architecture invariant: this crate is pure. It never reads the disk and never fails on user
//! code: whatever tree-sitter recovers from a broken file is returned, and the number of syntax
//! errors is reported next to it.

mod python;
mod rust;

use serde::{Deserialize, Serialize};

/// A language Locus understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Python,
    Rust,
}

impl Lang {
    /// Its lower-case name, as the models' records write it (`"python"`, `"rust"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Rust => "rust",
        }
    }

    /// The language of a path, by extension.
    pub fn of_path(path: &str) -> Option<Lang> {
        let ext = path.rsplit_once('.')?.1;
        match ext {
            "py" | "pyi" => Some(Lang::Python),
            "rs" => Some(Lang::Rust),
            _ => None,
        }
    }

    /// The separator between a container and a member in qualified names (`A.b`, `A::b`).
    pub fn member_sep(self) -> &'static str {
        match self {
            Lang::Python => ".",
            Lang::Rust => "::",
        }
    }
}

/// What kind of code entity a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Class,
    Struct,
    Enum,
    Union,
    Trait,
    Impl,
    Module,
    Macro,
    Function,
    Method,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Class => "class",
            Kind::Struct => "struct",
            Kind::Enum => "enum",
            Kind::Union => "union",
            Kind::Trait => "trait",
            Kind::Impl => "impl",
            Kind::Module => "module",
            Kind::Macro => "macro",
            Kind::Function => "function",
            Kind::Method => "method",
        }
    }

    /// Whether the entity is a named item a fix is located in — a candidate of the "function"
    /// ranking. Not only functions: the evaluation's gold names the innermost named item around
    /// an edit, which includes classes, and for Rust types, traits, macros and inline modules.
    /// Files are ranked apart, and impl blocks are containers only (their members are
    /// `Type::method`).
    pub fn is_item(self) -> bool {
        !matches!(self, Kind::File | Kind::Impl)
    }
}

/// A position in a file: zero-based line and byte column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub line: u32,
    pub col: u32,
}

/// Where an entity sits in its file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start_byte: u32,
    pub end_byte: u32,
    pub start: Point,
    pub end: Point,
}

impl Span {
    fn of(node: tree_sitter::Node) -> Span {
        let (s, e) = (node.start_position(), node.end_position());
        Span {
            start_byte: node.start_byte() as u32,
            end_byte: node.end_byte() as u32,
            start: Point { line: s.row as u32, col: s.column as u32 },
            end: Point { line: e.row as u32, col: e.column as u32 },
        }
    }

    pub fn contains(&self, line: u32) -> bool {
        self.start.line <= line && line <= self.end.line
    }
}

/// A named code entity: a class, type, trait, impl block, module, macro, function or method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub kind: Kind,
    /// The entity's own name (`method`).
    pub name: String,
    /// The name qualified inside its file, in the evaluation's convention (`Class.method`,
    /// `Type::method`).
    pub qual: String,
    /// Index of the enclosing entity in the same file's list.
    pub parent: Option<u32>,
    pub span: Span,
    /// The header, whitespace collapsed (`def f(a, b) -> int`, `pub fn f(&self) -> u8`).
    pub signature: String,
    /// Docstring or doc comments, without markers.
    pub doc: String,
    /// Base classes (Python) or the implemented trait (Rust impl blocks), as written.
    pub bases: Vec<String>,
    pub decorators: Vec<String>,
}

impl Entity {
    /// Whether this Rust item marks test code: a `#[test]` (or `#[tokio::test]`, `#[test_case]`,
    /// `#[rstest]`) function, a `#[cfg(test…)]` item or a module named `tests` / `test`. What
    /// it holds is test code too (callers walk the parents).
    pub fn is_rust_test_marker(&self) -> bool {
        if self.kind == Kind::Module && matches!(self.name.as_str(), "tests" | "test") {
            return true;
        }
        // Every marker says `test`: most attributes (`#[derive(…)]`) are rejected without a copy.
        self.decorators.iter().filter(|d| d.contains("test")).any(|d| {
            let d = d.replace(' ', "");
            d == "#[test]"
                || d.starts_with("#[cfg(test")
                || d.contains("::test]")
                || d.contains("::test(")
                || d.starts_with("#[test_case")
                || d.starts_with("#[rstest")
        })
    }
}

/// One import statement's effect: `module` and the names bound from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// Dotted (`a.b`) or `::` path (`crate::a::b`) of the imported module or item.
    pub path: String,
    /// Names bound (the last segment, or the alias).
    pub names: Vec<String>,
    /// Whether the names bind the module itself (`import a.b as c`) rather than items in it.
    pub module: bool,
    pub line: u32,
}

/// A call site, as written: `receiver.callee(...)`, `Receiver::callee(...)` or `callee(...)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The innermost enclosing entity, if any.
    pub from: Option<u32>,
    pub callee: String,
    pub receiver: Option<String>,
    pub line: u32,
}

/// Everything Locus extracts from one file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ParsedFile {
    pub entities: Vec<Entity>,
    pub imports: Vec<Import>,
    pub calls: Vec<Call>,
    /// Number of ERROR / MISSING nodes tree-sitter recovered from.
    pub syntax_errors: u32,
}

/// Longest signature kept; longer headers are cut at a character boundary.
const MAX_SIGNATURE: usize = 300;
/// Longest docstring kept.
const MAX_DOC: usize = 2000;

/// Parses `text` as `lang`. Never fails: an unparsable file yields what could be recovered.
pub fn parse(lang: Lang, text: &str) -> ParsedFile {
    parse_keeping(lang, text, None).0
}

/// A file's syntax tree, kept to parse the file again after an edit ([`parse_keeping`]): only
/// the part of the tree the edit touched is parsed again.
pub struct Tree {
    lang: Lang,
    tree: tree_sitter::Tree,
}

impl Tree {
    /// The syntax tree of `text` alone (nothing extracted): kept before a file's first edit.
    pub fn of(lang: Lang, text: &str) -> Option<Tree> {
        let mut parser = tree_sitter::Parser::new();
        parser.set_language(&language(lang)).ok()?;
        Some(Tree { lang, tree: parser.parse(text, None)? })
    }
}

fn language(lang: Lang) -> tree_sitter::Language {
    match lang {
        Lang::Python => tree_sitter_python::LANGUAGE.into(),
        Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
    }
}

/// [`parse`], reusing `before` — the tree of `before_text`, this file's text before an edit —
/// where the edit left it intact, and returning the tree of `text` for the next edit. The edit
/// is what lies between the texts' common start and common end. The result is [`parse`]'s.
pub fn parse_keeping(lang: Lang, text: &str, before: Option<(&str, &Tree)>) -> (ParsedFile, Option<Tree>) {
    let mut parser = tree_sitter::Parser::new();
    if parser.set_language(&language(lang)).is_err() {
        return (ParsedFile::default(), None);
    }
    let old = before.filter(|(_, t)| t.lang == lang).map(|(before_text, t)| {
        let mut tree = t.tree.clone();
        tree.edit(&edit_between(before_text, text));
        tree
    });
    let Some(tree) = parser.parse(text, old.as_ref()) else {
        return (ParsedFile::default(), None);
    };
    let mut out = ParsedFile { syntax_errors: count_errors(tree.root_node()), ..ParsedFile::default() };
    match lang {
        Lang::Python => python::extract(text, tree.root_node(), &mut out),
        Lang::Rust => rust::extract(text, &mut parser, tree.root_node(), &mut out),
    }
    (out, Some(Tree { lang, tree }))
}

/// The edit that turns `before` into `after`: the bytes between their common start and their
/// common end (on character boundaries) replaced.
fn edit_between(before: &str, after: &str) -> tree_sitter::InputEdit {
    let (a, b) = (before.as_bytes(), after.as_bytes());
    let mut start = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    while !before.is_char_boundary(start) {
        start -= 1;
    }
    let most = a.len().min(b.len()) - start;
    let mut tail = a.iter().rev().zip(b.iter().rev()).take(most).take_while(|(x, y)| x == y).count();
    while !before.is_char_boundary(a.len() - tail) || !after.is_char_boundary(b.len() - tail) {
        tail -= 1;
    }
    let point = |text: &[u8], at: usize| {
        let line_start = text[..at].iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
        let row = text[..line_start].iter().filter(|&&c| c == b'\n').count();
        tree_sitter::Point { row, column: at - line_start }
    };
    tree_sitter::InputEdit {
        start_byte: start,
        old_end_byte: a.len() - tail,
        new_end_byte: b.len() - tail,
        start_position: point(a, start),
        old_end_position: point(a, a.len() - tail),
        new_end_position: point(b, b.len() - tail),
    }
}

fn count_errors(root: tree_sitter::Node) -> u32 {
    if !root.has_error() {
        return 0;
    }
    let mut n = 0;
    let mut cursor = root.walk();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            n += 1;
            continue;
        }
        if node.has_error() {
            stack.extend(node.children(&mut cursor));
        }
    }
    n
}

pub(crate) fn text_of<'a>(src: &'a str, node: tree_sitter::Node) -> &'a str {
    src.get(node.start_byte()..node.end_byte()).unwrap_or("")
}

/// Collapses runs of whitespace to one space and cuts to `max` bytes at a char boundary.
pub(crate) fn squash(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

pub(crate) fn signature(src: &str, start: usize, end: usize) -> String {
    squash(src.get(start..end).unwrap_or(""), MAX_SIGNATURE)
}

pub(crate) fn cut_doc(s: &str) -> String {
    let mut s = s.trim().to_string();
    if s.len() > MAX_DOC {
        let mut cut = MAX_DOC;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Strips generics, references and paths from a type as written: `&'a mut foo::Bar<T>` → `Bar`.
pub fn base_type_name(ty: &str) -> String {
    let mut t = ty.trim();
    loop {
        let before = t;
        t = t.trim_start_matches('&').trim_start();
        if let Some(rest) = t.strip_prefix('\'') {
            t = rest.split_once(' ').map(|x| x.1).unwrap_or("").trim_start();
        }
        t = t.strip_prefix("mut ").unwrap_or(t).trim_start();
        t = t.strip_prefix("dyn ").unwrap_or(t).trim_start();
        if t == before {
            break;
        }
    }
    let t = t.split('<').next().unwrap_or(t);
    let t = t.rsplit("::").next().unwrap_or(t);
    t.trim().to_string()
}

#[cfg(test)]
mod tests;
