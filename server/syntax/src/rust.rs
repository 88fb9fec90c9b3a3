//! Rust: functions, structs, enums, unions, traits, impl blocks, inline modules, `macro_rules!`,
//! `use` declarations and call sites.
//!
//! Naming follows the evaluation data: methods of `impl Type` and of `impl Trait for Type` are
//! `Type::method`; trait methods are `Trait::method`; items inside inline modules keep their bare
//! names. Item-level macro invocations whose bodies hold items (`cfg_rt! { pub fn .. }`, common in
//! large crates) are parsed again as items, so the functions they wrap are not lost.

use tree_sitter::{Node, Parser};

use crate::{
    base_type_name, cut_doc, signature, squash, text_of, Call, Entity, Import, Kind, ParsedFile, Span,
};

#[derive(Clone)]
enum Ctx {
    /// File or inline-module level.
    Items,
    /// Inside `impl .. Type`: members are `Type::name`.
    Impl(String),
    /// Inside `trait Name`: members are `Name::name`.
    Trait(String),
}

/// Item-level macro bodies re-parsed per file at most; generated files can hold thousands.
const MAX_MACRO_REPARSES: u32 = 256;
/// Recursion guard for nesting of modules, macros and expressions.
const MAX_DEPTH: usize = 400;

struct Walker<'a> {
    src: &'a str,
    out: &'a mut ParsedFile,
    parser: &'a mut Parser,
    reparses: &'a mut u32,
}

pub(crate) fn extract(src: &str, parser: &mut Parser, root: Node, out: &mut ParsedFile) {
    let mut reparses = 0;
    let mut w = Walker { src, out, parser, reparses: &mut reparses };
    w.items(root, &Ctx::Items, None, 0);
}

impl Walker<'_> {
    fn items(&mut self, container: Node, ctx: &Ctx, parent: Option<u32>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut cursor = container.walk();
        let children: Vec<Node> = container.named_children(&mut cursor).collect();
        for node in children {
            match node.kind() {
                "function_item" | "function_signature_item" => self.function(node, ctx, parent, depth),
                "struct_item" | "enum_item" | "union_item" => {
                    let kind = match node.kind() {
                        "struct_item" => Kind::Struct,
                        "enum_item" => Kind::Enum,
                        _ => Kind::Union,
                    };
                    if let Some(idx) = self.named_item(node, kind, parent, Vec::new()) {
                        self.calls(node, Some(idx), depth);
                    }
                }
                "trait_item" => {
                    if let Some(idx) = self.named_item(node, Kind::Trait, parent, Vec::new()) {
                        let name = self.out.entities[idx as usize].name.clone();
                        if let Some(body) = node.child_by_field_name("body") {
                            self.items(body, &Ctx::Trait(name), Some(idx), depth + 1);
                        }
                    }
                }
                "impl_item" => self.impl_block(node, parent, depth),
                "mod_item" => {
                    if let Some(body) = node.child_by_field_name("body") {
                        if let Some(idx) = self.named_item(node, Kind::Module, parent, Vec::new()) {
                            self.items(body, &Ctx::Items, Some(idx), depth + 1);
                        }
                    }
                }
                "macro_definition" => {
                    self.named_item(node, Kind::Macro, parent, Vec::new());
                }
                "macro_invocation" => self.macro_items(node, ctx, parent, depth),
                "use_declaration" => self.use_decl(node),
                "const_item" | "static_item" => self.calls(node, parent, depth),
                _ => {}
            }
        }
    }

    fn qualify(&self, ctx: &Ctx, name: &str) -> String {
        match ctx {
            Ctx::Impl(ty) | Ctx::Trait(ty) => format!("{ty}::{name}"),
            // Items of inline modules keep bare names (the evaluation's convention).
            Ctx::Items => name.to_string(),
        }
    }

    fn function(&mut self, node: Node, ctx: &Ctx, parent: Option<u32>, depth: usize) {
        let Some(name) = node.child_by_field_name("name").map(|n| text_of(self.src, n).to_string()) else {
            return;
        };
        let body = node.child_by_field_name("body");
        let kind = match ctx {
            Ctx::Items => Kind::Function,
            _ => Kind::Method,
        };
        let header_end = body.map(|b| b.start_byte()).unwrap_or(node.end_byte());
        let mut sig = signature(self.src, node.start_byte(), header_end);
        if sig.ends_with(';') {
            sig.pop();
        }
        let idx = self.out.entities.len() as u32;
        self.out.entities.push(Entity {
            kind,
            qual: self.qualify(ctx, &name),
            name,
            parent,
            span: Span::of(node),
            signature: sig,
            doc: self.doc_comments(node),
            bases: Vec::new(),
            decorators: self.attributes(node),
        });
        if let Some(body) = body {
            self.calls(body, Some(idx), depth);
        }
    }

    fn named_item(&mut self, node: Node, kind: Kind, parent: Option<u32>, bases: Vec<String>) -> Option<u32> {
        let name = node.child_by_field_name("name").map(|n| text_of(self.src, n).to_string())?;
        let header_end = node.child_by_field_name("body").map(|b| b.start_byte()).unwrap_or(node.end_byte());
        let idx = self.out.entities.len() as u32;
        self.out.entities.push(Entity {
            kind,
            qual: name.clone(),
            name,
            parent,
            span: Span::of(node),
            signature: signature(self.src, node.start_byte(), header_end),
            doc: self.doc_comments(node),
            bases,
            decorators: self.attributes(node),
        });
        Some(idx)
    }

    fn impl_block(&mut self, node: Node, parent: Option<u32>, depth: usize) {
        let Some(ty) = node.child_by_field_name("type").map(|t| base_type_name(text_of(self.src, t))) else {
            return;
        };
        if ty.is_empty() {
            return;
        }
        let tr = node.child_by_field_name("trait").map(|t| base_type_name(text_of(self.src, t)));
        let qual = match &tr {
            Some(t) => format!("impl {t} for {ty}"),
            None => format!("impl {ty}"),
        };
        let body = node.child_by_field_name("body");
        let header_end = body.map(|b| b.start_byte()).unwrap_or(node.end_byte());
        let idx = self.out.entities.len() as u32;
        self.out.entities.push(Entity {
            kind: Kind::Impl,
            name: ty.clone(),
            qual,
            parent,
            span: Span::of(node),
            signature: signature(self.src, node.start_byte(), header_end),
            doc: self.doc_comments(node),
            bases: tr.into_iter().collect(),
            decorators: self.attributes(node),
        });
        if let Some(body) = body {
            self.items(body, &Ctx::Impl(ty), Some(idx), depth + 1);
        }
    }

    /// Re-parses an item-level macro body (`cfg_x! { items }`) as items of the same context.
    /// The text outside the body is blanked (newlines kept), so positions stay those of the file.
    fn macro_items(&mut self, node: Node, ctx: &Ctx, parent: Option<u32>, depth: usize) {
        let mut c = node.walk();
        let Some(tt) = node.named_children(&mut c).find(|n| n.kind() == "token_tree") else {
            return;
        };
        // The body between the delimiters. An unclosed one (a buffer mid-edit) runs to the end
        // of the tree, which need not be a delimiter or even one byte long.
        let n = tt.child_count();
        let start = match tt.child(0) {
            Some(open) if matches!(open.kind(), "(" | "[" | "{") => open.end_byte(),
            _ => tt.start_byte(),
        };
        let end = match tt.child(n.saturating_sub(1)) {
            Some(close) if n > 1 && matches!(close.kind(), ")" | "]" | "}") => close.start_byte(),
            _ => tt.end_byte(),
        };
        if start >= end || *self.reparses >= MAX_MACRO_REPARSES {
            return;
        }
        let inner = &self.src[start..end];
        let holds_items = ["fn ", "struct ", "enum ", "impl", "trait ", "mod ", "macro_rules!"]
            .iter()
            .any(|k| inner.contains(k));
        if !holds_items {
            self.calls(tt, parent, depth);
            return;
        }
        *self.reparses += 1;
        let mut blanked = String::with_capacity(self.src.len());
        for (i, ch) in self.src.char_indices() {
            if (start..end).contains(&i) || ch == '\n' {
                blanked.push(ch);
            } else {
                // Same byte length, so every position in the re-parse is the file's own.
                blanked.extend(std::iter::repeat_n(' ', ch.len_utf8()));
            }
        }
        let Some(tree) = self.parser.parse(&blanked, None) else {
            return;
        };
        let mut inner = Walker {
            src: &blanked,
            out: &mut *self.out,
            parser: &mut *self.parser,
            reparses: &mut *self.reparses,
        };
        inner.items(tree.root_node(), ctx, parent, depth + 1);
    }

    /// Records call sites under `node` as calls from `from`. Calls inside macro arguments
    /// (`assert!(f(x))`) are recognised by shape: an identifier followed by a `( .. )` group.
    fn calls(&mut self, node: Node, from: Option<u32>, depth: usize) {
        let mut stack = vec![(node, depth)];
        while let Some((n, d)) = stack.pop() {
            if d > MAX_DEPTH * 4 {
                continue;
            }
            match n.kind() {
                "call_expression" => self.call(n, from),
                "token_tree" => self.token_tree_calls(n, from),
                _ => {}
            }
            let mut c = n.walk();
            for child in n.named_children(&mut c) {
                stack.push((child, d + 1));
            }
        }
    }

    fn call(&mut self, node: Node, from: Option<u32>) {
        let Some(mut f) = node.child_by_field_name("function") else {
            return;
        };
        if f.kind() == "generic_function" {
            match f.child_by_field_name("function") {
                Some(inner) => f = inner,
                None => return,
            }
        }
        let (callee, receiver) = match f.kind() {
            "identifier" => (text_of(self.src, f).to_string(), None),
            "field_expression" => {
                let Some(field) = f.child_by_field_name("field") else {
                    return;
                };
                let recv = f.child_by_field_name("value").map(|v| squash(text_of(self.src, v), 100));
                (text_of(self.src, field).to_string(), recv)
            }
            "scoped_identifier" => {
                let Some(name) = f.child_by_field_name("name") else {
                    return;
                };
                let recv = f.child_by_field_name("path").map(|p| squash(text_of(self.src, p), 100));
                (text_of(self.src, name).to_string(), recv)
            }
            _ => return,
        };
        self.out.calls.push(Call { from, callee, receiver, line: node.start_position().row as u32 });
    }

    fn token_tree_calls(&mut self, tt: Node, from: Option<u32>) {
        let mut c = tt.walk();
        let kids: Vec<Node> = tt.children(&mut c).collect();
        for pair in kids.windows(2) {
            if pair[0].kind() == "identifier"
                && pair[1].kind() == "token_tree"
                && text_of(self.src, pair[1]).starts_with('(')
            {
                self.out.calls.push(Call {
                    from,
                    callee: text_of(self.src, pair[0]).to_string(),
                    receiver: None,
                    line: pair[0].start_position().row as u32,
                });
            }
        }
    }

    fn use_decl(&mut self, node: Node) {
        let Some(arg) = node.child_by_field_name("argument") else {
            return;
        };
        let text = squash(text_of(self.src, arg), 400);
        let line = node.start_position().row as u32;
        let (prefix, list) = match text.split_once('{') {
            Some((p, rest)) => (p.trim_end_matches("::").to_string(), rest.trim_end_matches('}').to_string()),
            None => {
                let name = last_use_name(&text);
                self.out.imports.push(Import { path: text.clone(), names: vec![name], module: false, line });
                return;
            }
        };
        // One level of `{a, b::c, d as e}` is expanded; deeper groups are kept whole.
        let mut names = Vec::new();
        let mut depth = 0;
        let mut cur = String::new();
        for ch in list.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.push(std::mem::take(&mut cur));
                    continue;
                }
                _ => {}
            }
            cur.push(ch);
        }
        names.push(cur);
        for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let path = if n == "self" { prefix.clone() } else { format!("{prefix}::{n}") };
            self.out.imports.push(Import { names: vec![last_use_name(&path)], path, module: false, line });
        }
    }

    fn doc_comments(&self, node: Node) -> String {
        let mut lines = Vec::new();
        let mut prev = node.prev_sibling();
        while let Some(p) = prev {
            match p.kind() {
                "line_comment" | "block_comment" => {
                    let t = text_of(self.src, p);
                    if let Some(d) = t.strip_prefix("///") {
                        lines.push(d.trim().to_string());
                    } else if let Some(d) = t.strip_prefix("/**") {
                        lines.push(d.trim_end_matches("*/").trim().to_string());
                    } else {
                        break;
                    }
                }
                "attribute_item" => {}
                _ => break,
            }
            prev = p.prev_sibling();
        }
        lines.reverse();
        cut_doc(&lines.join("\n"))
    }

    fn attributes(&self, node: Node) -> Vec<String> {
        let mut out = Vec::new();
        let mut prev = node.prev_sibling();
        while let Some(p) = prev {
            match p.kind() {
                "attribute_item" => out.push(squash(text_of(self.src, p), 120)),
                "line_comment" | "block_comment" => {}
                _ => break,
            }
            prev = p.prev_sibling();
        }
        out.reverse();
        out
    }
}

fn last_use_name(path: &str) -> String {
    if let Some((_, alias)) = path.rsplit_once(" as ") {
        return alias.trim().to_string();
    }
    path.rsplit("::").next().unwrap_or(path).trim().to_string()
}
