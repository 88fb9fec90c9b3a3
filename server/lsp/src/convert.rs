//! Conversions between Locus's plain data (byte columns, relative paths) and LSP's (UTF-16
//! positions, URIs). The only place that knows about UTF-16.

use std::path::{Path, PathBuf};

use locus_index::Index;
use locus_search::Ranked;
use tower_lsp_server::ls_types::{Location, Position, Range, Uri};

/// The UTF-16 length of the first `byte_col` bytes of `line` (clamped to the line).
pub fn utf16_col(line: &str, byte_col: usize) -> u32 {
    let mut end = byte_col.min(line.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].encode_utf16().count() as u32
}

/// Line terminators as LSP counts them: `\n`, `\r\n` and a lone `\r` each end a line.
const LINE_ENDS: [char; 2] = ['\r', '\n'];

/// The byte offset in `text` of an LSP position (UTF-16 column), clamped to the text: a
/// position past the end of a line means its end, past the last line means the text's end.
pub fn offset_of(text: &str, pos: Position) -> usize {
    let mut line_start = 0usize;
    for _ in 0..pos.line {
        match text[line_start..].find(LINE_ENDS) {
            Some(i) => {
                let end = line_start + i;
                line_start = if text[end..].starts_with("\r\n") { end + 2 } else { end + 1 };
            }
            None => return text.len(),
        }
    }
    let line_end = text[line_start..].find(LINE_ENDS).map(|i| line_start + i).unwrap_or(text.len());
    let mut units = 0u32;
    for (i, ch) in text[line_start..line_end].char_indices() {
        if units >= pos.character {
            return line_start + i;
        }
        units += ch.len_utf16() as u32;
    }
    line_end
}

fn line_text(text: &str, line: u32) -> &str {
    text.split('\n').nth(line as usize).unwrap_or("")
}

pub fn uri_of(root: &Path, rel: &str) -> Option<Uri> {
    Uri::from_file_path(root.join(rel))
}

/// The workspace-relative path of a URI, or `None` when it is not a file under the root.
pub fn rel_path(root: &Path, uri: &Uri) -> Option<String> {
    let p: PathBuf = uri.to_file_path()?.into_owned();
    let rel = p.strip_prefix(root).ok()?;
    if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return None;
    }
    Some(rel.to_str()?.replace('\\', "/"))
}

/// An LSP location for a ranked item, with UTF-16 columns from the indexed text.
pub fn location(ix: &Index, r: &Ranked) -> Option<Location> {
    let text = &ix.file_of(r.id).unit.text;
    let start_line = line_text(text, r.span.start.line);
    let end_line = line_text(text, r.span.end.line);
    let range = Range {
        start: Position {
            line: r.span.start.line,
            character: utf16_col(start_line, r.span.start.col as usize),
        },
        end: Position { line: r.span.end.line, character: utf16_col(end_line, r.span.end.col as usize) },
    };
    Some(Location { uri: uri_of(&ix.root, &r.path)?, range })
}

#[cfg(test)]
mod tests {
    use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

    use super::*;

    #[test]
    fn utf16_columns() {
        assert_eq!(utf16_col("a😀b", 5), 3);
        assert_eq!(utf16_col("é", 1), 0);
        assert_eq!(utf16_col("abc", 99), 3);
    }

    #[test]
    fn offsets_clamp_out_of_range_positions() {
        let t = "ab\ncd😀e\n";
        assert_eq!(offset_of(t, Position { line: 1, character: 2 }), 5);
        assert_eq!(offset_of(t, Position { line: 1, character: 4 }), 9);
        assert_eq!(offset_of(t, Position { line: 1, character: 99 }), 10);
        assert_eq!(offset_of(t, Position { line: 99, character: 0 }), t.len());
    }

    /// Found by the `did_change` fuzz target: a lone `\r` ends a line for the client, so an
    /// edit from line 0's end replaced the wrong bytes.
    #[test]
    fn carriage_returns_end_lines() {
        let mut t = "\re".to_string();
        let end = Position { line: 32, character: 169 };
        let change = |start| TextDocumentContentChangeEvent {
            range: Some(Range { start, end }),
            range_length: None,
            text: "\r\nPPPMP".into(),
        };
        crate::apply_change(&mut t, change(Position { line: 0, character: 32 }));
        assert_eq!(t, "\r\nPPPMP");
        let t = "a\r\nb\rc\nd";
        assert_eq!(offset_of(t, Position { line: 0, character: 9 }), 1);
        assert_eq!(offset_of(t, Position { line: 1, character: 0 }), 3);
        assert_eq!(offset_of(t, Position { line: 2, character: 9 }), 6);
        assert_eq!(offset_of(t, Position { line: 3, character: 0 }), 7);
    }
}
