//! Writing the corpus: JSON lines byte-compatible with the evaluation data (Python's
//! `json.dumps` defaults: `", "` and `": "` separators, everything outside printable ASCII
//! escaped as `\uXXXX`), and files replaced atomically.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::ser::Formatter;

/// serde_json's compact output with Python's default separators and `ensure_ascii`.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        // Fragments hold no character serde_json escapes itself (quotes, backslashes, controls).
        if fragment.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return w.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// One JSON line, as Python's `json.dumps(value)` writes it.
pub fn json_line<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, PythonFormatter);
    value.serialize(&mut ser)?;
    buf.push(b'\n');
    Ok(buf)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("output path has no directory")?;
    let name = path.file_name().context("output path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all().ok();
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        id: &'static str,
        list: Vec<&'static str>,
        ok: bool,
    }

    #[test]
    fn python_json_dumps_shape() {
        let row = Row { id: "caf\u{e9} \u{1f600}\n\"q\"\u{7f}", list: vec!["a", "b"], ok: true };
        let line = String::from_utf8(json_line(&row).unwrap()).unwrap();
        // json.dumps({"id": "café 😀\n\"q\"\x7f", "list": ["a", "b"], "ok": True})
        assert_eq!(
            line,
            "{\"id\": \"caf\\u00e9 \\ud83d\\ude00\\n\\\"q\\\"\\u007f\", \"list\": [\"a\", \"b\"], \"ok\": true}\n"
        );
    }
}
