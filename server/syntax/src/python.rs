//! Python: classes, functions and methods (decorated, async, nested classes), imports and calls.
//!
//! Naming follows the evaluation data: `Class.method`, `Outer.Inner.method`, `func`. Functions and
//! classes defined inside a function are part of that function, not entities of their own.
//! Definitions under module- or class-level `if`/`try`/`with` blocks are entities of that scope.

use tree_sitter::Node;

use crate::{cut_doc, signature, squash, text_of, Call, Entity, Import, Kind, ParsedFile, Span};

#[derive(Clone, Copy)]
enum Scope {
    Module,
    Class(u32),
    Function(u32),
}

impl Scope {
    fn entity(self) -> Option<u32> {
        match self {
            Scope::Module => None,
            Scope::Class(i) | Scope::Function(i) => Some(i),
        }
    }
}

struct Walker<'a, 't> {
    src: &'a str,
    out: &'a mut ParsedFile,
    /// Cursors of finished child walks, reset for the next one: a new cursor per node was a
    /// measurable share of parsing (each allocates its stack).
    cursors: Vec<tree_sitter::TreeCursor<'t>>,
}

/// Recursion guard: deeper trees (generated code) are visited only this far.
const MAX_DEPTH: usize = 400;

pub(crate) fn extract(src: &str, root: Node, out: &mut ParsedFile) {
    let mut w = Walker { src, out, cursors: Vec::new() };
    w.visit_children(root, Scope::Module, 0);
}

impl<'t> Walker<'_, 't> {
    fn visit_children(&mut self, node: Node<'t>, scope: Scope, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut cursor = match self.cursors.pop() {
            Some(mut c) => {
                c.reset(node);
                c
            }
            None => node.walk(),
        };
        if cursor.goto_first_child() {
            loop {
                let child = cursor.node();
                if child.is_named() {
                    self.visit(child, scope, depth + 1);
                }
                if !cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        self.cursors.push(cursor);
    }

    fn visit(&mut self, node: Node<'t>, scope: Scope, depth: usize) {
        match node.kind() {
            "function_definition" => self.function(node, node, scope, Vec::new(), depth),
            "class_definition" => self.class(node, node, scope, Vec::new(), depth),
            "decorated_definition" => {
                let decorators: Vec<String> = {
                    let mut c = node.walk();
                    node.named_children(&mut c)
                        .filter(|n| n.kind() == "decorator")
                        .map(|n| squash(text_of(self.src, n).trim_start_matches('@'), 120))
                        .collect()
                };
                // Calls inside decorators belong to the enclosing scope.
                let mut c = node.walk();
                for d in node.named_children(&mut c).filter(|n| n.kind() == "decorator") {
                    self.visit_children(d, scope, depth + 1);
                }
                match node.child_by_field_name("definition") {
                    Some(def) if def.kind() == "function_definition" => {
                        self.function(node, def, scope, decorators, depth)
                    }
                    Some(def) if def.kind() == "class_definition" => {
                        self.class(node, def, scope, decorators, depth)
                    }
                    Some(def) => self.visit(def, scope, depth + 1),
                    None => {}
                }
            }
            "import_statement" => self.import(node),
            "import_from_statement" => self.import_from(node),
            "call" => {
                self.call(node, scope);
                self.visit_children(node, scope, depth);
            }
            _ => self.visit_children(node, scope, depth),
        }
    }

    /// The parent and name of a definition that is an entity of its own. Definitions inside a
    /// function (nested functions and classes) and nameless ones are not: their contents are
    /// visited as part of the enclosing scope, and `None` is returned.
    fn head(&mut self, def: Node<'t>, scope: Scope, depth: usize) -> Option<(Option<u32>, String)> {
        let parent = match scope {
            Scope::Function(_) => None,
            Scope::Class(p) => Some(Some(p)),
            Scope::Module => Some(None),
        };
        let name =
            def.child_by_field_name("name").map(|n| text_of(self.src, n).to_string()).unwrap_or_default();
        match parent {
            Some(parent) if !name.is_empty() => Some((parent, name)),
            _ => {
                self.visit_children(def, scope, depth);
                None
            }
        }
    }

    /// A definition's header up to its body, without the trailing colon.
    fn header(&self, def: Node, body: Option<Node>) -> String {
        let header_end = body.map(|b| b.start_byte()).unwrap_or(def.end_byte());
        let mut sig = signature(self.src, def.start_byte(), header_end);
        if sig.ends_with(':') {
            sig.pop();
        }
        sig
    }

    fn function(
        &mut self,
        outer: Node<'t>,
        def: Node<'t>,
        scope: Scope,
        decorators: Vec<String>,
        depth: usize,
    ) {
        let Some((parent, name)) = self.head(def, scope, depth) else { return };
        let body = def.child_by_field_name("body");
        let qual = self.qualify(parent, &name);
        let sig = self.header(def, body);
        let idx = self.out.entities.len() as u32;
        self.out.entities.push(Entity {
            kind: if parent.is_some() { Kind::Method } else { Kind::Function },
            name,
            qual,
            parent,
            span: Span::of(outer),
            signature: sig,
            doc: body.map(|b| self.docstring(b)).unwrap_or_default(),
            bases: Vec::new(),
            decorators,
        });
        // Default values and annotations are evaluated in the enclosing scope, but attributing
        // their calls to the function is what a reader expects.
        self.visit_children(def, Scope::Function(idx), depth);
    }

    fn class(&mut self, outer: Node<'t>, def: Node<'t>, scope: Scope, decorators: Vec<String>, depth: usize) {
        let Some((parent, name)) = self.head(def, scope, depth) else { return };
        let body = def.child_by_field_name("body");
        let mut bases = Vec::new();
        if let Some(sup) = def.child_by_field_name("superclasses") {
            let mut c = sup.walk();
            for b in sup.named_children(&mut c) {
                if matches!(b.kind(), "identifier" | "attribute" | "subscript") {
                    bases.push(squash(text_of(self.src, b), 120));
                }
            }
        }
        let sig = self.header(def, body);
        let idx = self.out.entities.len() as u32;
        self.out.entities.push(Entity {
            kind: Kind::Class,
            qual: self.qualify(parent, &name),
            name,
            parent,
            span: Span::of(outer),
            signature: sig,
            doc: body.map(|b| self.docstring(b)).unwrap_or_default(),
            bases,
            decorators,
        });
        if let Some(sup) = def.child_by_field_name("superclasses") {
            self.visit_children(sup, scope, depth);
        }
        if let Some(body) = body {
            self.visit_children(body, Scope::Class(idx), depth);
        }
    }

    fn qualify(&self, parent: Option<u32>, name: &str) -> String {
        match parent {
            Some(p) => format!("{}.{}", self.out.entities[p as usize].qual, name),
            None => name.to_string(),
        }
    }

    fn docstring(&self, body: Node) -> String {
        let Some(first) = body.named_child(0) else {
            return String::new();
        };
        if first.kind() != "expression_statement" {
            return String::new();
        }
        let Some(s) = first.named_child(0) else {
            return String::new();
        };
        if s.kind() != "string" {
            return String::new();
        }
        let raw = text_of(self.src, s);
        let raw = raw.trim_start_matches(['r', 'R', 'u', 'U', 'b', 'B', 'f', 'F']);
        let inner = raw
            .strip_prefix("\"\"\"")
            .or_else(|| raw.strip_prefix("'''"))
            .or_else(|| raw.strip_prefix('"'))
            .or_else(|| raw.strip_prefix('\''))
            .unwrap_or(raw);
        let inner = inner
            .strip_suffix("\"\"\"")
            .or_else(|| inner.strip_suffix("'''"))
            .or_else(|| inner.strip_suffix('"'))
            .or_else(|| inner.strip_suffix('\''))
            .unwrap_or(inner);
        cut_doc(inner)
    }

    fn call(&mut self, node: Node, scope: Scope) {
        let Some(f) = node.child_by_field_name("function") else {
            return;
        };
        let (callee, receiver) = match f.kind() {
            "identifier" => (text_of(self.src, f).to_string(), None),
            "attribute" => {
                let Some(attr) = f.child_by_field_name("attribute") else {
                    return;
                };
                let recv = f.child_by_field_name("object").map(|o| squash(text_of(self.src, o), 100));
                (text_of(self.src, attr).to_string(), recv)
            }
            _ => return,
        };
        self.out.calls.push(Call {
            from: scope.entity(),
            callee,
            receiver,
            line: node.start_position().row as u32,
        });
    }

    fn import(&mut self, node: Node) {
        let line = node.start_position().row as u32;
        let mut c = node.walk();
        for n in node.children_by_field_name("name", &mut c) {
            let (path, alias) = match n.kind() {
                "aliased_import" => (
                    n.child_by_field_name("name").map(|x| text_of(self.src, x)),
                    n.child_by_field_name("alias").map(|x| text_of(self.src, x)),
                ),
                _ => (Some(text_of(self.src, n)), None),
            };
            if let Some(path) = path {
                let bound = alias.unwrap_or(path).to_string();
                self.out.imports.push(Import {
                    path: path.to_string(),
                    names: vec![bound],
                    module: true,
                    line,
                });
            }
        }
    }

    fn import_from(&mut self, node: Node) {
        let line = node.start_position().row as u32;
        let Some(module) = node.child_by_field_name("module_name") else {
            return;
        };
        let mut names = Vec::new();
        let mut c = node.walk();
        for n in node.children_by_field_name("name", &mut c) {
            let name = match n.kind() {
                "aliased_import" => n.child_by_field_name("name").map(|x| text_of(self.src, x)),
                _ => Some(text_of(self.src, n)),
            };
            if let Some(name) = name {
                names.push(name.to_string());
            }
        }
        self.out.imports.push(Import {
            path: squash(text_of(self.src, module), 200),
            names,
            module: false,
            line,
        });
    }
}
