//! `textDocument/didChange`: sequences of (range, text) edits in UTF-16 positions applied to a
//! document through the server's own `apply_change`, checked after every edit against a model
//! written from the LSP specification (a UTF-16 buffer; lines end at `\n`, `\r\n` or `\r`; a
//! column past a line's end means its end, a line past the last means the text's end).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

#[derive(Arbitrary, Debug)]
struct Pos {
    line: u8,
    character: u8,
}

impl Pos {
    /// Small numbers reach every line and column of a short text; 255 stands for "far past".
    fn lsp(&self) -> Position {
        let far = |v: u8| if v == u8::MAX { u32::MAX } else { v as u32 };
        Position { line: far(self.line), character: far(self.character) }
    }
}

#[derive(Arbitrary, Debug)]
struct Edit {
    range: Option<(Pos, Pos)>,
    text: String,
}

#[derive(Arbitrary, Debug)]
struct Input {
    start: String,
    edits: Vec<Edit>,
    last: String,
}

/// The UTF-16 offset of `pos` in `doc`, by the specification.
fn model_offset(doc: &[u16], pos: Position) -> usize {
    let (cr, lf) = (b'\r' as u16, b'\n' as u16);
    let mut start = 0;
    for _ in 0..pos.line {
        let Some(i) = doc[start..].iter().position(|&u| u == cr || u == lf) else { return doc.len() };
        let i = start + i;
        start = if doc[i] == cr && doc.get(i + 1) == Some(&lf) { i + 2 } else { i + 1 };
    }
    let end = doc[start..].iter().position(|&u| u == cr || u == lf).map_or(doc.len(), |i| start + i);
    let mut off = start + (pos.character as usize).min(end - start);
    // A column inside a surrogate pair means the character's end.
    if off < end && (0xDC00..0xE000).contains(&doc[off]) {
        off += 1;
    }
    off
}

fn model_apply(doc: &mut Vec<u16>, change: &TextDocumentContentChangeEvent) {
    match change.range {
        Some(r) => {
            let s = model_offset(doc, r.start);
            let e = model_offset(doc, r.end).max(s);
            doc.splice(s..e, change.text.encode_utf16());
        }
        None => *doc = change.text.encode_utf16().collect(),
    }
}

fuzz_target!(|input: Input| {
    let mut text = input.start.clone();
    let mut model: Vec<u16> = text.encode_utf16().collect();
    for edit in &input.edits {
        let change = TextDocumentContentChangeEvent {
            range: edit.range.as_ref().map(|(s, e)| Range { start: s.lsp(), end: e.lsp() }),
            range_length: None,
            text: edit.text.clone(),
        };
        model_apply(&mut model, &change);
        locus_lsp::apply_change(&mut text, change);
        assert_eq!(text, String::from_utf16(&model).unwrap(), "after {edit:?}");
    }
    // Replacing the whole document, by a range that covers it or by no range, leaves exactly
    // the new text.
    let whole = Range { start: Position::new(0, 0), end: Position::new(u32::MAX, u32::MAX) };
    let mut by_range = text.clone();
    locus_lsp::apply_change(
        &mut by_range,
        TextDocumentContentChangeEvent { range: Some(whole), range_length: None, text: input.last.clone() },
    );
    assert_eq!(by_range, input.last);
    locus_lsp::apply_change(
        &mut text,
        TextDocumentContentChangeEvent { range: None, range_length: None, text: input.last.clone() },
    );
    assert_eq!(text, input.last);
});
